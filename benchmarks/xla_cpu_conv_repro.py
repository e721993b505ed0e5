"""Minimal reproduction of the two XLA:CPU convolution slow paths that :mod:`jfusion.models.conv` avoids.

1. An unpadded ("VALID") stride-1 convolution is several times slower than the same convolution with one
   row of zero padding whose extra output row is dropped (identical numbers): PNN's layers on a ``--size``
   square NHWC float32 image, ``lax.conv_general_dilated`` "VALID" vs padding ``[(0, 1), (0, 0)]`` + crop,
   forward and gradient (input and kernel), with ``torch.nn.functional.conv2d`` if PyTorch is installed.
2. A 3-D convolution (the 3-D CNN's layers on ``(size/4, size/4, 9)`` volumes, "SAME") vs the same
   convolution as a 2-D one with the depth folded into the channels (:func:`jfusion.models.conv.conv`).

Every row prints the max relative difference of the outputs. Run:
``PYTHONPATH=$PWD python benchmarks/xla_cpu_conv_repro.py --size 1296``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jfusion.models.conv import conv


def best(f, *a, n: int = 3) -> float:
    jax.block_until_ready(f(*a))
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        jax.block_until_ready(f(*a))
        ts.append(time.perf_counter() - t)
    return min(ts)


def rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def grad(f):
    return jax.jit(jax.grad(lambda x, w: jnp.sum(f(x, w) ** 2), (0, 1)))


def pair_cells(ref, new, x, w, t_torch: float) -> str:
    """``ref fwd | new fwd | ref grad | new grad | torch fwd | rel. diff`` (ms) of two forms of one convolution."""
    fr, fn = jax.jit(ref), jax.jit(new)
    return (
        f"{best(fr, x, w) * 1e3:.0f} | {best(fn, x, w) * 1e3:.0f} | {best(grad(ref), x, w) * 1e3:.0f} | "
        f"{best(grad(new), x, w) * 1e3:.0f} | {t_torch * 1e3:.0f} | {rel(fn(x, w), fr(x, w)):.0e} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    size = ap.parse_args().size
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.random((2048, 2048), np.float32))
    peak = 2 * 2048**3 / best(jax.jit(lambda a: a @ a), a) / 1e9
    print(f"jax {jax.__version__}; float32 2048^3 matmul through XLA: {peak:.0f} GFLOP/s\n")
    dn = ("NHWC", "HWIO", "NHWC")
    print("| 2-D layer | GFLOP | VALID fwd (ms) | one padded row fwd (ms) | VALID grad (ms) | one padded row grad (ms) "
          "| torch fwd (ms) | rel. diff |\n|---|---|---|---|---|---|---|---|")
    for k, ci, co in ((9, 7, 32), (5, 32, 16), (5, 16, 4)):
        xn = rng.standard_normal((1, size, size, ci), np.float32)
        wn = rng.standard_normal((k, k, ci, co), np.float32)
        x, w = jnp.asarray(xn), jnp.asarray(wn)

        def valid(x, w):
            return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=dn)

        def padded(x, w):
            return lax.conv_general_dilated(x, w, (1, 1), [(0, 1), (0, 0)], dimension_numbers=dn)[:, :-1]

        t_torch = float("nan")
        if torch is not None:
            tx = torch.from_numpy(np.ascontiguousarray(xn.transpose(0, 3, 1, 2)))
            tw = torch.from_numpy(np.ascontiguousarray(wn.transpose(3, 2, 0, 1)))
            with torch.no_grad():
                t_torch = best(lambda: torch.nn.functional.conv2d(tx, tw))
        gflop = 2 * (size - k + 1) ** 2 * k * k * ci * co / 1e9
        print(f"| {k}x{k} {ci}->{co} | {gflop:.1f} | " + pair_cells(valid, padded, x, w, t_torch), flush=True)
    s = max(size // 4, 16)
    print(f"\n| 3-D layer on ({s}, {s}, 9) | XLA 3-D fwd (ms) | folded fwd (ms) | XLA 3-D grad (ms) | folded grad (ms) "
          "| torch fwd (ms) | rel. diff |\n|---|---|---|---|---|---|---|")
    dn3 = ("NHWDC", "HWDIO", "NHWDC")
    for ks, ci, co in (((5, 5, 3), 1, 16), ((3, 3, 3), 16, 8), ((3, 3, 3), 8, 1)):
        xn = rng.standard_normal((1, s, s, 9, ci), np.float32)
        wn = rng.standard_normal((*ks, ci, co), np.float32)
        x, w = jnp.asarray(xn), jnp.asarray(wn)

        def xla3(x, w):
            return lax.conv_general_dilated(x, w, (1, 1, 1), "SAME", dimension_numbers=dn3)

        def folded(x, w):
            return conv(x, w, padding="SAME")

        t_torch = float("nan")
        if torch is not None:
            tx = torch.from_numpy(np.ascontiguousarray(np.moveaxis(xn, -1, 1)))
            tw = torch.from_numpy(np.ascontiguousarray(wn.transpose(4, 3, 0, 1, 2)))
            with torch.no_grad():
                t_torch = best(lambda: torch.nn.functional.conv3d(tx, tw, padding=tuple(q // 2 for q in ks)))
        print(f"| {'x'.join(map(str, ks))} {ci}->{co} | " + pair_cells(xla3, folded, x, w, t_torch), flush=True)


if __name__ == "__main__":
    main()
