"""Writing a :class:`jfusion.bench.BenchResult`: tables, statistics, figures and the HTML report.

The files under ``<out>/tables``, ``<out>/figures`` and ``<out>/report.html`` are derived from
the cache and rewritten on every run (atomically), so a resumed run ends with the tables an
uninterrupted run writes.
"""

from __future__ import annotations

from pathlib import Path

from jfusion.bench import _stats, _tables
from jfusion.bench._cache import safe_name
from jfusion.io import write_text

__all__ = ["write_outputs"]


def write_outputs(result, *, report: bool = True) -> list[Path]:
    files: list[Path] = []
    rp = result.config.report
    for ds, scenes in result.scenes.items():
        vals = result.values[ds]
        methods = [m for m in result.methods if vals.get(m)]
        folder = result.out / "tables" / safe_name(ds)
        args = (vals, methods, result.metrics)
        texts = {
            "mean.csv": _tables.csv_mean(*args),
            "per_image.csv": _tables.csv_per_image(*args, scenes),
            "mean.md": _tables.markdown_mean(*args, result.directions),
            "per_image.md": _tables.markdown_per_image(*args, result.directions, scenes),
            "mean.tex": _tables.latex_mean(*args, result.directions, caption=f"{ds}: mean over {len(scenes)} scenes; best in bold."),
            "per_image.tex": _tables.latex_per_image(*args, result.directions, scenes, caption=f"{ds}: per scene; best per scene in bold."),
        }
        means = _tables.mean_table(*args)
        ranks = _tables.mean_ranks(means, result.directions)
        texts["ranks.csv"] = "method,mean_rank\n" + "".join(f"{m},{r!r}\n" for m, r in zip(methods, ranks.tolist()))
        if report and rp.stats and len(methods) > 1:
            rows = _stats.wilcoxon_table(*args)
            rho = _stats.spearman_matrix(*args)
            texts["wilcoxon.csv"] = _stats.csv_wilcoxon(rows)
            texts["wilcoxon.md"] = _stats.markdown_wilcoxon(rows, methods, result.metrics)
            texts["spearman.csv"] = _stats.csv_spearman(rho, result.metrics)
            texts["spearman.md"] = _stats.markdown_spearman(rho, result.metrics)
        for name, text in texts.items():
            files.append(write_text(folder / name, text, overwrite=True))
    if report and (rp.figures or rp.html or rp.efficiency):
        from jfusion.bench._report import write_report

        files += write_report(result)
    return files
