"""Benchmark configuration: frozen dataclasses read from a TOML (or YAML) file or built from flags.

A config file::

    task = "infrared-visible"
    out = "runs/vifb"                     # optional; `jfusion bench --out` overrides it

    [[datasets]]
    name = "vifb"                        # label in the tables
    adapter = "vifb"                     # jfusion.bench.datasets.dataset_names()
    path = "../../../shared/data/vifb"   # relative to the config file; $VARS expanded
    scenes = ["walking", "snow"]         # optional: a subset of the scenes

    [[methods]]
    label = "GFF"                        # external: a folder of fused images named like the scenes
    folder = "../../../shared/data/vifb/results/GFF"

    [[methods]]
    name = "laplacian"                   # registered: fused here when missing from the cache
    label = "laplacian-6"
    options = { levels = 6 }

    [metrics]
    names = ["ce", "en", "mi"]           # default: the task's set (VIFB's 13 for general fusion)
    colour = "vifb"                      # the colour rule (jfusion.metrics.evaluate)
    dtype = "float32"                    # or "float64"
    options = { psnr = { convention = "standard" } }

    [pansharpening]
    protocol = "reduced"                 # "reduced" (Wald, sensor MTF), "full" (QNR) or "both"

    [report]
    figures = true; html = true; stats = true; efficiency = false
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jfusion.errors import FusionInputError

__all__ = ["DatasetSpec", "MethodSpec", "MetricSpec", "ReportSpec", "BenchConfig", "load_config", "config_from_dict"]

PROTOCOLS = ("reduced", "full", "both")


def _freeze(v: Any) -> Any:
    if isinstance(v, Mapping):
        return tuple(sorted((str(k), _freeze(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple) and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in v) and v:
        return {k: _thaw(x) for k, x in v}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One dataset: ``label`` in the tables, the registered ``adapter``, its root ``path``, adapter ``options``
    and optionally the ``scenes`` (names) to keep (default: all)."""

    label: str
    adapter: str
    path: Path
    options: tuple = ()
    scenes: tuple[str, ...] | None = None

    def kwargs(self) -> dict[str, Any]:
        return _thaw(self.options) if self.options else {}


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """One method row: a registered ``method`` with ``options``, or an external ``folder`` of fused images.

    Several specs may name one method with different options; ``label`` tells them apart.
    An external folder holds ``<scene>.<ext>`` files, or ``<dataset>/<scene>.<ext>`` when the
    benchmark has several datasets.
    """

    label: str
    method: str | None = None
    options: tuple = ()
    folder: Path | None = None

    def kwargs(self) -> dict[str, Any]:
        return _thaw(self.options) if self.options else {}

    @property
    def external(self) -> bool:
        return self.folder is not None


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """The metrics: registered ``names`` (None: the task's default), the ``colour`` rule, float ``dtype``, per-metric ``options``."""

    names: tuple[str, ...] | None = None
    colour: str = "vifb"
    dtype: str = "float32"
    options: tuple = ()

    def kwargs(self) -> dict[str, dict[str, Any]]:
        return _thaw(self.options) if self.options else {}


@dataclasses.dataclass(frozen=True)
class ReportSpec:
    """What is written besides the tables."""

    figures: bool = True
    html: bool = True
    stats: bool = True
    efficiency: bool = False
    montage_scenes: int = 4


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """A whole benchmark (see the module docstring for the file form)."""

    task: str
    datasets: tuple[DatasetSpec, ...]
    methods: tuple[MethodSpec, ...]
    metrics: MetricSpec = MetricSpec()
    report: ReportSpec = ReportSpec()
    protocol: str = "reduced"
    out: Path | None = None
    batch: int = 8


