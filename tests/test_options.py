"""Typed, documented options (jfusion.options): one spec and one check for methods, pan-sharpening and metrics."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from typer.testing import CliRunner

import jfusion
from jfusion.cli import app
from jfusion.errors import FusionInputError
from jfusion.methods.registry import REGISTRY as GENERAL
from jfusion.metrics._registry import REGISTRY as METRICS
from jfusion.options import TYPES, Option, arg_docs, opt, validate_options
from jfusion.pansharpening.registry import REGISTRY as REMOTE

runner = CliRunner()


def _entries():
    return [*GENERAL.list(), *REMOTE.list(), *METRICS.list()]


def _keyword_options(info) -> list[str]:
    fn = getattr(info, "core", info.fn)
    return [n for n, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY]


@pytest.mark.parametrize("info", _entries(), ids=lambda i: f"{type(i).label}:{i.name}")
def test_every_keyword_option_has_a_type_and_doc(info):
    names = [o.name for o in info.options]
    expected = _keyword_options(info) + (["clip"] if type(info).label == "method" and "clip" not in _keyword_options(info) else [])
    assert names == expected
    for o in info.options:
        assert o.types and set(o.types) <= set(TYPES), (o.name, o.types)
        assert len(o.doc.split()) >= 2, f"{info.name}.{o.name} has no doc"
        if o.fixed:
            continue
        # the default satisfies its own spec (a bound or choice list that refuses it is wrong)
        assert validate_options(info, {o.name: o.default}) == {o.name: o.default}


def test_universal_clip_and_declared_constraints():
    for info in GENERAL.list():
        assert info.option("clip").types == ("bool",) and info.option("clip").default is True
    lap = GENERAL.get("laplacian")
    assert (lap.option("levels").low, lap.option("levels").high) == (1, 16)
    assert lap.option("rule").choices == ("max-abs", "window-energy")  # from the Literal annotation
    assert METRICS.get("psnr").option("convention").choices == ("vifb", "standard")  # declared at registration
    assert METRICS.get("psnr").option("data_range").fixed
    assert REMOTE.get("gsa").option("interp").choices == ("23tap", "bicubic")


def test_arg_docs_reads_google_style_sections():
    def f(x, *, a: int = 1, b: float = 2.0, c: str = "u"):
        """Summary.

        Args:
          x: the data.
          a, b: two numbers
            on two lines.
          c: a name: with a colon.

        Returns:
          nothing.
        """

    assert arg_docs(f) == {"x": "the data.", "a": "two numbers on two lines.", "b": "two numbers on two lines.",
                           "c": "a name: with a colon."}


def test_option_check_and_parse_by_type():
    levels = Option(name="levels", types=("int",), default=4, doc="levels", low=1, high=16)
    assert levels.check(2, owner="m") == 2 and levels.check(2.0, owner="m") == 2 and levels.check(np.int64(3), owner="m") == 3
    for bad in (2.5, True, "2", -3, 40, None, float("nan")):
        with pytest.raises(FusionInputError, match="levels"):
            levels.check(bad, owner="m")
    assert levels.parse("3", owner="m") == 3
    with pytest.raises(FusionInputError, match=r"levels=.*2\.5"):
        levels.parse("2.5", owner="m")
    optional = Option(name="radius", types=("int", "None"), default=None, doc="r")
    assert optional.parse("none", owner="m") is None and optional.parse("7", owner="m") == 7
    flag = Option(name="clip", types=("bool",), default=True, doc="c")
    assert flag.parse("false", owner="m") is False and flag.parse("1", owner="m") is True
    with pytest.raises(FusionInputError):
        flag.check(1, owner="m")
    with pytest.raises(FusionInputError):
        flag.parse("maybe", owner="m")
    x = Option(name="eps", types=("float",), default=0.1, doc="e", low=0.0)
    assert x.check(1, owner="m") == 1.0 and isinstance(x.check(1, owner="m"), float)
    with pytest.raises(FusionInputError):
        x.check(float("inf"), owner="m")
    scales = Option(name="scales", types=("tuple[int, ...]",), default=(16, 32), doc="s", low=16)
    assert scales.parse("16,32,64", owner="m") == (16, 32, 64) == scales.parse("(16, 32, 64)", owner="m")
    assert scales.check([16, 48], owner="m") == (16, 48)
    with pytest.raises(FusionInputError):
        scales.check((8, 16), owner="m")
    mode = Option(name="mode", types=("str",), default="a", doc="m", choices=("a", "b"))
    with pytest.raises(FusionInputError, match="one of a, b"):
        mode.check("c", owner="m")


def test_opt_declaring_an_unknown_option_fails_at_registration():
    from jfusion.options import build_options

    def core(x, *, levels: int = 4):
        """Core.

        Args:
          levels: n.
        """

    with pytest.raises(TypeError, match="not keyword options"):
        build_options(core, declared={"level": opt(low=1)})


# ------------------------------------------------------------------ the public API
@pytest.fixture
def pair(rng):
    return [rng.random((24, 24)), rng.random((24, 24))]


@pytest.mark.parametrize("options, match", [
    ({"levels": 2.5}, "levels=2.5.*integer"),
    ({"levels": -3}, "levels=-3.*out of range"),
    ({"levels": 40}, "levels=40.*out of range"),
    ({"rule": "max"}, "one of max-abs, window-energy"),
    ({"foo": 1}, "unknown option 'foo'; valid options: levels, rule, window, mode, clip"),
])
def test_fuse_refuses_bad_options(pair, options, match):
    with pytest.raises(FusionInputError, match=match):
        jfusion.fuse(pair, method="laplacian", **options)


def test_fuse_converts_options_by_type(pair):
    a = np.asarray(jfusion.fuse(pair, method="laplacian", levels=2))
    b = np.asarray(jfusion.fuse(pair, method="laplacian", levels=2.0))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("options, match", [
    ({"psnr": {"convention": "bogus"}}, "convention='bogus'.*one of vifb, standard"),
    ({"psnrr": {"x": 1}}, "unknown metric 'psnrr'"),
    ({"ssim": {"win_size": 7}}, "'ssim' is not among the metrics asked for"),
    ({"psnr": {"data_range": 1.0}}, "cannot be set"),
    ({"psnr": {"foo": 1}}, "unknown option 'foo'; valid options: convention"),
])
def test_evaluate_refuses_bad_options(pair, options, match):
    with pytest.raises(FusionInputError, match=match):
        jfusion.evaluate(pair, pair[0], metrics=["psnr"], options=options)


def test_evaluate_accepts_valid_options(pair):
    std = jfusion.evaluate(pair, pair[0], metrics=["psnr"], options={"psnr": {"convention": "standard"}})["psnr"]
    vifb = jfusion.evaluate(pair, pair[0], metrics=["psnr"])["psnr"]
    assert np.isfinite(std) and std != vifb


@pytest.mark.parametrize("options, match", [
    ({"interp": "cubic"}, "interp='cubic'.*one of 23tap, bicubic"),
    ({"foo": 1}, "unknown option 'foo'"),
])
def test_pansharpen_refuses_bad_options(rng, options, match):
    ms = (rng.random((8, 8, 4)) * 2047).astype(np.uint16)
    pan = (rng.random((32, 32)) * 2047).astype(np.uint16)
    with pytest.raises(FusionInputError, match=match):
        jfusion.pansharpen(ms, pan, method="gsa", **options)


# ------------------------------------------------------------------ the CLI
@pytest.fixture
def pair_files(tmp_path, rng):
    a = jfusion.write_image(tmp_path / "a.png", rng.random((24, 24)))
    b = jfusion.write_image(tmp_path / "b.png", rng.random((24, 24)))
    return str(a), str(b)


@pytest.mark.parametrize("option, match", [
    ("levels=2.5", "levels='2.5'"),
    ("levels=-3", "out of range"),
    ("levels=40", "out of range"),
    ("foo=1", "valid options: levels, rule, window, mode, clip"),
    ("clip=maybe", "true or false"),
])
def test_cli_fuse_refuses_bad_options(pair_files, tmp_path, option, match):
    out = tmp_path / "f.png"
    r = runner.invoke(app, ["fuse", *pair_files, "-m", "laplacian", "-o", str(out), "-p", option])
    assert r.exit_code == 2, r.output
    assert match in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_cli_fuse_converts_options(pair_files, tmp_path):
    out = tmp_path / "f.png"
    r = runner.invoke(app, ["fuse", *pair_files, "-m", "laplacian", "-o", str(out), "-p", "levels=2", "-p", "clip=false"])
    assert r.exit_code == 0, r.output
    ref = np.asarray(jfusion.fuse([jfusion.read_image(p) for p in pair_files], method="laplacian", levels=2))
    assert np.abs(jfusion.read_image(out) - ref).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("option, match", [
    ("psnr.convention=bogus", "one of vifb, standard"),
    ("psnrr.x=1", "unknown metric 'psnrr'"),
    ("ssim.win_size=7", "not among the metrics asked for"),
])
def test_cli_eval_refuses_bad_options(pair_files, option, match):
    r = runner.invoke(app, ["eval", *pair_files, "-f", pair_files[0], "-m", "psnr", "-p", option])
    assert r.exit_code == 2, r.output
    assert match in r.output


def test_cli_lists_a_methods_options():
    r = runner.invoke(app, ["methods", "laplacian"])
    assert r.exit_code == 0, r.output
    for text in ("levels", "int", "in [1, 16]", "max-abs, window-energy", "clip", "bool"):
        assert text in r.output
    r = runner.invoke(app, ["methods", "gsa"])
    assert r.exit_code == 0 and "23tap" in r.output
    r = runner.invoke(app, ["metrics", "psnr"])
    assert r.exit_code == 0 and "vifb, standard" in r.output and "not settable" in r.output
    assert runner.invoke(app, ["methods", "nosuch"]).exit_code == 2


def test_cli_fuse_help_tells_how_to_list_options():
    r = runner.invoke(app, ["fuse", "--help"], terminal_width=200)
    assert "jfusion methods NAME" in " ".join(r.output.split())
