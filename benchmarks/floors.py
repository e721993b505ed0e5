"""How far each registered method is from its own floor: XLA's FLOP count vs this machine's measured peak.

For every registered general method (and, with ``--pansharpening``, every pan-sharpening method), in one
run: the FLOPs of its compiled program (XLA's cost analysis of ``jax.jit(get_method(name))`` on the
benchmark's shapes), the measured warm wall time (best of ``--repeat`` after a compile call), and the
machine's float32 peak measured in the same run (a large matmul through XLA). The floor is
``flops / peak``; ``x floor`` is how many times slower than that the method runs.

XLA counts the body of a ``while`` loop once, whatever its trip count (it cannot know it): the
iterative methods (ADMM/OMP sparse coding) are flagged ``loop`` and their FLOPs are a lower bound of
one iteration's work, so their ``x floor`` overstates the gap.

Run: ``PYTHONPATH=$PWD python benchmarks/floors.py [--size 520] [--repeat 3] [--pansharpening] [--out table.md]``
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jfusion as jf
from jfusion.pansharpening import get_pansharpening_method, list_pansharpening_methods


def best_time(fn, repeat: int) -> float:
    jax.block_until_ready(fn())  # compile + warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def peak_gflops(n: int = 2048, repeat: int = 5) -> float:
    """float32 matmul throughput through XLA on this machine, GFLOP/s."""
    a = jnp.asarray(np.random.default_rng(0).random((n, n), np.float32))
    mm = jax.jit(lambda x: x @ x)
    return 2 * n**3 / best_time(lambda: mm(a), repeat) / 1e9


def cost(compiled) -> tuple[float, float]:
    ca = compiled.cost_analysis()
    if isinstance(ca, (list, tuple)):
        ca = ca[0] if ca else {}
    return float(ca.get("flops", 0.0)), float(ca.get("bytes accessed", 0.0))


def measure(fn, args, repeat: int) -> dict[str, float | bool]:
    jitted = jax.jit(fn)
    lowered = jitted.lower(*args)
    compiled = lowered.compile()
    flops, nbytes = cost(compiled)
    loop = "while" in compiled.as_text()
    return {"flops": flops, "bytes": nbytes, "loop": loop, "seconds": best_time(lambda: compiled(*args), repeat)}


def general_inputs(size: int) -> jax.Array:
    lytro = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lytro"
    files = sorted(lytro.glob("*-A.*"))
    if files:
        a = np.asarray(jf.read_image(files[0]), np.float32)
        b = np.asarray(jf.read_image(str(files[0]).replace("-A.", "-B.")), np.float32)
        a, b = (x.mean(-1) if x.ndim == 3 else x for x in (a, b))
        a, b = a[:size, :size], b[:size, :size]
    else:  # no shared data: a smooth random pair of the same size
        rng = np.random.default_rng(0)
        a, b = rng.random((2, size, size), np.float32)
    return jnp.asarray(np.stack([a, b]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=520)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pansharpening", action="store_true", help="also every pan-sharpening method (IKONOS-like 4-band, PAN 4x)")
    ap.add_argument("--skip", default="", help="comma-separated method names to leave out")
    ap.add_argument("--only", default="", help="comma-separated method names to run (default: all)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    only = {s for s in args.only.split(",") if s}
    if only:
        skip |= {m.name for m in jf.list_methods() if m.name not in only}
    peak = peak_gflops()
    rows = []
    x = general_inputs(args.size)
    for info in jf.list_methods():
        if info.name in skip or "pansharpening" in info.tasks or "mshs" in info.tasks:
            continue
        rows.append((info.name, f"2 x {args.size}^2 grey", measure(jf.get_method(info.name), (x,), args.repeat)))
    if args.pansharpening:
        rng = np.random.default_rng(1)
        ms = jnp.asarray((300 + 1200 * rng.random((args.size // 4, args.size // 4, 4))).astype(np.float32))
        pan = jnp.asarray((300 + 1200 * rng.random((args.size // 4 * 4, args.size // 4 * 4))).astype(np.float32))
        for info in list_pansharpening_methods():
            if info.name in skip or info.family == "mshs":
                continue
            opts = {"bit_depth": 11} if info.learned else {}
            fn = functools.partial(get_pansharpening_method(info.name), ratio=4, sensor="IKONOS", **opts)
            rows.append((info.name, f"MS {args.size // 4}^2 x 4, PAN x4", measure(fn, (ms, pan), args.repeat)))
    lines = [
        f"Peak (float32 matmul 2048^2 through XLA, same run): {peak:.1f} GFLOP/s; jax {jax.__version__}, "
        f"{jax.devices()[0].platform}, {len(jax.devices())} device(s).",
        "",
        "| method | input | GFLOP (XLA) | loop | seconds (warm) | floor s | x floor | achieved GFLOP/s |",
        "|---|---|---:|:-:|---:|---:|---:|---:|",
    ]
    for name, shape, m in rows:
        floor = m["flops"] / (peak * 1e9)
        lines.append(
            f"| {name} | {shape} | {m['flops'] / 1e9:.3f} | {'loop' if m['loop'] else ''} | {m['seconds']:.4f} | {floor:.4f} | "
            f"{m['seconds'] / floor if floor > 0 else float('nan'):.1f} | {m['flops'] / m['seconds'] / 1e9:.1f} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        from jfusion.io import write_text

        write_text(args.out, text + "\n", overwrite=True)


if __name__ == "__main__":
    main()
