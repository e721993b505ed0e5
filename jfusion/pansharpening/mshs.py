"""MS/HS fusion with a 3-D CNN on PCA-reduced hyperspectral data (Palsson, Sveinsson, Ulfarsson, IEEE GRSL 14(5) 2017).

The low-resolution HS cube ``(h, w, L)`` is reduced to ``P`` principal components (basis fitted on
the HS itself), the components are interpolated to the grid of the high-resolution image
``(r h, r w, C)`` (MS, RGB or a single PAN band, ``C = 1``) and stacked with its bands along a
spectral axis: a volume ``(H, W, P + C, 1)``. A 3-D CNN (:class:`jfusion.models.pansharpening.CNN3D`,
residual) predicts the high-resolution components; the inverse PCA gives the ``(H, W, L)`` cube.

Training pairs (:func:`training_pair`) follow the protocol of each scene:

* a real pair with ``ratio > 1`` (Houston HS + RGB, ratio 4; Paris Hyperion HS + ALI PAN, ratio 3):
  Wald's protocol, both inputs degraded by the ratio, the original HS is the target;
* HS and MS on one grid (Paris Hyperion HS + ALI MS, HySure's protocol): the HS is degraded by
  ``SIMULATED_RATIO`` (3), the MS is kept, the original HS is the target.

Registered as ``cnn3d-mshs``: ``pansharpen(hs, hr, "cnn3d-mshs", scene=<scene key>)`` where the
second argument is ``(H, W, C)`` or a PAN ``(H, W)``; weights per scene key (:data:`SCENE_KEYS`:
``houston``, ``paris-ms``, ``paris-pan``). With ``scene=None`` the shipped model whose HS and
high-resolution band counts and ratio match the input is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from jfusion import assets
from jfusion.errors import FusionInputError
from jfusion.models.pansharpening import CNN3D
from jfusion.ops.precision import matmul
from jfusion.pansharpening.learned import WEIGHTS_DIR, apply_network
from jfusion.pansharpening.registry import register
from jfusion.pansharpening.wald import Interp, degrade, upsample_ms
from jfusion.weights import cached_loader

__all__ = [
    "PCABasis", "SCENE_KEYS", "SIMULATED_RATIO", "fit_pca", "to_components", "from_components", "volume", "build_cnn3d",
    "check_inputs", "load_cnn3d", "shipped_cnn3d", "cnn3d_mshs", "degrade_hs_ms", "training_pair", "split_columns", "scene_key",
]

N_COMPONENTS = 8
# HySure's protocol for HS and MS on one grid (Paris Hyperion + ALI): the HS is degraded by 3.
SIMULATED_RATIO = 3
# Weight-file keys of the scenes in shared/data/hyperspectral (file stem -> key).
SCENE_KEYS = {"houston_dataset": "houston", "paris_data_hs_ms": "paris-ms", "paris_data_hs_pan": "paris-pan"}


class PCABasis(NamedTuple):
    """``mean (L,)``, ``basis (L, P)`` (orthonormal columns, by decreasing variance), ``scale`` (std of PC1)."""

    mean: jax.Array
    basis: jax.Array
    scale: float


def fit_pca(hs: ArrayLike, *, n_components: int = N_COMPONENTS) -> PCABasis:
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
    return matmul(hs - pca.mean, pca.basis) / pca.scale


def from_components(z: jax.Array, pca: PCABasis) -> jax.Array:
    """``(..., P) -> (..., L)``."""
    return matmul(z * pca.scale, pca.basis.T) + pca.mean


def volume(hs_lr: jax.Array, ms_hr: jax.Array, pca: PCABasis, *, ratio: int, ms_scale: float, interp: Interp = "bicubic") -> jax.Array:
    """The network input ``(H, W, P + C, 1)``: interpolated HS components stacked with the scaled MS bands."""
    z = upsample_ms(to_components(jnp.asarray(hs_lr, jnp.float32), pca), ratio, interp=interp)
    return jnp.concatenate([z, jnp.asarray(ms_hr, jnp.float32) / ms_scale], -1)[..., None]


def degrade_hs_ms(hs: ArrayLike, ms_hr: ArrayLike, *, ratio: int) -> tuple[jax.Array, jax.Array]:
    """Wald degradation of an HS/MS pair (generic MTF gains, decimation): ``(hs_lr, ms_lr)``."""
    ms_hr = jnp.asarray(ms_hr, jnp.float32)
    hs_lr, _ = degrade(hs, ms_hr[..., 0], ratio=ratio, sensor=None)
    ms_lr, _ = degrade(ms_hr, ms_hr[..., 0], ratio=ratio, sensor=None)
    return hs_lr, ms_lr


def scene_key(path: str) -> str:
    """The weight-file key of an HS scene file (``houston_dataset.mat`` -> ``houston``)."""
    stem = Path(path).stem
    return SCENE_KEYS.get(stem, stem.split("_")[0].lower())


def split_columns(w: int, ratio: int) -> tuple[int, int]:
    """``(first, col)``: HS columns ``first..col-1`` train, ``col..w-1`` are the held-out right quarter.

    The ``w % ratio`` leftmost columns are dropped so that both parts have whole
    low-resolution pixels; ``col`` is ``w - w // 4`` of the rest, rounded down to a multiple of
    ``ratio`` (Houston 128 -> 0, 96; Paris HS+MS 72 -> 0, 54; Paris HS+PAN 58 -> 1, 43).
    """
    first = w % ratio
    n = w - first
    return first, first + (n - n // 4) // ratio * ratio


def training_pair(hs: ArrayLike, hr: ArrayLike, *, scene_ratio: int) -> tuple[jax.Array, jax.Array, int]:
    """Reduced-resolution inputs of an HS scene part: ``(hs_lr, hr_in, ratio)``; the target is ``hs``.

    ``scene_ratio > 1`` (a real HS + high-resolution pair): both degraded by it (Wald's protocol),
    ``hr_in`` is on the grid of ``hs``. ``scene_ratio == 1`` (HS and MS on one grid): the HS is
    degraded by :data:`SIMULATED_RATIO` and ``hr_in`` is the MS itself.
    """
    hs = jnp.asarray(hs, jnp.float32)
    hr = jnp.asarray(hr, jnp.float32)
    if scene_ratio == 1:
        hs_lr, _ = degrade(hs, hs[..., 0], ratio=SIMULATED_RATIO, sensor=None)
        return hs_lr, hr, SIMULATED_RATIO
    hs_lr, hr_lr = degrade_hs_ms(hs, hr, ratio=scene_ratio)
    return hs_lr, hr_lr, scene_ratio


def build_cnn3d(*, seed: int = 0) -> CNN3D:
    return CNN3D(features=(16, 8), kernels=((5, 5, 3), (3, 3, 3), (3, 3, 3)), residual=True, rngs=nnx.Rngs(seed))


@cached_loader(maxsize=8, asset=True)
def _read_cnn3d(path: str) -> tuple[tuple, PCABasis, dict[str, Any]]:
    asset = assets.read_asset(path)
    arrays = {k: v for k, v in asset.arrays.items() if not k.startswith("pca_")}
    pca = PCABasis(jnp.asarray(asset.arrays["pca_mean"]), jnp.asarray(asset.arrays["pca_basis"]), float(asset.manifest["pca_scale"]))
    return assets.split_with_arrays(build_cnn3d(), arrays), pca, asset.manifest


def load_cnn3d(scene: str, *, weights: str | None = None) -> tuple[CNN3D, PCABasis, dict[str, Any]]:
    """A fresh module of the shipped 3-D CNN of ``scene`` with its PCA basis and manifest.

    The asset ``cnn3d-mshs-<scene>`` (:mod:`jfusion.assets`; the PCA basis ``pca_mean``,
    ``pca_basis`` beside the network's parameters) is read once and cached as the immutable
    ``(graphdef, params, rest)``, keyed by the files' stamps. No checks (the pure method calls
    it while tracing; :func:`check_inputs` is the boundary's): a missing scene is a
    ``FileNotFoundError``.
    """
    path = WEIGHTS_DIR / f"cnn3d-mshs-{scene}.npz" if weights is None else assets.asset_files(weights)[0]
    split, pca, meta = _read_cnn3d(path)
    return nnx.merge(*split), pca, meta


def shipped_cnn3d() -> dict[str, dict[str, Any]]:
    """Manifests of every shipped 3-D CNN, by scene key."""
    return {p.stem.removeprefix("cnn3d-mshs-"): assets.read_manifest(p) for p in assets.find_assets(WEIGHTS_DIR, pattern="cnn3d-mshs-*")}


def _fitting_scenes(have: dict[str, dict[str, Any]], hs_bands: int, hr_bands: int, ratio: int) -> list[str]:
    return [k for k, m in have.items() if int(m["bands"]) == hs_bands and int(m["ms_bands"]) == hr_bands and int(m.get("ratio", 4)) == ratio]


def _scene(scene: str | None, hs_bands: int, hr_bands: int, ratio: int) -> str:
    """The scene key of the weights: ``scene`` itself, or the one shipped model that fits the input."""
    if scene is not None:
        return str(scene).lower()
    return _fitting_scenes(shipped_cnn3d(), hs_bands, hr_bands, ratio)[0]


def check_inputs(hs_shape: tuple[int, ...], hr_shape: tuple[int, ...], *, ratio: int, sensor: str | None, options: dict[str, Any]) -> None:
    """The registered boundary check of ``cnn3d-mshs`` (run by :func:`jfusion.pansharpening.prepare`).

    Raises:
      FusionInputError: no weights for ``options["scene"]`` (or not exactly one shipped model fitting
        the band counts and ratio when it is ``None``), or band counts / ratio that differ
        from the model's.
    """
    del sensor  # refused for MS/HS methods by the boundary: they are per scene
    scene = options.get("scene")
    hs_bands, hr_bands = int(hs_shape[-1]), int(hr_shape[-1]) if len(hr_shape) == 3 else 1
    weights = options.get("weights")
    if weights is not None:
        path = assets.asset_files(weights)[0]
        if not path.exists():
            raise FusionInputError(f"weights={weights!r}: no asset {path}; pass the path of a trained cnn3d-mshs asset.")
        have = {str(weights): assets.read_manifest(path)}
        scene = str(weights)
    else:
        have = shipped_cnn3d()
    if scene is None:
        fits = _fitting_scenes(have, hs_bands, hr_bands, ratio)
        if len(fits) != 1:
            desc = ", ".join(f"{k} ({m['bands']} HS + {m['ms_bands']} high-res bands, ratio {m.get('ratio', 4)})" for k, m in have.items())
            raise FusionInputError(
                f"cnn3d-mshs: {'several' if fits else 'no'} shipped model(s) for {hs_bands} HS bands + {hr_bands} high-resolution "
                f"band(s) at ratio {ratio}; pass scene= one of: {desc or 'none available'}."
            )
    key = scene if weights is not None else _scene(scene, hs_bands, hr_bands, ratio)
    if key not in have:
        raise FusionInputError(f"method 'cnn3d-mshs': no weights for scene={key!r}; pass scene= one of {sorted(have) or 'none available'}.")
    meta = have[key]
    if hs_bands != int(meta["bands"]) or hr_bands != int(meta["ms_bands"]):
        raise FusionInputError(
            f"cnn3d-mshs ({key}): trained for {meta['bands']} HS bands and {meta['ms_bands']} high-resolution band(s), "
            f"got {hs_bands} and {hr_bands}; pass data of that sensor pair."
        )
    if int(meta.get("ratio", 4)) != ratio:
        raise FusionInputError(f"cnn3d-mshs ({key}): trained for ratio {meta.get('ratio', 4)}, got ratio {ratio}; pass images {meta.get('ratio', 4)} apart.")


@register("cnn3d-mshs", family="mshs", reference="Palsson, Sveinsson, Ulfarsson, IEEE GRSL 14(5) 2017", check=check_inputs)
def cnn3d_mshs(
    hs: ArrayLike,
    ms: ArrayLike,
    *,
    ratio: int = 4,
    scene: str | None = None,
    sensor: str | None = None,
    bit_depth: int | None = None,
    interp: Interp = "bicubic",
    weights: str | None = None,
) -> jax.Array:
    """3-D CNN MS/HS fusion: HS ``(h, w, L)`` + high-resolution MS/RGB/PAN ``(r h, r w, C)`` -> ``(r h, r w, L)``.

    Args:
      hs: low-resolution HS cube in the scene's units.
      ms: high-resolution image ``(r h, r w, C)``, or a PAN ``(r h, r w)``.
      ratio: ``r``; must be the ratio the model was trained for.
      scene: scene key of the weights (``houston``, ``paris-ms``, ``paris-pan``); ``None``:
        the one shipped model whose band counts and ratio match the input.
      sensor: unused (a pan-sharpening sensor name; the MS/HS models are per scene, ``scene=``).
      weights: the path of another cnn3d-mshs asset (e.g. a training run's) instead of a shipped one.

    The boundary (:func:`jfusion.pansharpen`) checks the weights, band counts and ratio
    (:func:`check_inputs`); this pure function does not.
    """
    del bit_depth, sensor
    hs = jnp.asarray(hs, jnp.float32)
    ms = jnp.asarray(ms, jnp.float32)
    if ms.ndim == 2:
        ms = ms[..., None]
    key = str(weights) if weights is not None else _scene(scene, int(hs.shape[-1]), int(ms.shape[-1]), int(ratio))
    model, pca, meta = load_cnn3d(key, weights=weights)
    x = volume(hs, ms, pca, ratio=ratio, ms_scale=float(meta["ms_scale"]), interp=interp)
    z = apply_network(model, x)[..., : pca.basis.shape[1], 0]
    return from_components(z, pca)
