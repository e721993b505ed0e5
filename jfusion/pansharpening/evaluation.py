"""Reduced- and full-resolution evaluation of a pan-sharpening method (Wald's protocol / QNR).

* :func:`evaluate_reduced`: degrade MS and PAN by the ratio (sensor MTF), pan-sharpen the
  degraded pair, compare with the original MS: Q2n, SAM (degrees), ERGAS, sCC, Q (UIQI).
* :func:`evaluate_full`: pan-sharpen the original pair, no reference: D_lambda, D_s, QNR
  (PST conventions: MS interpolated with the 23-tap kernel, PAN low-pass = 23-tap expansion
  of its bicubic reduction).

The indices are those of :mod:`jfusion.metrics.remote`.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.resample import resize
from jfusion.pansharpening.wald import interp23tap, reduced_resolution

__all__ = ["evaluate_reduced", "evaluate_full", "pan_lowpass_pst"]


def pan_lowpass_pst(pan: ArrayLike, ratio: int) -> jax.Array:
    """PST's degraded PAN for D_s: ``interp23tap(imresize(P, 1/ratio), ratio)`` (antialiased bicubic)."""
    h, w = np.shape(pan)
    small = resize(pan, (h // ratio, w // ratio), method="bicubic", antialias=True)
    return interp23tap(small, ratio)


def _run(method: str, ms, pan, *, sensor, bit_depth, options) -> tuple[np.ndarray, float]:
    from jfusion.pansharpening import pansharpen

    t0 = time.perf_counter()
    out = pansharpen(ms, pan, method=method, sensor=sensor, bit_depth=bit_depth, **options)
    out = np.asarray(jax.block_until_ready(out))
    return out, time.perf_counter() - t0


def evaluate_reduced(
    ms: ArrayLike, pan: ArrayLike, method: str, *, ratio: int = 4, sensor: str | None = None,
    bit_depth: int | None = None, **options: Any,
) -> dict[str, float]:
    """Wald's protocol scores of ``method`` on one MS/PAN pair (plus ``seconds`` of the fusion call)."""
    from jfusion.metrics import remote as rm

    pair = reduced_resolution(ms, pan, ratio=ratio, sensor=sensor)
    out, sec = _run(method, pair.ms_lr, pair.pan_lr, sensor=sensor, bit_depth=bit_depth, options=options)
    ref = pair.reference
    return {
        "q2n": float(rm.q2n(ref, out)),
        "sam": float(rm.sam(ref, out)),
        "ergas": float(rm.ergas(ref, out, ratio=ratio)),
        "scc": float(rm.scc(ref, out)),
        "q": float(rm.uiqi(ref, out)),
        "seconds": sec,
    }


def evaluate_full(
    ms: ArrayLike, pan: ArrayLike, method: str, *, ratio: int = 4, sensor: str | None = None,
    bit_depth: int | None = None, **options: Any,
) -> dict[str, float]:
    """Full-resolution, no-reference scores: D_lambda, D_s, QNR (plus ``seconds``)."""
    from jfusion.metrics import remote as rm

    out, sec = _run(method, ms, pan, sensor=sensor, bit_depth=bit_depth, options=options)
    ms_up = interp23tap(np.asarray(ms, np.float32), ratio)
    plp = pan_lowpass_pst(np.asarray(pan, np.float32), ratio)
    dl = float(rm.d_lambda(ms_up, out, ratio=ratio))
    ds = float(rm.d_s(ms_up, pan, out, ratio=ratio, pan_lowpass=plp))
    return {"d_lambda": dl, "d_s": ds, "qnr": (1 - dl) * (1 - ds), "seconds": sec}
