"""Bad-input battery over every registered metric (issue 16 item 4): whatever the content, each metric
called through :func:`jfusion.evaluate` gives a finite value inside its declared ``range`` (times S when
``summed``) or raises :class:`jfusion.FusionInputError` whose message starts with the argument at fault,
never a raw exception or a NaN.

Speed: every metric is evaluated on a few FIXED shapes (grey and RGB 32 x 32, the metrics that need more
pixels on their own fixed size, remote metrics on (32, 32, 4) with a (128, 128) PAN), so the jit caches
built by the first example serve all the others; hypothesis varies only the content (values, flat
regions, constants, NaN/Inf placement, negative or huge values, tiny ranges, dtypes cast from the same
content). Bad shapes are an explicit parametrised list. ``derandomize=True`` makes the run reproducible.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jfusion
import jfusion.metrics as jm
from jfusion.errors import FusionInputError
from jfusion.io import read_image

from conftest import data_path

INFO = {i.name: i for i in jm.list_metrics()}
FUSION = tuple(i.name for i in jm.list_metrics(kind="fusion"))
REMOTE = tuple(i.name for i in jm.list_metrics(kind="remote"))
NOREF = tuple(i.name for i in jm.list_metrics(kind="remote_noref"))
# the smallest fixed side each metric is defined on with its default options (errors name the need):
# viff / vifp: 4 scales with a 5x5 window at scale 3; mef_ssim: 3 scales (44 px); ms_ssim: 5 scales (176 px)
SIDE = {"viff": 64, "vifp": 64, "mef_ssim": 64, "ms_ssim": 176}
ARGUMENT = re.compile(r"^(sources|fused|reference|ms|pan|metrics|options|undefined|sources/fused)\b")
SETTINGS = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KINDS = ("random", "constant", "flat_region", "tiny_range", "binary", "smooth")
DTYPES = ("float32", "float64", "uint8", "uint16", "float16", "bool")


def _content(kind: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """An image in [0, 1] of one of the battery's kinds."""
    if kind == "random":
        return rng.random(shape)
    if kind == "constant":
        return np.full(shape, rng.choice([0.0, 0.123, 0.5, 1.0]))
    if kind == "flat_region":
        x = rng.random(shape)
        x[: shape[0] // 2] = rng.choice([0.0, 0.123, 1.0])
        return x
    if kind == "tiny_range":
        return 0.4 + 1e-6 * rng.random(shape)
    if kind == "binary":
        return (rng.random(shape) > 0.5).astype(np.float64)
    if kind == "smooth":
        y, x = np.meshgrid(np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1]), indexing="ij")
        g = 0.5 + 0.5 * np.sin(rng.uniform(1, 9) * x + rng.uniform(1, 9) * y)
        return np.broadcast_to(g.reshape(g.shape + (1,) * (len(shape) - 2)), shape).copy()
    raise AssertionError(kind)


def _as_dtype(x: np.ndarray, dtype: str) -> np.ndarray:
    """The same content in another dtype (integer levels scaled to the dtype's range)."""
    if dtype == "uint8":
        return np.round(x * 255).astype(np.uint8)
    if dtype == "uint16":
        return np.round(x * 65535).astype(np.uint16)
    if dtype == "bool":
        return x > 0.5
    return x.astype(dtype)


def _bounds(name: str, n_sources: int) -> tuple[float, float]:
    info = INFO[name]
    lo, hi = info.range
    return (lo * n_sources, hi * n_sources) if info.summed else (lo, hi)


def _ideal(name: str, n_sources: int) -> float | None:
    info = INFO[name]
    return None if info.ideal is None else info.ideal * (n_sources if info.summed else 1)


_REFUSALS: dict[str, str] = {}  # the last refusal per metric, for the "valid input" checks


def _refused_as_undefined(name: str) -> bool:
    """The last refusal of ``name`` was its value being undefined (NaN) on these images, not the input."""
    return _REFUSALS.get(name, "").startswith(f"sources/fused: {name} undefined")


