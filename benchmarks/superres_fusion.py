"""Fusion with super-resolution: uwt-srcnn and srcnn-fusion against fuse-then-bicubic and bicubic-then-fuse.

Protocol. Every source of a high-resolution pair (Lytro multi-focus, Harvard CT-MRI / PET-MRI) is cropped to a
multiple of ``scale`` and downsampled by ``scale`` (antialiased bicubic, the training degradation); the methods
fuse the low-resolution sources into a ``scale`` times larger image. Reference: ``laplacian`` (4 levels) fusion of
the **high-resolution** pair. Scores: PSNR (dB, data range 1) and SSIM (Wang 2004, Gaussian 11x11) of the luma
against the reference's luma, the mean over pairs. Baselines: "fuse, then bicubic" (``laplacian`` / ``swt`` of the
low-resolution sources, upsampled) and "bicubic, then fuse" (sources upsampled, then ``laplacian`` / ``swt``).

    python benchmarks/superres_fusion.py [--scale 2] [--lytro 4] [--medical 2] [--out benchmarks/results/superres_fusion.md]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("JFUSION_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pairs(n_lytro: int, n_medical: int) -> list[tuple[str, str, list[np.ndarray]]]:
    """``(set, name, [A, B])`` high-resolution pairs in [0, 1]."""
    from jfusion.io import read_image

    out = []
    for i in range(1, n_lytro + 1):
        out.append(("lytro", f"lytro-{i:02d}", [np.asarray(read_image(DATA / "lytro" / f"lytro-{i:02d}-{k}.jpg")) for k in "AB"]))
    for kind, a, b in (("CT-MRI", "CT", "MRI"), ("PET-MRI", "PET", "MRI")):
        root = DATA / "medical" / "harvard" / kind
        for name in sorted(p.name for p in (root / a).glob("*.png"))[:n_medical]:
            out.append((f"harvard {kind}", name, [np.asarray(read_image(root / a / name)), np.asarray(read_image(root / b / name))]))
    return out


def luma(x: np.ndarray) -> np.ndarray:
    from jfusion.ops.colour import rgb_to_ycbcr

    x = np.asarray(x, np.float32)
    return np.asarray(rgb_to_ycbcr(x)[..., 0]) if x.ndim == 3 else x


def scores(ref: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    from jfusion.metrics.structural import ssim

    r, g = luma(ref).astype(np.float64), luma(np.clip(f, 0, 1)).astype(np.float64)
    psnr = 10 * np.log10(1.0 / max(np.mean((r - g) ** 2), 1e-20))
    return float(psnr), float(ssim(r[None], g, convention="standard"))


def main() -> None:
    import jax

    import jfusion
    from jfusion.ops.resample import resize

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--lytro", type=int, default=4)
    ap.add_argument("--medical", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the markdown table here (atomically)")
    ap.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = ap.parse_args()
    s = args.scale
    if args.out:
        from jfusion.io import check_output_path

        check_output_path(args.out, overwrite=args.force)  # before the run, not after it

    def down(x):
        h, w = (x.shape[0] // s) * s, (x.shape[1] // s) * s
        x = x[:h, :w]
        return np.asarray(resize(x, (h // s, w // s), method="bicubic", antialias=True)).clip(0, 1), x

    def up(x):
        return np.asarray(resize(x, (x.shape[0] * s, x.shape[1] * s), method="bicubic"))

    rows = {
        "uwt-srcnn": lambda lr: jfusion.fuse(lr, method="uwt-srcnn", scale=s),
        "srcnn-fusion": lambda lr: jfusion.fuse(lr, method="srcnn-fusion", scale=s),
        "laplacian, then bicubic": lambda lr: up(np.asarray(jfusion.fuse(lr, method="laplacian", levels=4))),
        "swt, then bicubic": lambda lr: up(np.asarray(jfusion.fuse(lr, method="swt"))),
        "bicubic, then laplacian": lambda lr: jfusion.fuse([up(x).clip(0, 1) for x in lr], method="laplacian", levels=4),
        "bicubic, then swt": lambda lr: jfusion.fuse([up(x).clip(0, 1) for x in lr], method="swt"),
    }
    results: dict[str, dict[str, list]] = {}
    seconds = {k: 0.0 for k in rows}
    data = pairs(args.lytro, args.medical)
    for group, name, hr in data:
        lr, hr_c = zip(*(down(x) for x in hr))
        ref = np.asarray(jfusion.fuse(list(hr_c), method="laplacian", levels=4))
        for row, fn in rows.items():
            t = time.perf_counter()
            f = np.asarray(jax.block_until_ready(fn(list(lr))))
            seconds[row] += time.perf_counter() - t
            assert f.shape == ref.shape, (row, f.shape, ref.shape)
            results.setdefault(group, {}).setdefault(row, []).append(scores(ref, f))
        print(f"{group} {name}: " + ", ".join(f"{r} {results[group][r][-1][0]:.2f}" for r in rows), flush=True)
    lines = [f"Scale {s}; reference: `laplacian` (4 levels) of the high-resolution pair; PSNR (dB) / SSIM of the luma, mean over pairs.", "",
             "| method | " + " | ".join(f"{g} ({len(next(iter(v.values())))} pairs) PSNR / SSIM" for g, v in results.items()) + " | seconds (all pairs) |",
             "|---|" + "---|" * (len(results) + 1)]
    for row in rows:
        cells = []
        for g in results:
            a = np.asarray(results[g][row])
            cells.append(f"{a[:, 0].mean():.2f} / {a[:, 1].mean():.4f}")
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {seconds[row]:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from jfusion.io import atomic_output

        with atomic_output(args.out, overwrite=args.force) as tmp:
            Path(tmp).write_text(text)


if __name__ == "__main__":
    main()
