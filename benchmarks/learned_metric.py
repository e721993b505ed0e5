"""Validation of the learned fusion metric ``cnn_metric`` (survey Fig. 8): rank correlations, as Markdown tables.

Two sources of figures, never mixed:

* default: the **test** figures of the final evaluation that ``jfusion train cnn-metric`` ran once on the test
  images (``scores.test`` of the weights' manifest; this script does not read the test images);
* ``--split validation``: the same study (:func:`jfusion.training.metric.correlation_study`) computed now on the
  validation images (allowed at any time; used for choices).

Study: Spearman / Kendall of ``cnn_metric`` with SSIM and Q^AB/F over (i) the held-out distortion type
(JPEG-like block-DCT quantisation, never trained on) and (ii) the six training types, each image at four strengths;
and, on a synthetic multi-focus set (all-in-focus image, a random soft half-plane blur mask, blur sigma 2.5; fused
by laplacian, dwt, gff, sf-block, cnn-focus and the plain average), the correlation of each no-reference score with
the full-reference PSNR / SSIM of the fused image against the all-in-focus truth.

    python benchmarks/learned_metric.py [--weights cnn_metric] [--out benchmarks/results/cnn_metric.md]
    python benchmarks/learned_metric.py --split validation --images 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def _r(d: dict[str, Any]) -> str:
    return f"{d['spearman']:.3f} / {d['kendall']:.3f}"


def tables(study: dict[str, Any], *, title: str) -> str:
    """Markdown of a :func:`correlation_study` result (plus the pair scores where present)."""
    lines = [f"### {title}", ""]
    if "pairs" in study:
        p, h = study["pairs"], study["pairs_held_out_distortion"]
        lines += [
            "| patch pairs | cross-entropy | accuracy | mean abs(score - class score) | mean abs(score - SSIM) | Spearman(score, SSIM) |",
            "|---|---|---|---|---|---|",
            f"| training distortion types | {p['loss']:.3f} | {p['acc']:.3f} | {p['score_mae']:.4f} | {p['ssim_mae']:.4f} | {p['spearman_ssim']:.3f} |",
            f"| held-out type (JPEG-like) | {h['loss']:.3f} | {h['acc']:.3f} | {h['score_mae']:.4f} | {h['ssim_mae']:.4f} | {h['spearman_ssim']:.3f} |",
            "",
        ]
    lines += [
        "| distorted images (Spearman / Kendall) | n | cnn_metric vs SSIM | cnn_metric vs Q^AB/F | Q^AB/F vs SSIM |",
        "|---|---|---|---|---|",
    ]
    for key, label in (("held_out_distortion", "held-out type: JPEG-like block DCT"), ("training_distortions", "the six training types")):
        s = study[key]
        lines.append(f"| {label} | {s['vs_ssim']['n']} | {_r(s['vs_ssim'])} | {_r(s['vs_qabf'])} | {_r(s['qabf_vs_ssim'])} |")
    mf = study["multi_focus"]
    n = mf["cnn_vs_psnr_gt"]["n"]
    lines += [
        "",
        f"| multi-focus, {mf['n_scenes']} scenes x {len(mf['methods'])} fused images (Spearman / Kendall, n = {n}) | vs PSNR to truth | vs SSIM to truth |",
        "|---|---|---|",
        f"| cnn_metric(sources, fused) | {_r(mf['cnn_vs_psnr_gt'])} | {_r(mf['cnn_vs_ssim_gt'])} |",
        f"| Q^AB/F(sources, fused) | {_r(mf['qabf_vs_psnr_gt'])} | {_r(mf['qabf_vs_ssim_gt'])} |",
        f"| SSIM(sources, fused) | - | {_r(mf['ssim_sources_vs_ssim_gt'])} |",
        "",
        "| method (mean over scenes) | cnn_metric | Q^AB/F | PSNR to truth (dB) | SSIM to truth |",
        "|---|---|---|---|---|",
    ]
    for m, v in mf["per_method"].items():
        lines.append(f"| {m} | {v['cnn_metric']:.4f} | {v['qabf']:.4f} | {v['psnr_gt']:.2f} | {v['ssim_gt']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="cnn_metric", help="shipped name or weights folder")
    ap.add_argument("--split", choices=("test", "validation"), default="test",
                    help="test: render the final evaluation stored in the manifest; validation: compute the study now")
    ap.add_argument("--images", type=int, default=0, help="validation images to use (0: all)")
    ap.add_argument("--side", type=int, default=128, help="side of the grey centre crops")
    ap.add_argument("--data", default="../shared/data/natural")
    ap.add_argument("--out", default=None, help="write the Markdown here as well")
    args = ap.parse_args()

    from jfusion.weights import read_manifest

    man = read_manifest(args.weights)
    if args.split == "test":
        test = man["scores"]["test"]
        if not test:
            raise SystemExit(f"{args.weights}: no test scores in the manifest; `jfusion train cnn-metric` writes them")
        md = tables(test, title=f"Test images ({test['n_images']}, {test['side']} px grey crops), final evaluation of sha256 "
                    f"{man['sha256'][:12]}")
    else:
        from jfusion.data.folder import image_paths
        from jfusion.training.metric import _grey_crops, correlation_study, natural_split

        split = natural_split(image_paths(args.data))
        paths = list(split.validation[: args.images or None])
        t0 = time.perf_counter()
        study = correlation_study(args.weights, _grey_crops(paths, args.side))
        md = tables(study, title=f"Validation images ({len(paths)}, {args.side} px grey crops), computed in "
                    f"{time.perf_counter() - t0:.0f} s")
        md += "\n<!--\n" + json.dumps(study) + "\n-->\n"
    print(md)
    if args.out:
        Path(args.out).write_text(md)


if __name__ == "__main__":
    main()
