"""Dataset adapters: the layouts people download, read from local folders (nothing downloads).

An adapter turns a folder into a sorted tuple of :class:`Item` s. A general fusion item holds the
paths of its sources (read with :func:`jfusion.read_image`); a pan-sharpening item names a ``.mat``
scene or one scene of a PanCollection ``.h5`` file. Adapters are registered in :data:`REGISTRY`
(the package's one registry shape); ``layout`` says what each expects, and an adapter pointed at
a folder of another layout raises :class:`jfusion.FusionInputError` quoting it.

Layouts:

* ``vifb``: ``IR/<name>.<ext>`` + ``VI/<name>.<ext>`` (sources in VIFB's order: VI, IR).
* ``mefb``: ``<scene>_A.<ext>`` + ``<scene>_B.<ext>`` flat, or MEFB's ``input/<scene>/<scene>_{A,B}``.
* ``mfifb`` / ``lytro`` / ``mffw`` / ``real-mff``: pairs ``<name>[-_]A`` + ``<name>[-_]B`` (flat), or
  ``<scene>/<scene>_{A,B}`` (MFIFB's ``input`` folder); Lytro's triple series ``-C`` when present.
* ``tno`` / ``roadscene`` / ``msrs``: infrared + visible folders with matching names (``ir``/``IR``/
  ``Inf``/``cropinfrared`` and ``vi``/``VI``/``VIS``/``Vis``/``crop_HR_visible``), or flat
  ``<name>_IR`` + ``<name>_VIS`` files (the TNO mirror).
* ``harvard``: modality folders with matching names (``CT/``+``MRI/``, ``PET/``+``MRI/``, ...).
* ``folders``: any folders of matching names (``folders = ["A", "B"]``, relative to the root).
* ``mat``: pan-sharpening scenes as MATLAB ``.mat`` files (``I_MS``, ``I_PAN``; :func:`jfusion.pansharpening.io.read_scene`).
* ``pancollection``: a PanCollection ``.h5`` file (``ms``, ``lms``, ``pan`` and for reduced-resolution
  sets ``gt``, ``(N, C, H, W)``), values up to 2047 (WV3, WV2, QB) or 1023 (GF2); needs ``h5py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jfusion.errors import FusionInputError
from jfusion.io import IMAGE_SUFFIXES
from jfusion.registry import Info, Registry

__all__ = ["Item", "DatasetInfo", "REGISTRY", "register_dataset", "load_dataset", "dataset_names"]


@dataclasses.dataclass(frozen=True)
class Item:
    """One scene of a dataset.

    Attributes:
      dataset: the dataset's label in the benchmark.
      name: the scene's name (unique in the dataset; the key that external results are matched on).
      sources: the source image files, in the order the metrics see them (general fusion).
      scene: for pan-sharpening items, ``(file, index)``: a ``.mat`` file (index 0) or a scene of an ``.h5``.
      max_value: the radiometric maximum of pan-sharpening data (2047, 1023, ...); 0 for images.
    """

    dataset: str
    name: str
    sources: tuple[Path, ...] = ()
    scene: tuple[Path, int] | None = None
    max_value: float = 0.0

    def fingerprint(self) -> str:
        """A hash of the item's input bytes (sources, or the scene file and index): a cache key part."""
        h = hashlib.sha256()
        for p in self.sources or (self.scene[0],):
            h.update(p.name.encode())
            h.update(p.read_bytes())
        if self.scene is not None:
            h.update(str(self.scene[1]).encode())
        return h.hexdigest()[:16]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetInfo(Info):
    """A registered dataset adapter: ``fn(root: Path, label: str, **options) -> tuple[Item, ...]``.

    Attributes:
      layout: what the adapter expects under its root (quoted when the folder does not match).
      kind: ``"fusion"`` (source images) or ``"pansharpening"`` (MS + PAN scenes).
    """

    layout: str
    kind: str = "fusion"


REGISTRY: Registry[DatasetInfo] = Registry("dataset adapter", loader="jfusion.bench.datasets")


def register_dataset(name: str, *, layout: str, tasks: tuple[str, ...], kind: str = "fusion", aliases: tuple[str, ...] = ()):
    """Decorator registering an adapter under ``name`` (and ``aliases``); returns it unchanged."""

    def deco(fn: Callable[..., tuple[Item, ...]]) -> Callable[..., tuple[Item, ...]]:
        for n in (name, *aliases):
            REGISTRY.add(DatasetInfo(name=n, fn=fn, tasks=tasks, layout=layout, kind=kind, summary=(fn.__doc__ or "").strip().splitlines()[0]))
        return fn

    return deco


