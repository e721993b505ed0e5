"""Learned pan-sharpening: PNN, residual PNN, DRPNN, SRCNN + Gram-Schmidt, stacked sparse AE.

Inputs follow the conventions of the PNN family's released code (and of Wald's protocol in
:mod:`jfusion.pansharpening.wald`): the MS is interpolated to the PAN grid with the 23-tap
interpolator, stacked with the PAN (MS bands first, PAN last, optional radiometric indices
after), and divided by ``2**bit_depth``. 'Valid' networks see the input replicate-padded by
their receptive margin so that the output keeps the PAN size. Outputs are scaled back to the
sensor's units.

Weights: :func:`load_params` reads the asset ``jfusion/weights/pansharpening/<model>-<sensor>``
(``.npz`` + ``.json`` manifest, :mod:`jfusion.assets`) into an immutable ``(graphdef, params,
rest)``; :func:`load_weights` merges it into a fresh module. The assets are produced by ``jfusion train <model> --scene <file.mat>`` (see
:mod:`jfusion.training.pansharpening`); a model/sensor pair without shipped weights raises
:class:`jfusion.FusionInputError` naming what exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from jfusion import assets
from jfusion.errors import FusionInputError
from jfusion.models.pansharpening import DRPNN, PNN, SRCNN, StackedSAE
from jfusion.ops.patches import extract_patches, fold_patches
from jfusion.pansharpening import cs
from jfusion.options import opt
from jfusion.pansharpening.registry import register
from jfusion.pansharpening.wald import Interp, sensor_mtf, upsample_ms
from jfusion.weights import cached_loader

__all__ = [
    "ModelSpec",
    "SPECS",
    "WEIGHTS_DIR",
    "radiometric_indices",
    "INDEX_FLOOR",
    "network_inputs",
    "build_model",
    "save_weights",
    "check_inputs",
    "check_weights",
    "load_params",
    "trained_sensor",
    "check_cross_sensor",
    "full_resolution_qnr",
    "CROSS_SENSOR_RULE",
    "load_weights",
    "load_scarpa_pnn",
    "apply_network",
    "network_pansharpen",
    "sae_patch_size",
    "sae_stride",
    "sae_mra",
]

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "pansharpening"
# Patch contrast gain of the SAE: mean-free patches of data scaled by 2**bit_depth deviate by a few
# hundredths; amplified by 8 they use the sigmoid units' range around 0.5.
SAE_GAIN = 8.0
_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Architecture and input convention of one learned method.

    Attributes:
      kind: ``"pnn"``, ``"drpnn"``, ``"srcnn"`` or ``"sae"``.
      residual: the network adds the interpolated MS (PNN family).
      indices: append NDVI and NDWI to the input (PNN's radiometric-index variant).
      features, kernels: layer sizes.
      loss: training loss, ``"l2"`` or ``"l1"``.
      build: see below (``None``: the layout of ``kind``).
    """

    kind: str
    residual: bool = False
    indices: bool = False
    features: tuple[int, ...] = (64, 32)
    kernels: tuple[int, ...] = (9, 5, 5)
    loss: str = "l2"
    build: Any = None
    """Optional ``build(bands, rngs) -> nnx.Module`` of a new architecture (``kind`` then names its input
    convention: ``"pnn"`` 'valid' nets on [MS~, PAN (, indices)], ``"drpnn"`` 'same' nets on the same input)."""


# The papers' layer widths are the defaults; a recipe's ``width`` (``jfusion train pnn --width 0.5``) scales them,
# and an asset's manifest records the widths it was trained with (``arch``), which :func:`spec_of` builds.
SPECS: dict[str, ModelSpec] = {
    # Masi et al. 2016, the radiometric-index input variant (MS~, PAN, NDVI, NDWI), direct output, L2; 64/32 wide.
    "pnn": ModelSpec("pnn", residual=False, indices=True, features=(64, 32), kernels=(9, 5, 5), loss="l2"),
    # Rao et al. 2017: the same network predicting the residual to the interpolated MS, L2.
    "pnn-residual": ModelSpec("pnn", residual=True, indices=False, features=(64, 32), kernels=(9, 5, 5), loss="l2"),
    # Wei et al. 2017: 11 layers of 7x7, 64 wide, residual on [MS~, PAN] then a 7x7 conv to B bands.
    "drpnn": ModelSpec("drpnn", features=(64,), kernels=(7,), loss="l2"),
    # Zhong et al. 2016: SRCNN (9-5-5, 64/32) super-resolves the bicubic MS (all bands in and out), then Gram-Schmidt.
    "srcnn-gs": ModelSpec("srcnn", residual=True, features=(64, 32), kernels=(9, 5, 5), loss="l2"),
    # Huang et al. 2015: stacked sparse denoising AEs on 7x7 patches, hidden sizes 128 and 64.
    "sae": ModelSpec("sae", features=(128, 64), kernels=(7,), loss="l2"),
    # Azarang & Ghassemian 2017: the same SAE (LR-PAN -> HR-PAN patches), its restoration injected through the MRA
    # scheme (:func:`sae_mra`); 7x7 patches by default, the patch side is the recipe's ``patch``.
    "sae-mra": ModelSpec("sae", features=(128, 64), kernels=(7,), loss="l2"),
}