def _checked(name: str, sources, fused, *, n_sources: int = 2, **kw) -> float | None:
    """``jfusion.evaluate(sources, fused, metrics=[name])``: the value, checked against the declared range,
    or None when the input is refused with a FusionInputError naming the argument. Anything else fails."""
    try:
        value = jfusion.evaluate(sources, fused, metrics=[name], **kw)[name]
    except FusionInputError as err:
        assert ARGUMENT.match(str(err)), f"{name}: the message does not name the argument: {err}"
        _REFUSALS[name] = str(err)
        return None
    lo, hi = _bounds(name, n_sources)
    assert isinstance(value, float), (name, type(value))
    assert math.isfinite(value) or value == _ideal(name, n_sources), (name, value)
    slack = 1e-5 * max(1.0, abs(value)) if math.isfinite(value) else 0.0
    assert lo - slack <= value <= hi + slack, f"{name} = {value} outside its declared range {(lo, hi)}"
    return value


def _general_shape(name: str, channels: int) -> tuple[int, ...]:
    side = SIDE.get(name, 32)
    return (side, side) + ((channels,) if channels else ())


@pytest.mark.parametrize("channels", [0, 3], ids=["grey", "rgb"])
@pytest.mark.parametrize("name", [n for n in FUSION])
def test_general_metric_content_battery(name, channels):
    if channels and SIDE.get(name, 32) > 64:
        pytest.skip("ms_ssim's 176 px fixed shape is exercised in grey only (one compile)")
    shape = _general_shape(name, channels)
    n = 2 if INFO[name].n_sources in (None, 2) else INFO[name].n_sources

    @SETTINGS
    @given(
        kinds=st.lists(st.sampled_from(KINDS + ("same_as_first",)), min_size=n + 1, max_size=n + 1),
        dtype=st.sampled_from(DTYPES),
        seed=st.integers(0, 2**16),
    )
    def run(kinds, dtype, seed):
        rng = np.random.default_rng(seed)
        imgs = []
        for k in kinds:
            imgs.append(imgs[0].copy() if k == "same_as_first" and imgs else _content(
                "random" if k == "same_as_first" else k, rng, shape))
        *srcs, fused = (_as_dtype(x, dtype) for x in imgs)
        got = _checked(name, srcs, fused, n_sources=n)
        if dtype != "bool" and all(k in ("random", "smooth", "binary") for k in kinds):
            # valid images are evaluated; the reference definition may still be undefined on them
            # (e.g. multi-scale MEF-SSIM / MS-SSIM of a negative contrast term raised to a fractional power)
            assert got is not None or _refused_as_undefined(name), f"{name}: valid {dtype} images refused"

    run()


@pytest.mark.parametrize("name", [n for n in FUSION])
def test_general_metric_bad_values_battery(name):
    """NaN / Inf anywhere, negative values, values above 1 in float images: always refused by name."""
    shape = _general_shape(name, 0)
    n = 2 if INFO[name].n_sources in (None, 2) else INFO[name].n_sources

    @SETTINGS
    @given(
        which=st.integers(0, n),
        bad=st.sampled_from([np.nan, np.inf, -np.inf, -0.5, -1e-3, 1.5, 1e30]),
        row=st.integers(0, shape[0] - 1),
        col=st.integers(0, shape[1] - 1),
        dtype=st.sampled_from(["float16", "float32", "float64"]),
        seed=st.integers(0, 2**16),
    )
    def run(which, bad, row, col, dtype, seed):
        rng = np.random.default_rng(seed)
        imgs = [rng.random(shape) for _ in range(n + 1)]
        imgs[which][row, col] = bad
        with np.errstate(over="ignore"):  # 1e30 in float16 is Inf: refused all the same
            *srcs, fused = (x.astype(dtype) for x in imgs)
        assert _checked(name, srcs, fused, n_sources=n) is None, f"{name} accepted {bad} in image {which}"

    run()


