"""The regression-type fusion network of the survey's Fig. 5 (``cnn-regression``), Flax NNX.

Liu et al. (Inf. Fusion 42, 2018, Section 5.1) name two ways a CNN can fuse: a classifier whose output
is a weight map (``cnn-weights``, ``cnn-focus``), and an end-to-end *regression* network from the
sources to the fused image, trained on synthetic ground truth. The layers follow DeepFuse (Prabhakar,
Srikar, Babu, ICCV 2017), the survey's example of the second kind: a shared two-layer encoder
(5x5x16, 7x7x32, ReLU) applied to every source, a fusion layer, and a three-layer decoder (7x7x32,
5x5x16, 5x5x1), stride 1, "same" padding.

Departures, stated so they can be judged: DeepFuse adds the two encoders' maps (two sources only);
here the fusion layer concatenates their **mean and maximum over the sources**, which is symmetric in the
sources and takes any ``S >= 2``; and the decoder predicts a **residual over the sources' mean** (the
fused image is ``mean + decoder(...)``), which trains in hundreds instead of 10^5 steps on a CPU.

Input ``(N, S, H, W)`` single-channel sources in [0, 1] (the luma of colour sources, through the
shared colour helper); output ``(N, H, W)``, not clipped. The receptive field is 25 px
(:data:`HALO` = 12 px on each side).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["RegressionNetConfig", "RegressionFusionNet", "halo"]


@dataclasses.dataclass(frozen=True)
class RegressionNetConfig:
    """Architecture of :class:`RegressionFusionNet` (hashable, stored in the weights' manifest).

    Attributes:
      encoder: widths of the two shared encoder layers (DeepFuse: 16, 32).
      decoder: widths of the two hidden decoder layers (DeepFuse: 32, 16); the last layer has 1 output.
      kernels: the five kernel sides, encoder then decoder (DeepFuse: 5, 7, 7, 5, 5).
    """

    encoder: tuple[int, int] = (16, 32)
    decoder: tuple[int, int] = (32, 16)
    kernels: tuple[int, int, int, int, int] = (5, 7, 7, 5, 5)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegressionNetConfig:
        return cls(encoder=tuple(d["encoder"]), decoder=tuple(d["decoder"]), kernels=tuple(d["kernels"]))


def halo(config: RegressionNetConfig) -> int:
    """Pixels of context on each side that an output pixel depends on (half the receptive field)."""
    return sum((k - 1) // 2 for k in config.kernels)


class RegressionFusionNet(nnx.Module):
    """``(N, S, H, W) -> (N, H, W)``: encoder per source (shared), mean + max over sources, decoder, + mean."""

    def __init__(self, *, config: RegressionNetConfig = RegressionNetConfig(), rngs: nnx.Rngs):
        self.config = config
        k1, k2, k3, k4, k5 = config.kernels
        e1, e2 = config.encoder
        d1, d2 = config.decoder
        conv = lambda i, o, k: nnx.Conv(i, o, (k, k), padding="SAME", rngs=rngs)  # noqa: E731
        self.enc1, self.enc2 = conv(1, e1, k1), conv(e1, e2, k2)
        self.dec1, self.dec2 = conv(2 * e2, d1, k3), conv(d1, d2, k4)
        self.out = nnx.Conv(d2, 1, (k5, k5), padding="SAME", kernel_init=nnx.initializers.zeros_init(), rngs=rngs)

    def encode(self, x: jax.Array) -> jax.Array:
        """``(M, H, W) -> (M, H, W, encoder[1])``."""
        return jax.nn.relu(self.enc2(jax.nn.relu(self.enc1(x[..., None]))))

    def __call__(self, sources: jax.Array) -> jax.Array:
        n, s, h, w = sources.shape
        x = sources.astype(jnp.float32)
        feats = self.encode(x.reshape(n * s, h, w)).reshape(n, s, h, w, -1)
        merged = jnp.concatenate([jnp.mean(feats, axis=1), jnp.max(feats, axis=1)], axis=-1)
        y = jax.nn.relu(self.dec2(jax.nn.relu(self.dec1(merged))))
        return jnp.mean(x, axis=1) + self.out(y)[..., 0]