def _path(value: Any, base: Path, what: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise FusionInputError(f"{what}: pass a path (a string), got {value!r}.")
    p = Path(os.path.expandvars(os.path.expanduser(str(value))))
    return p if p.is_absolute() else (base / p)


def _known(section: Mapping[str, Any], allowed: set[str], what: str) -> None:
    extra = sorted(set(section) - allowed)
    if extra:
        raise FusionInputError(f"{what}: unknown key(s) {extra}; allowed: {sorted(allowed)}.")


def config_from_dict(raw: Mapping[str, Any], *, base: str | Path = ".") -> BenchConfig:
    """A :class:`BenchConfig` from the parsed file (``base``: the folder relative paths start from).

    Raises:
      FusionInputError: unknown keys, missing datasets / methods, duplicate labels, unknown
        method, metric or adapter names, a bad protocol.
    """
    from jfusion.bench.datasets import REGISTRY as ADAPTERS
    from jfusion.metrics import get_metric_info
    from jfusion.registry import check_tasks

    base = Path(base)
    _known(raw, {"task", "out", "datasets", "methods", "metrics", "report", "pansharpening", "batch"}, "config")
    task = str(raw.get("task", "general"))
    check_tasks((task,))
    datasets = []
    for i, d in enumerate(raw.get("datasets") or []):
        _known(d, {"name", "adapter", "path", "options", "scenes"}, f"datasets[{i}]")
        adapter = str(d.get("adapter", d.get("name", "")))
        ADAPTERS.get(adapter)
        datasets.append(DatasetSpec(str(d.get("name", adapter)), adapter, _path(d.get("path"), base, f"datasets[{i}].path"), _freeze(d.get("options", {})),
                                    tuple(map(str, d["scenes"])) if d.get("scenes") is not None else None))
    if not datasets:
        raise FusionInputError("config: no [[datasets]]; add one with adapter and path.")
    methods = []
    for i, m in enumerate(raw.get("methods") or []):
        _known(m, {"name", "label", "options", "folder"}, f"methods[{i}]")
        if ("name" in m) == ("folder" in m):
            raise FusionInputError(f"methods[{i}]: give either name (a registered method) or folder (external fused images).")
        if "folder" in m:
            folder = _path(m["folder"], base, f"methods[{i}].folder")
            methods.append(MethodSpec(str(m.get("label", folder.name)), folder=folder))
        else:
            name = str(m["name"]).lower()
            _method_info(name, task)
            methods.append(MethodSpec(str(m.get("label", name)), method=name, options=_freeze(m.get("options", {}))))
    if not methods:
        raise FusionInputError("config: no [[methods]]; add registered methods (name = ...) or result folders (folder = ...).")
    labels = [m.label for m in methods]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise FusionInputError(f"methods: labels {dup} are used twice; give each variant its own label.")
    if len({d.label for d in datasets}) < len(datasets):
        raise FusionInputError("datasets: two datasets share a name; name each one.")
    mt = raw.get("metrics", {}) or {}
    _known(mt, {"names", "colour", "dtype", "options"}, "metrics")
    names = mt.get("names")
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if names is not None:
        names = tuple(get_metric_info(n).name for n in names)
    dtype = str(mt.get("dtype", "float32"))
    if dtype not in ("float32", "float64"):
        raise FusionInputError(f"metrics.dtype: pass float32 or float64, got {dtype!r}.")
    metrics = MetricSpec(names, str(mt.get("colour", "vifb")), dtype, _freeze(mt.get("options", {})))
    rp = raw.get("report", {}) or {}
    _known(rp, {f.name for f in dataclasses.fields(ReportSpec)}, "report")
    ps = raw.get("pansharpening", {}) or {}
    _known(ps, {"protocol"}, "pansharpening")
    protocol = str(ps.get("protocol", "reduced"))
    if protocol not in PROTOCOLS:
        raise FusionInputError(f"pansharpening.protocol: pass one of {PROTOCOLS}, got {protocol!r}.")
    batch = int(raw.get("batch", 8))
    if batch < 1:
        raise FusionInputError(f"batch: pass a positive number of scenes per metric call, got {batch}.")
    out = _path(raw["out"], base, "out") if raw.get("out") else None
    return BenchConfig(task, tuple(datasets), tuple(methods), metrics, ReportSpec(**rp), protocol, out, batch)


def _method_info(name: str, task: str):
    if task in ("pansharpening", "mshs"):
        from jfusion.pansharpening.registry import REGISTRY

        return REGISTRY.get(name)
    from jfusion.methods.registry import get_info

    return get_info(name)


def load_config(path: str | Path) -> BenchConfig:
    """Read a benchmark config file (``.toml``; ``.yaml`` / ``.yml`` when PyYAML is installed).

    Relative paths in the file are relative to the file's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise FusionInputError(f"config: {path} is not a file; pass a .toml benchmark config.")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise FusionInputError(f"config: {path} is YAML but PyYAML is not installed; pip install pyyaml or use TOML.") from None
        raw = yaml.safe_load(text) or {}
    else:
        import tomllib

        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise FusionInputError(f"config: {path} is not valid TOML ({err}).") from None
    if not isinstance(raw, Mapping):
        raise FusionInputError(f"config: {path} does not hold a table of settings.")
    return config_from_dict(raw, base=path.parent.resolve())
