"""The Deep HDR merge network (Kalantari & Ramamoorthi, ACM TOG 36(4) 2017), Flax NNX.

Four convolutions, stride 1, "same" padding (spec 4.2): 7x7x100 ReLU, 5x5x100 ReLU, 3x3x50 ReLU,
1x1xC sigmoid, over the paper's 18 input channels: the three aligned LDR images ``I_j`` and their
HDR-domain versions ``H_j = I_j^gamma / t_j``. The receptive field is 13 px, so training losses
skip a 6-px border (:data:`BORDER`). Variants (``arch``):

* ``"direct"``: C = 3, the mu-law tonemapped HDR image directly;
* ``"we"`` (weight estimator): C = 9 per-channel blending weights ``a_j``,
  ``H = sum_j a_j H_j / sum_j a_j``;
* ``"wie"`` (weight and image estimator): C = 18, nine weights and nine refined LDR images
  ``I'_j`` whose HDR versions are blended as in WE.

:func:`merge` returns the radiance of every variant (``direct``'s output is mapped back through
the inverse mu-law), plus the refined images of WIE for its initial training phase.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jfusion import hdr

__all__ = ["HDRNetConfig", "HDRMergeNet", "ARCHS", "BORDER", "network_inputs", "merge"]

Arch = Literal["direct", "we", "wie"]
ARCHS: tuple[str, ...] = ("direct", "we", "wie")
BORDER = 6  # receptive-field half width: (7 + 5 + 3 + 1 - 4) / 2
_OUT = {"direct": 3, "we": 9, "wie": 18}


@dataclasses.dataclass(frozen=True)
class HDRNetConfig:
    """Architecture of :class:`HDRMergeNet` (hashable, stored in the weights' manifest)."""

    arch: Arch = "we"
    widths: tuple[int, int, int] = (100, 100, 50)
    kernels: tuple[int, int, int, int] = (7, 5, 3, 1)
    gamma: float = hdr.GAMMA

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HDRNetConfig:
        return cls(arch=d["arch"], widths=tuple(d["widths"]), kernels=tuple(d["kernels"]), gamma=float(d["gamma"]))


class HDRMergeNet(nnx.Module):
    """``(N, H, W, 18) -> (N, H, W, C)`` in (0, 1); see the module docstring."""

    def __init__(self, *, config: HDRNetConfig = HDRNetConfig(), rngs: nnx.Rngs):
        if config.arch not in _OUT:
            raise ValueError(f"arch must be one of {ARCHS}, got {config.arch!r}")
        self.config = config
        chans = (18, *config.widths, _OUT[config.arch])
        init = nnx.initializers.xavier_uniform()  # the paper initialises with Xavier
        self.convs = nnx.List([
            nnx.Conv(chans[i], chans[i + 1], (k, k), padding="SAME", kernel_init=init, rngs=rngs)
            for i, k in enumerate(config.kernels)
        ])

    def __call__(self, x: jax.Array) -> jax.Array:
        for conv in self.convs[:-1]:
            x = jax.nn.relu(conv(x))
        return jax.nn.sigmoid(self.convs[-1](x))


def network_inputs(aligned: ArrayLike, times: ArrayLike, *, gamma: float = hdr.GAMMA) -> tuple[jax.Array, jax.Array]:
    """The 18-channel input and the HDR-domain images of aligned stacks.

    Args:
      aligned: ``(N, 3, H, W, 3)`` aligned LDR exposures in [0, 1]; times: ``(N, 3)``.

    Returns:
      ``(x, h)``: ``x`` ``(N, H, W, 18)`` = [I1, I2, I3, H1, H2, H3] on channels, ``h``
      ``(N, 3, H, W, 3)`` the ``H_j``.
    """
    z = jnp.asarray(aligned, jnp.float32)
    t = jnp.asarray(times, jnp.float32)[:, :, None, None, None]
    h = hdr.ldr_to_hdr(z, t, gamma=gamma)
    n, s, hh, ww, c = z.shape
    flat = lambda a: jnp.moveaxis(a, 1, 3).reshape(n, hh, ww, s * c)  # noqa: E731
    return jnp.concatenate([flat(z), flat(h)], axis=-1), h


def _blend(weights: jax.Array, h: jax.Array) -> jax.Array:
    n, s, hh, ww, c = h.shape
    a = jnp.moveaxis(weights.reshape(n, hh, ww, s, c), 3, 1)
    return jnp.sum(a * h, axis=1) / (jnp.sum(a, axis=1) + 1e-6)


def merge(model: HDRMergeNet, aligned: ArrayLike, times: ArrayLike) -> tuple[jax.Array, jax.Array | None]:
    """Radiance ``(N, H, W, 3)`` in [0, 1] from aligned stacks, and WIE's refined images (else ``None``)."""
    gamma = model.config.gamma
    x, h = network_inputs(aligned, times, gamma=gamma)
    y = model(x)
    arch = model.config.arch
    if arch == "direct":
        return hdr.mu_law_inverse(y), None
    if arch == "we":
        return _blend(y, h), None
    n, hh, ww, _ = y.shape
    refined = jnp.moveaxis(y[..., 9:].reshape(n, hh, ww, 3, 3), 3, 1)
    t = jnp.asarray(times, jnp.float32)[:, :, None, None, None]
    return _blend(y[..., :9], hdr.ldr_to_hdr(refined, t, gamma=gamma)), refined
