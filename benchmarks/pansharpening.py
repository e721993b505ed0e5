"""Pan-sharpening benchmark: every registered method x every shipped scene, on the held-out test region.

Reduced resolution (Wald's protocol, reference = original MS): Q2n, SAM (deg), ERGAS, sCC, Q.
Full resolution (no reference): D_lambda, D_s, QNR. Seconds: a warm (compiled) reduced-resolution call
(320x80 output) and the first full-resolution call (1280x320 output, compilation included).
Learned methods are not run here: under the protocol (``benchmarks/README.md``, :mod:`jfusion.training.protocol`)
their test-strip scores come from the final report only (``jfusion train final-report``).

    PYTHONPATH=$PWD python benchmarks/pansharpening.py [--write]

``--write`` replaces the ``## Pan-sharpening`` section of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import jax

from jfusion import assets
from jfusion.pansharpening import learned, list_pansharpening_methods, read_scene, wald
from jfusion.pansharpening.evaluation import evaluate_full, evaluate_reduced

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("JFUSION_DATA", ROOT.parent / "shared" / "data")) / "pansharpening"
SCENES = ("imgGE1.mat", "imgIK.mat", "imgWV2.mat")


def run() -> list[dict]:
    rows = []
    for scene_file in SCENES:
        s = read_scene(DATA / scene_file)
        _, (ms, pan) = wald.split_test_region(s.ms, s.pan, s.ratio)
        for info in list_pansharpening_methods():
            if info.learned:  # the final report is the one reader of the test strips for learned models
                continue
            kw = dict(ratio=s.ratio, sensor=s.sensor, bit_depth=s.bit_depth)
            evaluate_reduced(ms, pan, info.name, **kw)  # warm-up (compilation)
            red = evaluate_reduced(ms, pan, info.name, **kw)
            full = evaluate_full(ms, pan, info.name, **kw)
            row = {"scene": s.sensor, "method": info.name, "family": info.family, **{k: v for k, v in red.items() if k != "seconds"},
                   **{k: v for k, v in full.items() if k != "seconds"}, "seconds": red["seconds"], "seconds_full": full["seconds"]}
            rows.append(row)
            print(f"{s.sensor:8s} {info.name:13s} Q2n {row['q2n']:.4f} SAM {row['sam']:.3f} ERGAS {row['ergas']:.3f} "
                  f"sCC {row['scc']:.4f} Q {row['q']:.4f} | Dl {row['d_lambda']:.4f} Ds {row['d_s']:.4f} QNR {row['qnr']:.4f} | {row['seconds']:.3f}s {row['seconds_full']:.2f}s", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    head = ("| scene | method | Q2n ↑ | SAM° ↓ | ERGAS ↓ | sCC ↑ | Q ↑ | Dλ ↓ | Ds ↓ | QNR ↑ | s RR (warm) | s FR (cold) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = ""
    for r in rows:
        body += (f"| {r['scene']} | {r['method']} | {r['q2n']:.4f} | {r['sam']:.3f} | {r['ergas']:.3f} | {r['scc']:.4f} | {r['q']:.4f} | "
                 f"{r['d_lambda']:.4f} | {r['d_s']:.4f} | {r['qnr']:.4f} | {r['seconds']:.3f} | {r['seconds_full']:.2f} |\n")
    return head + body


MSHS_SCENES = {
    "houston": "Houston DFC2018 crop: 48-band CASI HS + RGB, ratio 4, real pair (Wald-degraded by 4)",
    "paris-ms": "Paris: 128-band Hyperion HS + 9-band ALI MS on one 30 m grid (HS degraded by 3, HySure protocol)",
    "paris-pan": "Paris: 128-band Hyperion HS + ALI PAN, ratio 3, real pair (Wald-degraded by 3)",
}


MSHS_NOTE = (
    "### MS/HS fusion (`cnn3d-mshs`)\n\n"
    "3-D CNN (Palsson et al. 2017, 8 principal components) vs the bicubic-interpolated HS on the test strip (right quarter) "
    "of each hyperspectral scene, reduced resolution (the original HS is the reference); scores from the per-asset "
    "manifests `jfusion/weights/pansharpening/cnn3d-mshs-*.json`, written by the final report (`jfusion train final-report`, "
    "the one reader of the test strips). Q2n where the test strip holds 32x32 blocks (Houston, 48 bands); the Paris test "
    "strips are 15-18 px wide, so Q there is the per-band UIQI on 8x8 windows. Paris HS+PAN is a real pair, so its "
    "full-resolution no-reference indices (PST conventions, bicubic HS interpolation, a 192x32 PAN-pixel window of whole "
    "32x32 blocks) are given as well. Step counts were chosen by early stopping on the validation strip."
)


def mshs_table() -> str:
    """MS/HS fusion rows (cnn3d-mshs vs bicubic HS) from the manifest's held-out-quarter scores."""
    entries = {p.stem: assets.read_manifest(p) for p in assets.find_assets(learned.WEIGHTS_DIR)}
    head = ("| scene | data | method | Q2n / Q ↑ | SAM° ↓ | ERGAS ↓ | Dλ ↓ | Ds ↓ | QNR ↑ |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    body = ""
    for key, desc in MSHS_SCENES.items():
        meta = entries.get(f"cnn3d-mshs-{key}")
        if meta is None or not meta["scores"]["test"]:  # not shipped, or not scored yet
            continue
        sc = meta["scores"]["test"]
        for who, label in (("model", "cnn3d-mshs"), ("exp", "bicubic HS")):
            r = sc[who]
            qk = "q2n" if "q2n" in r else "q"
            full = sc.get(f"{who}_full")
            fr = " | ".join(f"{full[k]:.4f}" for k in ("d_lambda", "d_s", "qnr")) if full else "- | - | -"
            body += f"| {key} | {desc} | {label} | {r[qk]:.4f} ({'Q2n' if qk == 'q2n' else 'Q 8x8'}) | {r['sam']:.3f} | {r['ergas']:.3f} | {fr} |\n"
    return head + body


def write_readme(rows: list[dict], note: str) -> None:
    path = ROOT / "benchmarks" / "README.md"
    text = path.read_text() if path.exists() else "# jfusion benchmarks\n"
    section = "## Pan-sharpening\n\n" + note + "\n\n" + table(rows) + "\n" + MSHS_NOTE + "\n\n" + mshs_table()
    pattern = re.compile(r"## Pan-sharpening\n.*?(?=\n## |\Z)", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--json", type=Path, help="also save the rows as JSON")
    ap.add_argument("--from-json", type=Path, help="rebuild the table from saved rows instead of running")
    args = ap.parse_args()
    rows = json.loads(args.from_json.read_text()) if args.from_json else run()
    dev = jax.devices()[0]
    note = (
        "`PYTHONPATH=$PWD python benchmarks/pansharpening.py --write`. Classical methods on the test strip of each scene "
        "(right quarter: MS columns 240-319, PAN 960-1279). Reduced resolution = Wald's protocol (sensor-MTF degradation by 4, "
        "reference = original MS, 320x80 px); full resolution = the original pair (1280x320 px), PST conventions. Metrics "
        "from `jfusion.metrics.remote`. Seconds: a warm reduced-resolution call and the first (compiling) full-resolution "
        f"call on {dev.platform.upper()} ({dev.device_kind}), shared 2-core machine (timings noisy).\n\n"
        "Learned models are not in this table: under the protocol (section *Protocol for learned models*) their test-strip "
        "scores come from the final report only, `jfusion train final-report --out benchmarks/results/learned_test.md`, "
        "which lists them beside these classical methods on the same strips."
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.write:
        write_readme(rows, note)
    sys.stdout.write(table(rows))
