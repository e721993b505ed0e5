"""``jfusion.bench.run``: fuse what is missing, evaluate in shape buckets, write the tables.

Layout of the output folder::

    fused/<dataset>/<method>/<scene>.png      registered methods' outputs (8-bit, 16-bit for 16-bit sources)
    cache/fused/<dataset>/<method>/<scene>.json   their keys
    cache/metrics/<dataset>/<method>/<scene>.json metric values with their key
    tables/<dataset>/mean.{csv,md,tex}, per_image.{csv,md,tex}, ranks.csv
    bench.json                                 settings, versions, timings, missing scenes

Registered methods' outputs are written as image files and evaluated from those files, as the
published toolkits evaluate saved images. Metric evaluation goes through
:func:`jfusion.metrics.evaluate_batch`: the scenes of all methods of a dataset are bucketed by
shape and dtype, and each bucket is evaluated in chunks of ``batch`` scenes (the last chunk
padded by repeating a scene), so the metric program compiles once per distinct scene shape and
a resumed run evaluates the remaining scenes with the same program (same values, bit for bit).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jfusion.bench import _cache
from jfusion.bench._config import BenchConfig, DatasetSpec, MethodSpec, load_config
from jfusion.bench.datasets import REGISTRY as ADAPTERS
from jfusion.bench.datasets import Item, _images, load_dataset
from jfusion.errors import FusionInputError

__all__ = ["BenchResult", "ChunkError", "evaluate_files", "run"]


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """What a benchmark produced.

    Attributes:
      config: the settings run.
      out: the output folder.
      metrics: metric names (column order); ``directions`` their registered directions.
      values: ``values[dataset][method][scene][metric]`` -> float.
      scenes: ``scenes[dataset]``: the scene names in order.
      methods: method labels in the config's order.
      missing: ``"dataset / method / scene: reason"`` for every scene not evaluated.
      files: the tables, figures and report written.
      seconds: wall time per stage (``fuse``, ``evaluate``, ``report``) and ``total``.
      computed: how many fused images / metric entries were computed (not from the cache).
      sources: ``sources[dataset][scene]``: the source files (general fusion).
      fused: ``fused[dataset][method][scene]``: the fused image files evaluated.
    """

    config: BenchConfig
    out: Path
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    values: dict[str, dict[str, dict[str, dict[str, float]]]]
    scenes: dict[str, tuple[str, ...]]
    methods: tuple[str, ...]
    missing: tuple[str, ...]
    files: tuple[Path, ...]
    seconds: dict[str, float]
    computed: dict[str, int]
    sources: dict[str, dict[str, tuple[Path, ...]]] = dataclasses.field(default_factory=dict)
    fused: dict[str, dict[str, dict[str, Path]]] = dataclasses.field(default_factory=dict)


def _version() -> str:
    import jfusion

    return jfusion.__version__


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="scene", disable=not enabled or total < 2, leave=False)


def _native(path: Path) -> np.ndarray:
    """An image file's stored values (uint8 / uint16 / float), alpha dropped, ``(H, W)`` or ``(H, W, C)``."""
    from jfusion.io import _load

    a = np.asarray(_load(path))
    if a.ndim == 3 and a.shape[2] == 4 and path.suffix.lower() not in (".tif", ".tiff"):
        a = a[..., :3]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise FusionInputError(f"{path}: has shape {a.shape}; expected one image (H, W[, C]).")
    return a


def _to_unit(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "u":
        return (a.astype(np.float64) / np.iinfo(a.dtype).max).astype(np.float32)
    return a.astype(np.float32)


def _stack_sources(paths: tuple[Path, ...]) -> np.ndarray:
    """Sources of one scene as ``(S, H, W[, C])``, in their stored dtype when all share it (grey promoted next to RGB)."""
    arrs = [_native(p) for p in paths]
    if len({a.dtype for a in arrs}) > 1:
        arrs = [_to_unit(a) for a in arrs]
    sizes = {a.shape[:2] for a in arrs}
    if len(sizes) > 1:
        raise FusionInputError(f"{' + '.join(map(str, paths))}: the sources differ in size ({sorted(sizes)}).")
    chans = {1 if a.ndim == 2 else a.shape[2] for a in arrs}
    if chans == {1, 3}:
        arrs = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrs]
    elif len(chans) > 1:
        raise FusionInputError(f"{' + '.join(map(str, paths))}: band counts differ ({sorted(chans)}).")
    return np.stack(arrs)


