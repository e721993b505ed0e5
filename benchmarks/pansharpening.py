"""Pan-sharpening benchmark: every registered method x every shipped scene, on the held-out test region.

Reduced resolution (Wald's protocol, reference = original MS): Q2n, SAM (deg), ERGAS, sCC, Q.
Full resolution (no reference): D_lambda, D_s, QNR. Seconds: a warm (compiled) reduced-resolution call
(320x80 output) and the first full-resolution call (1280x320 output, compilation included).
Learned methods run where weights for the sensor are shipped.

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


def shipped(name: str, sensor: str) -> bool:
    return (learned.WEIGHTS_DIR / f"{name}-{wald.sensor_mtf(sensor).name}.npz").exists()


def run() -> list[dict]:
    rows = []
    for scene_file in SCENES:
        s = read_scene(DATA / scene_file)
        _, (ms, pan) = wald.split_test_region(s.ms, s.pan, s.ratio)
        for info in list_pansharpening_methods():
            if info.learned and not shipped(info.name, s.sensor):
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
    "3-D CNN (Palsson et al. 2017, 8 principal components) vs the bicubic-interpolated HS on the held-out right quarter of "
    "each hyperspectral scene, reduced resolution (the original HS is the reference); scores from "
    "the per-asset manifests `jfusion/weights/pansharpening/cnn3d-mshs-*.json` (`jfusion train pansharpening-scores`). Q2n where the test quarter "
    "holds 32x32 blocks (Houston, 48 bands); the Paris test quarters are 15-18 px wide, so Q there is the per-band UIQI on "
    "8x8 windows. Paris HS+PAN is a real pair, so its full-resolution no-reference indices (PST conventions, bicubic HS "
    "interpolation, a 192x32 PAN-pixel window of whole 32x32 blocks) are given as well. The Paris models overfit the "
    "small training parts (72x54 and 72x42 HS pixels) within a few dozen steps; their step counts were chosen by early "
    "stopping on a validation strip of the training part (`--select-steps`), never on the test quarter."
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
        "`PYTHONPATH=$PWD python benchmarks/pansharpening.py --write`. Held-out test region of each scene (right quarter: "
        "MS columns 240-319, PAN 960-1279; learned models never saw it). Reduced resolution = Wald's protocol (sensor-MTF "
        "degradation by 4, reference = original MS, 320x80 px); full resolution = the original pair (1280x320 px), PST "
        "conventions. Metrics from `jfusion.metrics.remote`. Seconds: a warm reduced-resolution call and the first "
        f"(compiling) full-resolution call on {dev.platform.upper()} ({dev.device_kind}), shared 2-core machine (timings noisy; "
        "the last run, for the retrained SRCNN+GS rows, was under load from other jobs: its seconds are about 1.5-2x those "
        "of the earlier quiet-machine run). "
        "No GPU was available.\n\n"
        "Learned rows appear where weights are shipped: `jfusion train <model> --scene <scene.mat>` trains on the left "
        "three quarters; `jfusion train pansharpening-scores` keeps only models that beat EXP on Q2n, SAM and ERGAS on the "
        "held-out quarter (see the manifests `jfusion/weights/pansharpening/<model>-<sensor>.json`; `not_shipped.json` lists the pruned models).\n\n"
        "**Reading the table.** The best learned model per scene now has the highest Q2n at reduced resolution on all three "
        "scenes, but only narrowly, not by the margins of their papers: SAE 0.9135 vs MTF-GLP-HPM 0.9122 on GeoEye-1 (ERGAS "
        "equal, SAM 2.576 vs 2.564), PNN 0.855 vs 0.849 on IKONOS (ERGAS 1.63 vs 1.72, but SAM 2.60 vs 2.42), residual PNN "
        "0.831 vs 0.814 on WorldView-2 (SAM 8.06 vs 8.24, ERGAS 5.04 vs 5.10). They were trained for 300-12000 Adam steps "
        "(per model and sensor: see the manifest) of narrowed networks (e.g. PNN 32/16 channels instead of 64/32, DRPNN 16 "
        "instead of 64) on one scene's training part, on a shared 2-core CPU, whereas the papers train for ~10^5-10^6 "
        "iterations on many scenes. SRCNN+GS (an SRCNN super-resolving all MS bands, then Gram-Schmidt) beats EXP on all "
        "three scenes and has the lowest SAM of every method on WorldView-2 (7.81 vs 8.06 for the residual PNN) and the "
        "second lowest on IKONOS (2.48 vs 2.42 for MTF-GLP-HPM), but trails the other learned models in Q2n and ERGAS. "
        "What a fully trained network of "
        "the same family does is shown by the released weights of Scarpa et al. 2018 (test oracle, never shipped), loaded "
        "into jfusion's residual PNN on the same test regions: Q2n 0.947 (GeoEye-1), 0.887 (IKONOS), 0.823 (WorldView-2), "
        "SAM 2.03 / 1.90 / 6.70, ERGAS 1.27 / 1.50 / 4.94, ahead of every classical method on GeoEye-1 and IKONOS. At full "
        "resolution QNR rewards spectral consistency with the interpolated MS (EXP has D_lambda = 0 by construction), so it "
        "ranks methods differently from the reduced-resolution indices."
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.write:
        write_readme(rows, note)
    sys.stdout.write(table(rows))
