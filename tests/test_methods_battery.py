"""Property-based bad-input battery over every registered general and pan-sharpening method.

Each call either returns finite values in the documented range (``fuse``: [0, 1], the shape of
one source; ``pansharpen``: ``(r h, r w, B)`` in the sensor's scale) or raises
:class:`jfusion.FusionInputError` whose message names the argument. Nothing else: no other
exception, no NaN, no silent wrong shape.

Inputs: random shapes (tiny 1x1 and 2x7 included), dtypes (uint8, uint16, float16/32/64, bool),
constant images, NaN/Inf, negative values, one source, mismatched sources, 1/3/4 channels, very
small and very large value ranges. Shapes come from a small set so that compiled programs are
reused across examples; methods with a slow compile (sparse coding, CNNs) get fewer examples and
cheap options.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jfusion
from jfusion.errors import FusionInputError
from jfusion.methods.registry import REGISTRY as GENERAL
from jfusion.pansharpening.registry import REGISTRY as REMOTE

DTYPES = ("uint8", "uint16", "float16", "float32", "float64", "bool")
VALUES = ("random", "constant", "zeros", "ones", "nan", "inf", "negative", "tiny_range", "huge")
SIZES = ((1, 1), (2, 7), (5, 3), (16, 16), (17, 20))
CHANNELS = (None, 1, 3, 4)

# Slow to compile or run: fewer examples, cheap options (the contract does not depend on them).
SLOW = {"csr": 3, "csr-transform": 3, "sr": 4, "cnn-focus": 4, "cnn-focus-multiscale": 3, "cnn-medical": 4,
        "cnn-weights": 4, "gff": 8, "mertens": 8, "uwt-srcnn": 3, "srcnn-fusion": 3, "deep-hdr": 4}
CHEAP = {"csr": {"max_iter": 5}, "csr-transform": {"max_iter": 5, "levels": 2}, "sr": {"stride": 4, "max_atoms": 2},
         "deep-hdr": {"flow_iterations": 2, "flow_warps": 1}}
EXAMPLES = 8
NAMES_ARGUMENT = ("sources", "ms", "pan", "bit_depth", "ratio", "sensor")


def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, kind: str) -> np.ndarray:
    """An image of ``shape`` in ``dtype`` with the value pattern ``kind``."""
    if dtype == "bool":
        return rng.random(shape) > 0.5
    top = {"uint8": 255, "uint16": 65535}.get(dtype, 1.0)
    if kind == "random":
        x = rng.random(shape) * top
    elif kind == "constant":
        x = np.full(shape, 0.37 * top)
    elif kind == "zeros":
        x = np.zeros(shape)
    elif kind == "ones":
        x = np.full(shape, float(top))
    elif kind == "tiny_range":  # a flat image with 1e-6 of structure
        x = (0.5 + 1e-6 * rng.random(shape)) * top
    elif kind == "huge":  # far outside [0, 1] for floats; saturated for integers
        x = rng.random(shape) * 1e6
    elif kind == "negative":
        x = rng.random(shape) * top - 0.5 * top
    else:  # nan / inf (integers cannot hold them: random values)
        x = rng.random(shape) * top
        if dtype.startswith("float"):
            x.flat[rng.integers(x.size)] = np.nan if kind == "nan" else np.inf
    if dtype.startswith("uint"):
        x = np.clip(x, 0, top)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float16 overflow of "huge" is part of the battery
        return x.astype(dtype)


GOOD_VALUES = ("random", "constant", "zeros", "ones", "tiny_range")
FAULTS = (None, None, None, None, "bool", "nan", "inf", "negative", "huge", "one_source", "size", "channels")


@st.composite
def fuse_inputs(draw):
    """Sources with at most one fault (None: valid input, which must fuse)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    fault = draw(st.sampled_from(FAULTS))
    n = 1 if fault == "one_source" else draw(st.sampled_from((2, 2, 3)))
    h, w = draw(st.sampled_from(SIZES))
    c = draw(st.sampled_from(CHANNELS))
    dtype = "bool" if fault == "bool" else draw(st.sampled_from(DTYPES[:-1]))
    if fault in ("nan", "inf"):
        dtype = draw(st.sampled_from(("float16", "float32", "float64")))
    kinds = [draw(st.sampled_from(GOOD_VALUES)) for _ in range(n)]
    if fault in ("nan", "inf", "negative", "huge"):
        kinds[-1] = fault
    shapes = [(h, w) if c is None else (h, w, c) for _ in range(n)]
    if fault == "size":
        shapes[-1] = (h + 1, w) + shapes[-1][2:]
    elif fault == "channels":
        shapes[-1] = (h, w, 4 if c == 3 else 3)
    images = [_values(rng, s, dtype, k) for s, k in zip(shapes, kinds)]
    as_stack = draw(st.booleans()) and len(set(shapes)) == 1 and not (len(shapes[0]) == 2 and shapes[0][1] in (1, 3, 4))
    return (np.stack(images) if as_stack else images), shapes, fault