def _band_roles(n_bands: int) -> tuple[int, int, int]:
    """Indices of (green, red, NIR) bands: 4-band B,G,R,NIR sensors or the 8-band WorldView-2/3 order.

    Needs ``n_bands >= 4`` (the boundary checks it, see :func:`check_inputs`; fewer bands give an IndexError).
    """
    if n_bands >= 8:
        return 2, 4, 6
    return 1, 2, 3


INDEX_FLOOR = 0.02
"""Smallest denominator of :func:`radiometric_indices`, as a fraction of the full scale ``2**bit_depth``."""


def radiometric_indices(ms_up: jax.Array, *, floor: float = 0.0) -> jax.Array:
    """NDVI ``(NIR - R)/(NIR + R)`` and NDWI ``(G - NIR)/(G + NIR)`` of ``(H, W, B)``: ``(H, W, 2)`` in [-1, 1].

    Guarded where the ratio is noise: the bands are taken as non-negative (the 23-tap interpolation
    rings below zero next to dark pixels, where the unguarded ratio reached -65..41 on an 11-bit
    WorldView-2 crop and -397..73 on its 8-bit version, and the PNN then returned values up to
    70,290 DN), and each denominator is at least ``floor`` (in the bands' units; :func:`network_inputs`
    passes :data:`INDEX_FLOOR` of the full scale), so that a dark pixel's index is small instead of
    flipping between -1 and 1 with the rounding of an 8-bit version of the scene (the shipped pnn was
    then 12 % of full scale off at one pixel of an 8-bit WorldView-2 crop; 3.6 % with the floor, and its
    validation scores on the three scenes are unchanged to four digits: ``benchmarks/README.md``).
    """
    g, r, n = _band_roles(ms_up.shape[-1])
    m = jnp.maximum(ms_up, 0.0)

    def ratio(a: jax.Array, b: jax.Array) -> jax.Array:
        return (a - b) / jnp.maximum(a + b, floor + _EPS)

    return jnp.clip(jnp.stack([ratio(m[..., n], m[..., r]), ratio(m[..., g], m[..., n])], -1), -1.0, 1.0)


def network_inputs(ms: ArrayLike, pan: ArrayLike, *, ratio: int, bit_depth: int, interp: Interp = "23tap", indices: bool = False) -> jax.Array:
    """``[MS~, PAN (, NDVI, NDWI)] / 2**bit_depth`` as ``(H, W, B + 1 (+ 2))`` (indices are not scaled)."""
    ms_up = upsample_ms(ms, ratio, interp=interp)
    scale = 2.0**bit_depth
    x = jnp.concatenate([ms_up, jnp.asarray(pan, jnp.float32)[..., None]], -1) / scale
    if indices:
        x = jnp.concatenate([x, radiometric_indices(ms_up, floor=INDEX_FLOOR * scale)], -1)
    return x


def sae_patch_size(spec: ModelSpec) -> int:
    return spec.kernels[0]


def build_model(name: str, bands: int, *, seed: int = 0, spec: ModelSpec | None = None) -> nnx.Module:
    """A freshly initialised model of method ``name`` (architecture ``spec``, default ``SPECS[name]``) for ``bands`` MS bands."""
    spec = SPECS[name] if spec is None else spec
    rngs = nnx.Rngs(seed)
    if spec.build is not None:
        return spec.build(bands, rngs)
    if spec.kind == "pnn":
        c_in = bands + 1 + (2 if spec.indices else 0)
        return PNN(c_in, bands, features=spec.features, kernels=spec.kernels, residual=spec.residual, rngs=rngs)  # type: ignore[arg-type]
    if spec.kind == "drpnn":
        return DRPNN(bands + 1, bands, features=spec.features[0], kernel=spec.kernels[0], rngs=rngs)
    if spec.kind == "srcnn":
        return SRCNN(channels=bands, features=spec.features, kernels=spec.kernels, residual=spec.residual, rngs=rngs)  # type: ignore[arg-type]
    if spec.kind == "sae":
        p = sae_patch_size(spec)
        return StackedSAE(p * p, spec.features, rngs=rngs)  # type: ignore[arg-type]
    raise KeyError(name)


def save_weights(
    model: nnx.Module, path: str | Path, manifest: dict[str, Any], *, force: bool = False, dtype: str | None = None
) -> Path:
    """Write the model's parameters with ``manifest`` as the asset ``path`` (``.npz`` + ``.json``, :mod:`jfusion.assets`).

    ``dtype`` (e.g. ``"float16"``) stores the parameters at that precision (recorded as the manifest's
    ``stored_dtype``); loading casts them back to the model's float32.
    """
    if dtype is not None:
        manifest = {**manifest, "stored_dtype": str(np.dtype(dtype))}
    return assets.write_asset(path, assets.params_to_arrays(nnx.state(model, nnx.Param), dtype=dtype), manifest, force=force)


def _sensor_key(sensor: str | None) -> str:
    return sensor_mtf(sensor).name


def spec_of(name: str, manifest: dict[str, Any]) -> ModelSpec:
    """The architecture an asset of method ``name`` was trained with: ``SPECS[name]`` with the layer widths and
    kernels its manifest records (``arch``; older assets without one: ``SPECS[name]`` as it is)."""
    spec = SPECS[name]
    arch = manifest.get("arch")
    if not arch or spec.build is not None:
        return spec
    return dataclasses.replace(spec, features=tuple(int(f) for f in arch["features"]), kernels=tuple(int(k) for k in arch["kernels"]))


