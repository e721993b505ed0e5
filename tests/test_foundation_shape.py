"""The learned layer's one shape: one registry API, every method listed, repeated calls compile nothing."""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
from jax import monitoring
from typer.testing import CliRunner

import jfusion as jf
from jfusion.cli import app
from jfusion.methods.registry import REGISTRY as METHODS
from jfusion.metrics import list_metrics
from jfusion.metrics._registry import REGISTRY as METRICS
from jfusion.pansharpening.registry import REGISTRY as REMOTE
from jfusion.registry import TASKS, Info, Registry

_COMPILES = [0]


def _count(name: str, _duration: float, **_kw) -> None:
    if name == "/jax/core/compile/backend_compile_duration":
        _COMPILES[0] += 1


monitoring.register_event_duration_secs_listener(_count)


@contextlib.contextmanager
def count_compilations():
    """Counts XLA backend compilations inside the block (``box[0]``)."""
    start = _COMPILES[0]
    box = [0]
    try:
        yield box
    finally:
        box[0] = _COMPILES[0] - start


def test_list_methods_covers_every_registry():
    names = [m.name for m in jf.list_methods()]
    assert names == sorted(names)
    assert set(names) == set(METHODS.names()) | set(REMOTE.names())
    assert len(names) == len(METHODS.names()) + len(REMOTE.names())
    for task in TASKS:
        listed = jf.list_methods(task=task)
        assert listed, task
        assert all(task in m.tasks for m in listed)
    assert {m.name for m in jf.list_methods(task="pansharpening")} == set(REMOTE.names(lambda i: i.family != "mshs"))
    assert [m.name for m in jf.list_methods(task="mshs")] == ["cnn3d-mshs"]
    with pytest.raises(jf.FusionInputError, match="unknown task"):
        jf.list_methods(task="pan-sharpening")


def test_one_info_family_and_one_case_rule():
    for info in [*jf.list_methods(), *list_metrics()]:
        assert isinstance(info, Info) and dataclasses.is_dataclass(info)
        assert info.name == info.name.lower() and info.summary
    assert METHODS.get("LapLacian").name == "laplacian"
    assert REMOTE.get("GSA").name == "gsa"
    assert METRICS.get("SSIM").name == "ssim"
    for reg, bogus in ((METHODS, "lapalcian"), (REMOTE, "gsaa"), (METRICS, "ssmi")):
        with pytest.raises(jf.FusionInputError, match=f"unknown .*{bogus}.*registered:"):
            reg.get(bogus)


def test_duplicate_and_upper_case_names_are_errors_everywhere():
    from jfusion.metrics._registry import register_metric
    from jfusion.methods.registry import register
    from jfusion.pansharpening.registry import register as register_remote

    def core(sources):
        """Dummy."""
        return sources[0]

    with pytest.raises(ValueError, match="registered twice"):
        register("laplacian", tasks=("general",), reference="-")(core)
    with pytest.raises(ValueError, match="registered twice"):  # one name space for general and remote methods
        register("gsa", tasks=("general",), reference="-")(core)
    with pytest.raises(ValueError, match="registered twice"):
        register_remote("laplacian", family="cs", reference="-")(core)
    with pytest.raises(ValueError, match="registered twice"):
        register_metric("ssim", direction="higher", convention="-")(core)
    with pytest.raises(ValueError, match="lower case"):
        register("Laplacian2", tasks=("general",), reference="-")(core)
    reg = Registry("thing", loader="jfusion.registry")
    reg.add(Info(name="a", fn=core))
    with pytest.raises(ValueError, match="registered twice"):
        reg.add(Info(name="a", fn=core))
    assert reg.names() == ["a"] and "A" in reg


def test_cli_methods_shows_every_method():
    res = CliRunner().invoke(app, ["methods"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for info in jf.list_methods():
        assert info.name in res.output
    res = CliRunner().invoke(app, ["methods", "--task", "pansharpening"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "pnn-residual" in res.output and "laplacian" not in res.output
    res = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    for info in REMOTE.list(lambda i: i.family == "learned"):  # train commands come from the registry
        assert info.name in res.output


@pytest.mark.parametrize("name", METHODS.names())
def test_second_fuse_compiles_nothing(name):
    rng = np.random.default_rng(0)
    info = METHODS.get(name)

    if not info.has_weights:
        pytest.skip(f"{name}: no shipped weights ({info.weights}); tests/test_hdr_deep.py checks it with a test asset")
    shape = (64, 64, 3) if info.colour == "native" else (64, 64)
    sources = [rng.random(shape, dtype=np.float32) for _ in range(max(2, info.min_sources))]
    first = jf.fuse(sources, method=name)
    with count_compilations() as n:
        second = jf.fuse(sources, method=name)
    assert n[0] == 0, f"{name}: the repeated call compiled {n[0]} program(s)"
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


def _remote_inputs(info):
    rng = np.random.default_rng(1)
    if info.family == "mshs":
        return rng.random((8, 8, 48), dtype=np.float32), rng.random((32, 32, 3), dtype=np.float32), {"scene": "houston"}
    ms = (rng.random((16, 16, 4)) * 2000).astype(np.uint16)
    pan = (rng.random((64, 64)) * 2000).astype(np.uint16)
    return ms, pan, {"sensor": "IKONOS"}


@pytest.mark.parametrize("name", REMOTE.names())
def test_second_pansharpen_compiles_nothing(name):
    info = REMOTE.get(name)
    ms, pan, where = _remote_inputs(info)
    first = jf.pansharpen(ms, pan, method=name, **where)
    with count_compilations() as n:
        second = jf.pansharpen(ms, pan, method=name, **where)
    assert n[0] == 0, f"{name}: the repeated call compiled {n[0]} program(s)"
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


@pytest.mark.parametrize("name", REMOTE.names(lambda i: i.family == "learned"))
def test_one_bit_depth_rule_for_learned_methods(name):
    ms, pan, where = _remote_inputs(REMOTE.get(name))
    as_int = np.asarray(jf.pansharpen(ms, pan, method=name, **where))  # uint16 <= 2047: 11 bits
    as_float = np.asarray(jf.pansharpen(ms.astype(np.float64), pan.astype(np.float64), method=name, bit_depth=11, **where))
    np.testing.assert_allclose(as_float, as_int, rtol=1e-5, atol=1e-3)
    with pytest.raises(jf.FusionInputError, match="carry no bit depth.*bit_depth="):
        jf.pansharpen(ms.astype(np.float64), pan.astype(np.float64), method=name, **where)
