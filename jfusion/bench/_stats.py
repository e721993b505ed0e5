"""Paired significance tests between methods and rank correlation between metrics (scipy.stats).

* Wilcoxon signed-rank (``scipy.stats.wilcoxon``, two-sided, zero differences dropped as in
  Wilcoxon's original test) per metric, per pair of methods, over the scenes both evaluated.
* Spearman's rank correlation (``scipy.stats.spearmanr``) between every two metrics, over all
  (scene, method) rows of a dataset.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["wilcoxon_table", "spearman_matrix", "csv_wilcoxon", "markdown_wilcoxon", "csv_spearman", "markdown_spearman"]


def wilcoxon_table(values: Mapping, methods: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Rows ``{metric, a, b, n, statistic, p}`` for every metric and pair of methods (NaN p when undefined)."""
    from scipy.stats import wilcoxon

    rows = []
    for k in metrics:
        for a, b in itertools.combinations(methods, 2):
            common = [s for s in values.get(a, {}) if s in values.get(b, {})]
            x = np.array([values[a][s][k] for s in common], float)
            y = np.array([values[b][s][k] for s in common], float)
            ok = np.isfinite(x) & np.isfinite(y)
            x, y = x[ok], y[ok]
            if len(x) == 0 or np.all(x == y):
                stat, p = math.nan, math.nan
            else:
                r = wilcoxon(x, y)
                stat, p = float(r.statistic), float(r.pvalue)
            rows.append({"metric": k, "a": a, "b": b, "n": int(len(x)), "statistic": stat, "p": p})
    return rows


def spearman_matrix(values: Mapping, methods: Sequence[str], metrics: Sequence[str]) -> np.ndarray:
    """``(metrics, metrics)`` Spearman's rho over all (scene, method) rows (NaN for constant metrics)."""
    from scipy.stats import spearmanr

    rows = np.array([[values[m][s][k] for k in metrics] for m in methods for s in values.get(m, {})], float)
    if rows.shape[0] < 3 or len(metrics) < 2:
        return np.full((len(metrics), len(metrics)), np.nan)
    rho = np.asarray(spearmanr(rows).statistic, float)
    if rho.ndim == 0:  # two metrics: scipy returns the one coefficient
        rho = np.array([[1.0, float(rho)], [float(rho), 1.0]])
    return rho


def _num(v: float, fmt: str) -> str:
    return "nan" if not math.isfinite(v) else format(v, fmt)


def csv_wilcoxon(rows: list[dict]) -> str:
    lines = ["metric,method_a,method_b,n,statistic,p_value"]
    lines += [f"{r['metric']},{r['a']},{r['b']},{r['n']},{r['statistic']!r},{r['p']!r}" for r in rows]
    return "\n".join(lines) + "\n"


def markdown_wilcoxon(rows: list[dict], methods: Sequence[str], metrics: Sequence[str]) -> str:
    """One p-value matrix per metric (upper triangle), p < 0.05 in bold."""
    out = []
    by = {(r["metric"], r["a"], r["b"]): r for r in rows}
    for k in metrics:
        out.append(f"**{k}** (Wilcoxon signed-rank p-values, two-sided)\n")
        out.append("| | " + " | ".join(methods[1:]) + " |")
        out.append("|---|" + "---:|" * (len(methods) - 1))
        for i, a in enumerate(methods[:-1]):
            cells = []
            for j, b in enumerate(methods[1:], start=1):
                if j <= i:
                    cells.append("")
                    continue
                p = by[(k, a, b)]["p"]
                s = _num(p, ".3g")
                cells.append(f"**{s}**" if math.isfinite(p) and p < 0.05 else s)
            out.append(f"| {a} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def csv_spearman(rho: np.ndarray, metrics: Sequence[str]) -> str:
    lines = ["metric," + ",".join(metrics)]
    lines += [f"{k}," + ",".join(repr(float(v)) for v in rho[i]) for i, k in enumerate(metrics)]
    return "\n".join(lines) + "\n"


def markdown_spearman(rho: np.ndarray, metrics: Sequence[str]) -> str:
    lines = ["| | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    lines += [f"| {k} | " + " | ".join(_num(float(v), ".2f") for v in rho[i]) + " |" for i, k in enumerate(metrics)]
    return "\n".join(lines) + "\n"
