"""Weights trained by ``jfusion train``, shipped in the package, one folder per model.

``jfusion/weights/<name>/`` holds one :mod:`jfusion.assets` asset, ``weights.npz`` (one array per
parameter, keyed by :func:`jfusion.assets.param_key`, e.g. ``branch_a/conv1/kernel``) and its
manifest ``weights.json`` (model, config, data, command, steps, seed, scores, date, version,
sha256). :func:`load_weightnet` rebuilds the :class:`~jfusion.models.WeightNet` from
``config["model"]`` and fills it. The pan-sharpening and MS/HS assets live in ``pansharpening/``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from jfusion import assets

__all__ = ["WEIGHTS_DIR", "available", "cached_loader", "read_manifest", "save_params", "load_params", "load_weightnet", "read_weightnet", "default_run_dir", "install"]

WEIGHTS_DIR = Path(__file__).resolve().parent
ASSET = "weights"  # a weights folder holds the asset weights.npz + weights.json (jfusion.assets)


def cached_loader(maxsize: int, *, asset: bool = False):
    """``functools.lru_cache`` for functions that build models or arrays from files.

    The body runs under ``jax.ensure_compile_time_eval()``, so its arrays are concrete even when
    the first call comes from inside a ``jit`` trace; a plain cache would keep that trace's
    tracers and every later call would fail. ``cache_clear`` works as on ``lru_cache``.

    With ``asset=True`` the first argument is the path of a :mod:`jfusion.assets` asset, and the
    files' stamps (:func:`jfusion.assets.asset_stamp`) join the cache key: a rewritten asset is
    read again, so no one ever has to clear the cache after training.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def concrete(*args, **kwargs):
            if asset:
                args = (args[0], *args[2:])  # the stamp is part of the key only
            with jax.ensure_compile_time_eval():
                return fn(*args, **kwargs)

        cached = functools.lru_cache(maxsize=maxsize)(concrete)
        if not asset:
            return cached

        @functools.wraps(fn)
        def keyed(path, *args, **kwargs):
            return cached(str(path), assets.asset_stamp(path), *args, **kwargs)

        keyed.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        keyed.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return keyed

    return decorate


def default_run_dir(name: str) -> Path:
    """Where ``jfusion train <name>`` writes by default: ``./runs/<name>`` under the working directory.

    Training never writes into the package unless asked (``--install`` / ``install=True``).
    """
    return Path("runs") / name


def available() -> list[str]:
    """Names of the shipped weight folders (those holding a ``weights`` asset)."""
    return sorted(p.parent.name for p in WEIGHTS_DIR.glob(f"*/{ASSET}.json"))


def _folder(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if (p / f"{ASSET}.json").exists():
        return p
    q = WEIGHTS_DIR / str(name_or_path)
    if (q / f"{ASSET}.json").exists():
        return q
    raise FileNotFoundError(
        f"no weights named {name_or_path!r}: shipped ones are {available()}; train them with `jfusion train ...`"
    )


def read_manifest(name_or_path: str | Path) -> dict[str, Any]:
    """The manifest of shipped weights ``name`` (or of a weights folder path)."""
    return assets.read_manifest(_folder(name_or_path) / ASSET)


def save_params(
    model: nnx.Module, folder: str | Path, manifest: dict[str, Any], *, dtype: str = "float32", force: bool = False
) -> Path:
    """Write ``model``'s parameters (as ``dtype``) with ``manifest`` as the asset ``folder/weights``.

    ``manifest`` has the schema of :func:`jfusion.assets.new_manifest`; ``config["model"]`` is the
    :class:`~jfusion.models.WeightNetConfig` dict the loader rebuilds the network from.
    """
    folder = Path(folder)
    arrays = assets.params_to_arrays(nnx.state(model, nnx.Param), dtype=dtype)
    assets.write_asset(folder / ASSET, arrays, dict(manifest, storage_dtype=dtype), force=force)
    return folder


def install(files: list[str | Path], dest: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Copy trained files (a run folder's weights and manifest) into ``dest`` (e.g. the package).

    Every target is checked before anything is copied: an existing file is refused unless
    ``overwrite`` (shipped weights are never replaced by accident). Each copy is atomic; the
    loaders' caches are keyed by the files' stamps, so the next load reads the new files.
    """
    from jfusion.io import check_output_path, copy_file

    dest = Path(dest)
    targets = [dest / Path(f).name for f in files]
    for t in targets:
        check_output_path(t, overwrite=overwrite)
    for f, t in zip(files, targets):
        copy_file(f, t, overwrite=overwrite)
    return targets


def load_params(model: nnx.Module, params: dict[str, np.ndarray]) -> nnx.Module:
    """Fill ``model``'s parameters from a flat ``{path: array}`` dict (shapes must match exactly)."""
    nnx.update(model, assets.arrays_to_params(params, like=nnx.state(model, nnx.Param)))
    return model


def read_weightnet(folder: str | Path) -> tuple:
    """``(graphdef, params, rest)`` of the WeightNet asset in ``folder``, read from disk (sha256 checked, not cached)."""
    from jfusion.models import WeightNet, WeightNetConfig

    asset = assets.read_asset(Path(folder) / ASSET)
    model = WeightNet(config=WeightNetConfig.from_dict(asset.manifest["config"]["model"]), rngs=nnx.Rngs(0))
    return assets.split_with_arrays(model, asset.arrays)


@cached_loader(maxsize=16, asset=True)
def _cached(path: str) -> tuple:
    return read_weightnet(Path(path).parent)


def load_weightnet(name_or_path: str | Path):
    """A :class:`~jfusion.models.WeightNet` of the weights under shipped ``name`` or a weights folder.

    The file is read once (cached as the immutable ``(graphdef, params, rest)``, keyed by the files'
    stamps); each call merges them into a fresh module, so no module is shared between callers.
    """
    folder = _folder(name_or_path).resolve()
    return nnx.merge(*_cached(folder / ASSET))
