"""cnn-regression (survey Fig. 5, regression type) on real data: exposure sequences and Lytro multi-focus pairs.

No ground truth exists for real data, so the scores are no-reference fusion metrics of the luma:
* multi-exposure: MEF-SSIM (Ma et al. 2015, ``jfusion.metrics.mef_ssim``) for ``cnn-regression`` (shipped
  ``cnn_regression_exposure``), ``mertens`` and the plain average, on every sequence of
  ``mef/ifcnn_sequences`` (all its exposures, RGB in, Y scored);
* multi-focus (``--focus``): Q^AB/F and MI (VIFB conventions) for ``cnn-regression --task multi-focus``
  (shipped ``cnn_regression_focus``), ``laplacian``, ``cnn-focus`` and the average, on every Lytro pair.
Synthetic validation / test figures are in the assets' manifests. Prints Markdown tables.

    PYTHONPATH=. python benchmarks/regression_fusion.py [--focus]
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

DATA = Path(os.environ.get("JFUSION_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ROOT = DATA / "mef" / "ifcnn_sequences"
METHODS = ("cnn-regression", "mertens", "average")
FOCUS_METHODS = ("cnn-regression", "laplacian", "cnn-focus", "average")


def luma(x: np.ndarray) -> np.ndarray:
    return np.asarray(rgb_to_ycbcr(x)[..., 0]) if x.ndim == 3 else x


def focus_table() -> None:
    from jfusion.metrics import mutual_information, qabf

    pairs = sorted((DATA / "lytro").glob("lytro-*-A.jpg"))
    sums = {m: [0.0, 0.0] for m in FOCUS_METHODS}
    for a_path in pairs:
        src = [np.asarray(read_image(p), np.float32)[..., :3] for p in (a_path, Path(str(a_path).replace("-A.", "-B.")))]
        ys = np.stack([luma(x) for x in src])
        for m in FOCUS_METHODS:
            if m == "average":
                fused = np.mean(src, axis=0)
            else:
                fused = np.asarray(jfusion.fuse(src, method=m, **({"task": "multi-focus"} if m == "cnn-regression" else {})))
            f = np.clip(luma(fused), 0, 1)
            sums[m][0] += float(qabf(ys, f)) / len(pairs)
            sums[m][1] += float(mutual_information(ys, f)) / len(pairs)
    print(f"\nLytro multi-focus pairs ({len(pairs)}), luma, means:\n")
    print("| method | Q^AB/F | MI (nats) |\n|---|---|---|")
    for m, (q, mi) in sums.items():
        print(f"| {m}{' (cnn_regression_focus)' if m == 'cnn-regression' else ''} | {q:.4f} | {mi:.4f} |")


def main() -> int:
    if "--focus" in sys.argv[1:]:
        focus_table()
        return 0
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
