"""Objective image-fusion metrics, pure JAX, with the conventions of the published benchmarks.

One module per family: ``statistics`` (EN, SD, SF, AG, EI), ``information`` (CE, MI, NMI, TE,
NCIE), ``error`` (RMSE, PSNR), ``gradient`` (Q^AB/F, Q_SF), ``structural`` (SSIM, MS-SSIM,
Piella, Q_C, Q_Y), ``correlation`` (SCD), ``perceptual`` (Q_CB, Q_CV, VIFF), ``mef`` (MEF-SSIM), ``feature`` (Q_P, FMI), ``learned`` (the survey's Fig. 8 CNN metric, experimental), ``remote`` (SAM, ERGAS,
UIQI, Q2n, sCC, CC, D_lambda, D_s, QNR). Each is registered with its direction, whether it
needs a reference and its default convention (the implementation published numbers come
from); :func:`evaluate` runs any set of them by name.

General metric functions take ``sources (S, H, W)`` and one fused channel ``(H, W)`` in
``[0, data_range]`` (``data_range=1`` by default) and compute on the 0..255 grey scale.
"""

from jfusion.metrics import correlation, error, feature, gradient, information, learned, mef, perceptual, remote, statistics, structural  # noqa: F401
from jfusion.metrics._registry import MetricInfo, get_metric_info, list_metrics, metric_names
from jfusion.metrics.correlation import scd
from jfusion.metrics.error import psnr, rmse
from jfusion.metrics.evaluate import DEFAULT_METRICS, VIFB_METRICS, evaluate, evaluate_batch
from jfusion.metrics.feature import fmi, phase_congruency, qp
from jfusion.metrics.gradient import qabf, qsf
from jfusion.metrics.information import (
    cross_entropy,
    mutual_information,
    ncie,
    normalized_mutual_information,
    tsallis_entropy,
)
from jfusion.metrics.learned import cnn_metric, cnn_metric_map
from jfusion.metrics.mef import mef_ssim
from jfusion.metrics.perceptual import qcb, qcv, viff, vifp
from jfusion.metrics.remote import cc, d_lambda, d_s, ergas, q2n, qnr, rmse_rs, sam, scc, uiqi
from jfusion.metrics.statistics import (
    average_gradient,
    edge_intensity,
    entropy,
    spatial_frequency,
    standard_deviation,
)
from jfusion.metrics.structural import ms_ssim, piella_q0, piella_qe, piella_qw, qc, qy, ssim

__all__ = [
    "DEFAULT_METRICS",
    "MetricInfo",
    "VIFB_METRICS",
    "average_gradient",
    "cc",
    "cnn_metric",
    "cnn_metric_map",
    "d_lambda",
    "d_s",
    "ergas",
    "q2n",
    "qnr",
    "rmse_rs",
    "sam",
    "scd",
    "scc",
    "uiqi",
    "cross_entropy",
    "edge_intensity",
    "entropy",
    "evaluate",
    "evaluate_batch",
    "fmi",
    "get_metric_info",
    "list_metrics",
    "mef_ssim",
    "metric_names",
    "ms_ssim",
    "mutual_information",
    "ncie",
    "normalized_mutual_information",
    "piella_q0",
    "phase_congruency",
    "piella_qe",
    "piella_qw",
    "psnr",
    "qabf",
    "qc",
    "qcb",
    "qcv",
    "qp",
    "qsf",
    "qy",
    "rmse",
    "spatial_frequency",
    "ssim",
    "standard_deviation",
    "tsallis_entropy",
    "viff",
    "vifp",
]
