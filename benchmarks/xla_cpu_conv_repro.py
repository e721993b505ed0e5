"""Minimal reproduction: XLA:CPU's stride-1 convolution vs a matrix product of the same FLOPs.

One PNN layer at a time on a ``--size`` square NHWC float32 image: ``lax.conv_general_dilated``
(NHWC/HWIO; NCHW/OIHW gives the same), a lone ``dot`` of the im2col shape ``(M, k*k*C) @ (k*k*C, O)``
(the floor the convolution could reach), :func:`jfusion.models.conv.conv` (blocked patch matmuls) and
``torch.nn.functional.conv2d`` if PyTorch is installed. Run:
``PYTHONPATH=$PWD python benchmarks/xla_cpu_conv_repro.py --size 512``.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    size = ap.parse_args().size
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print("| layer | XLA conv (ms) | same-FLOP dot (ms) | jfusion conv (ms) | torch conv2d (ms) |\n|---|---|---|---|---|")
    for k, ci, co in ((9, 7, 32), (5, 32, 16), (5, 16, 4)):
        xn = rng.standard_normal((1, size, size, ci), np.float32)
        wn = rng.standard_normal((k, k, ci, co), np.float32)
        x, w = jnp.asarray(xn), jnp.asarray(wn)
        xla = jax.jit(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")))
        ho = size - k + 1
        a, b = jnp.ones((ho * ho, k * k * ci)), jnp.ones((k * k * ci, co))
        t_torch = float("nan")
        if torch is not None:
            tx = torch.from_numpy(np.ascontiguousarray(xn.transpose(0, 3, 1, 2)))
            tw = torch.from_numpy(np.ascontiguousarray(wn.transpose(3, 2, 0, 1)))
            with torch.no_grad():
                t_torch = best(lambda: torch.nn.functional.conv2d(tx, tw))
        print(
            f"| {k}x{k} {ci}->{co} | {best(xla, x, w) * 1e3:.0f} | {best(jax.jit(jnp.matmul), a, b) * 1e3:.0f} | "
            f"{best(jax.jit(conv), x, w) * 1e3:.0f} | {t_torch * 1e3:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
