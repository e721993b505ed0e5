"""Figures (matplotlib, PNG + PDF), the efficiency table and one self-contained HTML report.

Figures per dataset under ``<out>/figures/<dataset>/``:

* ``boxplots``: one panel per metric, a box per method over the scenes (direction in the title);
* ``montage_<scene>``: the sources and every method's output of a scene (the first
  ``report.montage_scenes`` scenes);
* ``distortion_plane`` (pan-sharpening, when ``d_lambda`` and ``d_s`` are evaluated): each method's
  mean spectral distortion D_lambda against spatial distortion D_s (ideal: the origin).

``report.html`` embeds every figure (base64 PNG) and table, so it is one file to open or mail.
The efficiency table (``report.efficiency``) gives per registered method: learned parameters
(array elements of its shipped weights), FLOPs of the compiled program from XLA's cost analysis
(``jax.jit(f).lower(x).compile().cost_analysis()``), and latency: median of 5 timed calls after
one warm-up call (compilation excluded) on the dataset's first scene, on the default device.
"""

from __future__ import annotations

import base64
import html
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from jfusion.bench import _stats, _tables
from jfusion.bench._cache import safe_name
from jfusion.io import atomic_output, write_text

__all__ = ["write_report", "efficiency_rows"]


def _save(fig, base: Path) -> list[Path]:
    out = []
    for ext in ("png", "pdf"):
        path = base.with_suffix("." + ext)
        with atomic_output(path, overwrite=True) as tmp:
            fig.savefig(tmp, format=ext, dpi=110, bbox_inches="tight", metadata={"CreationDate": None} if ext == "pdf" else None)
        out.append(path)
    return out


