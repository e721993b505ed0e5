"""Flax NNX models of the learned pan-sharpening and MS/HS fusion methods (no fusion logic here).

* :class:`PNN` - Masi et al. 2016: three convolutions (wide first kernel, ReLU, ReLU, linear),
  'valid' convolutions; ``residual=True`` gives the residual PNN (Rao et al. 2017; also the
  layout of Scarpa et al. 2018's released networks): the interpolated MS is added back.
* :class:`DRPNN` - Wei et al. 2017: 11 convolutions, a residual over the (B + 1)-channel input
  and a final convolution to B bands ('same' padding).
* :class:`SRCNN` - Dong et al. 2016 super-resolution network (9-5-5, 64/32), 'same' padding,
  one channel or all MS bands in and out; used by SRCNN + Gram-Schmidt.
* :class:`SparseAE` / :class:`StackedSAE` - Huang et al. 2015 sparse denoising autoencoders
  on vectorised patches (sigmoid units).
* :class:`CNN3D` - Palsson et al. 2017: three 3-D convolutions over (H, W, spectral) volumes.

Images are NHWC (3-D: N, H, W, D, C), float32, scaled by ``2**bit_depth`` by the callers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jfusion.models.conv import Conv

__all__ = ["PNN", "DRPNN", "SRCNN", "SparseAE", "StackedSAE", "CNN3D", "receptive_margin"]


def receptive_margin(kernels: tuple[int, ...]) -> int:
    """Pixels lost per side by 'valid' convolutions with these kernel sizes: ``sum(k - 1) // 2``."""
    return sum(k - 1 for k in kernels) // 2


class PNN(nnx.Module):
    """PNN / residual PNN: ``conv k1 -> ReLU -> conv k2 -> ReLU -> conv k3`` with 'valid' padding.

    Args:
      in_channels: input channels (B MS bands + PAN [+ radiometric indices]).
      bands: output bands B.
      features: channels of the two hidden layers (64, 32 in Masi et al.; 48, 32 in Scarpa et al.).
      kernels: kernel sizes of the three layers (9, 5, 5).
      residual: add the first ``bands`` input channels (the interpolated MS), centre-cropped.
      rngs: parameter initialisation.

    Call: ``x (N, H, W, in_channels) -> (N, H - 2m, W - 2m, bands)``, ``m = receptive_margin(kernels)``.
    """

    def __init__(
        self,
        in_channels: int,
        bands: int,
        *,
        features: tuple[int, int] = (64, 32),
        kernels: tuple[int, int, int] = (9, 5, 5),
        residual: bool = False,
        rngs: nnx.Rngs,
    ):
        self.bands = bands
        self.residual = residual
        self.margin = receptive_margin(kernels)
        chans = (in_channels, *features, bands)
        self.conv1 = Conv(chans[0], chans[1], (kernels[0],) * 2, padding="VALID", rngs=rngs)
        self.conv2 = Conv(chans[1], chans[2], (kernels[1],) * 2, padding="VALID", rngs=rngs)
        self.conv3 = Conv(
            chans[2], chans[3], (kernels[2],) * 2, padding="VALID", rngs=rngs,
            kernel_init=nnx.initializers.variance_scaling(0.1 if residual else 1.0, "fan_in", "truncated_normal"),
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.conv1(x))
        y = jax.nn.relu(self.conv2(y))
        y = self.conv3(y)
        if self.residual:
            m = self.margin
            y = y + x[:, m : x.shape[1] - m, m : x.shape[2] - m, : self.bands]
        return y


class DRPNN(nnx.Module):
    """DRPNN: conv (B+1 -> C) ReLU, ``depth - 3`` x [conv C -> C ReLU], conv C -> B+1, + input, conv -> B.

    Args:
      in_channels: B + 1 (interpolated MS bands and PAN).
      bands: output bands B.
      features: hidden channels C (64 in the paper, 32 in the DLPan-Toolbox).
      depth: number of convolutions (11).
      kernel: kernel size (7), 'same' padding.
    """

    def __init__(self, in_channels: int, bands: int, *, features: int = 32, depth: int = 11, kernel: int = 7, rngs: nnx.Rngs):
        k = (kernel, kernel)
        self.first = Conv(in_channels, features, k, padding="SAME", rngs=rngs)
        self.hidden = nnx.List([Conv(features, features, k, padding="SAME", rngs=rngs) for _ in range(depth - 3)])
        self.to_input = Conv(
            features, in_channels, k, padding="SAME", rngs=rngs,
            kernel_init=nnx.initializers.variance_scaling(0.1, "fan_in", "truncated_normal"),
        )
        self.out = Conv(in_channels, bands, k, padding="SAME", rngs=rngs)
        # Start as EXP: the last convolution initially passes the MS bands of its input through
        # (centre tap = identity on the first ``bands`` channels), and the residual branch is small.
        eye = jnp.zeros((kernel, kernel, in_channels, bands)).at[kernel // 2, kernel // 2, :bands, :].set(jnp.eye(bands))
        self.out.kernel[...] = eye

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.first(x))
        for conv in self.hidden:
            y = jax.nn.relu(conv(y))
        return self.out(x + self.to_input(y))


