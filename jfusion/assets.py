"""One file format for everything learned: network weights, PCA bases, dictionaries.

An asset ``<name>`` is two files side by side:

* ``<name>.npz``: the arrays (``np.savez``, one array per key; network parameters keyed by
  :func:`param_key`, e.g. ``conv1/kernel``). It is small and loads with numpy alone: no orbax,
  no flax, nothing pickled. Orbax stays what it is in jfusion, the library of *training
  checkpoints* (resumable optimiser state, sharded arrays, many steps); a shipped asset is one
  final set of arrays that must open anywhere numpy does, so it uses the plainest format.
* ``<name>.json``: its manifest, one schema for every asset (:data:`MANIFEST_KEYS`): ``model``
  (its name), ``config`` (architecture and training settings), ``data``, ``command``,
  ``steps``, ``seed``, ``scores`` (``{"validation": {...}, "test": {...}}``, kept apart; either may
  be empty), ``date``, ``jfusion_version`` and ``sha256``, the hex digest of the ``.npz`` file.
  Other keys (sensor, band counts, regions, ...) may follow.

:func:`write_asset` validates the manifest, writes both files atomically (a temporary file in the
same folder, then ``os.replace``) and refuses to replace an existing asset unless ``force=True``.
:func:`read_asset` checks the sha256 on every load and returns read-only arrays.
:func:`params_to_arrays` / :func:`arrays_to_params` convert between an NNX parameter state and
the flat ``{param_key: array}`` of the file.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MANIFEST_KEYS",
    "Asset",
    "AssetError",
    "asset_files",
    "asset_stamp",
    "find_assets",
    "new_manifest",
    "write_asset",
    "read_asset",
    "read_manifest",
    "update_manifest",
    "param_key",
    "params_to_arrays",
    "arrays_to_params",
    "split_with_arrays",
]

MANIFEST_KEYS = ("model", "config", "data", "command", "steps", "seed", "scores", "date", "jfusion_version", "sha256")


class AssetError(ValueError):
    """An asset that is missing, malformed, or whose ``.npz`` does not match its manifest's sha256."""


@dataclass(frozen=True)
class Asset:
    """A loaded asset: ``arrays`` (read-only mapping of read-only arrays) and its ``manifest``."""

    path: Path
    arrays: Mapping[str, np.ndarray]
    manifest: dict[str, Any]


SHIP_BYTES = 5 * 2**20
"""The largest ``.npz`` the package ships at float32 (5 MiB); a larger asset ships at float16
(``stored_dtype`` in its manifest, with the accuracy loss measured on validation data)."""


def asset_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(<name>.npz, <name>.json)`` of the asset at ``path`` (given with or without a suffix)."""
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


def find_assets(folder: str | os.PathLike, *, pattern: str = "*") -> list[Path]:
    """The ``.npz`` files of the assets in ``folder`` whose name matches ``pattern`` (both files present)."""
    return sorted(p for p in Path(folder).glob(f"{pattern}.npz") if p.with_suffix(".json").exists())


def asset_stamp(path: str | os.PathLike) -> tuple:
    """``(mtime_ns, size)`` of both files of asset ``path``: part of a loader's cache key, so a rewritten asset is reloaded."""
    return tuple((s.st_mtime_ns, s.st_size) for s in (f.stat() for f in asset_files(path)))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def new_manifest(
    *, model: str, config: Mapping[str, Any], data: Any, command: str, steps: int, seed: int,
    validation: Mapping[str, Any] | None = None, test: Mapping[str, Any] | None = None, date: str | None = None, **extra: Any,
) -> dict[str, Any]:
    """A manifest with every schema key but ``sha256`` (filled by :func:`write_asset`); ``extra`` keys follow."""
    from jfusion import __version__

    return {
        "model": model, "config": dict(config), "data": data, "command": command, "steps": int(steps), "seed": int(seed),
        "scores": {"validation": dict(validation or {}), "test": dict(test or {})},
        "date": date or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "jfusion_version": __version__, **extra,
    }


def _validate(manifest: Mapping[str, Any], where: str) -> None:
    missing = [k for k in MANIFEST_KEYS if k != "sha256" and k not in manifest]
    if missing:
        raise AssetError(f"{where}: manifest lacks {missing}; build it with jfusion.assets.new_manifest(...)")
    scores = manifest["scores"]
    if not isinstance(scores, Mapping) or set(scores) < {"validation", "test"} or not all(
        isinstance(scores[k], Mapping) for k in ("validation", "test")
    ):
        raise AssetError(f"{where}: manifest 'scores' must be {{'validation': {{...}}, 'test': {{...}}}}, got {scores!r}")
    if not isinstance(manifest["model"], str) or not isinstance(manifest["config"], Mapping):
        raise AssetError(f"{where}: manifest 'model' must be a name (str) and 'config' a mapping")


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, manifest: Mapping[str, Any]) -> None:
    text = json.dumps(manifest, indent=2) + "\n"
    _atomic_write(path, lambda f: f.write(text.encode()))