def _bad_shape_case(case: str, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    a, b, f = rng.random((3, 32, 32))
    rgb = [rng.random((32, 32, 3)) for _ in range(3)]
    if case == "fused_smaller":
        return [a, b], f[:, :20]
    if case == "sources_differ":
        return [a, b[:30]], f
    if case == "one_source":
        return [a], f
    if case == "rgb_sources_grey_fused":
        return rgb[:2], f
    if case == "rgb_sources_4band_fused":
        return rgb[:2], rng.random((32, 32, 4))
    if case == "grey_and_rgb_sources":
        return [a, rgb[1]], rgb[2]
    if case == "one_pixel":
        return [a[:1, :1], b[:1, :1]], f[:1, :1]
    if case == "two_by_seven":
        return [a[:2, :7], b[:2, :7]], f[:2, :7]
    if case == "flat_vector":
        return [a.ravel(), b.ravel()], f.ravel()
    if case == "complex":
        return [a + 1j * b, b], f
    if case == "object":
        return [np.array([[object()]] * 4), b], f
    raise AssertionError(case)


# accepted by the colour rules: RGB sources with a grey fused image (sources through rgb2gray) and a
# grey source next to RGB ones (VIFB's infrared + visible pairs)
REFUSED = ("fused_smaller", "sources_differ", "rgb_sources_4band_fused", "flat_vector", "complex", "object")


@pytest.mark.parametrize("case", REFUSED + ("rgb_sources_grey_fused", "grey_and_rgb_sources", "one_source", "one_pixel", "two_by_seven"))
def test_general_metric_bad_shapes(case):
    srcs, fused = _bad_shape_case(case, np.random.default_rng(2))
    for name in FUSION:
        got = _checked(name, srcs, fused, n_sources=len(srcs))
        if case in REFUSED or (case == "one_source" and INFO[name].n_sources is not None):
            assert got is None, (name, case)


def _remote_pair(kind: str, rng: np.random.Generator, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    scale = {"uint8": 255.0, "float16": 2000.0, "bool": 1.0}.get(dtype, 4000.0)
    ref = scale * _content(kind, rng, (32, 32, 4))
    fu = np.clip(ref + 0.1 * scale * rng.normal(size=ref.shape), 0, scale)
    if dtype == "bool":
        return ref > 0.5, fu > 0.5
    if dtype.startswith(("uint", "int")):
        ref, fu = np.round(ref), np.round(fu)
    return ref.astype(dtype), fu.astype(dtype)


@pytest.mark.parametrize("name", REMOTE)
def test_remote_metric_content_battery(name):
    @SETTINGS
    @given(
        kind=st.sampled_from(KINDS + ("negative",)),
        dtype=st.sampled_from(("uint8", "uint16", "int16", "float16", "float32", "float64", "bool")),
        swap=st.booleans(),
        seed=st.integers(0, 2**16),
    )
    def run(kind, dtype, swap, seed):
        rng = np.random.default_rng(seed)
        ref, fu = _remote_pair("random" if kind == "negative" else kind, rng, dtype)
        if kind == "negative" and dtype.startswith(("int", "float")):
            ref, fu = ref - ref.max(), fu - fu.max()  # sensor units may be signed (e.g. calibrated offsets)
        if swap:
            ref, fu = fu, ref
        got = _checked(name, None, fu, reference=ref)
        if kind in ("random", "smooth") and dtype not in ("bool", "uint8"):
            assert got is not None or _refused_as_undefined(name), f"{name}: a valid {dtype} pair refused"

    run()


@pytest.mark.parametrize("name", NOREF)
def test_noref_metric_content_battery(name):
    @SETTINGS
    @given(
        kind=st.sampled_from(KINDS),
        pan_kind=st.sampled_from(KINDS),
        dtype=st.sampled_from(("uint8", "uint16", "float16", "float32", "float64")),
        seed=st.integers(0, 2**16),
    )
    def run(kind, pan_kind, dtype, seed):
        rng = np.random.default_rng(seed)
        scale = {"uint8": 255.0, "float16": 2000.0}.get(dtype, 4000.0)
        ms = scale * _content(kind, rng, (32, 32, 4))
        pan = scale * _content(pan_kind, rng, (128, 128))
        fused = np.clip(np.repeat(np.repeat(ms, 4, 0), 4, 1) + 0.05 * scale * rng.normal(size=(128, 128, 4)), 0, scale)
        cast = (lambda v: np.round(v).astype(dtype)) if dtype.startswith("uint") else (lambda v: v.astype(dtype))
        _checked(name, (cast(ms), cast(pan)), cast(fused))

    run()


@pytest.mark.parametrize("case", ["nan_fused", "inf_reference", "reference_smaller", "no_reference",
                                  "bands_differ", "grey_fused", "one_by_one"])
def test_remote_metric_bad_inputs(case):
    rng = np.random.default_rng(3)
    ref = 100 + 1000 * rng.random((32, 32, 4))
    fu = ref + 10 * rng.normal(size=ref.shape)
    kw = {"reference": ref}
    if case == "nan_fused":
        fu[5, 7, 2] = np.nan
    elif case == "inf_reference":
        ref = ref.copy()
        ref[0, 0, 0] = np.inf
        kw = {"reference": ref}
    elif case == "reference_smaller":
        kw = {"reference": ref[:16]}
    elif case == "no_reference":
        kw = {}
    elif case == "bands_differ":
        kw = {"reference": ref[..., :3]}
    elif case == "grey_fused":
        fu = fu[..., 0]
    elif case == "one_by_one":
        fu, kw = fu[:1, :1], {"reference": ref[:1, :1]}
    for name in REMOTE:
        got = _checked(name, None, fu, **kw)
        if case != "one_by_one":  # one pixel: per-pixel metrics (rmse, sam, ergas) are defined
            assert got is None, (name, case)


@pytest.mark.parametrize("case", ["pan_wrong_size", "no_pan", "nan_pan", "ms_bands_differ", "grey_ms"])
def test_noref_metric_bad_inputs(case):
    rng = np.random.default_rng(4)
    ms, pan = 100 + 1000 * rng.random((32, 32, 4)), 100 + 1000 * rng.random((128, 128))
    fused = np.repeat(np.repeat(ms, 4, 0), 4, 1)
    sources = {"pan_wrong_size": (ms, pan[:100]), "no_pan": ms, "ms_bands_differ": (ms[..., :3], pan),
               "grey_ms": (ms[..., 0], pan)}.get(case)
    if case == "nan_pan":
        pan[3, 3] = np.nan
        sources = (ms, pan)
    for name in NOREF:
        assert _checked(name, sources, fused) is None, (name, case)


@pytest.fixture(scope="module")
def lytro() -> tuple[np.ndarray, np.ndarray]:
    """A natural related pair (near / far focus), 176 x 176 px crops (ms_ssim's five scales); each metric
    takes the top-left corner at its battery shape, so the programs compiled above are reused."""
    a = read_image(data_path("lytro", "lytro-01-A.jpg"))
    b = read_image(data_path("lytro", "lytro-01-B.jpg"))
    return a[200:376, 200:376].astype(np.float64), b[200:376, 200:376].astype(np.float64)


def _crop(img: np.ndarray, name: str, channels: int) -> np.ndarray:
    h, w = _general_shape(name, channels)[:2]
    return img[:h, :w] if channels else img[:h, :w].mean(-1)


# identical images reach the ideal to this tolerance (float32 arithmetic; relative for unbounded metrics)
IDEAL_TOL = 1e-4


@pytest.mark.parametrize("channels", [0], ids=["grey"])  # RGB compiles every metric again; its ranges are checked above
def test_identical_images_give_the_declared_ideal(lytro, channels):
    for name in [n for n in FUSION if INFO[n].ideal is not None]:
        if channels and SIDE.get(name, 32) > 64:
            continue  # ms_ssim: grey only, as in the content battery
        a = _crop(lytro[0], name, channels)
        got = _checked(name, [a, a], a)
        assert got == pytest.approx(_ideal(name, 2), rel=IDEAL_TOL, abs=IDEAL_TOL), name
    if not channels:
        grey = lytro[0][:32, :32].mean(-1)
        ref = 4000 * np.stack([grey, grey**2, np.sqrt(grey), 1 - grey], -1)
        for name in REMOTE:
            got = _checked(name, None, ref, reference=ref)
            assert got == pytest.approx(INFO[name].ideal, rel=IDEAL_TOL, abs=IDEAL_TOL), name


@pytest.mark.parametrize("channels", [0, 3], ids=["grey", "rgb"])
def test_symmetric_metrics_are_symmetric_in_the_sources(lytro, channels):
    for name in [n for n in FUSION if INFO[n].symmetric]:
        if channels and SIDE.get(name, 32) > 64:
            continue
        a, b = _crop(lytro[0], name, channels), _crop(lytro[1], name, channels)
        f = np.clip(0.6 * a + 0.4 * b, 0, 1)
        ab, ba = _checked(name, [a, b], f), _checked(name, [b, a], f)
        assert ab is not None and ab == pytest.approx(ba, rel=1e-5, abs=1e-6), name
    if not channels:
        ga, gb = lytro[0][:32, :32].mean(-1), lytro[1][:32, :32].mean(-1)
        r = 4000 * np.stack([ga, ga**2, np.sqrt(ga), 1 - ga], -1)
        g = 4000 * np.stack([gb, gb**2, np.sqrt(gb), 1 - gb], -1) * np.array([1.0, 0.95, 0.9, 0.85])
        for name in [n for n in REMOTE if INFO[n].symmetric]:
            rg, gr = _checked(name, None, g, reference=r), _checked(name, None, r, reference=g)
            assert rg is not None and rg == pytest.approx(gr, rel=1e-5, abs=1e-6), name
