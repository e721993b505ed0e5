"""Weights trained by ``jfusion train``, shipped in the package, one folder per model.

``jfusion/weights/<name>/`` holds ``params.npz`` (one array per parameter, keyed by its
path in the model, e.g. ``branch_a/conv1/kernel``) and ``manifest.json`` (the model
config, the data, command, steps, seed, validation scores and date). :func:`load_weightnet`
rebuilds the :class:`~jfusion.models.WeightNet` from the manifest and fills it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

__all__ = [
    "WEIGHTS_DIR",
    "available",
    "cached_loader",
    "default_run_dir",
    "install",
    "load_params",
    "load_weightnet",
    "read_manifest",
    "save_params",
]

WEIGHTS_DIR = Path(__file__).resolve().parent


def cached_loader(maxsize: int):
    """``functools.lru_cache`` for functions that build models or arrays from files.

    The body runs under ``jax.ensure_compile_time_eval()``, so its arrays are concrete even when
    the first call comes from inside a ``jit`` trace; a plain cache would keep that trace's
    tracers and every later call would fail. ``cache_clear`` works as on ``lru_cache``.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def concrete(*args, **kwargs):
            with jax.ensure_compile_time_eval():
                return fn(*args, **kwargs)

        return functools.lru_cache(maxsize=maxsize)(concrete)

    return decorate


def default_run_dir(name: str) -> Path:
    """Where ``jfusion train <name>`` writes by default: ``./runs/<name>`` under the working directory.

    Training never writes into the package unless asked (``--install`` / ``install=True``).
    """
    return Path("runs") / name


def available() -> list[str]:
    """Names of the shipped weight folders (those with a manifest)."""
    return sorted(p.parent.name for p in WEIGHTS_DIR.glob("*/manifest.json"))


def _folder(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if (p / "manifest.json").exists():
        return p
    q = WEIGHTS_DIR / str(name_or_path)
    if (q / "manifest.json").exists():
        return q
    raise FileNotFoundError(
        f"no weights named {name_or_path!r}: shipped ones are {available()}; train them with `jfusion train ...`"
    )


def read_manifest(name_or_path: str | Path) -> dict[str, Any]:
    """The manifest of shipped weights ``name`` (or of a weights folder path)."""
    return json.loads((_folder(name_or_path) / "manifest.json").read_text())


def _key(path: tuple) -> str:
    parts = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
    if parts and parts[-1] == "value":
        parts = parts[:-1]
    return "/".join(parts)


def _flat(state: nnx.State) -> dict[str, np.ndarray]:
    return {_key(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(state)}


def save_params(
    model: nnx.Module, folder: str | Path, manifest: dict[str, Any], *, dtype: str = "float32", overwrite: bool = False
) -> Path:
    """Write ``model``'s parameters (as ``dtype``) and ``manifest`` to ``folder``.

    Both files are written atomically (:func:`jfusion.io.atomic_output`), the manifest last, so a
    folder with a manifest always has complete weights. Existing files are refused unless
    ``overwrite``; both are checked before either is written.
    """
    from jfusion.io import atomic_output, check_output_path, write_text

    folder = Path(folder)
    for name in ("params.npz", "manifest.json"):
        check_output_path(folder / name, overwrite=overwrite)
    flat = {k: v.astype(dtype) for k, v in _flat(nnx.state(model, nnx.Param)).items()}
    with atomic_output(folder / "params.npz", overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **flat)
    manifest = dict(manifest, storage_dtype=dtype)
    write_text(folder / "manifest.json", json.dumps(manifest, indent=2, sort_keys=False) + "\n", overwrite=overwrite)
    return folder


def install(files: list[str | Path], dest: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Copy trained files (a run folder's weights and manifest) into ``dest`` (e.g. the package).

    Every target is checked before anything is copied: an existing file is refused unless
    ``overwrite`` (shipped weights are never replaced by accident). Each copy is atomic; the
    model caches are cleared so the next load reads the new files.
    """
    from jfusion.io import check_output_path, copy_file

    dest = Path(dest)
    targets = [dest / Path(f).name for f in files]
    for t in targets:
        check_output_path(t, overwrite=overwrite)
    for f, t in zip(files, targets):
        copy_file(f, t, overwrite=overwrite)
    _cached.cache_clear()
    return targets


def load_params(model: nnx.Module, params: dict[str, np.ndarray]) -> nnx.Module:
    """Fill ``model``'s parameters from a flat ``{path: array}`` dict (shapes must match exactly)."""
    state = nnx.state(model, nnx.Param)
    flat = _flat(state)
    missing = sorted(set(flat) - set(params))
    extra = sorted(set(params) - set(flat))
    if missing or extra:
        raise ValueError(f"parameter names do not match the model: missing {missing}, unexpected {extra}")

    def fill(path, leaf):
        key = _key(path)
        value = np.asarray(params[key], np.float32)
        if value.shape != leaf.shape:
            raise ValueError(f"{key}: shape {value.shape} does not match the model's {leaf.shape}")
        return jax.numpy.asarray(value)

    nnx.update(model, jax.tree_util.tree_map_with_path(fill, state))
    return model


@cached_loader(maxsize=16)
def _cached(folder: str):
    from jfusion.models import WeightNet, WeightNetConfig

    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    model = WeightNet(WeightNetConfig.from_dict(manifest["model"]), rngs=nnx.Rngs(0))
    with np.load(Path(folder) / "params.npz") as z:
        load_params(model, {k: z[k] for k in z.files})
    return model


def load_weightnet(name_or_path: str | Path):
    """The :class:`~jfusion.models.WeightNet` stored under shipped ``name`` or a weights folder (cached)."""
    return _cached(str(_folder(name_or_path).resolve()))
