"""`jfusion eval`: folders of matching names, per-image + mean rows, CSV/Markdown output, errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

import jfusion
from jfusion.cli import app


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    dirs = {k: tmp_path / k for k in ("vi", "ir", "fused")}
    for d in dirs.values():
        d.mkdir()
    scenes = {}
    for name in ("s1", "s2"):
        a = rng.integers(0, 256, (40, 44), dtype=np.uint8)
        b = rng.integers(0, 256, (40, 44), dtype=np.uint8)
        f = ((a.astype(int) + b) // 2).astype(np.uint8)
        for k, img in zip(("vi", "ir", "fused"), (a, b, f)):
            jfusion.write_image(dirs[k] / f"{name}.png", img / 255.0)
        scenes[name] = (a, b, f)
    (dirs["vi"] / "only_here.png").write_bytes((dirs["vi"] / "s1.png").read_bytes())
    return dirs, scenes


def test_eval_folders_csv_markdown(folders, tmp_path):
    dirs, scenes = folders
    out_csv, out_md = tmp_path / "t.csv", tmp_path / "t.md"
    res = CliRunner().invoke(
        app,
        ["eval", str(dirs["vi"]), str(dirs["ir"]), "-f", str(dirs["fused"]), "-m", "en,qabf,psnr",
         "-p", "psnr.convention=standard", "--csv", str(out_csv), "--md", str(out_md)],
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(open(out_csv)))
    assert rows[0] == ["image", "en", "qabf", "psnr"]
    assert [r[0] for r in rows[1:]] == ["s1", "s2", "mean"]
    a, b, f = scenes["s1"]
    ref = jfusion.evaluate([a, b], f, metrics=["en", "qabf", "psnr"], options={"psnr": {"convention": "standard"}})
    assert float(rows[1][1]) == pytest.approx(ref["en"], rel=1e-5)
    assert float(rows[1][3]) == pytest.approx(ref["psnr"], rel=1e-5)
    assert float(rows[3][2]) == pytest.approx((float(rows[1][2]) + float(rows[2][2])) / 2, rel=1e-5)
    md = out_md.read_text()
    assert md.startswith("| image | en ↑ | qabf ↑ | psnr ↑ |") and "| mean |" in md


def test_eval_errors(folders):
    dirs, _ = folders
    runner = CliRunner()
    res = runner.invoke(app, ["eval", str(dirs["vi"] / "s1.png"), str(dirs["ir"] / "s1.png"), "-f", str(dirs["fused"] / "s1.png"), "-m", "nope"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["eval", str(dirs["vi"] / "s1.png"), "-f", str(dirs["fused"] / "s1.png")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["eval", str(dirs["vi"]), str(dirs["ir"] / "s1.png"), "-f", str(dirs["fused"])])
    assert res.exit_code == 2
