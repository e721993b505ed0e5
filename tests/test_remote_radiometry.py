"""One bit-depth rule, second half: a learned model refuses input far from the radiometry it was trained on."""

from __future__ import annotations

import numpy as np
import pytest

import jfusion as jf
from jfusion import assets
from jfusion.errors import FusionInputError
from jfusion.pansharpening import learned, read_scene, wald
from conftest import data_path


@pytest.fixture(scope="module")
def ikonos():
    scene = read_scene(data_path("pansharpening", "imgIK.mat"))
    return scene.ms[:64, :64], scene.pan[:256, :256], scene


def test_every_shipped_model_records_its_training_radiometry():
    # Recomputed from the train strip at the manifest's bit depth.
    from jfusion.training import protocol

    for path in assets.find_assets(learned.WEIGHTS_DIR, pattern="*"):
        meta = assets.read_manifest(path)
        if meta["model"] == "cnn3d-mshs":
            continue
        rad = meta["radiometry"]
        assert rad["bit_depth"] == meta["bit_depth"]
        scene = read_scene(data_path("pansharpening", meta["data"]["scene"]))
        ms_tr, _ = protocol.train_strip(protocol.column_split(scene.ms.shape[1], scene.ratio), scene.ms, scene.pan)
        assert float(np.mean(rad["ms"]["mean"])) == pytest.approx(float(np.mean(ms_tr, dtype=np.float64)) / 2.0 ** meta["bit_depth"], rel=1e-9)


def test_eight_bit_values_in_a_uint16_container_are_refused(ikonos):
    ms, pan, _ = ikonos
    # 11-bit IKONOS rescaled to 8 bits but stored as uint16: the depth is inferred as 11 (values < 2048),
    # so the model would see inputs 8x darker than it was trained on.
    ms8 = np.round(ms / 8.0).astype(np.uint16)
    pan8 = np.round(pan / 8.0).astype(np.uint16)
    with pytest.raises(FusionInputError, match=r"bit_depth=8"):
        jf.pansharpen(ms8, pan8, method="pnn", sensor="IKONOS")
    # Told the true depth, the same arrays are accepted, and the 8-bit version of the scene gives the 11-bit result
    # up to the 8-bit quantisation (the input is normalised by 2**bit_depth, the output scaled back).
    out = np.asarray(jf.pansharpen(ms8, pan8, method="pnn", sensor="IKONOS", bit_depth=8))
    assert out.shape == (256, 256, 4) and np.isfinite(out).all()
    full = np.asarray(jf.pansharpen(ms, pan, method="pnn", sensor="IKONOS", bit_depth=11))
    rel = np.abs(out * 8.0 - full).mean() / np.abs(full).mean()
    assert rel < 0.01, rel  # measured on this crop: see the assertion message on failure


@pytest.mark.parametrize("method", ["pnn", "drpnn", "sae", "srcnn-gs", "pnn-residual"])
def test_wrong_float_bit_depth_is_refused_by_every_learned_family(ikonos, method):
    ms, pan, scene = ikonos
    # 11-bit data declared as 16-bit: 32x too dark for the model.
    with pytest.raises(FusionInputError, match=r"bit_depth=11"):
        jf.pansharpen(ms, pan, method=method, sensor="IKONOS", bit_depth=16)
    # The scene's own depth passes the check.
    jf.pansharpen(ms, pan, method=method, sensor="IKONOS", bit_depth=scene.bit_depth)


def test_classical_methods_take_any_radiometry(ikonos):
    ms, pan, _ = ikonos
    out = np.asarray(jf.pansharpen(ms / 64.0, pan / 64.0, method="gsa", sensor="IKONOS"))
    assert np.isfinite(out).all()
