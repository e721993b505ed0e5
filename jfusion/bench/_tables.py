"""Result tables: per-image and mean, as CSV, Markdown and LaTeX (the layout of VIFB's / DLPan-Toolbox's tables).

``values[method][scene][metric]`` -> float. The mean table has one row per method (first column
its label) and one column per metric (its registered name); Markdown / LaTeX add each metric's
direction (↑ higher is better, ↓ lower, →0 closest to zero), mark the best value per column in
bold, and give each method's mean rank: per metric the methods are ranked on their means (1 =
best, ties share the lower rank), and the ranks averaged over the metrics. CSV files carry full
precision (``repr``), Markdown / LaTeX 4 significant digits.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["mean_table", "mean_ranks", "best_index", "csv_mean", "csv_per_image", "markdown_mean", "markdown_per_image",
           "latex_mean", "latex_per_image", "ARROWS"]

Values = Mapping[str, Mapping[str, Mapping[str, float]]]
ARROWS = {"higher": "↑", "lower": "↓", "zero": "→0"}
_TEX_ARROWS = {"higher": r"$\uparrow$", "lower": r"$\downarrow$", "zero": r"$\to 0$"}


def mean_table(values: Values, methods: Sequence[str], metrics: Sequence[str]) -> np.ndarray:
    """``(methods, metrics)`` means over each method's scenes (NaN where a scene's value is NaN)."""
    out = np.full((len(methods), len(metrics)), np.nan)
    for i, m in enumerate(methods):
        rows = list(values.get(m, {}).values())
        for j, k in enumerate(metrics):
            if rows:
                out[i, j] = float(np.mean([r[k] for r in rows]))
    return out


def _score(col: np.ndarray, direction: str) -> np.ndarray:
    """Smaller is better: the column turned into a cost (NaN -> +inf)."""
    s = -col if direction == "higher" else np.abs(col) if direction == "zero" else col
    return np.where(np.isfinite(s), s, np.inf)


def best_index(col: np.ndarray, direction: str) -> set[int]:
    """Rows holding the best finite value of ``col`` (all ties)."""
    s = _score(np.asarray(col, float), direction)
    if not np.any(np.isfinite(s)):
        return set()
    return set(np.nonzero(s == s.min())[0].tolist())


def mean_ranks(means: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Each method's rank per metric (1 = best, ties share the lower rank), averaged over metrics."""
    ranks = np.zeros_like(means)
    for j, d in enumerate(directions):
        s = _score(means[:, j], d)
        ranks[:, j] = [1 + int(np.sum(s < v)) for v in s]
    return ranks.mean(axis=1) if means.shape[1] else ranks[:, 0]


def _fmt(v: float) -> str:
    return "nan" if not math.isfinite(v) else f"{v:.4g}"


def _csv(rows: list[list[object]]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def csv_mean(values: Values, methods: Sequence[str], metrics: Sequence[str]) -> str:
    """``method,<metric>...``: one row per method, full precision."""
    means = mean_table(values, methods, metrics)
    return _csv([["method", *metrics]] + [[m, *(repr(float(v)) for v in means[i])] for i, m in enumerate(methods)])


def csv_per_image(values: Values, methods: Sequence[str], metrics: Sequence[str], scenes: Sequence[str]) -> str:
    """``image,method,<metric>...``: one row per scene and method, full precision."""
    rows: list[list[object]] = [["image", "method", *metrics]]
    for s in scenes:
        for m in methods:
            if s in values.get(m, {}):
                rows.append([s, m, *(repr(float(values[m][s][k])) for k in metrics)])
    return _csv(rows)


def _md(header: list[str], body: list[list[str]], n_text: int = 1) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i < n_text else "---:" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body]) + "\n"


def _mean_rows(
    values: Values, methods: Sequence[str], metrics: Sequence[str], directions: Sequence[str], *, bold, name
) -> list[list[str]]:
    """Rows ``[name(method), mean per metric..., mean rank]`` with the best per column passed through ``bold``."""
    means = mean_table(values, methods, metrics)
    ranks = mean_ranks(means, directions)
    best = [best_index(means[:, j], d) for j, d in enumerate(directions)]
    best_rank = best_index(ranks, "lower")
    body = []
    for i, m in enumerate(methods):
        cells = [bold(_fmt(v)) if i in best[j] else _fmt(v) for j, v in enumerate(means[i])]
        r = f"{ranks[i]:.2f}"
        body.append([name(m), *cells, bold(r) if i in best_rank else r])
    return body


def markdown_mean(values: Values, methods: Sequence[str], metrics: Sequence[str], directions: Sequence[str]) -> str:
    """The mean table in Markdown, best per column in bold, with each method's mean rank."""
    body = _mean_rows(values, methods, metrics, directions, bold=lambda t: f"**{t}**", name=str)
    return _md(["method", *(f"{k} {ARROWS[d]}" for k, d in zip(metrics, directions)), "mean rank ↓"], body)


def markdown_per_image(values: Values, methods: Sequence[str], metrics: Sequence[str], directions: Sequence[str], scenes: Sequence[str]) -> str:
    """Per scene and method, the best method of each scene in bold per metric."""
    body = []
    for s in scenes:
        ms = [m for m in methods if s in values.get(m, {})]
        arr = np.array([[values[m][s][k] for k in metrics] for m in ms], float).reshape(len(ms), len(metrics))
        best = [best_index(arr[:, j], d) for j, d in enumerate(directions)]
        for i, m in enumerate(ms):
            body.append([s, m, *(f"**{_fmt(v)}**" if i in best[j] else _fmt(v) for j, v in enumerate(arr[i]))])
    return _md(["image", "method", *(f"{k} {ARROWS[d]}" for k, d in zip(metrics, directions))], body, 2)


def _tex(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%").replace("#", r"\#")


def _tex_table(header: list[str], body: list[list[str]], n_text: int, caption: str) -> str:
    cols = "l" * n_text + "r" * (len(header) - n_text)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex(caption)}}}", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in body]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def latex_mean(values: Values, methods: Sequence[str], metrics: Sequence[str], directions: Sequence[str], *, caption: str = "") -> str:
    """The mean table as a booktabs ``tabular``, best per column in ``\\textbf``."""
    body = _mean_rows(values, methods, metrics, directions, bold=lambda t: rf"\textbf{{{t}}}", name=_tex)
    header = ["Method", *(f"{_tex(k)} {_TEX_ARROWS[d]}" for k, d in zip(metrics, directions)), r"Rank $\downarrow$"]
    return _tex_table(header, body, 1, caption or "Mean over the scenes; best in bold.")


def latex_per_image(values: Values, methods: Sequence[str], metrics: Sequence[str], directions: Sequence[str], scenes: Sequence[str], *, caption: str = "") -> str:
    """Per scene and method as a booktabs ``tabular``, the best method of each scene in bold."""
    body = []
    for s in scenes:
        ms = [m for m in methods if s in values.get(m, {})]
        arr = np.array([[values[m][s][k] for k in metrics] for m in ms], float).reshape(len(ms), len(metrics))
        best = [best_index(arr[:, j], d) for j, d in enumerate(directions)]
        for i, m in enumerate(ms):
            body.append([_tex(s), _tex(m), *(rf"\textbf{{{_fmt(v)}}}" if i in best[j] else _fmt(v) for j, v in enumerate(arr[i]))])
    header = ["Image", "Method", *(f"{_tex(k)} {_TEX_ARROWS[d]}" for k, d in zip(metrics, directions))]
    return _tex_table(header, body, 2, caption or "Per scene; best per scene in bold.")