def dataset_names() -> list[str]:
    """The registered adapter names."""
    return REGISTRY.names()


def load_dataset(adapter: str, root: str | Path, *, label: str | None = None, **options: Any) -> tuple[Item, ...]:
    """The items of the dataset at ``root`` read with the registered ``adapter``, sorted by name.

    Raises:
      FusionInputError: unknown adapter, missing root, or a folder that does not have the
        adapter's layout (the message says which layout was expected).
    """
    info = REGISTRY.get(adapter)
    root = Path(root)
    if not root.exists():
        raise FusionInputError(f"dataset {label or adapter}: {root} does not exist; expected {info.layout}.")
    try:
        items = info.fn(root, label or info.name, **options)
    except TypeError as err:
        raise FusionInputError(f"dataset {label or adapter}: bad options {sorted(options)} for adapter {info.name!r} ({err}).") from None
    if not items:
        raise FusionInputError(f"dataset {label or adapter}: no scenes found under {root}; the {info.name!r} adapter expects {info.layout}.")
    return tuple(sorted(items, key=lambda it: it.name))


def _images(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder`` (hidden files ignored)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")}


def _matching(root: Path, label: str, folders: list[Path], layout: str) -> tuple[Item, ...]:
    maps = [_images(f) for f in folders]
    missing = [str(f) for f, m in zip(folders, maps) if not m]
    if missing:
        raise FusionInputError(f"dataset {label}: no images in {', '.join(missing)}; expected {layout}.")
    common = sorted(set.intersection(*(set(m) for m in maps)))
    return tuple(Item(label, stem, tuple(m[stem] for m in maps)) for stem in common)


def _pick(root: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


_VIFB_LAYOUT = "IR/<name>.jpg and VI/<name>.jpg with matching names (VIFB's input folder)"


@register_dataset("vifb", layout=_VIFB_LAYOUT, tasks=("infrared-visible",))
def vifb(root: Path, label: str) -> tuple[Item, ...]:
    """VIFB: ``IR/`` and ``VI/`` folders (or ``input/IR``, ``input/VI``); sources ordered VI, IR."""
    base = root / "input" if (root / "input" / "IR").is_dir() else root
    if not ((base / "IR").is_dir() and (base / "VI").is_dir()):
        raise FusionInputError(f"dataset {label}: {root} has no IR/ and VI/ folders; the 'vifb' adapter expects {_VIFB_LAYOUT}.")
    return _matching(root, label, [base / "VI", base / "IR"], _VIFB_LAYOUT)


_PAIR = re.compile(r"^(?P<name>.+?)[-_](?P<tag>[A-Ca-c])$")


def _tagged(root: Path, label: str, layout: str, tags: tuple[str, ...] = ("A", "B")) -> tuple[Item, ...]:
    """Files ``<name>[-_]<tag>`` flat in ``root`` or ``root/<scene>/`` (MEFB / MFIFB ``input`` folders)."""
    base = root / "input" if (root / "input").is_dir() else root
    groups: dict[str, dict[str, Path]] = {}
    files = list(_images(base).values())  # flat; else one folder per scene (MEFB / MFIFB input/<scene>/)
    if not any(_PAIR.match(p.stem) for p in files):
        files = [p for d in sorted(base.iterdir()) if d.is_dir() and not d.name.startswith(".") for p in _images(d).values()]
    for p in files:
        m = _PAIR.match(p.stem)
        if m:
            groups.setdefault(m["name"], {})[m["tag"].upper()] = p
    items = []
    for name, g in sorted(groups.items()):
        if all(t in g for t in tags):
            extra = tuple(g[t] for t in sorted(g) if t not in tags)
            items.append(Item(label, name, tuple(g[t] for t in tags) + extra))
    if not items:
        raise FusionInputError(f"dataset {label}: no <name>_A / <name>_B pairs under {root}; expected {layout}.")
    return tuple(items)


_MEFB_LAYOUT = "<scene>_A.png (under-exposed) + <scene>_B.png (over-exposed), flat or in input/<scene>/ (MEFB)"
_MFIF_LAYOUT = "<name>-A / <name>-B (or _A / _B) image pairs, flat or in input/<scene>/ (Lytro, MFIFB, MFFW, Real-MFF)"


@register_dataset("mefb", layout=_MEFB_LAYOUT, tasks=("multi-exposure",))
def mefb(root: Path, label: str) -> tuple[Item, ...]:
    """MEFB: under/over-exposed pairs ``<scene>_A`` + ``<scene>_B``."""
    return _tagged(root, label, _MEFB_LAYOUT)


@register_dataset("lytro", layout=_MFIF_LAYOUT, tasks=("multi-focus",), aliases=("mfifb", "mffw", "real-mff"))
def multifocus_pairs(root: Path, label: str) -> tuple[Item, ...]:
    """Multi-focus pairs ``<name>-A`` + ``<name>-B`` (Lytro, MFIFB, MFFW, Real-MFF)."""
    return _tagged(root, label, _MFIF_LAYOUT)


_IRVI_LAYOUT = ("an infrared folder (ir, IR, Inf, infrared, cropinfrared) and a visible folder (vi, VI, VIS, Vis, visible, "
                "crop_HR_visible) with matching names, optionally under test/ (MSRS), or flat <name>_IR + <name>_VIS files (TNO)")
_IR_DIRS = ("ir", "IR", "Inf", "infrared", "Infrared", "cropinfrared")
_VI_DIRS = ("vi", "VI", "VIS", "Vis", "vis", "visible", "Visible", "crop_HR_visible")


@register_dataset("tno", layout=_IRVI_LAYOUT, tasks=("infrared-visible",), aliases=("roadscene", "msrs"))
def infrared_visible(root: Path, label: str, *, split: str = "") -> tuple[Item, ...]:
    """Infrared/visible pairs (TNO, RoadScene, MSRS): sources ordered VI, IR as in VIFB."""
    base = root / split if split else (root / "test" if (root / "test").is_dir() and _pick(root, _IR_DIRS) is None else root)
    ir, vi = _pick(base, _IR_DIRS), _pick(base, _VI_DIRS)
    if ir is not None and vi is not None:
        return _matching(root, label, [vi, ir], _IRVI_LAYOUT)
    groups: dict[str, dict[str, Path]] = {}
    for stem, p in _images(base).items():
        m = re.match(r"^(?P<name>.+)_(?P<tag>IR|VIS|Vis|vis|ir)$", stem)
        if m:
            groups.setdefault(m["name"], {})[m["tag"].upper()] = p
    items = tuple(Item(label, n, (g["VIS"], g["IR"])) for n, g in sorted(groups.items()) if {"IR", "VIS"} <= set(g))
    if not items:
        raise FusionInputError(f"dataset {label}: {root} has neither ir/vi folders nor <name>_IR / <name>_VIS files; expected {_IRVI_LAYOUT}.")
    return items


_HARVARD_LAYOUT = "modality folders with matching names, e.g. CT/ + MRI/ (or a pair folder such as CT-MRI/ holding them)"


@register_dataset("harvard", layout=_HARVARD_LAYOUT, tasks=("medical",))
def harvard(root: Path, label: str, *, pair: str = "") -> tuple[Item, ...]:
    """Harvard medical pairs: two modality folders with matching names (``pair="CT-MRI"`` picks a pair folder)."""
    base = root / pair if pair else root
    subs = [d for d in sorted(base.iterdir()) if d.is_dir() and _images(d)] if base.is_dir() else []
    if len(subs) != 2:
        raise FusionInputError(f"dataset {label}: {base} holds {len(subs)} image folder(s); expected {_HARVARD_LAYOUT}.")
    return _matching(root, label, subs, _HARVARD_LAYOUT)


_FOLDERS_LAYOUT = "folders of source images with matching names, named by the 'folders' option (e.g. folders = [\"A\", \"B\"])"


@register_dataset("folders", layout=_FOLDERS_LAYOUT, tasks=("general",))
def folders(root: Path, label: str, *, folders: list[str] | tuple[str, ...] = ()) -> tuple[Item, ...]:
    """Generic: source folders (relative to the root) whose files share names."""
    if len(folders) < 2:
        raise FusionInputError(f"dataset {label}: pass folders = [...] with two or more source folders under {root}; expected {_FOLDERS_LAYOUT}.")
    return _matching(root, label, [root / f for f in folders], _FOLDERS_LAYOUT)


_MAT_LAYOUT = "MATLAB .mat scenes with variables I_MS and I_PAN (and L, ratio, sensor), a file or a folder of them"


@register_dataset("mat", layout=_MAT_LAYOUT, tasks=("pansharpening",), kind="pansharpening")
def mat_scenes(root: Path, label: str) -> tuple[Item, ...]:
    """Pan-sharpening ``.mat`` scenes (the toolbox layout of ``shared/data/pansharpening``)."""
    import scipy.io as sio

    files = [root] if root.is_file() else sorted(p for p in root.glob("*.mat") if not p.name.startswith("."))
    items = []
    for p in files:
        try:
            keys = {k for k, *_ in sio.whosmat(p)}
        except Exception as err:  # not a MATLAB file
            raise FusionInputError(f"dataset {label}: {p} cannot be read as a .mat file ({err}); expected {_MAT_LAYOUT}.") from None
        if {"I_MS", "I_PAN"} <= keys:
            items.append(Item(label, p.stem, scene=(p, 0)))
    if not items:
        raise FusionInputError(f"dataset {label}: no .mat file with I_MS and I_PAN under {root}; expected {_MAT_LAYOUT}.")
    return tuple(items)


_H5_LAYOUT = "a PanCollection .h5 file with datasets ms, lms, pan (and gt for reduced resolution), shaped (N, C, H, W)"


def _h5py():
    try:
        import h5py
    except ImportError:
        raise FusionInputError("the 'pancollection' adapter reads .h5 files with h5py, which is not installed; pip install h5py.") from None
    return h5py


@register_dataset("pancollection", layout=_H5_LAYOUT, tasks=("pansharpening",), kind="pansharpening")
def pancollection(root: Path, label: str, *, max_value: float = 0.0) -> tuple[Item, ...]:
    """PanCollection ``.h5`` (DLPan-Toolbox): one item per scene; maximum 2047 (WV3/WV2/QB) or 1023 (GF2).

    ``max_value`` defaults to 1023 when the file name says GF2 (``gf2``), 2047 otherwise.
    """
    h5py = _h5py()
    files = [root] if root.is_file() else sorted(root.glob("*.h5"))
    items = []
    for p in files:
        try:
            with h5py.File(p, "r") as fh:
                keys = set(fh.keys())
                n = fh["pan"].shape[0] if {"ms", "pan"} <= keys else 0
        except OSError as err:
            raise FusionInputError(f"dataset {label}: {p} cannot be read as HDF5 ({err}); expected {_H5_LAYOUT}.") from None
        if not n:
            raise FusionInputError(f"dataset {label}: {p} has datasets {sorted(keys)}; expected {_H5_LAYOUT}.")
        top = max_value or (1023.0 if "gf2" in p.name.lower() else 2047.0)
        items += [Item(label, f"{p.stem}-{i:03d}", scene=(p, i), max_value=top) for i in range(n)]
    if not items:
        raise FusionInputError(f"dataset {label}: no .h5 file under {root}; expected {_H5_LAYOUT}.")
    return tuple(items)


def read_item(item: Item) -> list[Any]:
    """The sources of a general fusion item as float32 arrays in [0, 1] (:func:`jfusion.read_image`)."""
    from jfusion.io import read_image

    return [read_image(p) for p in item.sources]


def read_pansharpening_item(item: Item) -> dict[str, Any]:
    """A pan-sharpening item as ``{"ms", "pan", "gt" (or None), "ratio", "sensor", "max_value"}`` in sensor units.

    ``.mat`` scenes: their native MS / PAN (the reduced-resolution protocol degrades them);
    ``.h5`` scenes: channels moved last, ``gt`` when the file has it.
    """
    import numpy as np

    path, index = item.scene  # type: ignore[misc]
    if path.suffix.lower() == ".mat":
        from jfusion.pansharpening.io import read_scene

        s = read_scene(path)
        return {"ms": s.ms, "pan": s.pan, "gt": None, "ratio": s.ratio, "sensor": s.sensor, "max_value": s.data_range, "bit_depth": s.bit_depth}
    h5py = _h5py()
    with h5py.File(path, "r") as fh:
        get = lambda k: np.moveaxis(np.asarray(fh[k][index], np.float32), 0, -1) if k in fh else None  # noqa: E731
        ms, pan, gt = get("ms"), get("pan"), get("gt")
    depth = int(round(np.log2(item.max_value + 1)))
    return {"ms": ms, "pan": pan[..., 0], "gt": gt, "ratio": pan.shape[0] // ms.shape[0], "sensor": "none", "max_value": item.max_value, "bit_depth": depth}