@cached_loader(maxsize=32, asset=True)
def _read_weights(path: str, name: str, bands: int) -> tuple[tuple, dict[str, Any]]:
    asset = assets.read_asset(path)
    model = build_model(name, bands, spec=spec_of(name, asset.manifest))
    return assets.split_with_arrays(model, asset.arrays), asset.manifest


def _weights_path(name: str, sensor: str | None, weights: str | None = None) -> Path:
    """The asset of method ``name`` for ``sensor``: the shipped one, or ``weights`` (e.g. a run's ``runs/pnn/pnn-IKONOS``)."""
    if weights is not None:
        return assets.asset_files(weights)[0]
    return WEIGHTS_DIR / f"{name}-{_sensor_key(sensor)}.npz"


def check_weights(name: str, sensor: str | None, bands: int, *, weights: str | None = None) -> None:
    """The eager check that method ``name`` has shipped weights for ``sensor`` trained for ``bands`` bands.

    ``weights`` names another asset (e.g. a training run's ``runs/pnn/pnn-IKONOS``) instead of the shipped one.

    Raises:
      FusionInputError: no weights for that sensor, or a band count that differs from the
        one the model was trained for.
    """
    path = _weights_path(name, sensor, weights)
    if weights is not None and not path.exists():
        raise FusionInputError(f"weights={weights!r}: no asset {path}; pass the path of a trained asset (.npz + .json).")
    if not path.exists():
        have = sorted(p.stem for p in assets.find_assets(WEIGHTS_DIR, pattern=f"{name}-*"))
        raise FusionInputError(
            f"method {name!r}: no shipped weights for sensor {sensor!r}; pass sensor= one of "
            f"{[h.split('-', len(name.split('-')))[-1] for h in have] or 'none available'} or train them with "
            f"`jfusion train {name} --scene <scene.mat>`."
        )
    meta = assets.read_manifest(path)
    if int(meta["bands"]) != bands:
        raise FusionInputError(
            f"method {name!r}: the {meta['sensor']} model was trained for {meta['bands']} bands but ms has {bands}; "
            f"pass the sensor's {meta['bands']}-band MS image or a model trained for {bands} bands."
        )


def check_inputs(name: str) -> Callable[..., None]:
    """The registered boundary check of learned method ``name`` (run by :func:`jfusion.pansharpening.prepare`).

    Radiometric-index inputs need 4 or 8 bands; the shipped weights must exist for the
    sensor and match the band count (:func:`check_weights`).
    """

    def check(ms_shape: tuple[int, ...], pan_shape: tuple[int, ...], *, ratio: int, sensor: str | None, options: dict[str, Any]) -> None:
        del pan_shape, ratio
        bands = int(ms_shape[-1])
        if SPECS[name].indices and bands < 4:
            raise FusionInputError(f"ms: {bands} band(s); radiometric indices need green, red and NIR bands (4 or 8 bands).")
        check_weights(name, sensor, 1 if SPECS[name].kind == "sae" else bands, weights=options.get("weights"))

    return check


def load_params(name: str, sensor: str | None, bands: int, *, weights: str | None = None) -> tuple[tuple, dict[str, Any]]:
    """``((graphdef, params, rest), manifest)`` of the shipped model of method ``name`` for ``sensor`` (cached, immutable).

    ``weights`` names another asset (e.g. a training run's ``runs/pnn/pnn-IKONOS``) instead of the shipped one.

    No checks (the pure methods call it while tracing): :func:`check_weights` is the eager
    check the boundary runs first; a missing file here is a ``FileNotFoundError``.
    """
    return _read_weights(_weights_path(name, sensor, weights), name, bands)


# How far (as a factor) the normalised mean brightness of the input may be from the training data's
# before a learned model refuses it: 6x is past any scene-to-scene variation of one sensor (the three
# shipped scenes' training means span 0.20-0.26 of full scale) and short of a wrong bit depth by 3 bits (8x).
RADIOMETRY_FACTOR = 6.0


def check_radiometry(
    name: str, sensor: str | None, ms: np.ndarray | jax.Array, pan: np.ndarray | jax.Array, *, bit_depth: int, weights: str | None = None
) -> None:
    """Refuse input whose normalised brightness is far from the data the shipped model was trained on.

    Called at the eager boundary (:func:`jfusion.pansharpening.prepare`) with the validated float
    arrays. A model normalises by ``2**bit_depth``; data of another depth (8-bit values in a
    16-bit container read as 11-bit, say) or of another radiometry give it inputs it never saw
    and silently wrong images, so a mean more than :data:`RADIOMETRY_FACTOR` times off is a
    :class:`FusionInputError` that says which bit depth would match.
    """
    path = _weights_path(name, sensor, weights)
    if not path.exists():
        return  # the registered check names the sensors it has weights for
    meta = assets.read_manifest(path)
    rad = meta.get("radiometry")  # jfusion.training.pansharpening.pansharpening_radiometry
    if not rad or "ms" not in rad:
        return
    # One scalar from the device for jax.Array input (explicit, so transfer guards allow it).
    total = jax.device_get(jnp.mean(ms)) if isinstance(ms, jax.Array) else np.mean(ms, dtype=np.float64)
    mean = float(total) / 2.0**bit_depth
    train = float(np.mean(rad["ms"]["mean"]))  # bands have equal pixel counts: the mean of the band means
    if mean <= 0 or not (1.0 / RADIOMETRY_FACTOR <= mean / train <= RADIOMETRY_FACTOR):
        raw = mean * 2.0**bit_depth
        suggest = int(np.clip(np.round(np.log2(max(raw, 1e-12) / train)), 1, 16))
        raise FusionInputError(
            f"ms: normalised by 2**{bit_depth} its mean is {mean:.3g} of full scale, {mean / train if mean > 0 else 0:.2g}x "
            f"the {meta.get('sensor', sensor)} data {name!r} was trained on ({train:.3g}); the model would return a wrong "
            f"image. Pass the data's true bit depth (bit_depth={suggest} brings the mean to the training range), or data "
            "of the sensor the model was trained for."
        )


