"""Speed of classical fusion: jfusion (JAX, jitted) vs OpenCV / PyWavelets in the same run.

Laplacian-pyramid fusion (4 levels, max-abs details, averaged residual; grey, 2 sources) and
Mertens exposure fusion (RGB, 3 exposures) at 512^2 and 2048^2, jfusion on a single image
a vmapped batch and a ``lax.map``-ped (sequential) batch, against OpenCV (pyrDown/pyrUp + NumPy choose-max; createMergeMertens);
the 2-D DWT (db2, 3 levels, symmetric) against PyWavelets' wavedec2.

Run: ``PYTHONPATH=$PWD python benchmarks/speed_classical.py [--quick]``. Times are the best
of ``--repeat`` runs after one warm-up (compile) call; ratios are jfusion / reference, per image.
"""

from __future__ import annotations

import argparse
import functools
import time

import cv2
import jax
import numpy as np
import pywt

from jfusion.methods import get_method
from jfusion.transforms import wavedec2


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up / compile
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cv2_laplacian_fusion(a: np.ndarray, b: np.ndarray, levels: int = 4) -> np.ndarray:
    def lap(x):
        g = [x]
        for _ in range(levels - 1):
            g.append(cv2.pyrDown(g[-1]))
        return [g[i] - cv2.pyrUp(g[i + 1], dstsize=g[i].shape[::-1]) for i in range(levels - 1)] + [g[-1]]

    la, lb = lap(a), lap(b)
    fused = [np.where(np.abs(x) >= np.abs(y), x, y) for x, y in zip(la[:-1], lb[:-1])] + [(la[-1] + lb[-1]) / 2]
    r = fused[-1]
    for lev in reversed(fused[:-1]):
        r = lev + cv2.pyrUp(r, dstsize=lev.shape[::-1])
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="512^2 only")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16, help="batch at 512^2")
    ap.add_argument("--batch-large", type=int, default=4, help="batch at 2048^2 (16 does not fit this machine)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    sizes = [512] if args.quick else [512, 2048]
    rows = []

    lap = functools.partial(get_method("laplacian"), levels=4, mode="opencv")
    lap_single = jax.jit(lap)
    lap_batch = jax.jit(jax.vmap(lap))
    lap_map = jax.jit(lambda b: jax.lax.map(lap, b))  # sequential over the batch, cache-friendly
    mer = get_method("mertens")
    mer_single = jax.jit(functools.partial(mer, mode="opencv", clip=False))
    mer_batch = jax.jit(jax.vmap(functools.partial(mer, mode="opencv", clip=False)))
    mer_map = jax.jit(lambda b: jax.lax.map(functools.partial(mer, mode="opencv", clip=False), b))

    for n in sizes:
        nb = args.batch if n <= 512 else args.batch_large
        src = rng.random((2, n, n), dtype=np.float32)
        batch = rng.random((nb, 2, n, n), dtype=np.float32)
        t_cv = best_time(lambda: cv2_laplacian_fusion(src[0], src[1]), args.repeat)
        t_js = best_time(lambda: lap_single(src).block_until_ready(), args.repeat)
        t_jb = best_time(lambda: lap_batch(batch).block_until_ready(), args.repeat) / nb
        t_jm = best_time(lambda: lap_map(batch).block_until_ready(), args.repeat) / nb
        rows.append(("laplacian fusion", n, t_cv, t_js, t_jb, nb, t_jm))

        u8 = [rng.integers(0, 256, (n, n, 3), dtype=np.uint8) for _ in range(3)]
        f32 = np.stack(u8).astype(np.float32) / 255.0
        fb = np.broadcast_to(f32, (nb,) + f32.shape).copy()
        merge = cv2.createMergeMertens(1.0, 1.0, 1.0)
        t_cv = best_time(lambda: merge.process(u8), args.repeat)
        t_js = best_time(lambda: mer_single(f32).block_until_ready(), args.repeat)
        t_jb = best_time(lambda: mer_batch(fb).block_until_ready(), args.repeat) / nb
        t_jm = best_time(lambda: mer_map(fb).block_until_ready(), args.repeat) / nb
        rows.append(("mertens (3 x RGB)", n, t_cv, t_js, t_jb, nb, t_jm))

        x = rng.random((n, n)).astype(np.float32)
        dwt = jax.jit(functools.partial(wavedec2, wavelet="db2", level=3, mode="symmetric"))
        dwt_b = jax.jit(jax.vmap(functools.partial(wavedec2, wavelet="db2", level=3, mode="symmetric")))
        xb = rng.random((nb, n, n)).astype(np.float32)
        t_pw = best_time(lambda: pywt.wavedec2(x, "db2", mode="symmetric", level=3), args.repeat)
        t_js = best_time(lambda: jax.block_until_ready(dwt(x)), args.repeat)
        t_jb = best_time(lambda: jax.block_until_ready(dwt_b(xb)), args.repeat) / nb
        rows.append(("dwt db2 L3 (vs pywt)", n, t_pw, t_js, t_jb, nb, float("nan")))

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; opencv {cv2.__version__}; pywt {pywt.__version__}")
    print()
    print(
        "| task | size | reference ms | jfusion single ms | ratio | vmap batch ms/img (N) | ratio "
        "| lax.map batch ms/img | ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, n, tr, ts, tb, nb, tm in rows:
        mapped = "-" if np.isnan(tm) else f"{tm * 1e3:.1f} | {tm / tr:.2f}x"
        mapped = mapped if mapped != "-" else "- | -"
        print(
            f"| {name} | {n}^2 | {tr * 1e3:.1f} | {ts * 1e3:.1f} | {ts / tr:.2f}x | {tb * 1e3:.1f} ({nb}) "
            f"| {tb / tr:.2f}x | {mapped} |"
        )


if __name__ == "__main__":
    main()
