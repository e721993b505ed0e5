"""MS/HS fusion with a 3-D CNN on PCA-reduced hyperspectral data (Palsson, Sveinsson, Ulfarsson, IEEE GRSL 14(5) 2017).

The low-resolution HS cube ``(h, w, L)`` is reduced to ``P`` principal components (basis fitted on
the HS itself), the components are interpolated to the grid of the high-resolution MS/RGB image
``(r h, r w, C)`` and stacked with its bands along a spectral axis: a volume ``(H, W, P + C, 1)``.
A 3-D CNN (:class:`jfusion.models.pansharpening.CNN3D`, residual) predicts the high-resolution
components; the inverse PCA gives the ``(H, W, L)`` cube. Training follows Wald's protocol: both
inputs are degraded by the ratio and the network learns to recover the original HS components.

Registered as ``cnn3d-mshs``: ``pansharpen(hs, ms_hr, "cnn3d-mshs", sensor=<scene name>)`` where the
second argument is ``(H, W, C)``; weights per scene (``houston``).
"""

from __future__ import annotations

import functools
import json
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from jfusion.errors import FusionInputError
from jfusion.models.pansharpening import CNN3D
from jfusion.pansharpening.learned import WEIGHTS_DIR, apply_network
from jfusion.pansharpening.registry import register
from jfusion.pansharpening.wald import Interp, degrade, upsample_ms

__all__ = ["PCABasis", "fit_pca", "to_components", "from_components", "volume", "build_cnn3d", "load_cnn3d", "cnn3d_mshs", "degrade_hs_ms"]

N_COMPONENTS = 8


class PCABasis(NamedTuple):
    """``mean (L,)``, ``basis (L, P)`` (orthonormal columns, by decreasing variance), ``scale`` (std of PC1)."""

    mean: jax.Array
    basis: jax.Array
    scale: float


def fit_pca(hs: ArrayLike, n_components: int = N_COMPONENTS) -> PCABasis:
    """PCA of the spectra of ``hs`` ``(h, w, L)``."""
    x = np.asarray(hs, np.float64).reshape(-1, np.shape(hs)[-1])
    mu = x.mean(0)
    evals, evecs = np.linalg.eigh(np.cov((x - mu).T))
    order = np.argsort(evals)[::-1][:n_components]
    basis = evecs[:, order]
    basis = basis * np.sign(basis.sum(0) + 1e-12)
    return PCABasis(jnp.asarray(mu, jnp.float32), jnp.asarray(basis, jnp.float32), float(np.sqrt(evals[order[0]])))


def to_components(hs: jax.Array, pca: PCABasis) -> jax.Array:
    """``(..., L) -> (..., P)`` scaled scores."""
    return ((hs - pca.mean) @ pca.basis) / pca.scale


def from_components(z: jax.Array, pca: PCABasis) -> jax.Array:
    """``(..., P) -> (..., L)``."""
    return (z * pca.scale) @ pca.basis.T + pca.mean


def volume(hs_lr: jax.Array, ms_hr: jax.Array, pca: PCABasis, *, ratio: int, ms_scale: float, interp: Interp = "bicubic") -> jax.Array:
    """The network input ``(H, W, P + C, 1)``: interpolated HS components stacked with the scaled MS bands."""
    z = upsample_ms(to_components(jnp.asarray(hs_lr, jnp.float32), pca), ratio, interp)
    return jnp.concatenate([z, jnp.asarray(ms_hr, jnp.float32) / ms_scale], -1)[..., None]


def degrade_hs_ms(hs: ArrayLike, ms_hr: ArrayLike, *, ratio: int) -> tuple[jax.Array, jax.Array]:
    """Wald degradation of an HS/MS pair (generic MTF gains, decimation): ``(hs_lr, ms_lr)``."""
    ms_hr = jnp.asarray(ms_hr, jnp.float32)
    hs_lr, _ = degrade(hs, ms_hr[..., 0], ratio=ratio, sensor=None)
    ms_lr, _ = degrade(ms_hr, ms_hr[..., 0], ratio=ratio, sensor=None)
    return hs_lr, ms_lr


def build_cnn3d(seed: int = 0) -> CNN3D:
    return CNN3D(features=(16, 8), kernels=((5, 5, 3), (3, 3, 3), (3, 3, 3)), residual=True, rngs=nnx.Rngs(seed))


@functools.lru_cache(maxsize=8)
def load_cnn3d(scene: str) -> tuple[CNN3D, PCABasis, dict[str, Any]]:
    """The shipped 3-D CNN of ``scene`` with its PCA basis and metadata."""
    path = WEIGHTS_DIR / f"cnn3d-mshs-{scene}.npz"
    if not path.exists():
        have = sorted(p.stem.removeprefix("cnn3d-mshs-") for p in WEIGHTS_DIR.glob("cnn3d-mshs-*.npz"))
        raise FusionInputError(f"method 'cnn3d-mshs': no weights for {scene!r}; pass sensor= one of {have or 'none available'}.")
    data = np.load(path)
    meta = json.loads(str(data["__meta__"]))
    model = build_cnn3d()
    state = nnx.state(model, nnx.Param)
    leaves = []
    for p, leaf in jax.tree_util.tree_leaves_with_path(state):
        k = "/".join(str(getattr(q, "key", getattr(q, "idx", q))) for q in p)
        leaves.append(jnp.asarray(data[k]).reshape(leaf.shape))
    nnx.update(model, jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(state), leaves))
    pca = PCABasis(jnp.asarray(data["pca_mean"]), jnp.asarray(data["pca_basis"]), float(meta["pca_scale"]))
    return model, pca, meta


@register("cnn3d-mshs", family="mshs", reference="Palsson, Sveinsson, Ulfarsson, IEEE GRSL 14(5) 2017")
def cnn3d_mshs(hs: ArrayLike, ms: ArrayLike, *, ratio: int = 4, sensor: str | None = "houston", bit_depth: int | None = None, interp: Interp = "bicubic") -> jax.Array:
    """3-D CNN MS/HS fusion: HS ``(h, w, L)`` + high-resolution MS/RGB ``(r h, r w, C)`` -> ``(r h, r w, L)``."""
    del bit_depth
    model, pca, meta = load_cnn3d(str(sensor or "houston").lower())
    hs = jnp.asarray(hs, jnp.float32)
    ms = jnp.asarray(ms, jnp.float32)
    if hs.shape[-1] != pca.mean.shape[0] or ms.shape[-1] != int(meta["ms_bands"]):
        raise FusionInputError(
            f"cnn3d-mshs ({sensor}): trained for {pca.mean.shape[0]} HS bands and {meta['ms_bands']} MS bands, "
            f"got {hs.shape[-1]} and {ms.shape[-1]}; pass data of that sensor pair."
        )
    x = volume(hs, ms, pca, ratio=ratio, ms_scale=float(meta["ms_scale"]), interp=interp)
    z = apply_network(model, x)[..., : pca.basis.shape[1], 0]
    return from_components(z, pca)
