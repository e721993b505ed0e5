"""Speed of jfusion's ADMM CBPDN against sporco's ConvBPDN, side by side in one run.

For a 256^2 and a 512^2 high-pass image (Tikhonov split of a Lytro crop), 32 filters 8x8,
lambda = 0.01:

* 200 iterations at fixed rho (tolerance 0, so both run exactly 200): seconds, objective, ratio;
  sporco is timed in its default mode (iteration statistics every iteration) and with
  ``FastSolve`` (no statistics), the fairer opponent;
* the default adaptive-rho run to tolerance 1e-3 (at most 500 iterations);
* the "FFT floor": 200 x (rfft2 of the M maps + irfft2 back), the transforms an iteration
  cannot avoid, jitted and timed the same way, and made of the same FFT calls as the solver
  (``fft_groups`` calls of M/groups maps each; the solver's default on this backend unless
  ``--groups`` says otherwise); jfusion's ratio to it. The floor is also timed as one batched
  call and as one call per map, and the ratio to the fastest of the three is printed too;
* throughput of a batch of 8 images under ``vmap`` (200 fixed iterations);
* with ``--sweep``: the fixed-rho run for several ``fft_groups``, each against its own floor.

jfusion times exclude compilation (one warm-up call; compile time printed separately).
Times are **CPU seconds of the process** (``time.process_time``, all threads summed), not wall
time: the 2-core development machine is shared by several engineers, and CPU time is the
measure that their load does not distort. On an idle machine wall time is lower by up to the
number of threads used.
``--cores 1`` pins the process to one core before JAX starts (XLA then runs one thread, and
CPU time equals wall time for jfusion; sporco's pyfftw still starts its threads on that core).
Run: ``PYTHONPATH=$PWD python benchmarks/speed_csc.py [--sizes 256 512] [--repeat 3] [--cores 1]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__" and "--cores" in sys.argv:  # before JAX sizes its thread pool
    _n = int(sys.argv[sys.argv.index("--cores") + 1])
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:_n]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jfusion.io import read_image  # noqa: E402
from jfusion.ops.colour import rgb_to_gray  # noqa: E402
from jfusion.sparse import cbpdn  # noqa: E402
from jfusion.sparse.cbpdn import default_fft_groups  # noqa: E402
from jfusion.sparse.dictionary import load_dictionary, shipped_dictionaries  # noqa: E402
from jfusion.sparse.tikhonov import tikhonov_split  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _image(size: int) -> np.ndarray:
    p = DATA / "lytro" / "lytro-01-A.jpg"
    if p.exists():
        img = np.asarray(rgb_to_gray(read_image(p)))
        img = np.pad(img, ((0, max(0, size - img.shape[0])), (0, max(0, size - img.shape[1]))), mode="symmetric")
        img = img[:size, :size]
    else:
        rng = np.random.default_rng(0)
        img = np.cumsum(np.cumsum(rng.standard_normal((size, size)), 0), 1)
        img = (img - img.min()) / np.ptp(img)
    _, detail = tikhonov_split(jnp.asarray(img, jnp.float32), lmbda=5.0, npad=16)
    return np.asarray(detail)


WALL: dict[int, float] = {}  # id(fn) -> best wall seconds of the last _best call (printed next to CPU)


def _best(fn, repeat: int) -> float:
    """Best of ``repeat`` runs, in CPU seconds of this process (all threads; see the module doc).

    The best wall time of the same runs is kept in ``WALL[id(fn)]``.
    """
    ts, ws = [], []
    for _ in range(repeat):
        w, t = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.process_time() - t)
        ws.append(time.perf_counter() - w)
    WALL[id(fn)] = min(ws)
    return min(ts)


def _sporco_adaptive(d, s, lmbda, *, iters, tol, fast):
    from sporco.admm import cbpdn as scb

    opt = scb.ConvBPDN.Options(
        {"Verbose": False, "MaxMainIter": iters, "RelStopTol": tol, "FastSolve": fast}
    )
    b = scb.ConvBPDN(d, s, lmbda, opt)
    w, t = time.perf_counter(), time.process_time()
    x = b.solve()
    el = time.process_time() - t
    _sporco_adaptive.wall = time.perf_counter() - w
    dfd = 0.5 * np.sum((np.squeeze(b.reconstruct(b.X)) - s) ** 2)
    obj = dfd + lmbda * np.sum(np.abs(b.X))
    return el, float(obj), b.k, np.squeeze(x)


def _fft_floor(m: int, size: int, iters: int, groups: int = 1):
    """``iters`` x (rfft2 + irfft2) of ``m`` maps, as ``groups`` independent calls (like the solver)."""
    from jfusion.sparse.cbpdn import _group_slices

    slices = _group_slices(m, groups)

    @jax.jit
    def floor(xs):
        def body(_, vs):
            return tuple(jnp.fft.irfft2(jnp.fft.rfft2(v, axes=(-2, -1)), s=(size, size), axes=(-2, -1)) for v in vs)

        return jax.lax.fori_loop(0, iters, body, xs)

    xs = tuple(jnp.ones((sl.stop - sl.start, size, size), jnp.float32) for sl in slices)
    jax.block_until_ready(floor(xs))
    return lambda: jax.block_until_ready(floor(xs))


def _floors(m: int, size: int, iters: int, groups: int, repeat: int) -> dict[int, tuple[float, float]]:
    """FFT floor per grouping (the solver's, one batched call, one call per map): ``{g: (cpu, wall)}``."""
    out = {}
    for g in dict.fromkeys((groups, 1, m)):
        fn = _fft_floor(m, size, iters, g)
        out[g] = (_best(fn, repeat), WALL[id(fn)])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--groups", type=int, default=None, help="fft_groups of the solver (default: its own choice)")
    ap.add_argument("--sweep", type=int, nargs="*", default=[], help="also time these fft_groups (fixed rho)")
    ap.add_argument("--cores", type=int, default=None, help="pin to this many cores (set before JAX starts)")
    ap.add_argument("--no-sporco", action="store_true")
    args = ap.parse_args()

    name = "csr32" if "csr32" in shipped_dictionaries() else None
    d = load_dictionary(name) if name else load_dictionary(str(DATA / "reference_models/liu2016_csr_dict/dict.mat"))
    m = d.shape[-1]
    groups = default_fft_groups(m) if args.groups is None else args.groups
    lmbda, it = 0.01, args.iters
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}); jax {jax.__version__}; dictionary {name or 'authors'} "
          f"{d.shape}; lambda {lmbda}; fft_groups {groups}; cores {len(os.sched_getaffinity(0))}; "
          f"load {os.getloadavg()[0]:.2f}")
    rows, sweep = [], []
    for size in args.sizes:
        s = _image(size)
        sj = jnp.asarray(s)

        def fixed_fn(g):
            return lambda: jax.block_until_ready(
                cbpdn(d, sj, lmbda, max_iter=it, rho=1.5, auto_rho=False, tol=0.0, fft_groups=g))

        # fixed rho, exactly `it` iterations
        fixed = fixed_fn(groups)
        t0 = time.perf_counter()
        _, st = fixed()
        compile_s = time.perf_counter() - t0
        t_jf = _best(fixed, args.repeat)
        w_jf = WALL[id(fixed)]
        floors = _floors(m, size, it, groups, args.repeat)
        adaptive = lambda: jax.block_until_ready(cbpdn(d, sj, lmbda, max_iter=500, tol=1e-3, fft_groups=groups))  # noqa: E731
        _, st_ad = adaptive()
        t_ad = _best(adaptive, args.repeat)
        row = {
            "size": size, "jf_fixed_s": t_jf, "jf_fixed_obj": float(st.objective), "compile_s": compile_s,
            "floor_s": floors[groups][0], "floor_wall": floors[groups][1],
            "best_floor_s": min(floors.items(), key=lambda kv: kv[1][0]),
            "best_floor_wall": min(floors.items(), key=lambda kv: kv[1][1]),
            "jf_adapt_s": t_ad, "jf_fixed_wall": w_jf,
            "jf_adapt_wall": WALL[id(adaptive)], "jf_adapt_it": int(st_ad.iterations),
            "jf_adapt_obj": float(st_ad.objective),
        }
        for g in args.sweep:
            fn = fixed_fn(g)
            fn()
            fl = _floors(m, size, it, g, args.repeat)[g]
            sweep.append((size, g, _best(fn, args.repeat), WALL[id(fn)], fl[0], fl[1]))
        if not args.no_sporco:
            from sporco.admm import cbpdn as scb

            def sp_fixed(fast):
                o = scb.ConvBPDN.Options({"Verbose": False, "MaxMainIter": it, "RelStopTol": 0.0, "rho": 1.5,
                                          "AutoRho": {"Enabled": False}, "FastSolve": fast})
                b = scb.ConvBPDN(d, s, lmbda, o)
                w, t = time.perf_counter(), time.process_time()
                b.solve()
                return time.process_time() - t, time.perf_counter() - w, b

            t_sp, w_sp, b = sp_fixed(False)
            t_spf, w_spf, _ = sp_fixed(True)
            row["sp_fixed_s"], row["sp_fast_s"], row["sp_fixed_obj"] = t_sp, t_spf, float(b.itstat[-1].ObjFun)
            row["sp_fixed_wall"], row["sp_fast_wall"] = w_sp, w_spf
            t_spa, obj_spa, k_spa, _ = _sporco_adaptive(d, s, lmbda, iters=500, tol=1e-3, fast=False)
            row["sp_adapt_s"], row["sp_adapt_obj"], row["sp_adapt_it"] = t_spa, obj_spa, k_spa
            row["sp_adapt_wall"] = _sporco_adaptive.wall
        rows.append(row)

    print()
    print(f"### CBPDN, {m} filters {d.shape[0]}x{d.shape[1]}, lambda {lmbda}: {it} iterations, fixed rho 1.5, "
          f"fft_groups {groups}")
    for clock, key, wkey in (("CPU", "s", "s"), ("wall", "wall", "wall")):
        print()
        print(f"{clock} seconds:")
        print("| size | jfusion | sporco (default / FastSolve) | speed-up (vs FastSolve) | objective jf / sporco | "
              f"FFT floor, {groups} calls | jf / floor | fastest floor (calls) | jf / fastest | compile s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            jf = r[f"jf_fixed_{key}"]
            if "sp_fixed_s" in r:
                spd, spf = r[f"sp_fixed_{wkey}"], r[f"sp_fast_{wkey}"]
                sp, su = f"{spd:.2f} / {spf:.2f}", f"{spd / jf:.1f}x ({spf / jf:.1f}x)"
                ob = f"{r['jf_fixed_obj']:.5g} / {r['sp_fixed_obj']:.5g}"
            else:
                sp, su, ob = "-", "-", f"{r['jf_fixed_obj']:.5g}"
            fl = r[f"floor_{key}"]
            bg, bt = r[f"best_floor_{key}"]
            bt = bt[0] if key == "s" else bt[1]
            print(f"| {r['size']}^2 | {jf:.2f} | {sp} | {su} | {ob} | {fl:.2f} | {jf / fl:.2f} | {bt:.2f} ({bg}) | "
                  f"{jf / bt:.2f} | {r['compile_s']:.1f} |")
    print()
    print("### Default adaptive rho, tolerance 1e-3, at most 500 iterations")
    print("| size | jfusion CPU s (iters) | sporco CPU s (iters) | speed-up | jfusion / sporco wall s | "
          "objective jf / sporco |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "sp_adapt_s" in r:
            print(f"| {r['size']}^2 | {r['jf_adapt_s']:.2f} ({r['jf_adapt_it']}) | {r['sp_adapt_s']:.2f} "
                  f"({r['sp_adapt_it']}) | {r['sp_adapt_s'] / r['jf_adapt_s']:.1f}x | "
                  f"{r['jf_adapt_wall']:.2f} / {r['sp_adapt_wall']:.2f} | "
                  f"{r['jf_adapt_obj']:.5g} / {r['sp_adapt_obj']:.5g} |")
        else:
            print(f"| {r['size']}^2 | {r['jf_adapt_s']:.2f} ({r['jf_adapt_it']}) | - | - | "
                  f"{r['jf_adapt_wall']:.2f} / - | {r['jf_adapt_obj']:.5g} |")
    if sweep:
        print()
        print("### fft_groups sweep (fixed rho), each against the floor made of the same FFT calls")
        print("| size | groups | jfusion CPU s | floor CPU s | ratio | jfusion wall s | floor wall s | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for size, g, t, w, ft, fw in sweep:
            print(f"| {size}^2 | {g} | {t:.2f} | {ft:.2f} | {t / ft:.2f} | {w:.2f} | {fw:.2f} | {w / fw:.2f} |")

    # batch throughput under vmap
    size = args.sizes[0]
    sb = jnp.asarray(np.stack([_image(size) * (1 + 0.1 * i) for i in range(args.batch)]))
    batched = jax.jit(jax.vmap(
        lambda x: cbpdn(d, x, lmbda, max_iter=it, rho=1.5, auto_rho=False, tol=0.0, fft_groups=groups)[0]))
    batched(sb).block_until_ready()
    fn = lambda: batched(sb).block_until_ready()  # noqa: E731
    t_b = _best(fn, args.repeat)
    w_b = WALL[id(fn)]
    r0 = next(r for r in rows if r["size"] == size)
    print()
    print(f"### vmap batch of {args.batch} images {size}^2, {it} iterations")
    print(f"| batch CPU s | batch wall s | images/s (wall) | single-image CPU / wall s x {args.batch} |")
    print("|---|---|---|---|")
    print(f"| {t_b:.2f} | {w_b:.2f} | {args.batch / w_b:.2f} | {r0['jf_fixed_s'] * args.batch:.2f} / "
          f"{r0['jf_fixed_wall'] * args.batch:.2f} |")


if __name__ == "__main__":
    main()