def _boxplots(result, ds: str, methods: list[str]):
    import matplotlib.pyplot as plt

    k = len(result.metrics)
    cols = min(4, k)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    vals = result.values[ds]
    for j, (name, d) in enumerate(zip(result.metrics, result.directions)):
        ax = axes[j // cols][j % cols]
        data = [[vals[m][s][name] for s in vals[m] if math.isfinite(vals[m][s][name])] for m in methods]
        ax.boxplot(data, tick_labels=methods, showmeans=True)
        ax.set_title(f"{name} {_tables.ARROWS[d]}", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for j in range(k, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(f"{ds}: per-scene values ({len(result.scenes[ds])} scenes)", fontsize=10)
    fig.tight_layout()
    return fig


def _show(path: Path) -> np.ndarray:
    from jfusion.io import read_image

    a = read_image(path)
    return a


def _montage(result, ds: str, scene: str, methods: list[str]):
    import matplotlib.pyplot as plt

    srcs = result.sources.get(ds, {}).get(scene, ())
    panels = [(f"source {i + 1}", p) for i, p in enumerate(srcs)]
    panels += [(m, result.fused[ds][m][scene]) for m in methods if scene in result.fused.get(ds, {}).get(m, {})]
    n = len(panels)
    cols = min(n, 5)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.4 * rows), squeeze=False)
    for j, (title, path) in enumerate(panels):
        ax = axes[j // cols][j % cols]
        img = _show(path)
        ax.imshow(np.clip(img, 0, 1), cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(f"{ds}: {scene}", fontsize=10)
    fig.tight_layout()
    return fig


def _plane(result, ds: str, methods: list[str]):
    import matplotlib.pyplot as plt

    vals = result.values[ds]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    for m in methods:
        dl = np.mean([v["d_lambda"] for v in vals[m].values()])
        dsv = np.mean([v["d_s"] for v in vals[m].values()])
        ax.scatter([dl], [dsv], label=m)
        ax.annotate(m, (dl, dsv), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("D_lambda (spectral distortion) ↓")
    ax.set_ylabel("D_s (spatial distortion) ↓")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title(f"{ds}: full-resolution distortions (mean)", fontsize=9)
    fig.tight_layout()
    return fig


def efficiency_rows(result) -> list[dict]:
    """Parameters, FLOPs (XLA cost analysis) and latency of each registered method on the first scene of the first dataset."""
    import functools

    import jax
    import jax.numpy as jnp

    import jfusion
    from jfusion.errors import validate_sources

    rows = []
    ds = next(iter(result.scenes))
    if not result.scenes[ds] or result.config.task in ("pansharpening", "mshs"):
        return rows
    scene = result.scenes[ds][0]
    srcs = result.sources[ds][scene]
    x = jnp.asarray(validate_sources([jfusion.read_image(p) for p in srcs]))
    dev = jax.devices()[0]
    for spec in result.config.methods:
        if spec.external:
            continue
        from jfusion.methods.registry import get_info

        info = get_info(spec.method)
        fn = jax.jit(functools.partial(info.fn, **spec.kwargs()))
        try:
            cost = fn.lower(x).compile().cost_analysis()
        except Exception:  # noqa: BLE001 - a backend without cost analysis
            cost = None
        if isinstance(cost, (list, tuple)):
            cost = cost[0] if cost else None
        flops = float(cost.get("flops", math.nan)) if cost else math.nan
        jax.block_until_ready(fn(x))  # warm-up (compiles)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(x))
            times.append(time.perf_counter() - t0)
        rows.append({"method": spec.label, "params": _param_count(info), "gflops": flops / 1e9,
                     "latency_ms": 1e3 * float(np.median(times)), "size": "x".join(map(str, x.shape)), "device": f"{dev.platform}:{dev.device_kind}"})
    return rows


def _param_count(info: Any) -> int:
    """Array elements of a method's shipped weights (0 for methods without learned weights)."""
    path = getattr(info, "weights_path", None)
    if path is None:
        return 0
    files = [path] if path.is_file() else sorted(path.rglob("*.npz")) if path.is_dir() else []
    if not files:
        return 0
    with np.load(files[0]) as z:
        return int(sum(z[k].size for k in z.files))


def _png_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _html_table(header: list[str], rows: list[list[str]], bold: list[set[int]] | None = None) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, r in enumerate(rows):
        cells = []
        for j, c in enumerate(r):
            b = bold is not None and j > 0 and j - 1 < len(bold) and i in bold[j - 1]
            cells.append(f"<td>{'<b>' if b else ''}{html.escape(c)}{'</b>' if b else ''}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</tbody></table>"


def write_report(result) -> list[Path]:
    """Figures (when ``report.figures``), efficiency table and ``report.html`` (when ``report.html``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rp = result.config.report
    files: list[Path] = []
    sections = [f"<h1>jfusion bench: {html.escape(result.config.task)}</h1>",
                f"<p>{len(result.methods)} methods, metrics: {html.escape(', '.join(result.metrics))} "
                f"(colour rule {html.escape(result.config.metrics.colour)}, {result.config.metrics.dtype}).</p>"]
    for ds, scenes in result.scenes.items():
        vals = result.values[ds]
        methods = [m for m in result.methods if vals.get(m)]
        if not methods:
            continue
        figs: list[tuple[str, Path]] = []
        folder = result.out / "figures" / safe_name(ds)
        if rp.figures:
            fig = _boxplots(result, ds, methods)
            p = _save(fig, folder / "boxplots")
            plt.close(fig)
            files += p
            figs.append(("Per-metric box plots (triangle: mean)", p[0]))
            for scene in scenes[: rp.montage_scenes]:
                if scene in result.sources.get(ds, {}):
                    fig = _montage(result, ds, scene, methods)
                    p = _save(fig, folder / f"montage_{safe_name(scene)}")
                    plt.close(fig)
                    files += p
                    figs.append((f"Sources and outputs: {scene}", p[0]))
            if "d_lambda" in result.metrics and "d_s" in result.metrics:
                fig = _plane(result, ds, methods)
                p = _save(fig, folder / "distortion_plane")
                plt.close(fig)
                files += p
                figs.append(("Spectral vs spatial distortion", p[0]))
        means = _tables.mean_table(vals, methods, result.metrics)
        ranks = _tables.mean_ranks(means, result.directions)
        header = ["method", *(f"{k} {_tables.ARROWS[d]}" for k, d in zip(result.metrics, result.directions)), "mean rank ↓"]
        rows = [[m, *(_tables._fmt(v) for v in means[i]), f"{ranks[i]:.2f}"] for i, m in enumerate(methods)]
        bold = [_tables.best_index(means[:, j], d) for j, d in enumerate(result.directions)] + [_tables.best_index(ranks, "lower")]
        sections.append(f"<h2>{html.escape(ds)}</h2><p>Mean over {len(scenes)} scenes; best per column in bold.</p>")
        sections.append(_html_table(header, rows, bold))
        if rp.stats and len(methods) > 1:
            rho = _stats.spearman_matrix(vals, methods, result.metrics)
            sections.append("<h3>Spearman rank correlation between metrics</h3>")
            sections.append(_html_table(["", *result.metrics], [[k, *(_stats._num(float(v), ".2f") for v in rho[i])] for i, k in enumerate(result.metrics)]))
            wil = _stats.wilcoxon_table(vals, methods, result.metrics)
            sections.append("<details><summary>Paired Wilcoxon signed-rank tests (p-values, two-sided)</summary>")
            sections.append(_html_table(["metric", "method A", "method B", "n", "p"],
                                        [[r["metric"], r["a"], r["b"], str(r["n"]), _stats._num(r["p"], ".3g")] for r in wil]))
            sections.append("</details>")
        for title, png in figs:
            sections.append(f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{_png_b64(png)}'>"
                            f"<figcaption>{html.escape(title)}</figcaption></figure>")
    if rp.efficiency:
        eff = efficiency_rows(result)
        if eff:
            text = "method,params,gflops,latency_ms,size,device\n" + "".join(
                f"{r['method']},{r['params']},{r['gflops']!r},{r['latency_ms']!r},{r['size']},{r['device']}\n" for r in eff)
            files.append(write_text(result.out / "tables" / "efficiency.csv", text, overwrite=True))
            sections.append("<h2>Efficiency</h2><p>Latency: median of 5 calls after one warm-up call (compilation excluded), "
                            f"input {html.escape(eff[0]['size'])}, device {html.escape(eff[0]['device'])}; FLOPs from XLA's cost analysis.</p>")
            sections.append(_html_table(["method", "parameters", "GFLOPs", "latency (ms)"],
                                        [[r["method"], str(r["params"]), f"{r['gflops']:.3g}", f"{r['latency_ms']:.1f}"] for r in eff]))
    if result.missing:
        sections.append("<h2>Not evaluated</h2><ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in result.missing) + "</ul>")
    if rp.html:
        style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:12px;margin:8px 0}"
                 "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
                 "img{max-width:100%}figure{margin:12px 0}")
        doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>jfusion bench</title><style>{style}</style></head>"
               f"<body>{''.join(sections)}</body></html>\n")
        files.append(write_text(result.out / "report.html", doc, overwrite=True))
    return files
