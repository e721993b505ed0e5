"""Weight-map CNNs of Liu et al. (2017) and the survey's Fig. 5 framework (Flax NNX).

One class, :class:`WeightNet`, covers every classification-type network the survey names:

* ``arch="siamese"``: two branches with shared weights (Liu et al., Inf. Fusion 36, 2017);
* ``arch="pseudo"``: two branches with their own weights (pseudo-siamese);
* ``arch="2ch"``: the two patches stacked as channels of one branch (2-channel,
  Zagoruyko & Komodakis 2015).

A branch is conv 3x3 (``widths[0]``) - ReLU - conv 3x3 (``widths[1]``) - ReLU - max-pool
2x2/2 - conv 3x3 (``widths[2]``) - ReLU, "same" zero padding, so a 16x16 patch gives an
8x8 feature map. Heads:

* ``head="fc256"``: fully connected ``8*8*C -> hidden`` (ReLU) ``-> n_classes`` (Liu 2017
  multi-focus network, ``hidden=256``);
* ``head="direct"``: one fully connected ``8*8*C -> n_classes`` (the released IR/visible
  and medical network).

With ``n_classes = K`` the classes are the weight assignments ``w_k = k / (K - 1)`` for
source A (and ``1 - w_k`` for B), so that K = 2 is Liu's classifier (class 1 = "A is the
focused one") and the predicted weight is the expectation ``sum_k p_k w_k``.

The fully connected layers are stored as ``nnx.Linear`` acting on the flattened 8x8 map
(row-major ``(y, x, channel)``). :meth:`WeightNet.dense_logits` reshapes them into an 8x8
"valid" convolution and a 1x1 convolution, so a whole image gives a dense score map
whose entry ``(j, i)`` is the classifier's output for the 16x16 patch at ``(2j, 2i)``
(exactly, away from the border where "same" padding differs from patch-wise zero
padding). The model knows nothing about fusion rules (see :mod:`jfusion.methods.cnn`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from jfusion.models import conv as fastconv
from jfusion.models.conv import Conv
from jfusion.ops.precision import HIGHEST, matmul

__all__ = ["WeightNetConfig", "WeightNet", "Branch", "class_weights", "PATCH", "STRIDE"]

PATCH = 16
"""Training patch size of every network here (the fc layer sees the 8x8 map of a 16x16 patch)."""
STRIDE = 2
"""Dense-map stride: one max-pool 2x2/2, so output (j, i) is the patch at (2j, 2i)."""

Arch = Literal["siamese", "pseudo", "2ch"]
Head = Literal["fc256", "direct"]


@dataclasses.dataclass(frozen=True)
class WeightNetConfig:
    """Hyper-parameters of a :class:`WeightNet` (hashable, stored in weight manifests).

    Attributes:
      arch: input manner, ``"siamese"``, ``"pseudo"`` or ``"2ch"``.
      head: ``"fc256"`` (hidden fc layer) or ``"direct"`` (one fc layer to the classes).
      widths: output channels of the three 3x3 convolutions (Liu 2017: 64, 128, 256).
      hidden: units of the hidden fc layer of ``head="fc256"`` (Liu 2017: 256).
      n_classes: number K of weight-assignment classes (2 = focused / not focused).
      reference_forward: reproduce the released MATLAB forward pass of ported weights:
        no bias and no ReLU after the hidden fc layer, no bias on the output layer.
    """

    arch: Arch = "siamese"
    head: Head = "fc256"
    widths: tuple[int, int, int] = (64, 128, 256)
    hidden: int = 256
    n_classes: int = 2
    reference_forward: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ("siamese", "pseudo", "2ch"):
            raise ValueError(f"arch must be 'siamese', 'pseudo' or '2ch', got {self.arch!r}")
        if self.head not in ("fc256", "direct"):
            raise ValueError(f"head must be 'fc256' or 'direct', got {self.head!r}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {self.n_classes}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> WeightNetConfig:
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        return cls(**d)


def class_weights(n_classes: int) -> jax.Array:
    """The weight for source A of each class, ``w_k = k / (K - 1)``, shape ``(K,)``."""
    return jnp.linspace(0.0, 1.0, n_classes, dtype=jnp.float32)


def _max_pool_ceil(x: jax.Array) -> jax.Array:
    """2x2/2 max-pool of NHWC ``x`` with odd sizes zero-padded at the bottom/right (ceil).

    ``x`` comes out of a ReLU, so zero padding equals ignoring the missing samples.
    """
    h, w = x.shape[-3], x.shape[-2]
    x = jnp.pad(x, ((0, 0),) * (x.ndim - 3) + ((0, h % 2), (0, w % 2), (0, 0)))
    return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))


class Branch(nnx.Module):
    """One feature branch: conv-ReLU, conv-ReLU, max-pool 2x2/2, conv-ReLU (NHWC in and out)."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int], *, rngs: nnx.Rngs):
        init = nnx.initializers.xavier_uniform()
        c1, c2, c3 = widths
        self.conv1 = Conv(in_channels, c1, (3, 3), padding="SAME", kernel_init=init, rngs=rngs)
        self.conv2 = Conv(c1, c2, (3, 3), padding="SAME", kernel_init=init, rngs=rngs)
        self.conv3 = Conv(c2, c3, (3, 3), padding="SAME", kernel_init=init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.conv1(x))
        x = jax.nn.relu(self.conv2(x))
        x = _max_pool_ceil(x)
        return jax.nn.relu(self.conv3(x))