def write_asset(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], manifest: Mapping[str, Any], *, force: bool = False) -> Path:
    """Write asset ``path`` (``<name>.npz`` + ``<name>.json``); returns the ``.npz`` path.

    The manifest is validated (:data:`MANIFEST_KEYS`); ``sha256`` is set to the digest of the
    written ``.npz``. Both files are replaced atomically.

    Raises:
      AssetError: a manifest without the schema keys, or an existing asset and ``force=False``.
    """
    npz, js = asset_files(path)
    _validate(manifest, str(js))
    if not force and (npz.exists() or js.exists()):
        raise AssetError(f"{npz.with_suffix('')}: an asset of that name exists; pass force=True (or delete it) to replace it")
    npz.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(npz, lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}))
    _write_json(js, {**manifest, "sha256": _sha256(npz)})
    return npz


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of asset ``path`` (the JSON only; the arrays are not read or checked)."""
    _, js = asset_files(path)
    if not js.exists():
        raise AssetError(f"{js}: no such asset manifest; reinstall jfusion or retrain the model with `jfusion train ...`")
    return json.loads(js.read_text())


def update_manifest(path: str | os.PathLike, updates: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``updates`` into asset ``path``'s manifest (atomically; the arrays stay) after checking its sha256."""
    asset = read_asset(path)
    manifest = {**asset.manifest, **updates, "sha256": asset.manifest["sha256"]}
    _validate(manifest, str(asset_files(path)[1]))
    _write_json(asset_files(path)[1], manifest)
    return manifest


def read_asset(path: str | os.PathLike) -> Asset:
    """Load asset ``path``: read-only arrays and the manifest, the ``.npz``'s sha256 checked.

    Raises:
      AssetError: a missing file, or a ``.npz`` whose digest differs from the manifest's.
    """
    npz, _ = asset_files(path)
    manifest = read_manifest(path)
    if not npz.exists():
        raise AssetError(f"{npz}: missing (its manifest exists); reinstall jfusion or retrain the model")
    digest = _sha256(npz)
    if digest != manifest.get("sha256"):
        raise AssetError(
            f"{npz}: sha256 {digest} does not match its manifest's {manifest.get('sha256')}; the file is corrupt or "
            "was changed: reinstall jfusion or retrain the model (`jfusion train ...`)"
        )
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for a in arrays.values():
        a.setflags(write=False)
    return Asset(npz, types.MappingProxyType(arrays), manifest)


# ----------------------------------------------------------------------------- NNX parameters
def param_key(path: tuple) -> str:
    """The file key of a pytree path of an NNX state, e.g. ``('conv1', 'kernel')`` -> ``"conv1/kernel"``."""
    parts = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
    while parts and parts[-1] in ("value", ".value"):
        parts = parts[:-1]
    return "/".join(parts)


def params_to_arrays(state: Any, *, dtype: str | None = None) -> dict[str, np.ndarray]:
    """``{param_key: array}`` of a parameter state (e.g. ``nnx.state(model, nnx.Param)``), optionally cast."""
    import jax

    out = {param_key(p): np.asarray(leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(state)}
    return {k: v.astype(dtype) for k, v in out.items()} if dtype else out


def arrays_to_params(arrays: Mapping[str, np.ndarray], *, like: Any) -> Any:
    """The state of the structure of ``like`` (a state or its ``jax.eval_shape``) filled from ``arrays``.

    Leaves become ``jax.Array`` in ``like``'s dtype; names and shapes must match exactly.

    Raises:
      AssetError: missing or unexpected parameter names, or a shape that differs.
    """
    import jax

    leaves = jax.tree_util.tree_leaves_with_path(like)
    keys = [param_key(p) for p, _ in leaves]
    missing, extra = sorted(set(keys) - set(arrays)), sorted(set(arrays) - set(keys))
    if missing or extra:
        raise AssetError(f"parameter names do not match the model: missing {missing}, unexpected {extra}")
    new = []
    for key, (_, leaf) in zip(keys, leaves):
        value = np.asarray(arrays[key])
        if value.shape != tuple(leaf.shape):
            raise AssetError(f"parameter {key}: shape {value.shape} does not match the model's {tuple(leaf.shape)}")
        new.append(jax.numpy.asarray(value, leaf.dtype))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), new)


def split_with_arrays(module: Any, arrays: Mapping[str, np.ndarray]) -> tuple:
    """``(graphdef, params, rest)`` of ``nnx.split(module, nnx.Param, ...)`` with ``params`` from ``arrays``.

    The immutable triple a loader caches; ``nnx.merge(*triple)`` makes a fresh module from it and
    a pure apply function takes ``params``. ``module`` itself is left as it was.
    """
    from flax import nnx

    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return graphdef, arrays_to_params(arrays, like=params), rest
