"""Training recipes: one registered config per shipped asset, train_and_evaluate per family, exact resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from jfusion import assets
from jfusion.errors import FusionInputError
from jfusion.training import protocol, recipes
from jfusion.training.pansharpening import pansharpening_config, train_and_evaluate

PACKAGE = Path(recipes.__file__).resolve().parents[1]


def _shipped_manifests() -> dict[str, dict]:
    files = [p for p in (PACKAGE / "weights").rglob("*.json") if p.name != "not_shipped.json"]
    files += list((PACKAGE / "sparse" / "dictionaries").glob("*.json"))
    return {str(p.relative_to(PACKAGE).with_suffix("")): json.loads(p.read_text()) for p in files}


def _settings(m: dict) -> dict:
    """The training settings a shipped manifest records, under the config's field names."""
    cfg = dict(m["config"])
    if "train" in cfg:  # weight nets: {"model": WeightNetConfig, "train": FocusTrainConfig}
        cfg = {**cfg["train"], "model": cfg["model"]}
    # the run's length: deep-hdr manifests keep it in steps_run (their steps is the step chosen on validation)
    out = {**cfg, "seed": m["seed"], "steps": cfg.pop("max_steps", m.get("steps_run", m["steps"]))}
    data = m["data"] if isinstance(m["data"], dict) else {}
    for k in ("scene", "num_images", "crop"):
        if k in data:
            out[k] = data[k]
    if "source" in data:
        out["data"] = data["source"]
    if "n_components" in m:
        out["n_components"] = m["n_components"]
    if "name" in m:
        out["name"] = m["name"]
    return out


def _value(config, key):
    v = getattr(config, key)
    if dataclasses.is_dataclass(v):
        return json.loads(json.dumps(dataclasses.asdict(v)))
    if isinstance(v, tuple):  # a manifest is JSON: tuples come back as lists
        return json.loads(json.dumps(v))
    return v


def test_every_shipped_asset_has_its_registered_config():
    shipped = _shipped_manifests()
    presets = {key: (r, cfg) for r in recipes.list_recipes() for key, cfg in r.presets.items()}
    dropped_file = PACKAGE / "weights" / "pansharpening" / "not_shipped.json"
    dropped = json.loads(dropped_file.read_text()) if dropped_file.exists() else {}
    assert not set(dropped) & set(shipped), "an asset is either shipped or listed as not shipping"
    assert sorted(presets) == sorted([*shipped, *dropped]), "one registered preset per shipped (or not shipping) asset, and no other"
    for key, entry in dropped.items():  # retrained under the protocol, refused on validation: the record says why
        assert not protocol.ship_decision(entry["validation"]), key
    for key, m in shipped.items():
        recipe, cfg = presets[key]
        settings = _settings(m)
        compared = [k for k in settings if hasattr(cfg, k)]
        assert len(compared) >= 5, (key, compared)
        for k in compared:
            want, got = settings[k], _value(cfg, k)
            if isinstance(want, float):
                assert got == pytest.approx(want, rel=1e-12), (key, k)
            else:
                assert got == want, (key, k, got, want)
        if recipe.family == "pansharpening":
            assert m["model"] == recipe.name and cfg.arch.loss == m["config"]["loss"]
            assert recipes.command_line(recipe.name, cfg) == m["command"]  # the recorded command gives this config


