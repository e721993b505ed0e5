"""Full-resolution quality (D_lambda, D_s, QNR) of the learned pan-sharpening networks on the VALIDATION strips.

Rows per (method, scene): EXP, the shipped network, ``adapt=True`` (PNN+, Wald-degraded pair) and
``adapt="full-resolution"`` (Z-PNN loss), all at the defaults (50 Adam steps at 1e-4), plus the cross-sensor
rows of issue 13 item 4: a 4-band network applied to the other 4-band sensor's scene (``sensor=`` the scene's,
``weights=`` the other sensor's asset), scored on the raw output (the library's guard,
:func:`jfusion.pansharpening.learned.check_cross_sensor`, refuses it when it scores below EXP).
The strips are cropped to their left 224 PAN columns (MS 56; QNR's 32-pixel blocks). Never reads a test strip (:mod:`jfusion.training.protocol`).

    PYTHONPATH=$PWD python benchmarks/adapt_full_resolution.py --out runs/ps13/fr.jsonl [--rows 320] [--only fr|cross]

Each row is appended to ``--out`` as one JSON line as soon as it is measured (a rerun skips rows already there).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from functools import partial
from pathlib import Path

import jax
import numpy as np

from jfusion.pansharpening import learned, read_scene, registry
from jfusion.pansharpening.evaluation import pan_lowpass_pst
from jfusion.pansharpening.wald import interp23tap
from jfusion.training import protocol

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("JFUSION_DATA", ROOT.parent / "shared" / "data")) / "pansharpening"
SCENES = {"GeoEye1": "imgGE1.mat", "IKONOS": "imgIK.mat", "WV2": "imgWV2.mat"}


def validation(sensor: str, rows: int | None):
    s = read_scene(DATA / SCENES[sensor])
    split = protocol.column_split(s.ms.shape[1], s.ratio)
    ms, pan = protocol.validation_strip(split, s.ms, s.pan)
    if rows is not None:
        ms, pan = ms[:rows], pan[: rows * s.ratio]
    # QNR's quality blocks are 32 PAN pixels: the strip's left 32-multiple of columns (PAN 240 -> 224, MS 60 -> 56)
    cols = pan.shape[1] // 32 * 32
    ms, pan = ms[:, : cols // s.ratio], pan[:, :cols]
    return np.asarray(ms, np.float32), np.asarray(pan, np.float32), s


def qnr(ms: np.ndarray, pan: np.ndarray, out: np.ndarray, ratio: int) -> dict[str, float]:
    from jfusion.metrics import remote as rm

    ms_up = interp23tap(ms, ratio)
    dl = float(rm.d_lambda(ms_up, out, ratio=ratio))
    ds = float(rm.d_s(ms_up, pan, out, ratio=ratio, pan_lowpass=pan_lowpass_pst(pan, ratio)))
    return {"d_lambda": dl, "d_s": ds, "qnr": (1 - dl) * (1 - ds)}


def raw(method: str, ms, pan, *, sensor: str, bit_depth: int, **options) -> np.ndarray:
    """The registered function itself (no boundary guard), jitted."""
    fn = registry.get_info(method).fn
    if registry.get_info(method).learned:
        options["bit_depth"] = bit_depth
    f = jax.jit(partial(fn, ratio=4, sensor=sensor, **options))
    return np.asarray(jax.block_until_ready(f(ms, pan)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/ps13/fr.jsonl")
    ap.add_argument("--rows", type=int, default=None, help="first MS rows of the validation strip (default: all)")
    ap.add_argument("--only", choices=("fr", "cross"), default=None)
    ap.add_argument("--methods", default="pnn")
    ap.add_argument("--sensors", default="IKONOS,GeoEye1")
    ap.add_argument("--lrs", default="0.0001", help="adapt_lr values of the full-resolution rows (comma-separated)")
    ap.add_argument("--no-wald", action="store_true", help="skip the adapt=True rows")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["key"] for line in out.read_text().splitlines()} if out.exists() else set()

    def row(key: str, fn, ms, pan, ratio, **info):
        if key in done:
            return
        t0 = time.perf_counter()
        img = fn()
        sec = time.perf_counter() - t0
        rec = {"key": key, **info, **qnr(ms, pan, img, ratio), "seconds": round(sec, 1), "shape": list(img.shape),
               "load": os.getloadavg()[0]}
        with out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)

    sensors = args.sensors.split(",")
    if args.only in (None, "cross"):
        for data_sensor in ("GeoEye1", "IKONOS"):
            other = "IKONOS" if data_sensor == "GeoEye1" else "GeoEye1"
            ms, pan, s = validation(data_sensor, args.rows)
            kw = dict(sensor=data_sensor, bit_depth=s.bit_depth)
            row(f"exp/{data_sensor}", lambda: raw("exp", ms, pan, sensor=data_sensor, bit_depth=s.bit_depth), ms, pan, 4,
                method="exp", data=data_sensor)
            for m in args.methods.split(","):
                w = str(learned.WEIGHTS_DIR / f"{m}-{other}")
                row(f"{m}/{data_sensor}", lambda: raw(m, ms, pan, **kw), ms, pan, 4, method=m, data=data_sensor, model=data_sensor)
                row(f"{m}-{other}/{data_sensor}", lambda: raw(m, ms, pan, weights=w, **kw), ms, pan, 4, method=m,
                    data=data_sensor, model=other)
    if args.only in (None, "fr"):
        for sensor in sensors:
            ms, pan, s = validation(sensor, args.rows)
            kw = dict(sensor=sensor, bit_depth=s.bit_depth)
            row(f"exp/{sensor}", lambda: raw("exp", ms, pan, sensor=sensor, bit_depth=s.bit_depth), ms, pan, 4, method="exp", data=sensor)
            for m in args.methods.split(","):
                row(f"{m}/{sensor}", lambda: raw(m, ms, pan, **kw), ms, pan, 4, method=m, data=sensor, model=sensor)
                if not args.no_wald:
                    row(f"{m}+wald/{sensor}", lambda: raw(m, ms, pan, adapt=True, **kw), ms, pan, 4, method=m, data=sensor,
                        model=sensor, adapt="wald")
                for lr in map(float, args.lrs.split(",")):
                    key = f"{m}+fr/{sensor}" + ("" if lr == 1e-4 else f"/lr{lr:g}")
                    row(key, lambda: raw(m, ms, pan, adapt="full-resolution", adapt_lr=lr, **kw), ms, pan, 4, method=m,
                        data=sensor, model=sensor, adapt="full-resolution", adapt_lr=lr, rows=args.rows)


if __name__ == "__main__":
    main()
