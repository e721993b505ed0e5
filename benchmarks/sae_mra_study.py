"""Azarang & Ghassemian's study for ``sae-mra``: patch size, patch overlap and number of training samples.

    PYTHONPATH=$PWD JFUSION_DATA=../shared/data python benchmarks/sae_mra_study.py \
        [--sensors IKONOS,GeoEye1,WV2] [--patches 5,7,9] [--samples 2000,8000,32000] [--overlaps 0,0.5,0.75] \
        [--steps 6000] [--runs runs/saemra/study] [--write] [--only-done]

For every sensor, patch side and sample count it trains the SAE with the registered recipe
(``jfusion train sae-mra --scene S --patch P --samples N --steps T``, i.e.
:func:`jfusion.training.pansharpening.train_and_evaluate` on the scene's **train strip**) into
``<runs>/<sensor>-p<P>-n<N>`` (resumable: a finished run is reused), then scores the asset on the
**validation strip** (reduced resolution, Wald's protocol; the test strip is never read) at every
overlap and both injection gains (``unit``, ``cbd``), next to EXP. ``--write`` writes
``benchmarks/results/sae_mra_study.md`` and ``.json``. The defaults of ``sae-mra`` and of its
recipe were chosen from this table (validation only).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax

from jfusion.pansharpening import read_scene
from jfusion.training import protocol
from jfusion.training.pansharpening import SCENES, resolve_scene, score_strip, train_and_evaluate
from jfusion.training.recipes import configure, get_recipe

RESULTS = Path(__file__).resolve().parent / "results"


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sensors", default="IKONOS,GeoEye1,WV2")
    ap.add_argument("--patches", default="5,7,9")
    ap.add_argument("--samples", default="2000,8000,32000")
    ap.add_argument("--overlaps", default="0,0.5,0.75")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--runs", default="runs/saemra/study")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--only-done", action="store_true", help="tabulate the finished runs of the grid, train nothing")
    args = ap.parse_args()
    overlaps = [float(o) for o in args.overlaps.split(",") if o]
    recipe = get_recipe("sae-mra")
    runs = Path(args.runs)
    rows: list[dict] = []
    t_all = time.time()
    for sensor in [s for s in args.sensors.split(",") if s]:
        scene = read_scene(resolve_scene(SCENES[sensor], "pansharpening"))
        split = protocol.column_split(scene.ms.shape[1], scene.ratio)
        ms_va, pan_va = protocol.validation_strip(split, scene.ms, scene.pan)
        kw = dict(ratio=scene.ratio, sensor=scene.sensor, bit_depth=scene.bit_depth)
        exp = score_strip(ms_va, pan_va, "exp", **kw)
        for patch in _ints(args.patches):
            for samples in _ints(args.samples):
                work = runs / f"{sensor}-p{patch}-n{samples}"
                done = work / "scores.json"
                if done.exists():
                    rows += json.loads(done.read_text())
                    continue
                if args.only_done:
                    continue
                config = configure(recipe.config, scene=SCENES[sensor], patch=patch, samples=samples, steps=args.steps)
                t0 = time.time()
                man = train_and_evaluate(config, work, force=True, score=False, progress=False)
                train_s = time.time() - t0
                asset = str(work / f"sae-mra-{man['sensor']}")
                part = []
                for overlap in overlaps:
                    for gain in ("unit", "cbd"):
                        t1 = time.time()
                        sc = score_strip(ms_va, pan_va, "sae-mra", weights=asset, overlap=overlap, gain=gain, **kw)
                        part.append({"sensor": sensor, "patch": patch, "samples": samples, "overlap": overlap, "gain": gain,
                                     **sc, "exp": exp, "ships": protocol.ship_decision({"model": sc, "exp": exp}),
                                     "train_seconds": round(train_s, 1), "score_seconds": round(time.time() - t1, 1)})
                jax.clear_caches()
                done.write_text(json.dumps(part, indent=1) + "\n")
                rows += part
                print(f"{sensor} patch {patch} samples {samples}: trained in {train_s:.0f} s; "
                      + "; ".join(f"ov {r['overlap']:g} {r['gain']}: Q2n {r['q2n']:.4f} SAM {r['sam']:.3f} ERGAS {r['ergas']:.3f}"
                                  for r in part), flush=True)
    total = time.time() - t_all
    md = markdown(rows, steps=args.steps, total=total)
    print(md)
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "sae_mra_study.md").write_text(md)
        (RESULTS / "sae_mra_study.json").write_text(json.dumps({"steps": args.steps, "rows": rows, "seconds": round(total, 1),
                                                                  "cpus": os.cpu_count()}, indent=1) + "\n")


def _fmt(r: dict) -> str:
    return f"{r['q2n']:.4f} / {r['sam']:.3f} / {r['ergas']:.3f}" + ("" if r["ships"] else " (no)")


def summary(rows: list[dict]) -> str:
    """Two compact tables: patch side x samples (overlap 0.75, CBD gain) and overlap x gain (patch 7, 8000 samples);
    each cell Q2n / SAM / ERGAS on the validation strip, "(no)" where it does not beat EXP on all three."""
    sensors = list(dict.fromkeys(r["sensor"] for r in rows))
    out = ["Patch side and training samples (overlap 0.75, CBD gain); Q2n / SAM° / ERGAS on the validation strip:", "",
           "| patch | samples | " + " | ".join(sensors) + " |", "|---|---|" + "---|" * len(sensors)]
    keys = sorted({(r["patch"], r["samples"]) for r in rows})
    for patch, n in keys:
        cells = []
        for sen in sensors:
            hit = [r for r in rows if (r["sensor"], r["patch"], r["samples"], r["overlap"], r["gain"]) == (sen, patch, n, 0.75, "cbd")]
            cells.append(_fmt(hit[0]) if hit else "-")
        out.append(f"| {patch} | {n} | " + " | ".join(cells) + " |")
    out += ["", "Overlap and injection gain (patch 7, 8000 samples):", "",
            "| overlap | gain | " + " | ".join(sensors) + " |", "|---|---|" + "---|" * len(sensors)]
    for ov in sorted({r["overlap"] for r in rows}):
        for gain in ("unit", "cbd"):
            cells = []
            for sen in sensors:
                hit = [r for r in rows if (r["sensor"], r["patch"], r["samples"], r["overlap"], r["gain"]) == (sen, 7, 8000, ov, gain)]
                cells.append(_fmt(hit[0]) if hit else "-")
            out.append(f"| {ov:g} | {gain} | " + " | ".join(cells) + " |")
    exp = {r["sensor"]: r["exp"] for r in rows}
    out += ["", "EXP on the same strips: " + "; ".join(f"{k} {v['q2n']:.4f} / {v['sam']:.3f} / {v['ergas']:.3f}" for k, v in exp.items()) + "."]
    return "\n".join(out) + "\n"


def markdown(rows: list[dict], *, steps: int, total: float) -> str:
    lines = ["# sae-mra: patch size, overlap and training samples (validation strips)", "",
             f"`benchmarks/sae_mra_study.py`: SAE trained {steps} Adam steps (batch 256) by the `sae-mra` recipe on each "
             "scene's train strip, scored on its validation strip (reduced resolution); the test strips are not read. "
             f"Wall time of this invocation {total / 60:.1f} min (runs already done are reused, their training seconds "
             "are in the rows).", "",
             summary(rows), "All runs:", "",
             "| sensor | patch | samples | overlap | gain | Q2n ↑ | SAM° ↓ | ERGAS ↓ | EXP Q2n / SAM / ERGAS | beats EXP (all 3) | train s | score s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r["exp"]
        lines.append(f"| {r['sensor']} | {r['patch']} | {r['samples']} | {r['overlap']:g} | {r['gain']} | {r['q2n']:.4f} | "
                     f"{r['sam']:.3f} | {r['ergas']:.3f} | {e['q2n']:.4f} / {e['sam']:.3f} / {e['ergas']:.3f} | "
                     f"{'yes' if r['ships'] else 'no'} | {r['train_seconds']} | {r['score_seconds']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
