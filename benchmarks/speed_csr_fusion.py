"""``csr`` fusion of a real 520x520 Lytro pair: the sources' CBPDN solves one after the other vs one vmapped solve.

Side by side in one process (issue 17 item 1): ``jfusion.sparse.cbpdn.encode(batch="map")`` (the CPU default
since this change: each source its own while loop, a real ``lax.cond`` for the rho update, per-map FFTs of one
image) against ``batch="vmap"`` (the previous path: one batched while loop over the sources). Same stopping rule
and tolerance (relative 1e-3, at most 500 iterations); the script prints each variant's wall and CPU seconds
(``time.process_time``, all threads), the iterations of each source, the load average at the time, and the
max difference of the fused images. Timings exclude compilation (one warm-up call per variant).

Run: ``PYTHONPATH=$PWD python benchmarks/speed_csr_fusion.py [--pair 01] [--repeat 1] [--size 520]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jfusion as jf
from jfusion.methods.sparse import _dictionary, choose_max_index, coefficient_activity, select_by_index
from jfusion.sparse.cbpdn import Options, encode, synthesize
from jfusion.sparse.tikhonov import tikhonov_split


def csr_grey(x: jax.Array, batch: str) -> tuple[jax.Array, jax.Array]:
    """``jfusion.methods.sparse.csr``'s multi-focus defaults with the encode path named; ``(fused, iterations)``."""
    d = _dictionary("csr32", x.dtype)
    base, detail = tikhonov_split(x, lmbda=5.0, npad=16)
    coef, stats = encode(d, detail, 0.01, max_iter=500, rho=100.0 * 0.01 + 0.5,
                         opts=Options(rho_scaling=100.0, tol=1e-3), batch=batch)
    idx = choose_max_index(coefficient_activity(coef, 9))
    return select_by_index(base, idx) + synthesize(d, select_by_index(coef, idx)), stats.iterations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", default="01")
    ap.add_argument("--size", type=int, default=520)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    roots = [Path(os.environ["JFUSION_DATA"])] if "JFUSION_DATA" in os.environ else []
    roots += [here.parent / "shared" / "data", here.parents[1] / "shared" / "data"]  # checkout or worktree
    lytro = next((r / "lytro" for r in roots if (r / "lytro").is_dir()), roots[0] / "lytro")
    a, b = (np.asarray(jf.read_image(lytro / f"lytro-{args.pair}-{k}.jpg"), np.float32) for k in "AB")
    x = jnp.asarray(np.stack([a, b]).mean(-1)[:, : args.size, : args.size])  # grey, as csr's luma
    fns = {batch: jax.jit(lambda s, batch=batch: csr_grey(s, batch)) for batch in ("map", "vmap")}
    out = {}
    for batch, fn in fns.items():
        t = time.perf_counter()
        jax.block_until_ready(fn(x))
        print(f"{batch}: compile + first call {time.perf_counter() - t:.1f} s wall", flush=True)
    rows = []
    for _ in range(args.repeat):
        for batch, fn in fns.items():
            load = os.getloadavg()[0]
            c, t = time.process_time(), time.perf_counter()
            fused, iters = jax.block_until_ready(fn(x))
            rows.append((batch, time.perf_counter() - t, time.process_time() - c, load, np.asarray(iters).tolist()))
            out[batch] = np.asarray(fused)
            print(f"{batch}: wall {rows[-1][1]:.1f} s, cpu {rows[-1][2]:.1f} s, load {load:.1f}, iterations {rows[-1][4]}",
                  flush=True)
    print(f"\njax {jax.__version__}, {jax.devices()[0].platform}; lytro-{args.pair} grey {args.size}x{args.size}, 2 sources")
    print("| encode | wall s | CPU s | load average (1 min) | iterations per source |")
    print("|---|---:|---:|---:|---|")
    for batch, wall, cpu, load, iters in rows:
        print(f"| `{batch}` | {wall:.1f} | {cpu:.1f} | {load:.1f} | {iters} |")
    print(f"max |fused(map) - fused(vmap)| = {np.abs(out['map'] - out['vmap']).max():.2e}")


if __name__ == "__main__":
    main()
