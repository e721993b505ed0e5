"""Convert the shipped learned files of the old formats to :mod:`jfusion.assets` (run once, from the repository root).

Old formats: ``jfusion/weights/<name>/params.npz`` + ``manifest.json``;
``jfusion/weights/pansharpening/*.npz`` with a JSON ``__meta__`` array inside plus the global
``manifest.json`` (test scores); ``jfusion/sparse/dictionaries/<name>.npy`` + ``<name>.json``.
Arrays are copied unchanged (parameter keys re-encoded with :func:`jfusion.assets.param_key`);
old test scores go under ``scores.test``, old validation scores under ``scores.validation``.
The old files are removed once the asset is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jfusion import assets
from jfusion.sparse.dictionary import ARRAY, DICTIONARY_DIR
from jfusion.training.pansharpening import asset_manifest
from jfusion.weights import ASSET, WEIGHTS_DIR


def _rekey(key: str) -> str:
    return assets.param_key(tuple(key.split("/")))


def convert_focus(folder: Path) -> Path:
    old = json.loads((folder / "manifest.json").read_text())
    with np.load(folder / "params.npz") as z:
        arrays = {_rekey(k): z[k] for k in z.files}
    rest = {k: v for k, v in old.items() if k not in ("name", "model", "train_config", "data", "command", "steps", "seed", "date", "validation")}
    manifest = assets.new_manifest(
        model=old["name"], config={"model": old["model"], "train": old["train_config"]}, data=old["data"], command=old["command"],
        steps=old["steps"], seed=old["seed"], date=old["date"], validation=old.get("validation"), **rest,
    )
    path = assets.write_asset(folder / ASSET, arrays, manifest)
    (folder / "params.npz").unlink()
    (folder / "manifest.json").unlink()
    return path


def convert_pansharpening(folder: Path) -> list[Path]:
    shared = json.loads((folder / "manifest.json").read_text())
    out = []
    for npz in sorted(p for p in folder.glob("*.npz") if not p.with_suffix(".json").exists()):
        with np.load(npz) as z:
            meta = json.loads(str(z["__meta__"]))
            arrays = {_rekey(k): z[k] for k in z.files if k != "__meta__"}
        meta = {**meta, **shared[npz.stem]}  # the global manifest adds scores_test and beats_exp
        npz.unlink()
        out.append(assets.write_asset(npz, arrays, asset_manifest(meta)))
    if "not_shipped" in shared:
        (folder / "not_shipped.json").write_text(json.dumps(shared["not_shipped"], indent=2, sort_keys=True) + "\n")
    (folder / "manifest.json").unlink()
    return out


def convert_dictionary(npy: Path) -> Path:
    old = json.loads(npy.with_suffix(".json").read_text())
    config = {k: old[k] for k in ("lmbda", "iterations") if k in old}
    config.update(num_filters=old["shape"][-1], filter_size=old["shape"][0])
    rest = {k: v for k, v in old.items() if k not in ("data", "command", "steps", "seed", "date")}
    manifest = assets.new_manifest(
        model="csr-dictionary", config=config, data=old["data"], command=old["command"], steps=old["iterations"], seed=old["seed"],
        date=old["date"], **rest,
    )
    arrays = {ARRAY: np.load(npy)}
    npy.with_suffix(".json").unlink()
    npy.unlink()
    return assets.write_asset(npy.with_suffix(""), arrays, manifest)


def main() -> None:
    for folder in sorted(p.parent for p in WEIGHTS_DIR.glob("*/manifest.json") if (p.parent / "params.npz").exists()):
        print(convert_focus(folder))
    if (WEIGHTS_DIR / "pansharpening" / "manifest.json").exists():
        print(*convert_pansharpening(WEIGHTS_DIR / "pansharpening"), sep="\n")
    for npy in sorted(DICTIONARY_DIR.glob("*.npy")):
        print(convert_dictionary(npy))


if __name__ == "__main__":
    main()
