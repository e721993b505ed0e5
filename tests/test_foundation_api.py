"""Public API: fuse / get_method / list_methods, input validation, the colour helper."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jfusion
from jfusion import FusionInputError
from jfusion.methods.colour import fuse_channels, fuse_chroma


@pytest.fixture
def pair(rng):
    return [rng.random((32, 40)).astype(np.float32) for _ in range(2)]


def test_fuse_returns_source_shape_and_dtype(pair):
    out = jfusion.fuse(pair, method="laplacian")
    assert isinstance(out, jax.Array) and out.shape == (32, 40) and out.dtype == jnp.float32


def test_fuse_accepts_stacked_uint8_uint16_and_colour(rng):
    u8 = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    out8 = jfusion.fuse(u8, method="laplacian")
    ref = jfusion.fuse([u8[0] / 255.0, u8[1] / 255.0], method="laplacian")
    np.testing.assert_allclose(out8, ref, atol=1e-6)
    assert out8.shape == (24, 24, 3)
    u16 = (u8.astype(np.uint16) * 257)
    np.testing.assert_allclose(jfusion.fuse(u16, method="laplacian"), ref, atol=1e-5)


def test_fuse_three_sources(rng):
    srcs = [rng.random((16, 16)).astype(np.float32) for _ in range(3)]
    assert jfusion.fuse(srcs, method="laplacian").shape == (16, 16)


def test_grey_plus_colour_keeps_colour_chroma(rng):
    grey = rng.random((16, 16)).astype(np.float32)
    colour = rng.random((16, 16, 3)).astype(np.float32)
    out = np.asarray(jfusion.fuse([grey, colour], method="laplacian", clip=False))  # clipping would alter chroma
    assert out.shape == (16, 16, 3)
    ycc_out = np.asarray(jfusion.ops.rgb_to_ycbcr(out))
    ycc_col = np.asarray(jfusion.ops.rgb_to_ycbcr(colour))
    np.testing.assert_allclose(ycc_out[..., 1:], ycc_col[..., 1:], atol=1e-5)


def test_inputs_are_not_modified(pair):
    before = [p.copy() for p in pair]
    jfusion.fuse(pair, method="laplacian")
    for p, b in zip(pair, before):
        np.testing.assert_array_equal(p, b)


@pytest.mark.parametrize(
    "sources, message",
    [
        ([np.zeros((8, 8))], "at least 2"),
        ([np.zeros((8, 8)), np.zeros((8, 9))], "differ in size"),
        ([np.zeros((8, 8, 3)), np.zeros((8, 8, 4))], "band counts differ"),
        ([np.zeros((0, 8)), np.zeros((0, 8))], "empty"),
        ([np.zeros((8, 8)), np.full((8, 8), np.nan)], "NaN"),
        ([np.zeros((8, 8)), np.full((8, 8), np.inf)], "NaN/Inf"),
        ([np.zeros((8, 8), np.int32), np.zeros((8, 8), np.int32)], "unsupported dtype"),
        ([np.zeros((8, 8), bool), np.zeros((8, 8), bool)], "unsupported dtype"),
        ([np.zeros((8, 8)), np.full((8, 8), 200.0)], r"expects \[0, 1\]"),
        ([np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8, 3))], "shape"),
        ("a.png", "string"),
    ],
)
def test_bad_input_raises_named_error(sources, message):
    with pytest.raises(FusionInputError, match=message):
        jfusion.fuse(sources, method="laplacian")


@pytest.mark.parametrize("shape", [(520, 520, 3), (40, 30, 4), (40, 30, 1)])
def test_one_colour_image_is_one_source_not_a_stack(rng, shape):
    """A single (H, W, C) array was read as H sources of (W, C) and 'fused' to (W, C) (issue 16)."""
    one = rng.random(shape).astype(np.float32)
    with pytest.raises(FusionInputError, match=r"sources: .*single \(H, W, C\) image.*two or more.*list"):
        jfusion.fuse(one, method="laplacian")
    with pytest.raises(FusionInputError, match="single"):
        jfusion.evaluate(one, one[..., 0] if shape[-1] == 1 else one, metrics=["psnr"])


def test_grey_stacks_still_fuse(rng):
    stack = rng.random((3, 16, 20)).astype(np.float32)  # (S, H, W), W not 1, 3 or 4
    ref = jfusion.fuse(list(stack), method="laplacian")
    np.testing.assert_array_equal(np.asarray(jfusion.fuse(stack, method="laplacian")), np.asarray(ref))
    narrow = rng.random((2, 16, 3)).astype(np.float32)  # grey images 3 pixels wide: as a list
    assert jfusion.fuse(list(narrow), method="laplacian").shape == (16, 3)


def test_unknown_method_lists_choices(pair):
    with pytest.raises(FusionInputError, match="registered: .*laplacian"):
        jfusion.fuse(pair, method="no-such-method")
    assert issubclass(FusionInputError, ValueError)


def test_registry_lists_and_filters():
    names = [m.name for m in jfusion.list_methods()]
    assert names == sorted(names) and "laplacian" in names
    mf = jfusion.list_methods(task="multi-focus")
    assert mf and all("multi-focus" in m.tasks for m in mf)
    with pytest.raises(ValueError, match="unknown task"):
        jfusion.list_methods(task="cooking")
    for m in jfusion.list_methods():
        assert m.reference and m.tasks, m.name


def test_get_method_is_pure_and_batches(rng):
    fn = jfusion.get_method("laplacian")
    batch = jnp.asarray(rng.random((3, 2, 16, 16, 3)).astype(np.float32))
    out = jax.jit(jax.vmap(fn))(batch)
    np.testing.assert_allclose(out[1], fn(batch[1]), atol=1e-5)


def test_colour_helper_routes_channels(rng):
    core = lambda s: jnp.max(s, axis=0)  # noqa: E731
    grey = jnp.asarray(rng.random((2, 5, 5)))
    np.testing.assert_allclose(fuse_channels(core, grey), grey.max(0))
    bands = jnp.asarray(rng.random((2, 5, 5, 4)))
    np.testing.assert_allclose(fuse_channels(core, bands), bands.max(0))
    single = jnp.asarray(rng.random((2, 5, 5, 1)))
    assert fuse_channels(core, single).shape == (5, 5, 1)
    same = jnp.asarray(np.repeat(rng.random((1, 5, 5, 3)), 2, axis=0))
    np.testing.assert_allclose(fuse_channels(core, same), same[0], atol=1e-6)


def test_chroma_rule_prefers_saturated_and_handles_neutral():
    c = jnp.asarray([[[0.5]], [[0.9]]])
    np.testing.assert_allclose(fuse_chroma(c), [[0.9]])
    neutral = jnp.full((2, 1, 1), 0.5)
    np.testing.assert_allclose(fuse_chroma(neutral), [[0.5]])


def _public_functions():
    import jfusion.ops as ops_mod

    mods = [ops_mod]
    for name in ("transforms", "rules", "sparse", "metrics", "pansharpening", "data"):
        try:
            mods.append(__import__(f"jfusion.{name}", fromlist=["*"]))
        except ImportError:
            continue
    for mod in mods:
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"{mod.__name__}.{name}", obj


def test_api_conventions_prng_key_named_key_and_first():
    """dm_pix-style convention check: randomness enters only as an argument named `key`, first."""
    for qual, fn in _public_functions():
        params = list(inspect.signature(fn).parameters)
        assert "rng" not in params and "prng" not in params, qual
        if "key" in params:
            assert params[0] == "key", f"{qual}: `key` must be the first argument"


def test_rgb_result_is_clipped_when_method_clips(rng):
    # saturated colours on bright luma: fused Y and fused chroma each in range, RGB not
    a = np.zeros((16, 16, 3), np.float32)
    a[..., 0] = 1.0
    b = np.ones((16, 16, 3), np.float32)
    b[..., 2] = 0.0
    out = np.asarray(jfusion.fuse([a, b], method="laplacian", levels=2))
    assert out.min() >= 0.0 and out.max() <= 1.0
