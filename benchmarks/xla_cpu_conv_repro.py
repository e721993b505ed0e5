"""Minimal reproduction of the two XLA:CPU convolution slow paths that :mod:`jfusion.models.conv` avoids.

1. An unpadded ("VALID") stride-1 convolution is several times slower than the same convolution with one
   row of zero padding whose extra output row is dropped (identical numbers): PNN's layers on a ``--size``
   square NHWC float32 image, ``lax.conv_general_dilated`` "VALID" vs padding ``[(0, 1), (0, 0)]`` + crop,
   forward and gradient (input and kernel), with ``torch.nn.functional.conv2d`` if PyTorch is installed.
2. A 3-D convolution (the 3-D CNN's layers on ``(size/4, size/4, 9)`` volumes, "SAME") vs the same
   convolution as a 2-D one with the depth folded into the channels (:func:`jfusion.models.conv.conv`).
3. The kernel gradient at the models' training shapes (PNN, SRCNN, DRPNN, the focus CNN's branch, the 3-D CNN):
   XLA's (autodiff of its convolution in the fast form) vs the frequency-domain one
   (:func:`jfusion.models.conv.kernel_gradient_fft`), with PyTorch's (``torch.nn.grad.conv2d_weight`` /
   ``conv3d_weight``) and whether :func:`jfusion.models.conv.fft_kernel_gradient_pays` takes the FFT.

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

from jfusion.models import conv as fastconv
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
    ap.add_argument("--kernel-gradients-only", action="store_true", help="only part 3")
    args = ap.parse_args()
    size = args.size
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.random((2048, 2048), np.float32))
    peak = 2 * 2048**3 / best(jax.jit(lambda a: a @ a), a) / 1e9
    print(f"jax {jax.__version__}; float32 2048^3 matmul through XLA: {peak:.0f} GFLOP/s\n")
    if args.kernel_gradients_only:
        kernel_gradients(rng, torch)
        return
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
    kernel_gradients(rng, torch)


KERNEL_GRADIENT_LAYERS = (  # (model, batch, input spatial, kernel, in, out, padding) at the training shapes
    ("PNN 64/32", 64, (33, 33), (9, 9), 7, 64, "VALID"),
    ("PNN 64/32", 64, (25, 25), (5, 5), 64, 32, "VALID"),
    ("PNN 64/32", 64, (21, 21), (5, 5), 32, 4, "VALID"),
    ("SRCNN 64/32", 64, (33, 33), (9, 9), 4, 64, "SAME"),
    ("SRCNN 64/32", 64, (33, 33), (5, 5), 64, 32, "SAME"),
    ("DRPNN 64", 16, (33, 33), (7, 7), 64, 64, "SAME"),
    ("focus CNN 64/128/256", 256, (16, 16), (3, 3), 1, 64, "SAME"),
    ("focus CNN 64/128/256", 256, (16, 16), (3, 3), 64, 128, "SAME"),
    ("focus CNN 64/128/256", 256, (8, 8), (3, 3), 128, 256, "SAME"),
    ("3-D CNN", 16, (20, 20, 9), (5, 5, 3), 1, 16, "SAME"),
    ("3-D CNN", 16, (20, 20, 9), (3, 3, 3), 16, 8, "SAME"),
)


def kernel_gradients(rng, torch) -> None:
    print("\n| model | layer | batch x input | XLA kernel grad (ms) | FFT kernel grad (ms) | torch weight grad (ms) "
          "| rel. diff | rule takes FFT |\n|---|---|---|---|---|---|---|---|")
    for model, n, sp, ks, ci, co, padding in KERNEL_GRADIENT_LAYERS:
        nd = len(ks)
        x = jnp.asarray(rng.standard_normal((n, *sp, ci), np.float32))
        w = jnp.asarray(rng.standard_normal((*ks, ci, co), np.float32) / np.sqrt(np.prod(ks) * ci))
        pads = fastconv._explicit_padding(padding, ks)
        out = tuple(s + lo + hi - k + 1 for s, (lo, hi), k in zip(sp, pads, ks))
        g = jnp.asarray(rng.standard_normal((n, *out, co), np.float32))
        with fastconv.xla_kernel_gradient():
            xla = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w, padding=padding), w)[1](g)[0])
            ref = xla(x, w, g)
        fft = jax.jit(lambda x, g: fastconv.kernel_gradient_fft(x, g, ks, pads))
        t_torch = float("nan")
        if torch is not None:
            tx = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(x), -1, 1)))
            tg = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(g), -1, 1)))
            shape = (co, ci, *ks)
            tp = tuple(lo for lo, _ in pads)
            if all(lo == hi for lo, hi in pads):
                fn = torch.nn.grad.conv2d_weight if nd == 2 else torch.nn.grad.conv3d_weight
                t_torch = best(lambda: fn(tx, shape, tg, padding=tp))
        padded = [s + lo + hi for s, (lo, hi) in zip(sp, pads)]
        folded = nd == 3 and sp[2] <= fastconv.MAX_FOLD_DEPTH
        takes = fastconv.fft_kernel_gradient_pays(batch=n, padded=padded, kernel=ks, cin=ci, cout=co, folded=folded)
        print(f"| {model} | {'x'.join(map(str, ks))} {ci}->{co} {padding} | {n} x {'x'.join(map(str, sp))} | "
              f"{best(xla, x, w, g) * 1e3:.1f} | {best(fft, x, g) * 1e3:.1f} | {t_torch * 1e3:.1f} | "
              f"{rel(fft(x, g), ref):.0e} | {'yes' if takes else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