class WeightNet(nnx.Module):
    """Two-input patch classifier whose expectation is the weight of source A (see module doc).

    Args:
      config: the architecture (:class:`WeightNetConfig`).
      rngs: ``nnx.Rngs`` for the initialisation (Xavier-uniform kernels, zero biases).
    """

    def __init__(self, *, config: WeightNetConfig = WeightNetConfig(), rngs: nnx.Rngs):
        self.config = config
        c = config
        if c.arch == "2ch":
            self.branch_a = Branch(2, c.widths, rngs=rngs)
            feat = c.widths[2]
        else:
            self.branch_a = Branch(1, c.widths, rngs=rngs)
            feat = 2 * c.widths[2]
        if c.arch == "pseudo":
            self.branch_b = Branch(1, c.widths, rngs=rngs)
        init = nnx.initializers.xavier_uniform()
        n_in = (PATCH // STRIDE) ** 2 * feat
        if c.head == "fc256":
            self.fc1 = nnx.Linear(n_in, c.hidden, kernel_init=init, rngs=rngs)
            self.out = nnx.Linear(c.hidden, c.n_classes, kernel_init=init, rngs=rngs)
        else:
            self.out = nnx.Linear(n_in, c.n_classes, kernel_init=init, rngs=rngs)

    # -- features -----------------------------------------------------------------------
    def features(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """Concatenated branch features of NHWC grey inputs ``(N, H, W, 1)`` -> ``(N, H', W', C)``."""
        arch = self.config.arch
        if arch == "2ch":
            return self.branch_a(jnp.concatenate([a, b], axis=-1))
        fb = self.branch_b(b) if arch == "pseudo" else self.branch_a(b)
        return jnp.concatenate([self.branch_a(a), fb], axis=-1)

    def _head(self, f: jax.Array) -> jax.Array:
        ref = self.config.reference_forward
        if self.config.head == "fc256":
            h = matmul(f, self.fc1.kernel[...])
            if not ref:
                h = jax.nn.relu(h + self.fc1.bias[...])
        else:
            h = f
        y = matmul(h, self.out.kernel[...])
        return y if ref else y + self.out.bias[...]

    # -- patch classifier -----------------------------------------------------------------
    def __call__(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """Class logits of patch pairs.

        Args:
          a, b: ``(N, 16, 16, 1)`` grey patches in [0, 1] (or ``(N, 16, 16)``).

        Returns:
          ``(N, n_classes)`` logits; class k means weight ``k / (K - 1)`` for ``a``.
        """
        if a.ndim == 3:
            a, b = a[..., None], b[..., None]
        f = self.features(a, b)
        return self._head(f.reshape(f.shape[0], -1))

    # -- fully convolutional --------------------------------------------------------------
    def dense_logits(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """Dense logits of whole images, the fc layers applied as convolutions.

        Args:
          a, b: ``(N, H, W, 1)`` (or ``(N, H, W)``) grey images in [0, 1], ``H, W >= 16``.

        Returns:
          ``(N, ceil(H/2) - 7, ceil(W/2) - 7, n_classes)`` logits; entry ``(j, i)`` scores
          the 16x16 patch with top-left corner ``(2j, 2i)``.
        """
        if a.ndim == 3:
            a, b = a[..., None], b[..., None]
        f = self.features(a, b)
        h = fastconv.conv(f, self._first_kernel(), padding="VALID", precision=HIGHEST)  # the backend's fast form
        return self._dense_tail(h)

    def dense_logits_against(self, ref: jax.Array, others: jax.Array) -> jax.Array:
        """Dense logits of the pairs ``(ref, others[m])``, each source's branch and fc half computed once.

        The first fc layer is linear in the concatenated features, ``W [f_a; f_b] = W_a f_a + W_b f_b``,
        so ``ref``'s half is computed once for all pairs and every other image's half once: the cost of
        ``M`` pairs is ``M + 1`` branches and fc halves instead of ``2 M``. Equal to
        :meth:`dense_logits` of each pair up to float32 rounding (a different summation order).
        Not for ``arch="2ch"`` (no separate branch features).

        Args:
          ref: ``(1, H, W, 1)`` (or ``(1, H, W)``) grey image in [0, 1]; the "A" side of every pair.
          others: ``(M, H, W, 1)`` (or ``(M, H, W)``) grey images, the "B" sides.

        Returns:
          ``(M, ceil(H/2) - 7, ceil(W/2) - 7, n_classes)`` logits, class k = weight ``k / (K - 1)`` of ``ref``.
        """
        if self.config.arch == "2ch":
            raise ValueError("dense_logits_against needs separate branches (arch 'siamese' or 'pseudo'), not '2ch'")
        if ref.ndim == 3:
            ref, others = ref[..., None], others[..., None]
        if self.config.arch == "siamese":  # one branch call over every image
            f = self.branch_a(jnp.concatenate([ref, others], axis=0))
            fa, fb = f[:1], f[1:]
        else:
            fa, fb = self.branch_a(ref), self.branch_b(others)
        kernel = self._first_kernel()
        c = fa.shape[-1]
        ha = fastconv.conv(fa, kernel[:, :, :c], padding="VALID", precision=HIGHEST)
        hb = fastconv.conv(fb, kernel[:, :, c:], padding="VALID", precision=HIGHEST)
        return self._dense_tail(ha + hb)

    def _first_kernel(self) -> jax.Array:
        """The first fc layer as an 8x8 HWIO kernel (``Linear`` on row-major ``(y, x, c)``)."""
        k = PATCH // STRIDE
        first = self.fc1 if self.config.head == "fc256" else self.out
        return first.kernel[...].reshape(k, k, first.kernel.shape[0] // (k * k), -1)

    def _dense_tail(self, h: jax.Array) -> jax.Array:
        """Everything after the first fc layer's product, on dense maps ``(N, h', w', hidden)``."""
        ref = self.config.reference_forward
        if self.config.head == "fc256":
            if not ref:
                h = jax.nn.relu(h + self.fc1.bias[...])
            h = matmul(h, self.out.kernel[...])
        return h if ref else h + self.out.bias[...]

    def dense_weight(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """Expected weight of ``a`` per patch position: ``sum_k softmax_k w_k``, ``(N, h', w')``."""
        return self._expected_weight(self.dense_logits(a, b))

    def dense_weight_against(self, ref: jax.Array, others: jax.Array) -> jax.Array:
        """Expected weight of ``ref`` against each of ``others``, ``(M, h', w')`` (see :meth:`dense_logits_against`)."""
        return self._expected_weight(self.dense_logits_against(ref, others))

    def _expected_weight(self, logits: jax.Array) -> jax.Array:
        p = jax.nn.softmax(logits, axis=-1)
        return matmul(p, class_weights(self.config.n_classes))
