"""Pan-sharpening benchmarks: the reduced- and full-resolution protocols as named settings.

* ``protocol = "reduced"`` (Wald): each scene's MS and PAN are degraded by the ratio with the
  sensor's MTF (:func:`jfusion.pansharpening.wald.reduced_resolution`), the method fuses the
  degraded pair and is scored against the original MS: Q2n, SAM, ERGAS, sCC, Q (UIQI). Scenes
  that come with a ground truth (PanCollection reduced-resolution ``.h5``, ``gt``) are fused as
  given and scored against ``gt``.
* ``protocol = "full"``: the method fuses the original pair, scored without reference: D_lambda,
  D_s and QNR with the toolbox's conventions (MS interpolated with the 23-tap kernel, PAN
  low-pass of :func:`jfusion.pansharpening.evaluation.pan_lowpass_pst`), as
  :func:`jfusion.pansharpening.evaluation.evaluate_full`.
* ``protocol = "both"``: the two, side by side in one table.

Fused outputs are cached as ``.npy`` (float32, sensor units) under ``<out>/fused``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from jfusion.bench import _cache
from jfusion.bench.datasets import load_dataset, read_pansharpening_item
from jfusion.errors import FusionInputError
from jfusion.io import atomic_output

__all__ = ["run_pansharpening", "REDUCED_METRICS", "FULL_METRICS", "protocol_metrics"]

REDUCED_METRICS = ("q2n", "sam", "ergas", "scc", "uiqi")
FULL_METRICS = ("d_lambda", "d_s", "qnr")


def protocol_metrics(protocol: str) -> tuple[str, ...]:
    """The default metric set of a protocol."""
    return {"reduced": REDUCED_METRICS, "full": FULL_METRICS, "both": REDUCED_METRICS + FULL_METRICS}[protocol]


def _fuse(method: str, ms: np.ndarray, pan: np.ndarray, sc: dict, options: dict) -> np.ndarray:
    import jax

    from jfusion.pansharpening import pansharpen

    sensor = None if sc["sensor"] in ("none", "") else sc["sensor"]
    return np.asarray(jax.block_until_ready(pansharpen(ms, pan, method=method, sensor=sensor, bit_depth=sc["bit_depth"], **options)))


def _scores(which: str, names: tuple[str, ...], sc: dict, fused: np.ndarray, ref: np.ndarray | None, opts: dict) -> dict[str, float]:
    from jfusion.metrics import get_metric_info
    from jfusion.metrics import remote as rm
    from jfusion.pansharpening.evaluation import pan_lowpass_pst
    from jfusion.pansharpening.wald import interp23tap

    r = sc["ratio"]
    out: dict[str, float] = {}
    if which == "reduced":
        for n in names:
            info = get_metric_info(n)
            if info.kind != "remote":
                continue
            kw = dict(opts.get(n, {}))
            if n == "ergas":
                kw.setdefault("ratio", r)
            out[n] = float(info.fn(ref, fused, **kw))
        return out
    ms_up = interp23tap(np.asarray(sc["ms"], np.float32), r)
    if {"d_lambda", "qnr"} & set(names):
        dl = float(rm.d_lambda(ms_up, fused, ratio=r, **opts.get("d_lambda", {})))
    if {"d_s", "qnr"} & set(names):
        dsv = float(rm.d_s(ms_up, sc["pan"], fused, ratio=r, pan_lowpass=pan_lowpass_pst(np.asarray(sc["pan"], np.float32), r),
                           **opts.get("d_s", {})))
    for n in names:
        if n == "d_lambda":
            out[n] = dl
        elif n == "d_s":
            out[n] = dsv
        elif n == "qnr":
            out[n] = (1 - dl) * (1 - dsv)
    return out


def run_pansharpening(cfg, out_dir: Path, names: tuple[str, ...], version: str, *, force: bool, progress: bool):
    """Values, scenes, missing, counts and timings of a pan-sharpening benchmark (see the module docstring)."""
    from jfusion.bench._run import _progress, select_scenes
    from jfusion.pansharpening.wald import reduced_resolution

    if any(m.external for m in cfg.methods):
        raise FusionInputError("methods: pan-sharpening benchmarks run registered methods; external result folders are for image fusion.")
    from jfusion.metrics import get_metric_info

    kinds = {"reduced": {"remote"}, "full": {"remote_noref"}, "both": {"remote", "remote_noref"}}[cfg.protocol]
    bad = [n for n in names if get_metric_info(n).kind not in kinds]
    if bad:
        raise FusionInputError(f"metrics: {bad} do not belong to the {cfg.protocol!r} protocol; use {protocol_metrics(cfg.protocol)}.")
    opts = cfg.metrics.kwargs()
    values: dict = {}
    scenes: dict = {}
    missing: list[str] = []
    computed = {"fused": 0, "metrics": 0}
    seconds = {"fuse": 0.0, "evaluate": 0.0}
    fused_files: dict = {}
    for ds in cfg.datasets:
        items = select_scenes(load_dataset(ds.adapter, ds.path, label=ds.label, **ds.kwargs()), ds)
        scenes[ds.label] = tuple(it.name for it in items)
        values[ds.label] = {m.label: {} for m in cfg.methods}
        fused_files[ds.label] = {m.label: {} for m in cfg.methods}
        fps = {it.name: it.fingerprint() for it in items}
        bar = _progress(len(items) * len(cfg.methods), f"{ds.label} ({cfg.protocol})", progress)
        for it in items:
            sc = None
            for spec in cfg.methods:
                key = _cache.digest("ps", cfg.protocol, names, opts, spec.method, spec.kwargs(), fps[it.name], version)
                entry = out_dir / "cache" / "metrics" / _cache.safe_name(ds.label) / _cache.safe_name(spec.label) / f"{_cache.safe_name(it.name)}.json"
                hit = None if force else _cache.read_entry(entry, key)
                if hit is not None:
                    values[ds.label][spec.label][it.name] = {n: float(hit[n]) for n in names}
                    bar.update(1)
                    continue
                sc = sc or read_pansharpening_item(it)
                row: dict[str, float] = {}
                try:
                    for which in ("reduced", "full") if cfg.protocol == "both" else (cfg.protocol,):
                        t0 = time.perf_counter()
                        if which == "reduced" and sc["gt"] is not None:
                            fused, ref = _fuse(spec.method, sc["ms"], sc["pan"], sc, spec.kwargs()), sc["gt"]
                        elif which == "reduced":
                            pair = reduced_resolution(sc["ms"], sc["pan"], ratio=sc["ratio"], sensor=None if sc["sensor"] == "none" else sc["sensor"])
                            fused, ref = _fuse(spec.method, np.asarray(pair.ms_lr), np.asarray(pair.pan_lr), sc, spec.kwargs()), np.asarray(pair.reference)
                        else:
                            fused, ref = _fuse(spec.method, sc["ms"], sc["pan"], sc, spec.kwargs()), None
                        seconds["fuse"] += time.perf_counter() - t0
                        target = out_dir / "fused" / _cache.safe_name(ds.label) / _cache.safe_name(spec.label) / f"{_cache.safe_name(it.name)}-{which}.npy"
                        with atomic_output(target, overwrite=True) as tmp:
                            with open(tmp, "wb") as fh:
                                np.save(fh, fused.astype(np.float32))
                        fused_files[ds.label][spec.label][it.name] = target
                        computed["fused"] += 1
                        t0 = time.perf_counter()
                        row.update(_scores(which, names, sc, fused, ref, opts))
                        seconds["evaluate"] += time.perf_counter() - t0
                except (FusionInputError, ValueError) as err:
                    missing.append(f"{ds.label} / {spec.label} / {it.name}: {err}")
                    bar.update(1)
                    continue
                row = {n: row[n] for n in names}
                _cache.write_entry(entry, key, row)
                values[ds.label][spec.label][it.name] = row
                computed["metrics"] += 1
                bar.update(1)
        bar.close()
    return values, scenes, missing, computed, seconds, ({}, fused_files)