def test_registry_shape_and_configure():
    r = recipes.get_recipe("PNN")  # case-insensitive like every registry
    assert r.name == "pnn" and r.fn is train_and_evaluate and r.family == "pansharpening"
    with pytest.raises(FusionInputError, match="registered:"):
        recipes.get_recipe("no-such-recipe")
    cfg = recipes.configure(r.config, steps=7, lr=1, scene="x.mat", batch=None)
    assert (cfg.steps, cfg.lr, cfg.scene, cfg.batch) == (7, 1.0, "x.mat", r.config.batch)
    with pytest.raises(FusionInputError, match="steps="):
        recipes.configure(r.config, steps="7")
    with pytest.raises(FusionInputError, match="not a setting"):
        recipes.configure(r.config, arch=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.config.steps = 3  # type: ignore[misc]
    assert "arch" not in recipes.scalar_fields(r.config) and "model" not in recipes.scalar_fields(r.config)


def test_bad_settings_fail_before_any_work(tmp_path):
    cfg = pansharpening_config("pnn", scene="no-such-scene.mat", steps=1)
    with pytest.raises(FusionInputError, match="optimizer='nope'"):
        train_and_evaluate(recipes.configure(cfg, optimizer="nope"), tmp_path / "run", progress=False)
    with pytest.raises(FusionInputError, match="no-such-scene.mat"):
        train_and_evaluate(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def _tiny_scene(path: Path) -> Path:
    import scipy.io as sio

    rng = np.random.default_rng(0)
    pan = (rng.random((64, 128)) * 1500 + 100).astype(np.uint16)
    low = pan.reshape(16, 4, 32, 4).mean((1, 3))
    ms = np.stack([low * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.uint16)
    sio.savemat(path, {"I_MS": ms, "I_PAN": pan, "sensor": "IKONOS", "L": 11, "ratio": 4})
    return path


def test_killed_pansharpening_recipe_resumes_to_the_same_result(tmp_path, monkeypatch):
    from jfusion.training import checkpoint

    scene = _tiny_scene(tmp_path / "tiny.mat")
    cfg = pansharpening_config("pnn-residual", scene=str(scene), steps=4, batch=4, patch=8, checkpoint_every=2)
    full = train_and_evaluate(cfg, tmp_path / "full", score=False, progress=False)

    save = checkpoint.Checkpointer.save

    def dying(self, step, state, record, *, force=False):
        saved = save(self, step, state, record, force=force)
        if step == 2:
            raise KeyboardInterrupt("killed after the step-2 checkpoint")
        return saved

    monkeypatch.setattr(checkpoint.Checkpointer, "save", dying)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(cfg, tmp_path / "resumed", score=False, progress=False)
    assert not (tmp_path / "resumed" / "pnn-residual-IKONOS.npz").exists()
    monkeypatch.setattr(checkpoint.Checkpointer, "save", save)
    resumed = train_and_evaluate(cfg, tmp_path / "resumed", score=False, progress=False)

    a = assets.read_asset(tmp_path / "full" / "pnn-residual-IKONOS").arrays
    b = assets.read_asset(tmp_path / "resumed" / "pnn-residual-IKONOS").arrays
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    hist = [json.loads((tmp_path / d / "history.json").read_text())["loss"] for d in ("full", "resumed")]
    assert len(hist[0]) == 4 and hist[0] == hist[1]
    assert full["final_loss"] == resumed["final_loss"] and resumed["recipe"]["steps"] == 4
    # the train strip's normalised radiometry (numpy on the file: MS columns 0-15 of 32, PAN 0-63, / 2**11)
    import scipy.io as sio

    raw = sio.loadmat(scene)
    ms_tr, pan_tr = raw["I_MS"][:, :16].astype(np.float64) / 2048, raw["I_PAN"][:, :64].astype(np.float64) / 2048
    rad = full["radiometry"]
    assert rad["bit_depth"] == 11
    np.testing.assert_allclose(rad["ms"]["mean"], ms_tr.mean((0, 1)), rtol=1e-12)
    np.testing.assert_allclose(rad["ms"]["std"], ms_tr.std((0, 1)), rtol=1e-12)
    np.testing.assert_allclose(rad["ms"]["p99"], np.percentile(ms_tr.reshape(-1, 4), 99, axis=0), rtol=1e-12)
    assert rad["pan"]["mean"] == pytest.approx(pan_tr.mean(), rel=1e-12)
    assert rad["pan"]["min"] == pan_tr.min() and rad["pan"]["max"] == pan_tr.max()
    # a workdir holding checkpoints of another config is refused, before any training
    other = dataclasses.replace(cfg, lr=1e-2)
    with pytest.raises(FusionInputError, match="lr"):
        train_and_evaluate(other, tmp_path / "resumed", score=False, progress=False, force=True)


@pytest.fixture
def tiny_net():
    """A learned pan-sharpening model added the README's way (spec, method, recipe in one place), removed afterwards."""
    from flax import nnx

    from jfusion.pansharpening import learned
    from jfusion.pansharpening.registry import REGISTRY, register
    from jfusion.training.pansharpening import register_pansharpening_recipe

    class TinyNet(nnx.Module):
        def __init__(self, bands, rngs):
            self.conv = nnx.Conv(bands + 1, bands, (3, 3), rngs=rngs)

        def __call__(self, x):
            return x[..., :-1] + self.conv(x)

    REGISTRY.names(), recipes.RECIPES.names()  # load both registries first
    learned.SPECS["tiny-net"] = learned.ModelSpec("drpnn", build=lambda bands, rngs: TinyNet(bands, rngs))

    @register("tiny-net", family="learned", reference="test", local=True)
    def tiny(ms, pan, *, ratio: int = 4, sensor: str | None = None, bit_depth: int = 11, interp: str = "23tap",
             weights: str | None = None):
        """TinyNet."""
        return learned.network_pansharpen("tiny-net", ms, pan, ratio=ratio, sensor=sensor, bit_depth=bit_depth,
                                          interp=interp, weights=weights)

    register_pansharpening_recipe("tiny-net", pansharpening_config("tiny-net", steps=3, batch=4, patch=8, lr=1e-3))
    yield "tiny-net"
    del learned.SPECS["tiny-net"], REGISTRY._entries["tiny-net"], recipes.RECIPES._entries["tiny-net"]


def test_a_new_learned_model_trains_through_the_cli_with_typed_flags(tmp_path, tiny_net):
    from typer.testing import CliRunner

    import jfusion
    from jfusion.cli import _recipe_command, train_app

    scene = tmp_path / "tiny.mat"
    import scipy.io as sio

    rng = np.random.default_rng(1)
    pan = (rng.random((256, 512)) * 1500 + 100).astype(np.uint16)
    ms = np.stack([pan.reshape(64, 4, 128, 4).mean((1, 3)) * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.uint16)
    sio.savemat(scene, {"I_MS": ms, "I_PAN": pan, "sensor": "IKONOS", "L": 11, "ratio": 4})
    train_app.command(tiny_net)(_recipe_command(recipes.get_recipe(tiny_net)))
    try:
        out = tmp_path / "run"
        r = CliRunner().invoke(jfusion.cli.app, ["train", tiny_net, "--scene", str(scene), "--steps", "2", "--lr", "0.002",
                                                 "--out", str(out), "--no-progress"])
        assert r.exit_code == 0, r.output
        bad = CliRunner().invoke(jfusion.cli.app, ["train", tiny_net, "--scene", str(scene), "--steps", "two"])
        assert bad.exit_code == 2 and "steps" in bad.output  # typed flags
    finally:
        train_app.registered_commands[:] = [c for c in train_app.registered_commands if c.name != tiny_net]
    man = assets.read_manifest(out / "tiny-net-IKONOS")
    assert man["steps"] == 2 and man["recipe"]["lr"] == 0.002 and man["recipe"]["scene"] == str(scene)
    assert man["command"] == f"jfusion train tiny-net --scene tiny.mat --steps 2 --lr 0.002 --seed 0"
    val = man["scores"]["validation"]
    assert set(val) == {"model", "exp"} and set(val["model"]) == {"q2n", "sam", "ergas"} and man["scores"]["test"] == {}
    assert isinstance(man["ships"], bool) and man["ship_rule"]
    # the scores are those of the written asset, run through the library with weights=
    from jfusion.training.pansharpening import score_on_validation_region
    from jfusion.pansharpening.io import read_scene

    again = score_on_validation_region(read_scene(scene), tiny_net, weights=str(out / "tiny-net-IKONOS"))
    assert again == pytest.approx(val["model"], rel=1e-6)
