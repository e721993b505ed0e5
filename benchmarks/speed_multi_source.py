"""Cost of more sources in the CNN multi-focus methods (issue 17 item 1: "3 sources at most 1.6x the time of 2").

One process, one run: each row's program is jitted once, called once to compile, then timed (best of
``--repeat`` warm calls, wall and process CPU time), with XLA's FLOP count of the compiled program. Input:
the Lytro triple ``lytro-01`` (A, B, C) from ``shared/data/lytro/triple``, grey, cropped to ``--size``; the
2-source rows use A and B. Rows: ``cnn-focus`` with ``multi="sequential"`` (the reference code's rule:
((A, B), C), two pair evaluations) and ``multi="reference"`` (B and C scored against A in one pass), and the
other CNN multi-focus methods (sequential only). The table gives each 3-source time over the 2-source time
of the same row, and the largest difference between the two rules' fused images.

Run:  PYTHONPATH=$PWD python benchmarks/speed_multi_source.py [--size 520] [--repeat 3] [--methods cnn-focus]
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

DATA = Path(os.environ.get("JFUSION_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def timed(fn, x, repeat: int) -> dict[str, float]:
    compiled = jax.jit(fn).lower(x).compile()
    ca = compiled.cost_analysis()
    ca = ca[0] if isinstance(ca, (list, tuple)) else ca
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(x))
    first = time.perf_counter() - t0
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(compiled(x))
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return {"wall": min(walls), "cpu": min(cpus), "first_run": first, "gflop": float(ca.get("flops", 0.0)) / 1e9,
            "out": np.asarray(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=520)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--methods", default="cnn-focus", help="comma-separated; cnn-focus also gets its multi='reference' row")
    args = ap.parse_args()
    folder = DATA / "lytro" / "triple"
    if not folder.exists():
        raise SystemExit(f"{folder} not found: set JFUSION_DATA to the shared data folder")
    imgs = [np.asarray(jf.read_image(folder / f"lytro-01-{c}.jpg"), np.float32) for c in "ABC"]
    three = jnp.asarray(np.stack([x.mean(-1) if x.ndim == 3 else x for x in imgs])[:, : args.size, : args.size])
    rows = []
    for name in [m for m in args.methods.split(",") if m]:
        variants = [("sequential", {})] + ([("reference", {"multi": "reference"})] if name == "cnn-focus" else [])
        for label, opts in variants:
            fn = lambda s, name=name, opts=opts: jf.get_method(name)(s, **opts)  # noqa: E731
            r2, r3 = timed(fn, three[:2], args.repeat), timed(fn, three, args.repeat)
            rows.append((name, label, r2, r3))
            print(f"{name} {label}: 2 sources {r2['wall']:.3f} s, 3 sources {r3['wall']:.3f} s", flush=True)
    print(f"\njax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} "
          f"at the end; lytro-01 triple, grey {three.shape[1]}x{three.shape[2]}, best of {args.repeat} warm calls\n")
    print("| method | multi | 2 sources s (CPU s) | 3 sources s (CPU s) | 3 / 2 wall | 3 / 2 CPU | GFLOP 2 / 3 | first call 3 s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, label, r2, r3 in rows:
        print(f"| {name} | {label} | {r2['wall']:.3f} ({r2['cpu']:.2f}) | {r3['wall']:.3f} ({r3['cpu']:.2f}) | "
              f"{r3['wall'] / r2['wall']:.2f} | {r3['cpu'] / r2['cpu']:.2f} | {r2['gflop']:.0f} / {r3['gflop']:.0f} | "
              f"{r3['first_run']:.2f} |")
    seq = {(n, lab): r for n, lab, r2, r in rows}
    if ("cnn-focus", "reference") in seq:
        a, b = seq[("cnn-focus", "sequential")]["out"], seq[("cnn-focus", "reference")]["out"]
        d = np.abs(a - b)
        print(f"\ncnn-focus 3 sources, reference vs sequential: max |diff| {d.max():.4f}, mean {d.mean():.5f}, "
              f"pixels within 1/255: {np.mean(d < 1 / 255):.4f}")
        two = [r2 for n, lab, r2, r in rows if n == "cnn-focus"]
        print(f"cnn-focus 2 sources, reference vs sequential: max |diff| {np.abs(two[0]['out'] - two[1]['out']).max():.1e}")


if __name__ == "__main__":
    main()
