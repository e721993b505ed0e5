"""The evaluation protocol: fixed train / validation / test strips, the test strip read by the final report only,
early stopping and the ship decision on validation data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jfusion import assets
from jfusion.training import protocol
from jfusion.training.loop import train
from jfusion.training.pansharpening import pansharpening_config, train_and_evaluate


@pytest.mark.parametrize("width,ratio,first,want", [
    (320, 4, 0, (0, 180, 240)),  # IKONOS / GeoEye-1 / WV2 MS columns
    (128, 4, 0, (0, 72, 96)),  # Houston HS
    (72, 3, 0, (0, 39, 54)),  # Paris HS + MS (HS degraded by 3)
    (58, 3, 1, (1, 31, 43)),  # Paris HS + PAN: column 0 unused
])
def test_split_is_fixed_whole_pixels_and_matches_the_test_quarter(width, ratio, first, want):
    from jfusion.pansharpening import mshs, wald

    s = protocol.column_split(width, ratio, first=first)
    assert (s.first, s.val, s.test) == want
    assert (s.val - s.first) % ratio == 0 and (s.test - s.val) % ratio == 0
    assert (s.first, s.test) == mshs.split_columns(width, ratio)  # the test strip is the old held-out quarter
    if first == 0:
        ms = np.zeros((4, width, 2))
        (_, _), (ms_te, _) = wald.split_test_region(ms, np.zeros((4 * ratio, width * ratio)), ratio)
        assert ms_te.shape[1] == width - s.test
    with pytest.raises(ValueError, match="too narrow"):
        protocol.column_split(2 * ratio, ratio)


def test_test_strip_only_inside_the_final_report():
    s = protocol.column_split(32, 4)
    lr, hr = np.arange(8 * 32).reshape(8, 32), np.arange(32 * 128).reshape(32, 128)
    with pytest.raises(protocol.ProtocolError, match="final report"):
        protocol.test_strip(s, lr, hr)
    assert not protocol.test_allowed()
    with protocol.reading_test():
        with protocol.reading_test():
            pass
        lr_te, hr_te = protocol.test_strip(s, lr, hr)  # still inside after a nested exit
    assert not protocol.test_allowed()
    tr, va = protocol.train_strip(s, lr, hr), protocol.validation_strip(s, lr, hr)
    cols = np.concatenate([tr[0][0], va[0][0], lr_te[0]])
    np.testing.assert_array_equal(cols, lr[0])  # disjoint, in order, covering the scene
    assert tr[1].shape[1] == 4 * tr[0].shape[1] and hr_te.shape[1] == 4 * lr_te.shape[1]


def _scene(path: Path, *, spoil_test: bool = False) -> Path:
    import scipy.io as sio

    rng = np.random.default_rng(0)
    pan = (rng.random((64, 128)) * 1500 + 100).astype(np.uint16)
    low = pan.reshape(16, 4, 32, 4).mean((1, 3))
    ms = np.stack([low * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.uint16)
    if spoil_test:  # anything read from the test strip would change the run
        ms[:, 24:] = 4000
        pan[:, 96:] = 0
    sio.savemat(path, {"I_MS": ms, "I_PAN": pan, "sensor": "IKONOS", "L": 11, "ratio": 4})
    return path


def test_training_never_reads_the_test_strip_and_ships_on_validation(tmp_path):
    runs = {}
    for spoil in (False, True):
        scene = _scene(tmp_path / f"scene{int(spoil)}.mat", spoil_test=spoil)
        cfg = pansharpening_config("pnn-residual", scene=str(scene), steps=6, batch=4, patch=8, validate_every=2, width=0.25)
        runs[spoil] = train_and_evaluate(cfg, tmp_path / f"run{int(spoil)}", progress=False)
    a, b = runs[False], runs[True]
    pa = assets.read_asset(tmp_path / "run0" / "pnn-residual-IKONOS").arrays
    pb = assets.read_asset(tmp_path / "run1" / "pnn-residual-IKONOS").arrays
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    assert a["scores"]["validation"] == b["scores"]["validation"] and a["scores"]["test"] == {}
    assert a["ships"] == protocol.ship_decision(a["scores"]["validation"])
    # early stopping: the kept step is the lowest of the recorded validation losses
    losses = {int(k): v for k, v in a["val_losses"].items()}
    assert sorted(losses) == [2, 4, 6] and a["steps"] == min(losses, key=losses.get) and a["max_steps"] == 6
    assert a["arch"]["features"] == [16, 8] and a["arch"]["width"] == 0.25  # the paper's 64/32 scaled by --width 0.25
    assert a["validation_region"].startswith("MS columns 16-23") and a["test_region"].startswith("MS columns 24-31")


def test_a_model_that_does_not_ship_is_not_installed(tmp_path, monkeypatch):
    from jfusion.pansharpening import learned

    monkeypatch.setattr(learned, "WEIGHTS_DIR", tmp_path / "package")
    monkeypatch.setattr(protocol, "ship_decision", lambda validation: False)
    scene = _scene(tmp_path / "scene.mat")
    cfg = pansharpening_config("pnn-residual", scene=str(scene), steps=2, batch=4, patch=8, width=0.25)
    man = train_and_evaluate(cfg, tmp_path / "run", install=True, progress=False)
    assert man["ships"] is False
    assert (tmp_path / "run" / "pnn-residual-IKONOS.npz").exists()
    assert not (tmp_path / "package" / "pnn-residual-IKONOS.npz").exists()


def test_keep_best_restores_the_best_validation_across_a_resume(tmp_path):
    import jax.numpy as jnp
    import optax
    from flax import nnx

    class Scalar(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.zeros(()))

    # w goes 0 -> 10 (w <- 0.9 w + 1); validation prefers w near 1.2: best at step 2 (w = 1.9)
    def loss(m, b):
        return (m.w[...] - 10.0) ** 2, {}

    def validate(m, step):
        return {"val": abs(float(m.w[...]) - 1.2)}

    def run(steps):
        return train(Scalar(), optax.sgd(0.05), loss, lambda i: jnp.zeros((4,)), steps=steps, checkpoint_dir=tmp_path / "ck",
                     checkpoint_every=2, validate=validate, validate_every=2, keep_best="val", progress=False)

    first = run(4)
    w_best = float(first.model.w[...])
    resumed = run(6)
    assert first.best_step == resumed.best_step
    assert float(resumed.model.w[...]) == pytest.approx(w_best)
    vals = {int(v["step"]): v["val"] for v in resumed.validation}
    assert sorted(vals) == [2, 4, 6] and resumed.best_step == min(vals, key=vals.get)
    with pytest.raises(ValueError, match="validate"):
        train(Scalar(), optax.sgd(0.1), loss, lambda i: jnp.zeros((4,)), steps=1, keep_best="val", progress=False)


def test_final_report_reads_each_asset_once_and_keeps_the_ship_decision(tmp_path, monkeypatch):
    import scipy.io as sio

    from jfusion.pansharpening import learned
    from jfusion.training import report

    rng = np.random.default_rng(1)
    (tmp_path / "data" / "pansharpening").mkdir(parents=True)
    pan = (rng.random((128, 256)) * 1500 + 100).astype(np.uint16)
    ms = np.stack([pan.reshape(32, 4, 64, 4).mean((1, 3)) * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.uint16)
    scene = tmp_path / "data" / "pansharpening" / "toy.mat"
    sio.savemat(scene, {"I_MS": ms, "I_PAN": pan, "sensor": "IKONOS", "L": 11, "ratio": 4})
    package = tmp_path / "package"
    monkeypatch.setattr(learned, "WEIGHTS_DIR", package)
    cfg = pansharpening_config("pnn-residual", scene=str(scene), steps=2, batch=4, patch=8, width=0.25)
    train_and_evaluate(cfg, package, progress=False)  # written straight into the (patched) package
    assert {"gsa", "mtf-glp", "mtf-glp-hpm", "brovey"} <= set(report._classical()) and "exp" not in report._classical()
    monkeypatch.setattr(report, "_classical", lambda: ["gsa"])
    monkeypatch.setattr(report, "ROBUSTNESS", (("exp", {}), ("pnn", {})))
    reads = []
    strip = protocol.test_strip
    monkeypatch.setattr(protocol, "test_strip", lambda *a, **k: reads.append(1) or strip(*a, **k))
    first = report.final_report(data_dir=tmp_path / "data", progress=False)
    row = first["assets"]["pnn-residual-IKONOS"]
    assert not row["reused"] and set(row["test"]) == {"model", "exp", "model_adapt"}
    man = assets.read_manifest(package / "pnn-residual-IKONOS")
    assert man["scores"]["test"] == row["test"] and man["test_read"]["sha256"] == man["sha256"]
    assert man["scores"]["validation"] == row["validation"] and man["ships"] == row["ships"]  # kept as trained
    assert "error" in first["other_degradation"]["toy.mat"]["pnn"]  # no pnn weights here: reported, not hidden
    n = len(reads)
    second = report.final_report(data_dir=tmp_path / "data", progress=False)
    assert second["assets"]["pnn-residual-IKONOS"]["reused"] and second["assets"]["pnn-residual-IKONOS"]["test"] == row["test"]
    assert len(reads) - n == 2  # only the classical and other-degradation rows of the scene read it again, not the asset
    text = report.report_markdown(second)
    assert "## toy.mat" in text and "pnn-residual (adapt=True)" in text and "Bar (best learned vs best classical)" in text


def test_final_report_cli_refuses_an_existing_output_before_any_work(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import jfusion.cli
    from jfusion.training import report

    out = tmp_path / "learned_test.md"
    out.write_text("kept\n")
    monkeypatch.setattr(report, "final_report", lambda **kw: pytest.fail("the report ran before the output check"))
    r = CliRunner().invoke(jfusion.cli.app, ["train", "final-report", "--out", str(out)])
    assert r.exit_code != 0 and "--force" in r.output and out.read_text() == "kept\n"


def test_a_finished_run_continued_to_more_steps_equals_a_fresh_run(tmp_path):
    """Constant-rate Adam, batches keyed by step: 4 steps continued to 8 give the 8-step run's weights and
    validation history; any other change of settings is still refused."""
    from jfusion.errors import FusionInputError

    scene = _scene(tmp_path / "scene.mat")

    def cfg(steps, **kw):
        return pansharpening_config("pnn", scene=str(scene), steps=steps, batch=4, patch=8, validate_every=2, width=0.25, **kw)

    train_and_evaluate(cfg(4), tmp_path / "grown", progress=False, score=False)
    grown = train_and_evaluate(cfg(8), tmp_path / "grown", force=True, progress=False, score=False)
    fresh = train_and_evaluate(cfg(8), tmp_path / "fresh", progress=False, score=False)
    a = assets.read_asset(tmp_path / "grown" / "pnn-IKONOS").arrays
    b = assets.read_asset(tmp_path / "fresh" / "pnn-IKONOS").arrays
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-7)
    assert grown["val_losses"] == pytest.approx(fresh["val_losses"], rel=1e-6) and grown["steps"] == fresh["steps"]
    with pytest.raises(FusionInputError, match="settings that differ: lr"):
        train_and_evaluate(cfg(8, lr=1e-2), tmp_path / "grown", force=True, progress=False, score=False)
    with pytest.raises(FusionInputError, match="settings that differ: steps"):  # fewer steps: not a continuation
        train_and_evaluate(cfg(6), tmp_path / "grown", force=True, progress=False, score=False)


def test_an_asset_over_the_ship_size_is_stored_at_float16_with_its_loss_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "SHIP_BYTES", 1024)  # the quarter-width PNN is ~10 kB
    scene = _scene(tmp_path / "scene.mat")
    cfg = pansharpening_config("pnn", scene=str(scene), steps=4, batch=4, patch=8, validate_every=2, width=0.25)
    man = train_and_evaluate(cfg, tmp_path / "run", progress=False)
    stored = assets.read_asset(tmp_path / "run" / "pnn-IKONOS")
    full = assets.read_asset(tmp_path / "run" / "pnn-IKONOS-float32")
    assert man["stored_dtype"] == "float16" and all(v.dtype == np.float16 for v in stored.arrays.values())
    assert all(v.dtype == np.float32 for v in full.arrays.values())
    for k in full.arrays:  # float16 rounding: relative error at most 2**-11 (normal range)
        np.testing.assert_allclose(stored.arrays[k].astype(np.float32), full.arrays[k], rtol=2**-11, atol=2**-24)
    st = man["storage"]
    assert st["dtype"] == "float16" and st["bytes"] < st["float32_bytes"] and st["strip"] == "validation"
    assert st["stored_scores"] == man["scores"]["validation"]["model"]  # the ship decision is on what ships
    assert set(st["score_change"]) == {"q2n", "sam", "ergas"}
    assert 0 <= st["max_abs_output_diff_rel"] < 1e-2 and man["scores"]["test"] == {}


def test_a_run_killed_after_a_best_checkpoint_past_its_last_checkpoint_resumes(tmp_path):
    """Killed at step 4 with the main checkpoint at 2 and the best one at 3: the resumed run recomputes step 3,
    replaces that best checkpoint (orbax refuses an existing step) and ends as an uninterrupted run."""
    import jax.numpy as jnp
    import optax
    from flax import nnx

    class Scalar(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.zeros(()))

    def loss(m, b):
        return (m.w[...] - 10.0) ** 2, {}

    def run(folder, steps, kill_at=None):
        def validate(m, step):
            if step == kill_at:
                raise KeyboardInterrupt
            return {"val": abs(float(m.w[...]) - 10.0)}  # better every step: a best checkpoint every step

        return train(Scalar(), optax.sgd(0.05), loss, lambda i: jnp.zeros((4,)), steps=steps, checkpoint_dir=folder,
                     checkpoint_every=2, validate=validate, validate_every=1, keep_best="val", progress=False)

    clean = run(tmp_path / "clean", 6)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", 6, kill_at=4)
    resumed = run(tmp_path / "killed", 6)
    assert resumed.start_step == 2 and resumed.best_step == clean.best_step == 6
    assert float(resumed.model.w[...]) == pytest.approx(float(clean.model.w[...]), abs=0)
