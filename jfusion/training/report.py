"""The final report: the one reader of the test strips (:mod:`jfusion.training.protocol`).

:func:`final_report` scores every shipped pan-sharpening and MS/HS asset on its scene's test strip
(reduced resolution), next to EXP and every classical pan-sharpening method of the registry on the
same strip, writes the scores into the asset's manifest (``scores.test``) and returns a table. An
asset's test strip is read **once**: the manifest records the sha256 of the file it scored
(``test_read``), and a later report reuses those scores instead of reading the strip again (a new
training run writes a new file, whose sha256 differs). Nothing here trains, chooses steps or
deletes weights: the ship decision was taken on the validation strip when the asset was trained.

Command line: ``jfusion train final-report [--out benchmarks/results/learned_test.md]``.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from jfusion import assets
from jfusion.training import protocol

__all__ = ["final_report", "report_markdown", "CLASSICAL_FAMILIES"]

CLASSICAL_FAMILIES = ("cs", "mra")
"""Registry families whose pan-sharpening methods are the classical comparison of the report."""

VARIANTS = {
    "sae": {"inject": {"inject": True}},
    "sae-mra": {"unit": {"gain": "unit"}, "disjoint": {"overlap": 0.0}},
    "pnn": {"adapt": {"adapt": True}},
    "pnn-residual": {"adapt": {"adapt": True}},
    "drpnn": {"adapt": {"adapt": True}},
}
"""Named options of a learned method that the report scores as well (``scores.test["model_<label>"]``):
``sae`` with the PAN-detail injection beside the SAE's own restoration; ``sae-mra`` (CBD gain, 75 % overlap by
default) with unit gain and with disjoint patches as well (Azarang & Ghassemian's gain and overlap); the PNN family with target-adaptive
fine-tuning (``adapt=True``, PNN+)."""

ROBUSTNESS = (("exp", {}), ("gsa", {}), ("mtf-glp", {}), ("pnn", {}), ("pnn", {"adapt": True}))
"""Methods scored under a degradation other than the training one (the generic Gaussian MTF, Nyquist gain 0.3,
instead of the sensor's): the methods are still told the scene's sensor, as a user who does not know the true
degradation would."""


def _other_degradation(scene: Any) -> dict[str, dict[str, float]]:
    """Test-strip scores of :data:`ROBUSTNESS` when the strip is degraded with the generic MTF (inside the report)."""
    import jfusion
    from jfusion.metrics import remote as rm
    from jfusion.pansharpening import wald

    split = protocol.column_split(scene.ms.shape[1], scene.ratio)
    ms, pan = protocol.test_strip(split, scene.ms, scene.pan)
    pair = wald.reduced_resolution(ms, pan, ratio=scene.ratio, sensor=None)
    out: dict[str, dict[str, float]] = {}
    for method, options in ROBUSTNESS:
        label = method + (" (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")" if options else "")
        try:
            f = jfusion.pansharpen(pair.ms_lr, pair.pan_lr, method=method, sensor=scene.sensor, bit_depth=scene.bit_depth, **options)
        except Exception as err:  # a learned model without weights for this sensor: reported, not hidden
            out[label] = {"error": str(err)}  # type: ignore[dict-item]
            continue
        out[label] = {"q2n": float(rm.q2n(pair.reference, f)), "sam": float(rm.sam(pair.reference, f)),
                      "ergas": float(rm.ergas(pair.reference, f, ratio=scene.ratio))}
    return out


def _data_root(data_dir: str | Path | None) -> Path:
    from jfusion.training.pansharpening import _data_root as default

    return Path(data_dir) if data_dir else default()


def _classical() -> list[str]:
    from jfusion.pansharpening import list_pansharpening_methods

    return [m.name for m in list_pansharpening_methods() if m.family in CLASSICAL_FAMILIES]


def final_report(*, data_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Test-strip scores of every shipped asset and of the classical methods on the same scenes.

    Returns ``{"assets": {asset: {"model", "sensor", "scene", "test": {"model", "exp"}, "validation", "ships",
    "reused"}}, "classical": {scene: {method: scores}}}``; each asset's manifest gets ``scores.test`` and
    ``test_read`` (the sha256 it scored, the date).

    Args:
      data_dir: the shared data folder (default ``$JFUSION_DATA`` or ``../shared/data``).
      progress: print one line per asset.
    """
    from jfusion.pansharpening import learned
    from jfusion.pansharpening.io import read_scene
    from jfusion.training.pansharpening import score_cnn3d_mshs, score_on_test_region

    root = _data_root(data_dir)
    rows: dict[str, Any] = {}
    scenes: dict[str, Any] = {}
    with protocol.reading_test():
        for npz in assets.find_assets(learned.WEIGHTS_DIR):
            meta = assets.read_manifest(npz)
            read = meta.get("test_read") or {}
            test = (meta.get("scores") or {}).get("test") or {}
            reused = bool(test) and read.get("sha256") == meta["sha256"]
            if meta["model"] != "cnn3d-mshs" and meta["scene"] not in scenes:  # the classical rows need every scene
                scenes[meta["scene"]] = read_scene(root / "pansharpening" / meta["scene"])
            if not reused:
                if meta["model"] == "cnn3d-mshs":
                    test = score_cnn3d_mshs(root / "hyperspectral" / meta["scene"], full_resolution=True)
                else:
                    scene = scenes[meta["scene"]]
                    test = {"model": score_on_test_region(scene, meta["model"]), "exp": score_on_test_region(scene, "exp")}
                    for label, options in VARIANTS.get(meta["model"], {}).items():
                        test[f"model_{label}"] = score_on_test_region(scene, meta["model"], **options)
                meta = assets.update_manifest(npz, {
                    "scores": {**meta["scores"], "test": test},
                    "test_read": {"sha256": meta["sha256"], "date": datetime.date.today().isoformat()},
                })
            rows[npz.stem] = {
                "model": meta["model"], "sensor": meta.get("sensor"), "scene": meta["scene"], "test": test,
                "validation": (meta.get("scores") or {}).get("validation") or {}, "ships": meta.get("ships"), "reused": reused,
            }
            if progress:
                m = test["model"]
                qk = "q2n" if "q2n" in m else "q"
                print(f"{npz.stem:28s} {qk} {m[qk]:.4f}  SAM {m['sam']:.3f}  ERGAS {m['ergas']:.3f}" + ("  (recorded)" if reused else ""))
        classical: dict[str, dict[str, dict[str, float]]] = {}
        robustness: dict[str, dict[str, dict[str, float]]] = {}
        for name, scene in sorted(scenes.items()):
            classical[name] = {m: score_on_test_region(scene, m) for m in _classical()}
            robustness[name] = _other_degradation(scene)
    return {"assets": rows, "classical": classical, "other_degradation": robustness}


def _best(scores: dict[str, dict[str, float]], key: str) -> tuple[str, float]:
    pick = max if key.startswith("q") else min
    name = pick(scores, key=lambda n: scores[n][key])
    return name, scores[name][key]


def report_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: one table per scene (learned assets, EXP, classical methods) and the bar of
    :mod:`jfusion.training.protocol`'s issue: does the best learned model beat the best classical one on
    Q2n, SAM and ERGAS together."""
    lines = ["# Learned models on the test strips (final report)", "",
             "Reduced resolution (Wald's protocol), the right quarter of each scene; read once per asset file by",
             "`jfusion train final-report` (`jfusion.training.report`). Ship decisions were taken on the validation",
             "strip (`ships`); the test scores below are reported whatever they are.", ""]
    by_scene: dict[str, dict[str, dict[str, float]]] = {}
    ships: dict[str, Any] = {}
    for asset, row in report["assets"].items():
        if row["model"] == "cnn3d-mshs":
            continue
        by_scene.setdefault(row["scene"], {})[row["model"]] = row["test"]["model"]
        by_scene[row["scene"]]["exp"] = row["test"]["exp"]
        ships[(row["scene"], row["model"])] = row["ships"]
        for label, options in VARIANTS.get(row["model"], {}).items():
            if f"model_{label}" in row["test"]:
                variant = row["model"] + " (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"
                by_scene[row["scene"]][variant] = row["test"][f"model_{label}"]
                ships[(row["scene"], variant)] = "option"
    for scene, learned_scores in sorted(by_scene.items()):
        classical = report["classical"].get(scene, {})
        lines += [f"## {scene}", "", "| method | kind | Q2n | SAM | ERGAS | ships (validation) |", "|---|---|---|---|---|---|"]
        for name, s in sorted(learned_scores.items()):
            kind = "baseline" if name == "exp" else "learned"
            flag = "" if name == "exp" else str(ships.get((scene, name)))
            lines.append(f"| {name} | {kind} | {s['q2n']:.4f} | {s['sam']:.3f} | {s['ergas']:.3f} | {flag} |")
        for name, s in sorted(classical.items()):
            lines.append(f"| {name} | classical | {s['q2n']:.4f} | {s['sam']:.3f} | {s['ergas']:.3f} | |")
        learned_only = {k: v for k, v in learned_scores.items() if k != "exp"}
        if classical and learned_only:
            verdict = []
            for key in ("q2n", "sam", "ergas"):
                (ln, lv), (cn, cv) = _best(learned_only, key), _best(classical, key)
                better = lv > cv if key == "q2n" else lv < cv
                verdict.append(f"{key}: best learned {ln} {lv:.4g} vs best classical {cn} {cv:.4g} ({'better' if better else 'not better'})")
            lines += ["", "Bar (best learned vs best classical): " + "; ".join(verdict) + "."]
            adapted = learned_only.get("pnn (adapt=True)")
            if adapted is not None:
                wins = [k for k in ("q2n", "sam", "ergas")
                        if (adapted[k] > _best(classical, k)[1] if k == "q2n" else adapted[k] < _best(classical, k)[1])]
                lines += ["", f"pnn (adapt=True) vs the best classical value per index: better on {len(wins)} of 3"
                          + (f" ({', '.join(wins)})" if wins else "") + "."]
        lines.append("")
    other = report.get("other_degradation") or {}
    if other:
        lines += ["## Another degradation than the training one", "",
                  "The test strips degraded with the generic Gaussian MTF (Nyquist gain 0.3) instead of the sensor's; the methods "
                  "are told the scene's sensor, as a user who does not know the true degradation would.", "",
                  "| scene | method | Q2n | SAM | ERGAS |", "|---|---|---|---|---|"]
        for scene, rows_ in sorted(other.items()):
            for name, sc in rows_.items():
                if "error" in sc:
                    lines.append(f"| {scene} | {name} | {sc['error']} | | |")
                else:
                    lines.append(f"| {scene} | {name} | {sc['q2n']:.4f} | {sc['sam']:.3f} | {sc['ergas']:.3f} |")
        lines.append("")
    mshs_rows = [(a, r) for a, r in report["assets"].items() if r["model"] == "cnn3d-mshs"]
    if mshs_rows:
        lines += ["## MS/HS fusion (3-D CNN)", "", "| asset | index | model | EXP | SAM model / EXP | ERGAS model / EXP | ships |",
                  "|---|---|---|---|---|---|---|"]
        for asset, r in mshs_rows:
            m, e = r["test"]["model"], r["test"]["exp"]
            qk = "q2n" if "q2n" in m else "q"
            lines.append(f"| {asset} | {qk} | {m[qk]:.4f} | {e[qk]:.4f} | {m['sam']:.3f} / {e['sam']:.3f} | "
                         f"{m['ergas']:.3f} / {e['ergas']:.3f} | {r['ships']} |")
        lines.append("")
    return "\n".join(lines)
