"""cnn-regression (survey Fig. 5, regression type) on the real exposure sequences of ``shared/data/mef``.

No ground truth exists for real sequences, so the score is MEF-SSIM (Ma et al. 2015, ``jfusion.metrics.mef_ssim``)
of the fused luma against the sources' luma, for ``cnn-regression`` (shipped ``cnn_regression_exposure``),
``mertens`` and the plain average, on every sequence of ``mef/ifcnn_sequences`` (all its exposures, RGB in, Y
scored). Synthetic validation / test figures are in the asset's manifest. Prints a Markdown table.

    PYTHONPATH=. python benchmarks/regression_fusion.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

import jfusion
from jfusion.io import read_image
from jfusion.metrics import mef_ssim
from jfusion.ops.colour import rgb_to_ycbcr

ROOT = Path(os.environ.get("JFUSION_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "mef" / "ifcnn_sequences"
METHODS = ("cnn-regression", "mertens", "average")


def luma(x: np.ndarray) -> np.ndarray:
    return np.asarray(rgb_to_ycbcr(x)[..., 0]) if x.ndim == 3 else x


def main() -> int:
    if not ROOT.is_dir():
        print(f"no data: {ROOT} (set JFUSION_DATA)")
        return 1
    rows = []
    for seq in sorted(p for p in ROOT.iterdir() if p.is_dir() and p.name != "results"):
        files = sorted(f for f in seq.iterdir() if f.suffix.lower() in (".jpg", ".png", ".tif"))
        src = [np.asarray(read_image(f), np.float32)[..., :3] for f in files]
        ys = np.stack([luma(s) for s in src])
        row = [seq.name, str(len(src))]
        for m in METHODS:
            fused = np.mean(src, axis=0) if m == "average" else np.asarray(jfusion.fuse(src, method=m))
            row.append(f"{float(mef_ssim(ys, luma(fused))):.4f}")
        rows.append(row)
    print("| sequence | exposures | " + " | ".join(f"{m} MEF-SSIM" for m in METHODS) + " |")
    print("|---|---|" + "---|" * len(METHODS))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    means = [np.mean([float(r[2 + i]) for r in rows]) for i in range(len(METHODS))]
    print("| mean | | " + " | ".join(f"{v:.4f}" for v in means) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