class SRCNN(nnx.Module):
    """SRCNN (9-5-5, 64/32 channels, 'same' padding); residual to its input when ``residual``.

    Args:
      channels: input and output channels (1: Dong et al.'s luminance network; B: all MS bands
        in and out, as used by SRCNN + Gram-Schmidt).

    Call: ``x (N, H, W, channels) -> (N, H, W, channels)``.
    """

    def __init__(
        self,
        *,
        channels: int = 1,
        features: tuple[int, int] = (64, 32),
        kernels: tuple[int, int, int] = (9, 5, 5),
        residual: bool = True,
        rngs: nnx.Rngs,
    ):
        self.residual = residual
        self.conv1 = Conv(channels, features[0], (kernels[0],) * 2, padding="SAME", rngs=rngs)
        self.conv2 = Conv(features[0], features[1], (kernels[1],) * 2, padding="SAME", rngs=rngs)
        self.conv3 = Conv(
            features[1], channels, (kernels[2],) * 2, padding="SAME", rngs=rngs,
            kernel_init=nnx.initializers.variance_scaling(0.1 if residual else 1.0, "fan_in", "truncated_normal"),
        )

    def features(self, x: jax.Array) -> jax.Array:
        """The first layer's feature maps: ``relu(conv1(x))``, ``(N, H, W, channels) -> (N, H, W, features[0])``."""
        return jax.nn.relu(self.conv1(x))

    def reconstruct(self, f: jax.Array, base: jax.Array) -> jax.Array:
        """Layers 2-3 on first-layer maps ``f`` (``(N, H, W, features[0])``); ``base`` (the input, ``(N, H, W, channels)``)
        is added back when ``residual``. ``model(x) == model.reconstruct(model.features(x), x)``."""
        y = self.conv3(jax.nn.relu(self.conv2(f)))
        return base + y if self.residual else y

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.reconstruct(self.features(x), x)


class SparseAE(nnx.Module):
    """One sparse (denoising) autoencoder layer: sigmoid encoder ``n_in -> n_hidden`` and sigmoid decoder back."""

    def __init__(self, n_in: int, n_hidden: int, *, rngs: nnx.Rngs):
        self.enc = nnx.Linear(n_in, n_hidden, rngs=rngs)
        self.dec = nnx.Linear(n_hidden, n_in, rngs=rngs)

    def encode(self, x: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(self.enc(x))

    def decode(self, h: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(self.dec(h))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decode(self.encode(x))


class StackedSAE(nnx.Module):
    """Two stacked sparse AEs: ``enc1 -> enc2 -> dec2 -> dec1`` on vectorised patches in [0, 1] (Huang et al. 2015)."""

    def __init__(self, n_in: int, hidden: tuple[int, int], *, rngs: nnx.Rngs):
        self.ae1 = SparseAE(n_in, hidden[0], rngs=rngs)
        self.ae2 = SparseAE(hidden[0], hidden[1], rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.ae1.decode(self.ae2(self.ae1.encode(x)))


class CNN3D(nnx.Module):
    """Three 3-D convolutions (ReLU, ReLU, linear) over ``(N, H, W, D, 1)`` volumes, 'same' padding.

    The spectral axis D stacks the interpolated HS principal components and the MS bands; the
    output keeps D channels of which the caller reads the PC ones. ``residual`` adds the input.
    """

    def __init__(
        self,
        *,
        features: tuple[int, int] = (32, 16),
        kernels: tuple[tuple[int, int, int], ...] = ((5, 5, 3), (3, 3, 3), (3, 3, 3)),
        residual: bool = True,
        rngs: nnx.Rngs,
    ):
        self.residual = residual
        self.conv1 = Conv(1, features[0], kernels[0], padding="SAME", rngs=rngs)
        self.conv2 = Conv(features[0], features[1], kernels[1], padding="SAME", rngs=rngs)
        self.conv3 = Conv(
            features[1], 1, kernels[2], padding="SAME", rngs=rngs,
            kernel_init=nnx.initializers.variance_scaling(0.1 if residual else 1.0, "fan_in", "truncated_normal"),
        )

    def features(self, x: jax.Array) -> jax.Array:
        """The first layer's feature maps: ``relu(conv1(x))``, ``(N, H, W, channels) -> (N, H, W, features[0])``."""
        return jax.nn.relu(self.conv1(x))

    def reconstruct(self, f: jax.Array, base: jax.Array) -> jax.Array:
        """Layers 2-3 on first-layer maps ``f`` (``(N, H, W, features[0])``); ``base`` (the input, ``(N, H, W, channels)``)
        is added back when ``residual``. ``model(x) == model.reconstruct(model.features(x), x)``."""
        y = self.conv3(jax.nn.relu(self.conv2(f)))
        return base + y if self.residual else y

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.reconstruct(self.features(x), x)