def select_scenes(items: tuple[Item, ...], ds: DatasetSpec) -> tuple[Item, ...]:
    """The items named in ``ds.scenes`` (all when None); a name the dataset lacks is an error."""
    if ds.scenes is None:
        return items
    names = {it.name for it in items}
    unknown = [s for s in ds.scenes if s not in names]
    if unknown:
        raise FusionInputError(f"datasets {ds.label}: scenes {unknown} are not in {ds.path} (it has {len(names)} scenes, e.g. {sorted(names)[:5]}).")
    keep = set(ds.scenes)
    return tuple(it for it in items if it.name in keep)


def _metric_names(cfg: BenchConfig, kind: str) -> tuple[str, ...]:
    from jfusion.bench._pansharpening import protocol_metrics
    from jfusion.metrics import DEFAULT_METRICS

    if cfg.metrics.names is not None:
        return cfg.metrics.names
    return protocol_metrics(cfg.protocol) if kind == "pansharpening" else tuple(DEFAULT_METRICS)


@dataclasses.dataclass
class _Job:
    """One (dataset, method, scene) to evaluate: its files and cache entry."""

    dataset: str
    method: str
    item: Item
    fused: Path
    entry: Path | None
    key: str


def _external_file(spec: MethodSpec, ds: DatasetSpec, several: bool, index_cache: dict) -> Callable[[str], Path | None]:
    assert spec.folder is not None
    base = spec.folder / ds.label if several and (spec.folder / ds.label).is_dir() else spec.folder
    if base not in index_cache:
        if not base.is_dir():
            raise FusionInputError(f"methods {spec.label}: {base} is not a folder of fused images (<scene>.png / .jpg ...).")
        index_cache[base] = _images(base)
    idx = index_cache[base]
    return idx.get


def _fuse_item(item: Item, spec: MethodSpec, target: Path) -> None:
    import jfusion
    from jfusion.io import read_image_info

    sources = [jfusion.read_image(p) for p in item.sources]
    fused = np.clip(np.asarray(jfusion.fuse(sources, method=spec.method, **spec.kwargs())), 0.0, 1.0)
    depth = 16 if any(read_image_info(p).bit_depth == 16 for p in item.sources) else 8
    jfusion.write_image(target, fused, bit_depth=depth, overwrite=True)


def _evaluate(jobs: list[_Job], names: tuple[str, ...], *, colour: str, options: dict, dtype: str, batch: int,
              progress: bool) -> dict[int, dict[str, float]]:
    """Metric values of ``jobs`` (index -> {metric: value}), bucketed by shape, ``batch`` scenes per call.

    Each job's cache entry is written (when it has one) as soon as its chunk is done.
    """
    import jax

    from jfusion import metrics as jm

    loaded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    buckets: dict[tuple, list[int]] = {}
    srcs: dict[tuple[str, str], np.ndarray] = {}
    for i, job in enumerate(jobs):
        k = (job.dataset, job.item.name)
        if k not in srcs:
            srcs[k] = _stack_sources(job.item.sources)
        s, f = srcs[k], _native(job.fused)
        if f.shape[:2] != s.shape[1:3]:
            raise FusionInputError(f"{job.fused}: size {f.shape[:2]} differs from the sources' {s.shape[1:3]} (scene {job.item.name}).")
        if f.dtype != s.dtype:
            s, f = _to_unit(s), _to_unit(f)
        loaded[i] = (s, f)
        buckets.setdefault((s.shape, s.dtype.str, f.shape, f.dtype.str), []).append(i)
    out: dict[int, dict[str, float]] = {}
    bar = _progress(len(jobs), "metrics", progress)
    with jax.enable_x64(dtype == "float64"):
        for idx in buckets.values():
            for c in range(0, len(idx), batch):
                chunk = idx[c:c + batch]
                pad = chunk + [chunk[-1]] * (batch - len(chunk))
                try:
                    # A value undefined on an image (NaN) stays NaN in the tables, where it shows, rather than
                    # stopping the whole benchmark (evaluate's default raises).
                    res = jm.evaluate_batch(np.stack([loaded[i][0] for i in pad]), np.stack([loaded[i][1] for i in pad]), metrics=names,
                                            colour=colour, options=options, undefined="nan")
                except FusionInputError as err:
                    raise ChunkError(err, [jobs[i] for i in chunk]) from None
                for n, i in enumerate(chunk):
                    vals = {k: float(res[k][n]) for k in names}
                    if jobs[i].entry is not None:
                        _cache.write_entry(jobs[i].entry, jobs[i].key, vals)
                    out[i] = vals
                bar.update(len(chunk))
    bar.close()
    return out