def _expected_shape(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """One source's shape after promotion: (H, W, 1) is grey (H, W); grey next to RGB becomes RGB."""
    chans = {1 if len(s) == 2 else s[2] for s in shapes}
    h, w = shapes[0][:2]
    return (h, w) if chans == {1} else (h, w, max(chans))


def _check_error(err: FusionInputError) -> None:
    msg = str(err)
    assert any(name in msg for name in NAMES_ARGUMENT), f"the message names no argument: {msg}"


def _battery(method: str):
    n = SLOW.get(method, EXAMPLES)

    @settings(max_examples=n, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(fuse_inputs())
    def run(case):
        sources, shapes, fault = case
        try:
            out = np.asarray(jfusion.fuse(sources, method=method, **CHEAP.get(method, {})))
        except FusionInputError as err:
            _check_error(err)
            return
        assert fault is None or (fault in ("negative", "huge") and np.asarray(sources[-1]).dtype.kind == "u"), (
            f"{method}: accepted a fault: {fault}")
        assert out.shape == GENERAL.get(method).output_shape(_expected_shape(shapes)), (out.shape, shapes)
        assert np.all(np.isfinite(out)), f"{method}: non-finite output for {shapes}"
        assert out.min() >= 0.0 and out.max() <= 1.0, (method, float(out.min()), float(out.max()))

    return run


@pytest.mark.parametrize("method", GENERAL.names())
def test_fuse_battery(method):

    info = GENERAL.get(method)
    if not info.has_weights:
        pytest.skip(f"{method}: no shipped weights ({info.weights}); tests/test_hdr_deep.py tests its bad input with a test asset")
    _battery(method)()


# ------------------------------------------------------------------ pan-sharpening
PS_SIZES = ((1, 1), (2, 3), (4, 4), (8, 6))
PS_BANDS = (1, 3, 4, 8)
PS_SLOW = {"drpnn": 4, "pnn": 4, "pnn-residual": 4, "sae": 3, "srcnn-gs": 4, "cnn3d-mshs": 3}
PS_EXAMPLES = 6


@st.composite
def pansharpen_inputs(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    h, w = draw(st.sampled_from(PS_SIZES))
    b = draw(st.sampled_from(PS_BANDS))
    r = draw(st.sampled_from((4, 4, 2, 3)))
    dtype = draw(st.sampled_from(("uint16", "uint16", "uint8", "float32", "float64", "float16", "bool")))
    kind_ms = draw(st.sampled_from(VALUES))
    kind_pan = draw(st.sampled_from(("random", "random", "constant", "nan", "negative", "huge", "zeros")))
    pan_shape = (h * r, w * r)
    shape_error = draw(st.sampled_from((None, None, None, "pan_size", "pan_bands", "ms_rank")))
    if shape_error == "pan_size":
        pan_shape = (h * r + 1, w * r)
    elif shape_error == "pan_bands":
        pan_shape = (h * r, w * r, 3)
    ms_shape = (h, w) if shape_error == "ms_rank" else (h, w, b)
    ms = _values(rng, ms_shape, dtype, kind_ms)
    if dtype.startswith("uint"):  # 11-bit data in 16-bit containers, as the sensors deliver
        ms = ms if dtype == "uint8" else (ms // 32).astype(dtype)
    pan = _values(rng, pan_shape, dtype, kind_pan)
    if dtype == "uint16":
        pan = (pan // 32).astype(dtype)
    bit_depth = draw(st.sampled_from((None, None, 11, 16)))
    return ms, pan, bit_depth


def _ps_battery(method: str):
    info = REMOTE.get(method)

    @settings(max_examples=PS_SLOW.get(method, PS_EXAMPLES), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(pansharpen_inputs())
    def run(case):
        ms, pan, bit_depth = case
        if info.family == "mshs":  # an HS cube and its high-resolution MS
            pan = np.repeat(pan[..., None], 3, axis=-1) if pan.ndim == 2 else pan
        try:
            out = np.asarray(jfusion.pansharpen(ms, pan, method=method, bit_depth=bit_depth))
        except FusionInputError as err:
            _check_error(err)
            return
        ms_a = np.asarray(ms)
        bands = ms_a.shape[-1] if ms_a.ndim == 3 else 1
        assert out.shape == (np.shape(pan)[0], np.shape(pan)[1], bands), (out.shape, np.shape(ms), np.shape(pan))
        assert np.all(np.isfinite(out)), f"{method}: non-finite output"

    return run


@pytest.mark.parametrize("method", REMOTE.names())
def test_pansharpen_battery(method):
    _ps_battery(method)()
