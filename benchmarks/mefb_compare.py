"""jfusion's GFF on MEFB's 8 pairs against MEFB's own per-image values for its GFF outputs (issue 15 item 5).

    PYTHONPATH=$PWD python -m jfusion bench benchmarks/configs/mefb.toml --out runs/mefb
    PYTHONPATH=$PWD python benchmarks/mefb_compare.py runs/mefb [--method GFF]

Reads ``<out>/tables/mefb/per_image.csv`` (written by the bench) and
``shared/data/mef/metrics/mefb_metrics_per_image.csv``, and prints the Markdown table of
benchmarks/README.md: both means over the scenes both have, the relative difference of the means,
and the per-scene range of relative differences. MEFB's fused images are not distributed, so this
measures method agreement (two GFF implementations), not metric parity.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("JFUSION_DATA", REPO.parent / "shared" / "data"))
# jfusion metric name -> MEFB column
COLUMNS = {
    "ce": "Cross_entropy", "en": "Entropy", "fmi": "FMI", "nmi": "NMI", "psnr": "Psnr", "ncie": "Qncie", "te": "TE",
    "ag": "Avg_gradient", "ei": "Edge_intensity", "qabf": "Qabf", "qp": "Qp", "sd": "SD", "sf": "Spatial_frequency",
    "qc": "Qc", "piella_qw": "Qw", "qy": "Qy", "mef_ssim": "MEF_SSIM", "qcb": "Qcb", "qcv": "Qcv", "viff": "VIF",
}


def _ours(out: Path, method: str) -> dict[str, dict[str, float]]:
    rows = list(csv.DictReader(open(out / "tables" / "mefb" / "per_image.csv")))
    mcol = next(k for k in rows[0] if k.lower() == "method")
    scol = next(k for k in rows[0] if k.lower() in ("scene", "image", "item"))
    return {r[scol].lower(): {k: float(v) for k, v in r.items() if k in COLUMNS and v not in ("", None)}
            for r in rows if r[mcol].lower() == method.lower()}


def _mefb(method: str) -> dict[str, dict[str, float]]:
    rows = csv.DictReader(open(DATA / "mef" / "metrics" / "mefb_metrics_per_image.csv"))
    return {r["image"].lower(): {m: float(r[c]) for m, c in COLUMNS.items()} for r in rows if r["method"] == method}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="the bench's output folder")
    ap.add_argument("--method", default="GFF", help="the method's name in both tables (default GFF)")
    args = ap.parse_args()
    ours, theirs = _ours(args.out, args.method), _mefb(args.method)
    scenes = sorted(set(ours) & set(theirs))
    print(f"{len(scenes)} scenes: {', '.join(scenes)}\n")
    print(f"| metric | jfusion {args.method} | MEFB {args.method} | rel. diff of the means | per-scene rel. diff (min .. max) |")
    print("|---|---|---|---|---|")
    for m in COLUMNS:
        a = [ours[s][m] for s in scenes]
        b = [theirs[s][m] for s in scenes]
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        rel = [(x - y) / abs(y) for x, y in zip(a, b)]
        fin = [r for r in rel if math.isfinite(r)]
        rng = f"{min(fin):+.3f} .. {max(fin):+.3f}" if fin else "nan"
        print(f"| {m} | {ma:.4g} | {mb:.4g} | {(ma - mb) / abs(mb):+.3f} | {rng} |")


if __name__ == "__main__":
    main()
