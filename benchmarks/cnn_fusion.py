"""CNN fusion benchmark: speed, training throughput, and quality against the published CNN outputs.

Prints Markdown tables (copied into benchmarks/README.md, section "cnn"):

1. time to fuse a 520x520 Lytro pair (first call incl. compilation, then compiled);
2. training throughput (patch pairs / s) of the weight nets on this machine's devices;
3. Lytro: ``cnn-focus`` / ``cnn-focus-multiscale`` with the shipped weights against the
   published Liu 2017 outputs (``lytro/results/CNN_Liu2017``): Qabf, MI, SSIM (jfusion.metrics)
   of both, and the PSNR of ours against theirs;
4. VIFB: parity of ``cnn-medical`` with the authors' released model (oracle, never shipped)
   against VIFB's CNN outputs (PSNR on 8-bit values), and the metrics of ``cnn-medical`` with
   our shipped ``focus_cnn_direct`` weights next to VIFB's CNN outputs;
5. Harvard medical pairs: metrics of ``cnn-medical`` (no published CNN outputs exist here).

Run:  PYTHONPATH=$PWD python benchmarks/cnn_fusion.py [--lytro 20] [--vifb 21] [--medical 10]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jfusion as jf
from jfusion.io import read_image
from jfusion.metrics import evaluate
from jfusion.models import WeightNet, WeightNetConfig
from jfusion.training.focus import CONFIGS
from jfusion.training.loop import cross_entropy_loss, make_train_step

DATA = Path(os.environ.get("JFUSION_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
METRICS = ("qabf", "mi", "ssim")


def psnr8(f: np.ndarray, ref: np.ndarray) -> float:
    f8 = np.round(np.clip(f, 0, 1) * 255)
    r8 = np.round(np.clip(ref, 0, 1) * 255)
    mse = np.mean((f8 - r8) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def jpeg75(f: np.ndarray) -> np.ndarray:
    """Round-trip through an 8-bit JPEG at quality 75 (MATLAB ``imwrite``'s default, libjpeg tables)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(f, 0, 1) * 255).astype(np.uint8)).save(buf, format="JPEG", quality=75)
    buf.seek(0)
    return np.asarray(Image.open(buf), np.float32) / 255


def q8(f) -> np.ndarray:
    return np.round(np.clip(np.asarray(f), 0, 1) * 255) / 255


def timed(fn):
    t = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t


def bench_speed() -> None:
    a = read_image(DATA / "lytro" / "lytro-01-A.jpg")
    b = read_image(DATA / "lytro" / "lytro-01-B.jpg")
    print("\n### Fusing one 520x520 RGB Lytro pair\n")
    print(f"device: {jax.devices()[0].device_kind} x {jax.device_count()}\n")
    print("| method | weights | first call (s) | compiled (s) |")
    print("|---|---|---|---|")
    for method in ("cnn-focus", "cnn-focus-multiscale", "cnn-medical", "cnn-weights"):
        _, t1 = timed(lambda: jf.fuse([a, b], method=method))
        _, t2 = timed(lambda: jf.fuse([a, b], method=method))
        w = jf.methods.get_info(method).weights
        print(f"| {method} | {w} | {t1:.1f} | {t2:.1f} |")


def bench_training(batch: int = 64, steps: int = 5) -> None:
    print(f"\n### Training throughput (batch {batch}, {steps} timed steps after compilation)\n")
    print(f"device: {jax.devices()[0].device_kind} x {jax.device_count()}\n")
    print("| net | widths | head | params | ms / step | patch pairs / s |")
    print("|---|---|---|---|---|---|")
    cfgs = [(name, c.model) for name, c in CONFIGS.items()]
    cfgs.append(("Liu 2017 full size", WeightNetConfig()))
    rng = np.random.default_rng(0)
    data = {
        "a": jnp.asarray(rng.random((batch, 16, 16, 1), np.float32)),
        "b": jnp.asarray(rng.random((batch, 16, 16, 1), np.float32)),
        "label": jnp.asarray(rng.integers(0, 2, batch).astype(np.int32)),
    }
    for name, cfg in cfgs:
        m = WeightNet(config=cfg, rngs=nnx.Rngs(0))
        g, p, r = nnx.split(m, nnx.Param, ...)
        tx = optax.adam(1e-3)
        o = tx.init(p)
        step = make_train_step(g, r, tx, cross_entropy_loss)
        p, o, loss, _ = step(p, o, data)
        loss.block_until_ready()
        t = time.perf_counter()
        for _ in range(steps):
            p, o, loss, _ = step(p, o, data)
        loss.block_until_ready()
        dt = (time.perf_counter() - t) / steps
        n = sum(x.size for x in jax.tree.leaves(p))
        print(f"| {name} | {cfg.widths} | {cfg.head} | {n / 1e6:.2f} M | {dt * 1e3:.0f} | {batch / dt:.0f} |")


def _metrics(sources, fused) -> dict[str, float]:
    return evaluate(sources, fused, metrics=METRICS)


def bench_lytro(n_pairs: int) -> None:
    names = sorted(p.name[:-6] for p in (DATA / "lytro").glob("lytro-*-A.jpg"))[:n_pairs]
    rows = {k: [] for k in ("ours", "ms", "pub")}
    psnrs, psnrs_ms = [], []
    print(f"\n### Lytro ({len(names)} pairs): shipped `focus_cnn` vs published Liu 2017 outputs\n")
    print("| pair | PSNR cnn-focus vs Liu2017 (dB) | PSNR cnn-focus-multiscale vs Liu2017 (dB) |")
    print("|---|---|---|")
    for n in names:
        a, b = read_image(DATA / "lytro" / f"{n}-A.jpg"), read_image(DATA / "lytro" / f"{n}-B.jpg")
        pub = read_image(DATA / "lytro" / "results" / "CNN_Liu2017" / f"{n}.jpg")
        f = q8(jf.fuse([a, b], method="cnn-focus"))
        fm = q8(jf.fuse([a, b], method="cnn-focus-multiscale"))
        psnrs.append(psnr8(f, pub))
        psnrs_ms.append(psnr8(fm, pub))
        rows["ours"].append(_metrics([a, b], f))
        rows["ms"].append(_metrics([a, b], fm))
        rows["pub"].append(_metrics([a, b], pub))
        print(f"| {n} | {psnrs[-1]:.2f} | {psnrs_ms[-1]:.2f} |")
        sys.stdout.flush()
    print(f"| **mean** | **{np.mean(psnrs):.2f}** | **{np.mean(psnrs_ms):.2f}** |")
    print("\n| Lytro mean | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for key, label in (("pub", "Liu 2017 published (MFIFB)"), ("ours", "jfusion cnn-focus"),
                       ("ms", "jfusion cnn-focus-multiscale")):
        vals = [np.mean([r[m] for r in rows[key]]) for m in METRICS]
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")


def bench_vifb(n_pairs: int, parity: bool) -> None:
    names = sorted(p.stem for p in (DATA / "vifb" / "IR").glob("*.jpg"))[:n_pairs]
    ref_folder = None
    if parity:
        from jfusion.models.convert import load_liu_matlab
        from jfusion.assets import new_manifest
        from jfusion.weights import save_params

        m = load_liu_matlab(DATA / "reference_models" / "liu_cnn_irvis_medical" / "cnnmodel.mat")
        ref_folder = Path(tempfile.mkdtemp()) / "liu_ref"
        save_params(m, ref_folder, new_manifest(model="authors' model (oracle, not shipped)", config={"model": m.config.to_dict()},
                                                data="authors' cnnmodel.mat", command="load_liu_matlab", steps=0, seed=0))
    rows = {k: [] for k in ("ours", "pub", "par")}
    psnrs, psnrs_j = [], []
    print(f"\n### VIFB ({len(names)} IR/visible pairs)\n")
    print("| pair | size | PSNR authors' weights vs VIFB CNN (dB) | same after JPEG q75 of ours (dB) | max abs diff |")
    print("|---|---|---|---|---|")
    for n in names:
        ir, vi = read_image(DATA / "vifb" / "IR" / f"{n}.jpg"), read_image(DATA / "vifb" / "VI" / f"{n}.jpg")
        pub = read_image(DATA / "vifb" / "results" / "CNN" / f"{n}.jpg")
        rows["pub"].append(_metrics([ir, vi], pub))
        f = q8(jf.fuse([ir, vi], method="cnn-medical", colour_mode="rgb"))
        rows["ours"].append(_metrics([ir, vi], f))
        if parity:
            fp = q8(jf.fuse([ir, vi], method="cnn-medical", weights=str(ref_folder), colour_mode="rgb"))
            rows["par"].append(_metrics([ir, vi], fp))
            psnrs.append(psnr8(fp, pub))
            psnrs_j.append(psnr8(jpeg75(fp), pub))
            diff = np.abs(np.round(fp * 255) - np.round(pub * 255)).max()
            print(f"| {n} | {ir.shape[1]}x{ir.shape[0]} | {psnrs[-1]:.2f} | {psnrs_j[-1]:.2f} | {diff:.0f} |")
            sys.stdout.flush()
    if parity:
        print(f"| **mean / min** | | **{np.mean(psnrs):.2f} / {np.min(psnrs):.2f}** | "
              f"**{np.mean([p for p in psnrs_j if np.isfinite(p)]):.2f} (finite) / {np.min(psnrs_j):.2f}** | |")
    print("\n| VIFB mean | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    labels = [("pub", "VIFB CNN (published outputs)"), ("ours", "jfusion cnn-medical, shipped focus_cnn_direct")]
    if parity:
        labels.insert(1, ("par", "jfusion cnn-medical, authors' weights"))
    for key, label in labels:
        vals = [np.mean([r[m] for r in rows[key]]) for m in METRICS]
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")


def bench_medical(n_pairs: int) -> None:
    root = DATA / "medical" / "harvard"
    print(f"\n### Harvard medical pairs (up to {n_pairs} per combination): cnn-medical, shipped weights\n")
    print("| pairs | method | " + " | ".join(METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    for combo in ("CT-MRI", "PET-MRI", "SPECT-MRI"):
        mods = sorted(p.name for p in (root / combo).iterdir() if p.is_dir())
        ids = sorted(p.stem for p in (root / combo / mods[0]).glob("*.png"))[:n_pairs]
        for method in ("cnn-medical", "cnn-weights"):
            vals = []
            for i in ids:
                x = read_image(root / combo / mods[0] / f"{i}.png")
                y = read_image(root / combo / mods[1] / f"{i}.png")
                f = q8(jf.fuse([x, y], method=method))
                vals.append(_metrics([x, y], f))
            mean = [np.mean([r[m] for r in vals]) for m in METRICS]
            print(f"| {combo} ({len(ids)}) | {method} | " + " | ".join(f"{v:.4f}" for v in mean) + " |")
            sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lytro", type=int, default=20, help="Lytro pairs (0: skip)")
    ap.add_argument("--vifb", type=int, default=21, help="VIFB pairs (0: skip)")
    ap.add_argument("--no-parity", action="store_true", help="skip the authors'-model parity run")
    ap.add_argument("--medical", type=int, default=10, help="Harvard pairs per combination (0: skip)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    if args.vifb:
        bench_vifb(args.vifb, parity=not args.no_parity)
    if args.lytro:
        bench_lytro(args.lytro)
    if args.medical:
        bench_medical(args.medical)
    if not args.skip_training:
        bench_training()
    if not args.skip_speed:
        bench_speed()


if __name__ == "__main__":
    main()
