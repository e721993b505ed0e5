"""Speed of jfusion.metrics on the 21 VIFB pairs, side by side with sewar and scikit-image (same run).

Prints two tables:

1. jfusion's full 13-metric VIFB table for 21 pairs x 5 methods (105 colour images, per-channel
   metrics), batched per image size with ``evaluate_batch`` on the uint8 images as read: compile
   time and seconds after compilation, wall and CPU (process) time; before it, CPU ms per image of
   each metric alone on the 254x328 group.
2. Single metrics where the libraries overlap, on grey images (fused GFF vs visible, MATLAB
   rgb2gray, 0..255 float): jfusion (jitted, warm; float32) vs sewar 0.4.10 and scikit-image,
   seconds per image and ratios. Values are checked to agree while timing.

Usage: ``PYTHONPATH=. python benchmarks/speed_metrics.py [--data ../shared/data] [--repeat 3] [--table-only]``.
``evaluate_batch`` splits a batch over all local devices; on a CPU, run with
``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` to give each core a share (one CPU device,
the default, runs the table on one core).
"""

from __future__ import annotations

import argparse
import collections
import os
import time
from pathlib import Path

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np

import jfusion.metrics as M

METHODS = ("GFF", "MSVD", "CNN", "IFCNN", "U2Fusion")
GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


def load(data: Path):
    pairs = sorted(p.stem for p in (data / "vifb" / "IR").glob("*.jpg"))
    scenes = {}
    for p in pairs:
        vi = iio.imread(data / "vifb" / "VI" / f"{p}.jpg")
        ir = iio.imread(data / "vifb" / "IR" / f"{p}.jpg")
        ir = ir if ir.ndim == 3 else np.repeat(ir[..., None], 3, -1)
        fused = {m: iio.imread(data / "vifb" / "results" / m / f"{p}.jpg") for m in METHODS}
        scenes[p] = (vi, ir, fused)
    return scenes


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def vifb_table(scenes, repeat: int = 1) -> None:
    """The whole 13-metric table, one ``evaluate_batch`` call per image size (inputs as read: uint8).

    Wall and CPU (process) time: on the shared machine the CPU time is the figure that does not
    depend on the other users' load. The first call per size compiles; then ``repeat`` timed calls
    (best kept).
    """
    groups = collections.defaultdict(list)
    for p, (vi, ir, fused) in scenes.items():
        for m in METHODS:
            groups[vi.shape].append((np.stack([vi, ir]), fused[m]))
    comp_w = comp_c = run_w = run_c = 0.0
    for items in groups.values():
        src = np.stack([i[0] for i in items])
        fus = np.stack([i[1] for i in items])
        w0, c0 = _clocks()
        M.evaluate_batch(src, fus)  # first call compiles
        w1, c1 = _clocks()
        best_w = best_c = float("inf")
        for _ in range(repeat):
            a_w, a_c = _clocks()
            M.evaluate_batch(src, fus)
            b_w, b_c = _clocks()
            best_w, best_c = min(best_w, b_w - a_w), min(best_c, b_c - a_c)
        comp_w += (w1 - w0) - best_w
        comp_c += (c1 - c0) - best_c
        run_w += best_w
        run_c += best_c
    n = sum(len(v) for v in groups.values())
    nd = len(jax.local_devices())
    print(f"\n## VIFB 13-metric table, {n} colour images ({len(groups)} sizes), jfusion evaluate_batch (float32), "
          f"batch split over {nd} local device(s)\n")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}\n")
    print("| | wall s | CPU s |")
    print("|---|---|---|")
    print(f"| compilation (all sizes) | {comp_w:.1f} | {comp_c:.1f} |")
    print(f"| evaluation after compilation | {run_w:.2f} ({run_w / n * 1000:.0f} ms / image) | {run_c:.2f} ({run_c / n * 1000:.0f} ms / image) |")


BREAKDOWN = (("ce", "en", "mi"), ("psnr",), ("rmse",), ("sd",), ("sf",), ("ag",), ("ei",), ("qabf",), ("ssim",), ("qcb", "qcv"), ("qcb",), ("qcv",))


def metric_breakdown(scenes, repeat: int = 3, pairs=("manWalking", "running", "walking2", "walkingnight")) -> None:
    """CPU ms per colour image of each metric alone (and the groups that share work) on one size."""
    src = np.stack([np.stack([scenes[p][0], scenes[p][1]]) for p in pairs for _ in METHODS])
    fus = np.stack([scenes[p][2][m] for p in pairs for m in METHODS])
    n = len(src)
    rows = []
    for names in BREAKDOWN + (M.VIFB_METRICS,):
        M.evaluate_batch(src, fus, metrics=list(names))  # compile
        best = float("inf")
        for _ in range(repeat):
            c0 = time.process_time()
            M.evaluate_batch(src, fus, metrics=list(names))
            best = min(best, time.process_time() - c0)
        label = "all 13 (one program)" if len(names) == 13 else " + ".join(names)
        rows.append((label, best / n * 1000))
    print(f"\n## Per metric, {n} colour images of {src.shape[2]}x{src.shape[3]} ({len(pairs)} pairs x 5 methods), CPU ms / image (best of {repeat})\n")
    print("| metrics | CPU ms / image |")
    print("|---|---|")
    for label, ms in rows:
        print(f"| {label} | {ms:.2f} |")


