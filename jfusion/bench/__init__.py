"""``jfusion bench``: methods x datasets x metrics, cached and resumable, with the tables and figures a paper needs.

``run(config)`` fuses what is missing, evaluates through the batched metric path
(:func:`jfusion.metrics.evaluate_batch`, scenes bucketed by shape) and writes per-image and mean
tables (CSV, Markdown, LaTeX), paired Wilcoxon tests, Spearman correlations between metrics,
figures and a self-contained HTML report. Datasets are adapters over local folders
(:mod:`jfusion.bench.datasets`); configs are TOML files (:mod:`jfusion.bench._config`).
"""

from jfusion.bench._config import BenchConfig, DatasetSpec, MethodSpec, MetricSpec, ReportSpec, config_from_dict, load_config
from jfusion.bench._run import BenchResult, ChunkError, evaluate_files, run
from jfusion.bench.datasets import Item, dataset_names, load_dataset

__all__ = [
    "BenchConfig",
    "BenchResult",
    "ChunkError",
    "DatasetSpec",
    "Item",
    "MethodSpec",
    "MetricSpec",
    "ReportSpec",
    "config_from_dict",
    "dataset_names",
    "evaluate_files",
    "load_config",
    "load_dataset",
    "run",
]
