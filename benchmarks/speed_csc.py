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

DATA = Path(os.environ.get("JFUSION_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


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


def _sporco(where: str):
    """sporco's ``ConvBPDN`` module and array helpers: on the CPU (numpy) or its CuPy variant on the GPU.

    Returns ``(module, to_device, to_host, sync)``.
    """
    if where == "cpu":
        from sporco.admm import cbpdn as scb

        return scb, np.asarray, np.asarray, lambda: None
    import sporco.cupy as spc
    from sporco.cupy.admm import cbpdn as gcb

    if not spc.have_cupy:
        raise RuntimeError("sporco.cupy found no usable CuPy/GPU")
    return gcb, spc.np2cp, spc.cp2np, spc.cp.cuda.Device().synchronize


def _sporco_solve(where: str, d, s, lmbda, opts: dict) -> tuple[float, float, object]:
    """One sporco ``ConvBPDN`` solve: ``(cpu_s, wall_s, solver)``; the arrays start on ``where``'s device."""
    mod, dev, _, sync = _sporco(where)
    o = mod.ConvBPDN.Options({"Verbose": False, **opts})
    b = mod.ConvBPDN(dev(d), dev(s), lmbda, o)
    sync()
    w, t = time.perf_counter(), time.process_time()
    b.solve()
    sync()
    return time.process_time() - t, time.perf_counter() - w, b


def _sporco_adaptive(where: str, d, s, lmbda, *, iters, tol):
    """Default adaptive-rho run to ``tol``: ``(cpu_s, wall_s, objective, iterations)``."""
    t, w, b = _sporco_solve(where, d, s, lmbda, {"MaxMainIter": iters, "RelStopTol": tol})
    host = _sporco(where)[2]
    x = host(b.X)
    dfd = 0.5 * np.sum((np.squeeze(host(b.reconstruct(b.X))) - s) ** 2)
    obj = dfd + lmbda * np.sum(np.abs(x))
    return t, w, float(obj), b.k


def _f(x: float) -> str:
    """Seconds: 3 significant digits under 1 s (GPU times are small), else 2 decimals."""
    return f"{x:.3g}" if x < 1 else f"{x:.2f}"


def _sporco_row(where: str, d, s, lmbda, it: int) -> dict:
    """sporco's fixed-rho runs (default and FastSolve) and its adaptive run, timed and with objectives."""
    fixed_opts = {"MaxMainIter": it, "RelStopTol": 0.0, "rho": 1.5, "AutoRho": {"Enabled": False}}
    t_sp, w_sp, b = _sporco_solve(where, d, s, lmbda, {**fixed_opts, "FastSolve": False})
    t_spf, w_spf, _ = _sporco_solve(where, d, s, lmbda, {**fixed_opts, "FastSolve": True})
    t_spa, w_spa, obj_spa, k_spa = _sporco_adaptive(where, d, s, lmbda, iters=500, tol=1e-3)
    return {
        "fixed_s": t_sp, "fast_s": t_spf, "fixed_wall": w_sp, "fast_wall": w_spf,
        "fixed_obj": float(b.itstat[-1].ObjFun), "adapt_s": t_spa, "adapt_wall": w_spa,
        "adapt_obj": obj_spa, "adapt_it": k_spa,
    }


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
    ap.add_argument("--batch-size", type=int, default=None, help="image size of the vmap batch (default: first size)")
    ap.add_argument("--groups", type=int, default=None, help="fft_groups of the solver (default: its own choice)")
    ap.add_argument("--sweep", type=int, nargs="*", default=[], help="also time these fft_groups (fixed rho)")
    ap.add_argument("--cores", type=int, default=None, help="pin to this many cores (set before JAX starts)")
    ap.add_argument("--sporco", nargs="*", choices=("cpu", "gpu"), default=["cpu"],
                    help="where sporco runs: its numpy solver on the CPU, its CuPy variant on the GPU, or both")
    ap.add_argument("--no-sporco", action="store_true", help="run no sporco (same as --sporco with no value)")
    ap.add_argument("--sporco-max-size", type=int, default=None, help="run sporco only up to this size")
    args = ap.parse_args()
    sporco_where = [] if args.no_sporco else list(dict.fromkeys(args.sporco))
    for where in list(sporco_where):
        try:
            _sporco(where)
        except Exception as e:  # noqa: BLE001 - report and go on without that opponent
            print(f"sporco on the {where} is left out: {type(e).__name__}: {e}")
            sporco_where.remove(where)

    name = "csr32" if "csr32" in shipped_dictionaries() else None
    d = load_dictionary(name_or_path=name) if name else load_dictionary(name_or_path=str(DATA / "reference_models/liu2016_csr_dict/dict.mat"))
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
        for where in sporco_where if size <= (args.sporco_max_size or size) else ():
            try:
                row.setdefault("sporco", {})[where] = _sporco_row(where, d, s, lmbda, it)
            except Exception as e:  # noqa: BLE001 - one failing opponent should not lose the other rows
                print(f"sporco on the {where} failed at {size}^2: {type(e).__name__}: {e}")
        rows.append(row)

    print()
    print(f"### CBPDN, {m} filters {d.shape[0]}x{d.shape[1]}, lambda {lmbda}: {it} iterations, fixed rho 1.5, "
          f"fft_groups {groups}")
    for clock, key in (("CPU", "s"), ("wall", "wall")):
        print()
        print(f"{clock} seconds:")
        print("| size | jfusion | sporco (where): default / FastSolve | speed-up (vs FastSolve) | objective jf / sporco | "
              f"FFT floor, {groups} calls | jf / floor | fastest floor (calls) | jf / fastest | compile s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            jf = r[f"jf_fixed_{key}"]
            fl = r[f"floor_{key}"]
            bg, bt = r[f"best_floor_{key}"]
            bt = bt[0] if key == "s" else bt[1]
            tail = f"{_f(fl)} | {jf / fl:.2f} | {_f(bt)} ({bg}) | {jf / bt:.2f} | {r['compile_s']:.1f} |"
            for where, sp in r.get("sporco", {"": None}).items():
                if sp is None:
                    print(f"| {r['size']}^2 | {_f(jf)} | - | - | {r['jf_fixed_obj']:.5g} | {tail}")
                    continue
                spd, spf = sp[f"fixed_{key}"], sp[f"fast_{key}"]
                print(f"| {r['size']}^2 | {_f(jf)} | ({where}) {_f(spd)} / {_f(spf)} | {spd / jf:.1f}x "
                      f"({spf / jf:.1f}x) | {r['jf_fixed_obj']:.5g} / {sp['fixed_obj']:.5g} | {tail}")
    print()
    print("### Default adaptive rho, tolerance 1e-3, at most 500 iterations")
    print("| size | jfusion CPU s (iters) | sporco (where) CPU s (iters) | speed-up CPU | jfusion / sporco wall s | "
          "speed-up wall | objective jf / sporco |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        head = f"| {r['size']}^2 | {_f(r['jf_adapt_s'])} ({r['jf_adapt_it']}) |"
        for where, sp in r.get("sporco", {"": None}).items():
            if sp is None:
                print(f"{head} - | - | {_f(r['jf_adapt_wall'])} / - | - | {r['jf_adapt_obj']:.5g} |")
                continue
            print(f"{head} ({where}) {_f(sp['adapt_s'])} ({sp['adapt_it']}) | {sp['adapt_s'] / r['jf_adapt_s']:.1f}x | "
                  f"{_f(r['jf_adapt_wall'])} / {_f(sp['adapt_wall'])} | {sp['adapt_wall'] / r['jf_adapt_wall']:.1f}x | "
                  f"{r['jf_adapt_obj']:.5g} / {sp['adapt_obj']:.5g} |")
    if sweep:
        print()
        print("### fft_groups sweep (fixed rho), each against the floor made of the same FFT calls")
        print("| size | groups | jfusion CPU s | floor CPU s | ratio | jfusion wall s | floor wall s | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for size, g, t, w, ft, fw in sweep:
            print(f"| {size}^2 | {g} | {_f(t)} | {_f(ft)} | {t / ft:.2f} | {_f(w)} | {_f(fw)} | {w / fw:.2f} |")

    # batch throughput under vmap
    size = args.batch_size or args.sizes[0]
    sb = jnp.asarray(np.stack([_image(size) * (1 + 0.1 * i) for i in range(args.batch)]))
    batched = jax.jit(jax.vmap(
        lambda x: cbpdn(d, x, lmbda, max_iter=it, rho=1.5, auto_rho=False, tol=0.0, fft_groups=groups)[0]))
    batched(sb).block_until_ready()
    fn = lambda: batched(sb).block_until_ready()  # noqa: E731
    t_b = _best(fn, args.repeat)
    w_b = WALL[id(fn)]
    r0 = next((r for r in rows if r["size"] == size), None)
    print()
    print(f"### vmap batch of {args.batch} images {size}^2, {it} iterations")
    print(f"| batch CPU s | batch wall s | images/s (wall) | single-image CPU / wall s x {args.batch} |")
    print("|---|---|---|---|")
    single = "-" if r0 is None else f"{_f(r0['jf_fixed_s'] * args.batch)} / {_f(r0['jf_fixed_wall'] * args.batch)}"
    print(f"| {_f(t_b)} | {_f(w_b)} | {args.batch / w_b:.2f} | {single} |")


if __name__ == "__main__":
    main()