def _time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def overlap_table(scenes, repeat: int) -> None:
    import sewar
    from skimage.metrics import structural_similarity

    grey = [((vi @ GRAY), (fused["GFF"] @ GRAY)) for vi, _, fused in scenes.values()]
    n = len(grey)

    def jf(fn, **kw):
        jitted = jax.jit(lambda a, f: fn(a[None], f, data_range=255.0, **kw))
        arrays = [(jnp.asarray(a, jnp.float32), jnp.asarray(f, jnp.float32)) for a, f in grey]
        for a, f in arrays:  # compile per size, outside the timing
            jitted(a, f).block_until_ready()
        vals = [float(jitted(a, f)) for a, f in arrays]
        t = _time(lambda: [jitted(a, f).block_until_ready() for a, f in arrays], repeat)
        return vals, t / n

    def ref(fn):
        vals = [float(fn(a, f)) for a, f in grey]
        t = _time(lambda: [fn(a, f) for a, f in grey], repeat)
        return vals, t / n

    rows = []
    # SSIM, sewar convention (uniform 11x11, valid)
    vj, tj = jf(M.ssim, convention="standard", window="uniform", win_size=11)
    vs, ts = ref(lambda a, f: sewar.full_ref.ssim(a, f, MAX=255)[0])
    rows.append(("SSIM (uniform 11, sewar)", tj, ts, None, np.max(np.abs(np.subtract(vj, vs)))))
    # SSIM, Gaussian 11/1.5 (VIFB's window) vs scikit-image gaussian_weights
    vj, tj = jf(M.ssim, convention="standard")
    vk, tk = ref(lambda a, f: structural_similarity(a, f, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255))
    rows.append(("SSIM (Gaussian 11/1.5, skimage)", tj, None, tk, np.max(np.abs(np.subtract(vj, vk)))))
    # SSIM, skimage default (uniform 7x7; population covariance for comparability)
    vj, tj = jf(M.ssim, convention="standard", window="uniform", win_size=7)
    vk, tk = ref(lambda a, f: structural_similarity(a, f, use_sample_covariance=False, data_range=255))
    rows.append(("SSIM (uniform 7, skimage default)", tj, None, tk, np.max(np.abs(np.subtract(vj, vk)))))
    # UIQI 8x8, sewar convention
    vj, tj = jf(lambda x, f, data_range: M.uiqi(x[0] * 1.0, f, block=8, convention="sewar"))
    vs, ts = ref(lambda a, f: sewar.full_ref.uqi(a, f))
    rows.append(("UIQI (8x8, sewar)", tj, ts, None, np.max(np.abs(np.subtract(vj, vs)))))
    # VIF-P
    vj, tj = jf(M.vifp)
    vs, ts = ref(lambda a, f: sewar.full_ref.vifp(a, f))
    rows.append(("VIF-P (sewar)", tj, ts, None, np.max(np.abs(np.subtract(vj, vs)))))
    # PSNR (standard)
    vj, tj = jf(M.psnr, convention="standard")
    vs, ts = ref(lambda a, f: sewar.full_ref.psnr(a, f, MAX=255))
    rows.append(("PSNR", tj, ts, None, np.max(np.abs(np.subtract(vj, vs)))))

    print(f"\n## Single metrics on {n} grey VIFB images (GFF vs visible), seconds per image (best of {repeat})\n")
    print("| metric | jfusion | sewar | scikit-image | sewar / jfusion | skimage / jfusion | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for name, tj, ts, tk, d in rows:
        fmt = lambda t: "-" if t is None else f"{t * 1000:.2f} ms"  # noqa: E731
        ratio = lambda t: "-" if t is None else f"{t / tj:.1f}x"  # noqa: E731
        print(f"| {name} | {fmt(tj)} | {fmt(ts)} | {fmt(tk)} | {ratio(ts)} | {ratio(tk)} | {d:.1e} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("JFUSION_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-table", action="store_true", help="Only the single-metric comparison.")
    ap.add_argument("--table-only", action="store_true", help="Only the VIFB table and the per-metric breakdown.")
    args = ap.parse_args()
    scenes = load(Path(args.data))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU(s)")
    if not args.table_only:
        overlap_table(scenes, args.repeat)
    if not args.skip_table:
        metric_breakdown(scenes, args.repeat)
        vifb_table(scenes, args.repeat)


if __name__ == "__main__":
    main()
