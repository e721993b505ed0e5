"""Record the training data's radiometric statistics in every shipped pan-sharpening model's manifest.

The statistics (:func:`jfusion.training.pansharpening.pansharpening_radiometry`, as every training run
records them) are those of the scene region the
model was trained on (the training part of :func:`jfusion.pansharpening.wald.split_test_region`,
at the manifest's ``bit_depth``), so they are recomputed from the data, not guessed. The arrays
and their sha256 are untouched (``assets.update_manifest``). New runs record them themselves.

    python tools/record_radiometry.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jfusion import assets
from jfusion.pansharpening import learned, read_scene, wald
from jfusion.training.pansharpening import pansharpening_radiometry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    for path in assets.find_assets(learned.WEIGHTS_DIR, pattern="*"):
        meta = assets.read_manifest(path)
        if meta.get("model") not in ("pnn", "pnn-residual", "drpnn", "srcnn-gs", "sae"):
            continue
        scene = read_scene(Path(args.data) / "pansharpening" / meta["data"]["scene"])
        (ms_tr, pan_tr), _ = wald.split_test_region(scene.ms, scene.pan, scene.ratio)
        rad = pansharpening_radiometry(ms_tr, pan_tr, bit_depth=int(meta["bit_depth"]))
        assets.update_manifest(path, {"radiometry": rad})
        print(f"{path.name}: ms band means {[round(v, 4) for v in rad['ms']['mean']]}, pan mean {rad['pan']['mean']:.4f} (of 2**{rad['bit_depth']})")


if __name__ == "__main__":
    main()