class ChunkError(FusionInputError):
    """A metric call failed on a chunk of scenes; ``jobs`` are the scenes it held."""

    def __init__(self, err: FusionInputError, jobs: list[_Job]) -> None:
        first = jobs[0]
        where = " / ".join(x for x in (first.dataset, first.method, first.item.name) if x)
        super().__init__(f"{where} (or another scene of its batch): {err}")
        self.cause = err
        self.jobs = jobs


def evaluate_files(
    scenes: list[tuple[str, tuple[Path, ...], Path]],
    metrics: tuple[str, ...],
    *,
    colour: str = "vifb",
    options: dict | None = None,
    dtype: str = "float32",
    batch: int = 8,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics of fused image files against their source files, batched as in :func:`run` (no cache).

    Args:
      scenes: ``(name, source files, fused file)`` per scene.
      metrics: registered general fusion metric names.

    Returns:
      ``{scene name: {metric: value}}`` in the order given.

    Raises:
      ChunkError: a metric call failed (its ``jobs`` name the scenes of the failing batch).
      FusionInputError: unreadable files, sizes that differ.
    """
    jobs = [_Job("", "", Item("", name, tuple(map(Path, src))), Path(fused), None, "") for name, src, fused in scenes]
    res = _evaluate(jobs, tuple(metrics), colour=colour, options=options or {}, dtype=dtype, batch=batch, progress=progress)
    return {jobs[i].item.name: res[i] for i in range(len(jobs))}


def run(
    config: BenchConfig | str | Path,
    *,
    out: str | Path | None = None,
    force: bool = False,
    progress: bool = False,
    report: bool = True,
) -> BenchResult:
    """Run a benchmark: fuse what is missing, evaluate what is not cached, write tables (and report).

    Args:
      config: a :class:`BenchConfig` or the path of a TOML / YAML config file.
      out: the output folder (default: the config's ``out``).
      force: recompute every fused image and metric value (the cache is rewritten).
      progress: show progress bars with the remaining time.
      report: also write statistics, figures and the HTML report as the config's ``[report]`` asks.

    Returns:
      A :class:`BenchResult`.

    Raises:
      FusionInputError: bad settings, datasets that do not match their adapter's layout, no output folder.
    """
    t_start = time.perf_counter()
    cfg = load_config(config) if isinstance(config, (str, Path)) else config
    out_dir = Path(out) if out is not None else cfg.out
    if out_dir is None:
        raise FusionInputError("out: pass an output folder (jfusion bench CONFIG --out DIR, or out = ... in the config).")
    if out_dir.exists() and not out_dir.is_dir():
        raise FusionInputError(f"out: {out_dir} is a file; pass a folder.")
    from jfusion.io import probe_folder

    probe_folder(out_dir)
    version = _version()
    kinds = {ADAPTERS.get(d.adapter).kind for d in cfg.datasets}
    if len(kinds) > 1:
        raise FusionInputError("datasets: mix of image-fusion and pan-sharpening datasets; run them as two benchmarks.")
    kind = kinds.pop()
    names = _metric_names(cfg, kind)
    if kind == "pansharpening":
        from jfusion.bench._pansharpening import run_pansharpening

        values, scenes, missing, computed, seconds, files_in = run_pansharpening(cfg, out_dir, names, version, force=force, progress=progress)
    else:
        values, scenes, missing, computed, seconds, files_in = _run_fusion(cfg, out_dir, names, version, force=force, progress=progress)
    from jfusion.metrics import get_metric_info

    directions = tuple(get_metric_info(n).direction for n in names)
    result = BenchResult(cfg, out_dir, names, directions, values, scenes, tuple(m.label for m in cfg.methods), tuple(missing),
                         (), seconds, computed, files_in[0], files_in[1])
    from jfusion.bench._outputs import write_outputs

    t0 = time.perf_counter()
    if _processes()[0] != 0:  # under jax.distributed, process 0 writes the tables and report
        seconds["total"] = time.perf_counter() - t_start
        return dataclasses.replace(result, seconds=seconds)
    files = write_outputs(result, report=report)
    seconds["report"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    result = dataclasses.replace(result, files=tuple(files), seconds=seconds)
    summary = {
        "jfusion": version,
        "task": cfg.task,
        "datasets": {d.label: {"adapter": d.adapter, "path": str(d.path), "scenes": len(scenes.get(d.label, ()))} for d in cfg.datasets},
        "methods": [{"label": m.label, "method": m.method, "options": m.kwargs(), "folder": str(m.folder) if m.folder else None} for m in cfg.methods],
        "metrics": {"names": list(names), "colour": cfg.metrics.colour, "dtype": cfg.metrics.dtype, "options": cfg.metrics.kwargs()},
        "protocol": cfg.protocol if kind == "pansharpening" else None,
        "missing": list(missing),
        "computed": computed,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    from jfusion.io import write_text

    write_text(out_dir / "bench.json", json.dumps(summary, indent=1, default=str) + "\n", overwrite=True)
    return result


def _processes() -> tuple[int, int]:
    """``(this process's index, process count)`` of ``jax.distributed`` (``(0, 1)`` on one host)."""
    import jax

    return jax.process_index(), jax.process_count()


_BARRIER_TIMEOUT_MS = 24 * 3600 * 1000
_BARRIERS: dict[str, int] = {}


def _barrier(name: str) -> None:
    """Wait for every process (no-op on one host).

    A barrier of ``jax.distributed``'s coordination service with a long timeout: processes may
    reach it far apart (one fuses or compiles longer), which ``multihost_utils.sync_global_devices``
    (a collective whose context times out after 30 s on CPU) does not allow.
    """
    import jax

    if jax.process_count() == 1:
        return
    from jax._src import distributed  # the coordination client of jax.distributed.initialize

    client = distributed.global_state.client
    _BARRIERS[name] = _BARRIERS.get(name, 0) + 1  # a barrier id is used once: number the repeats
    if client is not None and hasattr(client, "wait_at_barrier"):
        client.wait_at_barrier(f"{name}-{_BARRIERS[name]}", _BARRIER_TIMEOUT_MS)
    else:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _run_fusion(cfg: BenchConfig, out_dir: Path, names: tuple[str, ...], version: str, *, force: bool, progress: bool):
    """Fuse what is missing, evaluate what is not cached.

    Under ``jax.distributed`` (several processes sharing ``out_dir``) process ``p`` of ``P`` fuses
    and evaluates every ``P``-th pending scene on its local devices and writes the cache; after a
    barrier every process reads the others' entries.
    """
    rank, world = _processes()
    metric_key = _cache.digest(names, cfg.metrics.colour, cfg.metrics.dtype, cfg.metrics.kwargs(), version)
    several = len(cfg.datasets) > 1
    values: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    scenes: dict[str, tuple[str, ...]] = {}
    missing: list[str] = []
    computed = {"fused": 0, "metrics": 0}
    seconds = {"fuse": 0.0, "evaluate": 0.0}
    index_cache: dict = {}
    fingerprints: dict[tuple[str, str], str] = {}
    sources: dict[str, dict[str, tuple[Path, ...]]] = {}
    fused_files: dict[str, dict[str, dict[str, Path]]] = {}
    ready: list[tuple[str, MethodSpec, Item, Path, str]] = []
    to_fuse: list[tuple[str, MethodSpec, Item, Path, Path, str]] = []

    def fp(ds: str, it: Item) -> str:
        return fingerprints.setdefault((ds, it.name), it.fingerprint())

    for ds in cfg.datasets:
        items = select_scenes(load_dataset(ds.adapter, ds.path, label=ds.label, **ds.kwargs()), ds)
        scenes[ds.label] = tuple(it.name for it in items)
        sources[ds.label] = {it.name: it.sources for it in items}
        values[ds.label] = {m.label: {} for m in cfg.methods}
        fused_files[ds.label] = {m.label: {} for m in cfg.methods}
        for spec in cfg.methods:
            lookup = _external_file(spec, ds, several, index_cache) if spec.external else None
            folder = (_cache.safe_name(ds.label), _cache.safe_name(spec.label))
            for it in items:
                if lookup is not None:
                    f = lookup(it.name)
                    if f is None:
                        missing.append(f"{ds.label} / {spec.label} / {it.name}: no fused image named {it.name}.* in {spec.folder}")
                    else:
                        ready.append((ds.label, spec, it, f, _cache.file_digest(f)))
                    continue
                fkey = _cache.digest("fused", spec.method, spec.kwargs(), fp(ds.label, it), version)
                target = out_dir.joinpath("fused", *folder, f"{_cache.safe_name(it.name)}.png")
                entry = out_dir.joinpath("cache", "fused", *folder, f"{_cache.safe_name(it.name)}.json")
                if not force and target.exists() and _cache.read_entry(entry, fkey) is not None:
                    ready.append((ds.label, spec, it, target, fkey))
                else:
                    to_fuse.append((ds.label, spec, it, target, entry, fkey))
    if to_fuse:
        t0 = time.perf_counter()
        mine = to_fuse[rank::world]
        bar = _progress(len(mine), "fusing", progress)
        for ds_label, spec, it, target, entry, fkey in mine:
            bar.set_postfix_str(f"{spec.label} / {it.name}", refresh=False)
            try:
                _fuse_item(it, spec, target)
            except FusionInputError as err:
                _cache.write_entry(entry, fkey, {"error": str(err)})
            else:
                _cache.write_entry(entry, fkey, {"method": spec.method, "options": spec.kwargs(), "jfusion": version})
                computed["fused"] += 1
            bar.update(1)
        bar.close()
        _barrier("jfusion-bench-fused")
        for ds_label, spec, it, target, entry, fkey in to_fuse:
            got = _cache.read_entry(entry, fkey)
            if got is None or "error" in got:
                reason = got["error"] if got else "no output (a process did not finish)"
                missing.append(f"{ds_label} / {spec.label} / {it.name}: fusion failed: {reason}")
            else:
                ready.append((ds_label, spec, it, target, fkey))
        seconds["fuse"] += time.perf_counter() - t0
    jobs: list[_Job] = []
    for ds_label, spec, it, fused, fkey in ready:
        fused_files[ds_label][spec.label][it.name] = fused
        key = _cache.digest(metric_key, fp(ds_label, it), fkey)
        entry = out_dir.joinpath("cache", "metrics", _cache.safe_name(ds_label), _cache.safe_name(spec.label), f"{_cache.safe_name(it.name)}.json")
        hit = None if force else _cache.read_entry(entry, key)
        if hit is not None and all(n in hit for n in names):
            values[ds_label][spec.label][it.name] = {n: float(hit[n]) for n in names}
        else:
            jobs.append(_Job(ds_label, spec.label, it, fused, entry, key))
    if jobs:
        t0 = time.perf_counter()
        mine = jobs[rank::world]
        res = _evaluate(mine, names, colour=cfg.metrics.colour, options=cfg.metrics.kwargs(), dtype=cfg.metrics.dtype,
                        batch=cfg.batch, progress=progress) if mine else {}
        computed["metrics"] = len(mine)
        _barrier("jfusion-bench-metrics")
        local = {id(j): res[i] for i, j in enumerate(mine)}
        for job in jobs:
            vals = local.get(id(job)) or _cache.read_entry(job.entry, job.key)  # type: ignore[arg-type]
            if vals is None:
                missing.append(f"{job.dataset} / {job.method} / {job.item.name}: no metric values (a process did not finish)")
                continue
            values[job.dataset][job.method][job.item.name] = vals
        seconds["evaluate"] = time.perf_counter() - t0
    for ds in values:  # scene order of the dataset, whatever order the values came in
        for m in values[ds]:
            values[ds][m] = {s: values[ds][m][s] for s in scenes[ds] if s in values[ds][m]}
    return values, scenes, missing, computed, seconds, (sources, fused_files)
