"""``deep-hdr``: HDR imaging of dynamic scenes (Kalantari & Ramamoorthi, ACM TOG 36(4) 2017).

Three LDR exposures (low, reference = middle, high) are aligned to the reference with jfusion's
TV-L1 flow (:func:`jfusion.hdr.align_exposures`, exposure-normalised as in the paper), and the
merge network (:mod:`jfusion.models.hdr`, variants ``direct`` / ``we`` / ``wie``) gives the
radiance. Radiance follows Kalantari's convention: exposure times relative to the lowest one
(``t = 2^(ev - min ev)``), so radiance lies in [0, 1]; the default output is its mu-law
tonemapped image (mu = 5000) in [0, 1], ``output="radiance"`` returns linear radiance (write it
with :func:`jfusion.io.write_radiance`).

Weights: ``jfusion/weights/deep_hdr/<arch>`` (a :mod:`jfusion.assets` asset written by
``jfusion train deep-hdr [--model deep-hdr-direct | deep-hdr-wie] --install``); an architecture without trained weights is
refused with a :class:`~jfusion.errors.FusionInputError` that says how to train it.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jfusion import assets, hdr
from jfusion.errors import FusionInputError
from jfusion.methods.registry import register
from jfusion.options import opt
from jfusion.models.hdr import ARCHS, HDRMergeNet, HDRNetConfig, merge
from jfusion.weights import WEIGHTS_DIR, cached_loader

__all__ = ["deep_hdr", "load_hdr_net", "weights_path"]

OUTPUTS = ("tonemapped", "radiance")


def weights_path(arch: str, *, weights: str | None = None) -> Path:
    """The asset path of ``arch``'s weights: ``weights`` (an asset path without suffix) or the shipped one."""
    return Path(weights) if weights else WEIGHTS_DIR / "deep_hdr" / arch


@cached_loader(maxsize=8, asset=True)
def _read(path: str) -> tuple:
    asset = assets.read_asset(path)
    model = HDRMergeNet(config=HDRNetConfig.from_dict(asset.manifest["config"]["model"]), rngs=nnx.Rngs(0))
    return assets.split_with_arrays(model, asset.arrays)


def load_hdr_net(*, arch: str = "we", weights: str | None = None) -> HDRMergeNet:
    """The trained merge network of ``arch`` (cached by the asset's file stamps; a fresh module per call)."""
    path = weights_path(arch, weights=weights)
    if not path.with_suffix(".npz").exists():
        raise FusionInputError(
            f"weights: deep-hdr has no trained weights for arch={arch!r} ({path.with_suffix('.npz')} is missing); "
            f"train them with `jfusion train {'deep-hdr' if arch == 'we' else 'deep-hdr-' + arch} --install` (or pass weights=<asset path>)"
        )
    model = nnx.merge(*_read(path))
    if model.config.arch != arch:
        raise FusionInputError(f"weights: {path} holds arch={model.config.arch!r}, not arch={arch!r}")
    return model


@register(
    "deep-hdr",
    tasks=("multi-exposure",),
    reference="N. K. Kalantari, R. Ramamoorthi, Deep high dynamic range imaging of dynamic scenes, "
    "ACM TOG 36(4) (2017) 144",
    colour="native",
    min_sources=3,
    max_sources=3,
    weights="weights/deep_hdr",
    options={
        "arch": opt(choices=tuple(ARCHS)), "output": opt(choices=tuple(OUTPUTS)),
        "flow_iterations": opt(low=1, high=10_000), "flow_warps": opt(low=1, high=20),
    },
)
def deep_hdr(
    sources: ArrayLike,
    *,
    ev: tuple[float, ...] = (-2.0, 0.0, 2.0),
    times: tuple[float, ...] | None = None,
    arch: str = "we",
    output: str = "tonemapped",
    weights: str | None = None,
    flow_iterations: int = 100,
    flow_warps: int = 3,
) -> jax.Array:
    """Deep HDR merge of a dynamic three-exposure stack (Kalantari 2017): flow alignment + CNN merge.

    Args:
      sources: ``(3, H, W, 3)`` RGB (or ``(3, H, W)`` grey, merged as RGB and returned grey) LDR
        exposures in [0, 1], ordered low, reference, high.
      ev: exposure values (EV steps) of the three images; ignored when ``times`` is given.
      times: exposure times (any unit; only their ratios matter).
      arch: ``"direct"``, ``"we"`` (weight estimator) or ``"wie"`` (weight and image estimator).
      output: ``"tonemapped"`` (mu-law, in [0, 1]) or ``"radiance"`` (linear, in [0, 1] with the
        lowest exposure time as the unit).
      weights: an asset path (without suffix) instead of the shipped ``deep_hdr/<arch>``.
      flow_iterations: TV-L1 inner iterations per warp (:func:`jfusion.ops.flow.tvl1_flow`).
      flow_warps: TV-L1 warps per pyramid level.

    Returns:
      One image, the shape of a source.
    """
    if arch not in ARCHS:
        raise FusionInputError(f"arch: must be one of {', '.join(ARCHS)}, got {arch!r}")
    if output not in OUTPUTS:
        raise FusionInputError(f"output: must be 'tonemapped' or 'radiance', got {output!r}")
    stops = tuple(float(v) for v in (ev if times is None else times))
    if len(stops) != 3 or (times is not None and min(stops) <= 0):
        raise FusionInputError(f"{'times' if times is not None else 'ev'}: give three values (times > 0), got {stops}")
    t = jnp.exp2(jnp.asarray(stops) - min(stops)) if times is None else jnp.asarray(stops) / min(stops)
    x = jnp.asarray(sources, jnp.float32)
    grey = x.ndim == 3
    if grey:
        x = jnp.repeat(x[..., None], 3, axis=-1)
    if x.shape[-1] != 3:
        raise FusionInputError(f"sources: deep-hdr takes RGB or grey exposures, got {x.shape[-1]} channels")
    model = _load(arch, weights)
    aligned, _ = hdr.align_exposures(x, t, reference=1, flow_options={"iterations": flow_iterations, "warps": flow_warps})
    radiance = merge(model, aligned[None], t[None])[0][0]
    out = hdr.mu_law(radiance) if output == "tonemapped" else jnp.clip(radiance, 0.0, 1.0)
    return jnp.mean(out, axis=-1) if grey else out


def _load(arch: str, weights: str | None) -> HDRMergeNet:
    with jax.ensure_compile_time_eval():  # concrete weights even when called under jit
        return load_hdr_net(arch=arch, weights=weights)