def trained_sensor(name: str, sensor: str | None, *, weights: str | None = None) -> str | None:
    """The sensor the asset that method ``name`` would load for ``sensor`` (or the asset ``weights``) was trained on
    (its manifest's ``sensor``), or None when there is no such asset or it records none."""
    path = _weights_path(name, sensor, weights)
    if not path.exists():
        return None
    return assets.read_manifest(path).get("sensor")


CROSS_SENSOR_RULE = (
    "a network applied to data of a sensor it was not trained on (weights= an asset of another sensor than sensor=) "
    "is returned only if its full-resolution QNR on that pair is at least EXP's; otherwise FusionInputError. "
    "Band counts that differ from the model's are refused before fusing."
)
"""The rule :func:`check_cross_sensor` applies (issue 13 item 4)."""

QNR_BLOCK = 32  # PST's quality blocks (jfusion.metrics.remote.block_uiqi): the check scores the largest 32-multiple crop


def full_resolution_qnr(ms: ArrayLike, pan: ArrayLike, fused: ArrayLike, *, ratio: int) -> float:
    """QNR of ``fused`` ``(H, W, B)`` for the pair ``ms (H/ratio, W/ratio, B)``, ``pan (H, W)`` as
    :func:`jfusion.pansharpening.evaluation.evaluate_full` scores it, on the top-left crop whose sides are
    multiples of :data:`QNR_BLOCK` (ValueError if the image is smaller than one block)."""
    from jfusion.metrics import remote as rm
    from jfusion.pansharpening.evaluation import pan_lowpass_pst

    h, w = (np.shape(pan)[0] // QNR_BLOCK) * QNR_BLOCK, (np.shape(pan)[1] // QNR_BLOCK) * QNR_BLOCK
    if h == 0 or w == 0 or h % ratio or w % ratio:
        raise ValueError(f"a {np.shape(pan)} PAN is too small for QNR's {QNR_BLOCK}x{QNR_BLOCK} blocks")
    ms = jnp.asarray(ms, jnp.float32)[: h // ratio, : w // ratio]
    pan = jnp.asarray(pan, jnp.float32)[:h, :w]
    fused = jnp.asarray(fused, jnp.float32)[:h, :w]
    ms_up = upsample_ms(ms, ratio)
    dl = rm.d_lambda(ms_up, fused, ratio=ratio)
    ds = rm.d_s(ms_up, pan, fused, ratio=ratio, pan_lowpass=pan_lowpass_pst(pan, ratio))
    return float(jax.device_get((1 - dl) * (1 - ds)))


def check_cross_sensor(
    name: str, sensor: str | None, ms: ArrayLike, pan: ArrayLike, fused: ArrayLike, *, ratio: int, weights: str | None = None
) -> None:
    """Apply :data:`CROSS_SENSOR_RULE` to the result ``fused`` of method ``name`` on the pair ``(ms, pan)``.

    Called by :func:`jfusion.pansharpening.pansharpen` after fusing (eagerly, outside the jitted method); a model
    used on the sensor it was trained for returns at once. The EXP baseline is the 23-tap interpolated MS.

    Raises:
      FusionInputError: the model was trained on another sensor and scores a lower QNR than EXP on this pair,
        or the pair is too small to score (less than 32 x 32 PAN pixels).
    """
    trained = trained_sensor(name, sensor, weights=weights)
    given = sensor_mtf(sensor).name
    if trained is None or trained == given:
        return
    try:
        q_model = full_resolution_qnr(ms, pan, fused, ratio=ratio)
        q_exp = full_resolution_qnr(ms, pan, upsample_ms(ms, ratio), ratio=ratio)
    except ValueError as err:
        raise FusionInputError(
            f"weights={weights!r}: {name!r} was trained on {trained} data and the pair is {given!r}; its result on "
            f"another sensor is returned only once it scores at least EXP's QNR, and {err}. Pass a model trained for "
            f"{given} or a classical method."
        ) from None
    if not q_model >= q_exp:
        raise FusionInputError(
            f"weights={weights!r}: {name!r} was trained on {trained} data; on this {given} pair its full-resolution QNR "
            f"is {q_model:.4f}, below plain interpolation (EXP) {q_exp:.4f}, so the image would be worse than no "
            f"pan-sharpening. Pass a model trained for {given} (jfusion train {name} --scene <{given} scene.mat>), "
            "try adapt='full-resolution' to fine-tune it on this pair, or use a classical method (e.g. mtf-glp)."
        )


def load_weights(name: str, sensor: str | None, bands: int, *, weights: str | None = None) -> tuple[nnx.Module, dict[str, Any]]:
    """A fresh module of the shipped model of method ``name`` for ``sensor`` (or of the asset ``weights``), with its manifest.

    Raises:
      FusionInputError: as :func:`load_params`.
    """
    split, meta = load_params(name, sensor, bands, weights=weights)
    return nnx.merge(*split), meta


def load_scarpa_pnn(path: str | Path) -> PNN:
    """Load a released GRIP-UNINA PNN network (``PNN_model_10000.mat``) into a residual :class:`PNN`.

    The file stores Theano weights ``(out, in, kh, kw)`` used as cross-correlation, as Flax
    does; they become Flax kernels ``(kh, kw, in, out)``. Test oracle only, never shipped.
    """
    import scipy.io as sio

    d = sio.loadmat(path)
    layers = [np.asarray(a, np.float32) for a in d["layers"][0]]
    w1, b1, w2, b2, w3, b3 = layers
    bands = w3.shape[0]
    model = PNN(
        w1.shape[1], bands, features=(w1.shape[0], w2.shape[0]), kernels=(w1.shape[2], w2.shape[2], w3.shape[2]),
        residual=bool(np.asarray(d.get("residual", [[1]])).ravel()[0]), rngs=nnx.Rngs(0),
    )
    for conv, w, b in ((model.conv1, w1, b1), (model.conv2, w2, b2), (model.conv3, w3, b3)):
        conv.kernel[...] = jnp.asarray(w.transpose(2, 3, 1, 0))
        conv.bias[...] = jnp.asarray(b.ravel())
    return model


def _apply(graphdef, state, x):
    return nnx.merge(graphdef, state)(x)


_apply_jit = jax.jit(_apply, static_argnums=0)


def apply_network(model: nnx.Module, x: jax.Array, *, margin: int = 0) -> jax.Array:
    """Run an image model on one ``(H, W, C)`` input, replicate-padding by ``margin`` first; ``(H, W, out)``."""
    if margin:
        x = jnp.pad(x, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    graphdef, state = nnx.split(model)
    return _apply_jit(graphdef, state, x[None])[0]


def _network(name, ms, *, sensor, ratio, bit_depth, interp, weights):
    """``(split, manifest, margin, inputs)`` of a PNN-style method: the loaded network, its receptive margin and
    ``inputs(ms, pan)``, the network input of a pair (shared by fusing and by target-adaptive fine-tuning)."""
    spec = SPECS[name]
    split, meta = load_params(name, sensor, int(ms.shape[-1]), weights=weights)
    margin = getattr(nnx.merge(*split), "margin", 0) if spec.kind == "pnn" else 0

    def inputs(m, p):
        return network_inputs(m, p, ratio=ratio, bit_depth=bit_depth, interp=interp, indices=spec.indices)

    return split, meta, margin, inputs


def network_pansharpen(
    name: str, ms, pan, *, ratio: int, sensor: str | None, bit_depth: int, interp: Interp = "23tap", weights: str | None = None,
    adapt: bool | str = False, adapt_steps: int = 50, adapt_lr: float = 1e-4,
) -> jax.Array:
    """The learned method ``name`` of a PNN-style network (``SPECS[name].kind`` ``"pnn"`` or ``"drpnn"``).

    Input ``[MS~, PAN (, NDVI, NDWI)] / 2**bit_depth`` (:func:`network_inputs`), 'valid' nets padded by
    their margin, output scaled back by ``2**bit_depth``; weights: the shipped asset of ``sensor``
    or the asset ``weights``. ``adapt``: first fine-tune the network on the pair itself for
    ``adapt_steps`` Adam steps at ``adapt_lr`` (:mod:`jfusion.pansharpening.adapt`): ``True`` or
    ``"wald"`` on the Wald-degraded pair (PNN+), ``"full-resolution"`` on the pair at its own
    resolution with the Z-PNN loss.
    """
    from jfusion.pansharpening import adapt as _adapt

    ms = jnp.asarray(ms, jnp.float32)
    pan = jnp.asarray(pan, jnp.float32)
    split, _, margin, inputs = _network(name, ms, sensor=sensor, ratio=ratio, bit_depth=bit_depth, interp=interp, weights=weights)
    model = nnx.merge(*split)
    scale = 2.0**bit_depth
    mode = _adapt.adapt_mode(adapt)
    x = inputs(ms, pan)
    if mode == "wald":
        x_lr, y = _adapt.adaptation_pair(ms, pan, ratio=ratio, sensor=sensor, inputs=inputs)
        params = _adapt.fine_tune(split, x_lr, y / scale, steps=adapt_steps, lr=adapt_lr, margin=margin)
        model = nnx.merge(split[0], params, split[2])
    elif mode == "full-resolution":
        x, ms_n, pan_n, thr = _adapt.full_resolution_pair(ms, pan, ratio=ratio, sensor=sensor, bit_depth=bit_depth, inputs=inputs)
        params = _adapt.fine_tune_full_resolution(split, x, ms_n, pan_n, thr, ratio=ratio, sensor=sensor, steps=adapt_steps,
                                                  lr=adapt_lr, margin=margin)
        model = nnx.merge(split[0], params, split[2])
    return apply_network(model, x, margin=margin) * scale


def adapted_asset(
    name: str, ms: ArrayLike, pan: ArrayLike, folder: str | Path, *, ratio: int, sensor: str | None, bit_depth: int,
    interp: Interp = "23tap", weights: str | None = None, steps: int = 50, lr: float = 1e-4, seconds: float | None = None,
    progress: bool = True, mode: str = "wald",
) -> tuple[Path, int]:
    """Fine-tune method ``name``'s network on the pair (as ``adapt=mode`` does: ``"wald"`` or ``"full-resolution"``)
    eagerly, with a progress bar and a time budget (:func:`jfusion.pansharpening.adapt.adapt_eagerly`), and write
    the adapted network as an asset in ``folder``; returns ``(asset path, steps done)``. ``jfusion pansharpen
    --adapt`` passes it as ``weights=``. ``ms`` / ``pan`` as :func:`jfusion.pansharpening.prepare` returns them
    (float32, sensor units)."""
    from jfusion.pansharpening import adapt as _adapt

    ms = jnp.asarray(ms, jnp.float32)
    pan = jnp.asarray(pan, jnp.float32)
    split, meta, margin, inputs = _network(name, ms, sensor=sensor, ratio=ratio, bit_depth=bit_depth, interp=interp, weights=weights)
    if _adapt.adapt_mode(mode) == "full-resolution":
        x, ms_n, pan_n, thr = _adapt.full_resolution_pair(ms, pan, ratio=ratio, sensor=sensor, bit_depth=bit_depth, inputs=inputs)
        objective = _adapt.full_resolution_objective(split, x, ms_n, pan_n, thr, ratio=ratio, sensor=sensor, margin=margin)
        params, done = _adapt.adapt_eagerly(split, x, ms_n, steps=steps, lr=lr, margin=margin, seconds=seconds,
                                            progress=progress, objective=objective)
    else:
        x_lr, y = _adapt.adaptation_pair(ms, pan, ratio=ratio, sensor=sensor, inputs=inputs)
        params, done = _adapt.adapt_eagerly(split, x_lr, y / 2.0**bit_depth, steps=steps, lr=lr, margin=margin, seconds=seconds,
                                            progress=progress)
    manifest = {k: v for k, v in meta.items() if k != "sha256"}
    manifest["adapted"] = {"steps": done, "lr": lr, "loss": _adapt.adapt_mode(mode),
                           "from": str(_weights_path(name, sensor, weights).name)}
    path = assets.write_asset(Path(folder) / f"{name}-{_sensor_key(sensor)}", assets.params_to_arrays(params), manifest, force=True)
    return path, done


_ADAPT_OPTIONS = {
    "adapt": opt(doc="fine-tune the network on the pair itself before fusing: True or 'wald' on the Wald-degraded pair "
                     "(PNN+, Scarpa et al. 2018), 'full-resolution' on the pair itself with the Z-PNN loss (Ciotola et al. 2022)",
                 choices=(False, True, "wald", "full-resolution")),
    "adapt_steps": opt(doc="fine-tuning Adam steps (with adapt)", low=1, high=100000),
    "adapt_lr": opt(doc="fine-tuning learning rate (with adapt)", low=1e-8, high=1.0),
}


@register("pnn", family="learned", reference="Masi, Cozzolino, Verdoliva, Scarpa, Remote Sensing 8(7) 594, 2016", local=True, check=check_inputs("pnn"), options=_ADAPT_OPTIONS)
def pnn(
    ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, bit_depth: int = 11, interp: Interp = "23tap",
    weights: str | None = None, adapt: bool | str = False, adapt_steps: int = 50, adapt_lr: float = 1e-4,
) -> jax.Array:
    """PNN (3-layer CNN on interpolated MS + PAN + NDVI/NDWI), shipped per-sensor weights."""
    return network_pansharpen("pnn", ms, pan, ratio=ratio, sensor=sensor, bit_depth=bit_depth, interp=interp, weights=weights,
                              adapt=adapt, adapt_steps=adapt_steps, adapt_lr=adapt_lr)


@register("pnn-residual", family="learned", reference="Rao, He, Zhu, RSIP 2017 (residual PNN)", local=True, check=check_inputs("pnn-residual"), options=_ADAPT_OPTIONS)
def pnn_residual(
    ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, bit_depth: int = 11, interp: Interp = "23tap",
    weights: str | None = None, adapt: bool | str = False, adapt_steps: int = 50, adapt_lr: float = 1e-4,
) -> jax.Array:
    """Residual PNN: the PNN predicts the difference to the interpolated MS."""
    return network_pansharpen("pnn-residual", ms, pan, ratio=ratio, sensor=sensor, bit_depth=bit_depth, interp=interp, weights=weights,
                              adapt=adapt, adapt_steps=adapt_steps, adapt_lr=adapt_lr)


@register("drpnn", family="learned", reference="Wei, Yuan, Shen, Zhang, IEEE GRSL 14(10) 2017", local=True, check=check_inputs("drpnn"), options=_ADAPT_OPTIONS)
def drpnn(
    ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, bit_depth: int = 11, interp: Interp = "23tap",
    weights: str | None = None, adapt: bool | str = False, adapt_steps: int = 50, adapt_lr: float = 1e-4,
) -> jax.Array:
    """DRPNN: 11-layer deep residual CNN on [MS~, PAN]."""
    return network_pansharpen("drpnn", ms, pan, ratio=ratio, sensor=sensor, bit_depth=bit_depth, interp=interp, weights=weights,
                              adapt=adapt, adapt_steps=adapt_steps, adapt_lr=adapt_lr)


@register("srcnn-gs", family="learned", reference="Zhong, Yang, Huang, Zhong, Chen, Sensing and Imaging 17, 2016", check=check_inputs("srcnn-gs"))
def srcnn_gs(
    ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, bit_depth: int = 11, interp: Interp = "bicubic",
    weights: str | None = None,
) -> jax.Array:
    """SRCNN + GS: an SRCNN super-resolves the bicubic MS, then Gram-Schmidt fuses it with the PAN.

    1. MS~ = bicubic MS; enhanced MS = SRCNN(MS~) (residual 9-5-5 network, all B bands in and
       out, trained per sensor under Wald's protocol on the MS alone: degraded MS -> MS).
    2. PAN moment-matched (mean, std) to the mean band I of the enhanced MS (Laben's GS, mode
       average, as in the toolbox's GS.m).
    3. Gram-Schmidt injection ``F_k = MS'_k + cov(MS'_k, I) / var(I) (P' - I)``.

    Zhong et al. enhance only the IHS intensity with an SRCNN trained on natural images and add
    it back to every band (inverse fast IHS). That variant, trained on the sensor's PAN, lost to
    EXP on SAM (IKONOS 2.79 vs 2.62 degrees, WorldView-2 9.88 vs 8.44): the intensity difference
    added with unit gains distorts the spectra. Super-resolving all bands jointly keeps the
    paper's two stages (SRCNN super-resolution, then GS) and improves the spectra before GS.
    Training the SRCNN end-to-end through the GS step (loss on the fused output) was measured
    too and generalised worse to the held-out quarter (IKONOS SAM 2.92), so it is not used.
    """
    ms = jnp.asarray(ms, jnp.float32)
    pan = jnp.asarray(pan, jnp.float32)
    model, _ = load_weights("srcnn-gs", sensor, int(ms.shape[-1]), weights=weights)
    scale = 2.0**bit_depth
    ms_up = upsample_ms(ms, ratio, interp=interp)
    enhanced = apply_network(model, ms_up / scale) * scale
    intensity = enhanced.mean(-1)
    p = cs.match_moments(pan, intensity)
    return cs.inject(enhanced, p - intensity, cs.cov_gains(enhanced, intensity))


def sae_restore(model: nnx.Module, band: jax.Array, *, patch: int, stride: int) -> jax.Array:
    """Restore one interpolated band ``(H, W)`` in [0, 1] with the stacked SAE, patch by patch (vmapped).

    Each patch has its mean removed, is amplified by ``SAE_GAIN`` and shifted to 0.5 (into the
    sigmoid's working range), passed through
    the network, shifted back; overlapping patches are averaged.
    """
    patches = extract_patches(band, patch, stride=stride)  # (N, p, p)
    flat = patches.reshape(patches.shape[0], -1)
    mu = flat.mean(-1, keepdims=True)
    graphdef, state = nnx.split(model)
    out = (jax.vmap(lambda v: nnx.merge(graphdef, state)(v))((flat - mu) * SAE_GAIN + 0.5) - 0.5) / SAE_GAIN + mu
    return fold_patches(out.reshape(patches.shape), band.shape, patch, stride=stride)


@register(
    "sae", family="learned", reference="Huang, Xiao, Wei, Liu, Tang, IEEE GRSL 12(5) 2015 (S-MSDA)",
    check=check_inputs("sae"),
    options={
        "stride": opt(doc="step between the restored patches in pixels (overlaps are averaged)", low=1, high=64),
        "inject": opt(doc="add the PAN's high frequencies to the restored bands (MRA-style detail injection)"),
    },
)
def sae(
    ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, bit_depth: int = 11,
    interp: Interp = "23tap", stride: int = 2, inject: bool = False, weights: str | None = None,
) -> jax.Array:
    """Stacked sparse denoising AE (trained LR-PAN -> HR-PAN) restores each interpolated MS band (Huang et al.).

    The method is the SAE's restoration ``F_k = SAE(MS~_k)``: the network learnt on the sensor's
    PAN how a degraded, re-interpolated image maps to the sharp one, and applies it to each band.
    ``inject=True`` adds the PAN's high frequencies as well, ``F_k = SAE(MS~_k) + (P_k - SAE(P_k^L))``
    with ``P_k`` the PAN matched to the restored band and ``P_k^L`` its MTF-degraded,
    re-interpolated version: an MRA-style injection on top of the SAE (most of that variant's
    score is the injection's; ``benchmarks/pansharpening.py`` reports both).
    """
    from jfusion.pansharpening.mra import glp_lowpass, matched_pan

    ms = jnp.asarray(ms, jnp.float32)
    pan = jnp.asarray(pan, jnp.float32)
    model, meta = load_weights("sae", sensor, 1, weights=weights)
    patch = int(meta.get("patch", 7))
    scale = 2.0**bit_depth
    ms_up = upsample_ms(ms, ratio, interp=interp)
    def restore(b: jax.Array) -> jax.Array:
        return sae_restore(model, b, patch=patch, stride=stride)

    hr = jax.vmap(restore, in_axes=-1, out_axes=-1)(ms_up / scale) * scale
    if not inject:
        return hr
    p = matched_pan(pan, hr)
    p_low = glp_lowpass(p, ratio=ratio, sensor=sensor)
    p_low_restored = jax.vmap(restore, in_axes=-1, out_axes=-1)(p_low / scale) * scale
    return hr + (p - p_low_restored)


def sae_stride(patch: int, overlap: float) -> int:
    """The step between patches of side ``patch`` overlapping by the share ``overlap`` (0 = disjoint; at least 1).

    ``round(patch * (1 - overlap))``: patch 7 at 0 / 0.5 / 0.75 -> stride 7 / 4 / 2 (Python rounds halves to even:
    7 * 0.5 = 3.5 -> 4); the last patch of each axis ends on the border (:func:`jfusion.ops.patches.patch_starts`).
    """
    return max(1, int(round(patch * (1.0 - overlap))))


@register(
    "sae-mra", family="learned",
    reference="Azarang & Ghassemian, IPRIA 2017 (SAE in an MRA framework); survey Sec. 4.3 / methods_spec 7.2",
    check=check_inputs("sae-mra"),
    options={
        "overlap": opt(doc="overlap of neighbouring SAE patches as a share of the patch side (0 = disjoint patches)",
                       low=0.0, high=0.95),
        "gain": opt(doc="injection gain g_k: 'unit' (g_k = 1) or 'cbd' (cov(MS~_k, P_k^L) / var(P_k^L), MTF-GLP-CBD)",
                    choices=("unit", "cbd")),
    },
)
def sae_mra(
    ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, bit_depth: int = 11,
    interp: Interp = "23tap", overlap: float = 0.75, gain: str = "cbd", weights: str | None = None,
) -> jax.Array:
    """SAE pan-sharpening in the MRA framework (Azarang & Ghassemian 2017): ``(H, W, B)`` in the MS's units.

    A stacked sparse denoising AE ``f`` learns on the sensor's PAN how a degraded, re-interpolated
    patch maps to the sharp one (LR-PAN -> HR-PAN, :func:`jfusion.training.pansharpening.train_and_evaluate`,
    recipe ``jfusion train sae-mra``). Applied to the interpolated MS band ``MS~_k`` it estimates
    the high-resolution band; the difference is the band's detail, injected as in the MRA
    detail-injection model of Vivone et al. 2015:

        ``F_k = MS~_k + g_k (f(MS~_k) - MS~_k)``

    (the survey's reading of the paper, ``methods_spec.md`` 7.2, marked uncertain there; the
    paper's own text was not available). ``f`` runs on overlapping ``patch x patch`` patches
    (``patch`` from the asset's manifest) with a step of ``round(patch (1 - overlap))``; each patch
    is mean-removed, amplified and shifted into the sigmoid range as in :func:`sae_restore`;
    overlaps are averaged. ``gain="unit"``: ``g_k = 1`` (then ``F_k = f(MS~_k)``, the restoration of
    ``sae``). ``gain="cbd"``: the MTF-GLP-CBD regression gain ``g_k = cov(MS~_k, P_k^L) / var(P_k^L)``
    with ``P_k`` the PAN moment-matched to ``MS~_k`` and ``P_k^L`` its MTF-filtered, decimated,
    23-tap re-interpolated version (:func:`jfusion.pansharpening.mra.cbd_gains`): bands that the
    PAN's low-pass explains poorly (NIR) receive less detail. The defaults (``overlap=0.75``,
    ``gain="cbd"``; the recipe's 7x7 patches and 8000 training samples) were set before the study of
    patch side, overlap and sample count ran; ``benchmarks/sae_mra_study.py`` measures every
    alternative on the validation strips (``benchmarks/README.md``, section *sae-mra*).

    Args:
      ms: ``(h, w, B)`` MS in sensor units; pan: ``(ratio h, ratio w)`` in the same units.
      ratio, sensor, bit_depth, interp: as every learned method (inputs are divided by ``2**bit_depth``).
      overlap: patch overlap share in [0, 0.95].
      gain: ``"unit"`` or ``"cbd"``.
      weights: another asset (a training run's ``runs/.../sae-mra-IKONOS``) instead of the shipped one.
    """
    from jfusion.pansharpening.mra import cbd_gains, glp_lowpass, matched_pan

    ms = jnp.asarray(ms, jnp.float32)
    pan = jnp.asarray(pan, jnp.float32)
    model, meta = load_weights("sae-mra", sensor, 1, weights=weights)
    patch = int(meta.get("patch", 7))
    stride = sae_stride(patch, overlap)
    scale = 2.0**bit_depth
    ms_up = upsample_ms(ms, ratio, interp=interp)
    restored = jax.vmap(lambda b: sae_restore(model, b, patch=patch, stride=stride), in_axes=-1, out_axes=-1)(ms_up / scale) * scale
    detail = restored - ms_up
    if gain == "unit":
        return ms_up + detail
    p = matched_pan(pan, ms_up)
    g = cbd_gains(ms_up, glp_lowpass(p, ratio=ratio, sensor=sensor))
    return ms_up + g * detail
