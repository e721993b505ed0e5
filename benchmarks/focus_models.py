"""Multi-focus models (issue 13 item 6): Lytro against the published Liu 2017 outputs, and a synthetic set with truth.

Two benchmarks, one row per method (and weights):

1. **Lytro** (``shared/data/lytro``, 10 pairs): Qabf, MI, SSIM (``jfusion.metrics``, VIFB conventions: ``ssim``
   is SSIM(F,A)+SSIM(F,B)) of each row's fused image (rounded to 8 bits) and of the published Liu 2017 CNN
   outputs (``lytro/results/CNN_Liu2017``), and the PSNR of ours against theirs (8-bit values).
2. **Ground truth** (:func:`jfusion.data.multifocus_scene`): all-in-focus natural images from the *test* split
   of ``shared/data/natural`` (``jfusion.training.focus.test_images`` of the ``focus-cnn`` recipe: never
   trained on by ``focus_cnn`` / ``focus_cnn_multiscale``), a keyed 192x192 crop of each of the first 24 images
   whose sides reach 192, 2 sources for even scene indices and 3 for odd ones, Gaussian blur sigma uniform in [1, 3];
   PSNR (float [0, 1], all channels) and SSIM (``jfusion.metrics.ssim``, ``convention="standard"``, on the
   luma 0.299 R + 0.587 G + 0.114 B) of
   the fused image to the truth.

Results are merged into ``benchmarks/results/focus_models.json`` (keyed by row; the CNN rows record the sha256
of the weights they used), so rows can be measured in separate runs; ``--table`` prints the Markdown tables.

Run:  PYTHONPATH=$PWD python benchmarks/focus_models.py [--rows cnn-focus,laplacian] [--lytro 10] [--truth 40]
      PYTHONPATH=$PWD python benchmarks/focus_models.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

import jfusion as jf
from jfusion.io import read_image
from jfusion.metrics import evaluate
from jfusion.metrics.structural import ssim

ROOT = Path(__file__).resolve().parent
DATA = Path(os.environ.get("JFUSION_DATA", ROOT.parents[1] / "shared" / "data"))
OUT = ROOT / "results" / "focus_models.json"
METRICS = ("qabf", "mi", "ssim")
SIZE = 192
SEED = 2026

ROWS: dict[str, tuple[str, dict]] = {
    "cnn-focus": ("cnn-focus", {}),  # full size (focus_cnn)
    "cnn-focus-narrow": ("cnn-focus", {"weights": "focus_cnn_narrow"}),
    "cnn-focus-reference": ("cnn-focus", {"multi": "reference"}),  # S > 2: every source against the first
    "cnn-focus-multiscale": ("cnn-focus-multiscale", {}),  # its own weights (focus_cnn_multiscale)
    "laplacian": ("laplacian", {}),
    "swt": ("swt", {}),
    "gff": ("gff", {}),
    "sf-block": ("sf-block", {}),
}


def q8(f) -> np.ndarray:
    return np.round(np.clip(np.asarray(f, np.float64), 0, 1) * 255) / 255


def psnr8(f: np.ndarray, ref: np.ndarray) -> float:
    mse = np.mean((np.round(np.clip(f, 0, 1) * 255) - np.round(np.clip(ref, 0, 1) * 255)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def weights_of(row: str) -> dict | None:
    method, opts = ROWS[row]
    info = jf.methods.registry.get_info(method)
    if not info.weights:
        return None
    from jfusion.weights import read_manifest

    name = opts.get("weights") or Path(info.weights).name
    m = read_manifest(name)
    return {"name": name, "sha256": m["sha256"], "widths": m["config"]["model"]["widths"], "steps": m["steps"]}


def _grey(x: np.ndarray) -> np.ndarray:
    return x @ np.array([0.299, 0.587, 0.114]) if x.ndim == 3 else x


def truth_scenes(n_max: int) -> list[dict]:
    """The keyed ground-truth scenes (see the module doc)."""
    from jfusion.data import multifocus_scene
    from jfusion.training.focus import CONFIGS, test_images

    cfg = CONFIGS["focus-cnn"]
    paths = test_images(cfg, DATA / "natural")
    assert paths == test_images(CONFIGS["focus-cnn-multiscale"], DATA / "natural")  # one test split for both
    rng = np.random.default_rng(SEED)
    scenes = []
    for p in paths:
        img = np.asarray(read_image(p), np.float32)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, -1)
        h, w = img.shape[:2]
        if min(h, w) < SIZE:
            continue
        y, x = int(rng.integers(0, h - SIZE + 1)), int(rng.integers(0, w - SIZE + 1))
        i = len(scenes)
        sc = multifocus_scene(jax.random.key(SEED + i), img[y : y + SIZE, x : x + SIZE, :3], n_sources=2 + i % 2,
                              sigma_range=(1.0, 3.0))
        scenes.append({"image": Path(p).relative_to(DATA).as_posix(), "crop": [y, x], **{k: np.asarray(v) for k, v in sc.items()}})
        if len(scenes) == n_max:
            break
    return scenes


def _slice(spec: str | None) -> slice:
    if not spec:
        return slice(None)
    a, b = spec.split(":")
    return slice(int(a) if a else None, int(b) if b else None)


def bench_truth(rows: list[str], n_max: int, part: slice = slice(None)) -> dict:
    scenes = truth_scenes(n_max)[part]
    out = {}
    for row in rows:
        method, opts = ROWS[row]
        per = []
        t0 = time.time()
        for sc in scenes:
            f = np.asarray(jf.fuse(sc["sources"], method=method, **opts), np.float64)
            truth = sc["truth"].astype(np.float64)
            psnr = float(10 * np.log10(1.0 / np.mean((np.clip(f, 0, 1) - truth) ** 2)))
            s = float(ssim(_grey(truth)[None], _grey(np.clip(f, 0, 1)), convention="standard"))
            per.append({"image": sc["image"], "n_sources": int(sc["sources"].shape[0]), "psnr": psnr, "ssim": s})
        out[row] = {"scenes": per, "seconds": time.time() - t0, "weights": weights_of(row)}
        print(f"truth {row}: psnr {np.mean([p['psnr'] for p in per]):.3f} ssim {np.mean([p['ssim'] for p in per]):.4f}"
              f" ({len(per)} scenes, {time.time() - t0:.0f} s)")
        sys.stdout.flush()
    return out


def bench_lytro(rows: list[str], n_pairs: int, published: bool, part: slice = slice(None)) -> dict:
    names = sorted(p.name[:-6] for p in (DATA / "lytro").glob("lytro-*-A.jpg"))[:n_pairs][part]
    if not names:
        raise SystemExit(f"no Lytro pairs under {DATA / 'lytro'}: set JFUSION_DATA to the shared data folder")
    pairs = [(n, read_image(DATA / "lytro" / f"{n}-A.jpg"), read_image(DATA / "lytro" / f"{n}-B.jpg"),
              read_image(DATA / "lytro" / "results" / "CNN_Liu2017" / f"{n}.jpg")) for n in names]
    out = {}
    if published:
        out["liu2017-published"] = {"pairs": [{"pair": n, **{k: float(v) for k, v in evaluate([a, b], pub, metrics=METRICS).items()}}
                                               for n, a, b, pub in pairs]}
    for row in rows:
        method, opts = ROWS[row]
        per = []
        t0 = time.time()
        for n, a, b, pub in pairs:
            f = q8(jf.fuse([a, b], method=method, **opts))
            per.append({"pair": n, **{k: float(v) for k, v in evaluate([a, b], f, metrics=METRICS).items()},
                        "psnr_vs_liu2017": psnr8(f, pub)})
        out[row] = {"pairs": per, "seconds": time.time() - t0, "weights": weights_of(row)}
        print(f"lytro {row}: " + " ".join(f"{m} {np.mean([p[m] for p in per]):.4f}" for m in (*METRICS, "psnr_vs_liu2017"))
              + f" ({time.time() - t0:.0f} s)")
        sys.stdout.flush()
    return out


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def table(results: dict) -> str:
    lines = []
    ly = results.get("lytro", {})
    if ly:
        lines += ["| Lytro mean (10 pairs) | weights | qabf | mi | ssim | PSNR vs Liu 2017 (dB) |", "|---|---|---|---|---|---|"]
        for row, r in ly.items():
            w = r.get("weights")
            wn = f"`{w['name']}` ({'/'.join(map(str, w['widths']))})" if w else "-"
            psnr = f"{_mean(r['pairs'], 'psnr_vs_liu2017'):.2f}" if "psnr_vs_liu2017" in r["pairs"][0] else "-"
            lines.append(f"| {row} | {wn} | " + " | ".join(f"{_mean(r['pairs'], m):.4f}" for m in METRICS) + f" | {psnr} |")
    tr = results.get("truth", {})
    if tr:
        lines += ["", "| ground truth (mean) | weights | PSNR all | SSIM all | PSNR 2 sources | PSNR 3 sources | SSIM 2 | SSIM 3 | s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row, r in tr.items():
            sc = r["scenes"]
            two = [s for s in sc if s["n_sources"] == 2]
            three = [s for s in sc if s["n_sources"] == 3]
            w = r.get("weights")
            wn = f"`{w['name']}`" if w else "-"
            lines.append(f"| {row} | {wn} | {_mean(sc, 'psnr'):.2f} | {_mean(sc, 'ssim'):.4f} | {_mean(two, 'psnr'):.2f} | "
                         f"{_mean(three, 'psnr'):.2f} | {_mean(two, 'ssim'):.4f} | {_mean(three, 'ssim'):.4f} | {r['seconds']:.0f} |")
        n = len(next(iter(tr.values()))["scenes"])
        lines.append(f"\n{n} scenes ({sum(s['n_sources'] == 2 for s in next(iter(tr.values()))['scenes'])} with 2 sources).")
    return "\n".join(lines)


def _merge(section: str, new: dict, key: str) -> None:
    """Merge ``new`` rows into the stored results (per-item lists merged by ``key``, under a file lock)."""
    import fcntl
    import tempfile

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / "jfusion_focus_models.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(OUT.read_text()) if OUT.exists() else {}
        sec = results.setdefault(section, {})
        items = "pairs" if section == "lytro" else "scenes"
        for row, r in new.items():
            old = sec.get(row)
            if old is not None and old.get("weights") == r.get("weights") and items in old:
                merged = {it[key]: it for it in old[items]}
                merged.update({it[key]: it for it in r[items]})
                r = {**r, items: sorted(merged.values(), key=lambda it: it[key]),
                     "seconds": old.get("seconds", 0) + r.get("seconds", 0)} if "seconds" in r else {**r, items: sorted(merged.values(), key=lambda it: it[key])}
            sec[row] = r
        OUT.write_text(json.dumps(results, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows of {list(ROWS)}")
    ap.add_argument("--lytro", type=int, default=10, help="Lytro pairs (0: skip)")
    ap.add_argument("--truth", type=int, default=24, help="ground-truth scenes at most (0: skip)")
    ap.add_argument("--part", default=None, help="START:STOP: only these pairs / scenes (several processes, merged by name)")
    ap.add_argument("--table", action="store_true", help="print the tables of the stored results and stop")
    args = ap.parse_args()
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    if args.table:
        print(table(results))
        return
    rows = [r for r in args.rows.split(",") if r]
    for r in rows:
        if r not in ROWS:
            raise SystemExit(f"unknown row {r!r}; choose from {list(ROWS)}")
    part = _slice(args.part)
    if args.lytro:
        new = bench_lytro(rows, args.lytro, published=args.part is None and "liu2017-published" not in results.get("lytro", {}),
                          part=part)
        _merge("lytro", new, "pair")
    if args.truth:
        _merge("truth", bench_truth(rows, args.truth, part), "image")
    results = json.loads(OUT.read_text())
    print(table(results))


if __name__ == "__main__":
    main()
