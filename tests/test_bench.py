"""jfusion bench: adapters, config, tables, cache / resume, CLI, and the VIFB reproduction.

Independent references: the per-scene metric path (``jfusion.metrics.evaluate`` on the files as
``jfusion.read_image`` reads them) for the bench's batched values; numpy means / hand ranks for
the tables; ``scipy.stats`` called directly for the tests; VIFB's MATLAB table
(``vifb/metrics/vifb_metrics_per_image.csv``, 5 significant digits) at 1e-4 relative.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, data_path
from jfusion.bench import config_from_dict, load_config, load_dataset, run
from jfusion.bench import _tables
from jfusion.errors import FusionInputError

METRICS = ["en", "sd", "sf", "psnr", "ce"]


def _write_png(path: Path, arr: np.ndarray) -> None:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, arr)


def _scene(rng, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import gaussian_filter

    base = gaussian_filter(rng.random((h, w)), 2.0)
    base = (base - base.min()) / (np.ptp(base) + 1e-9)
    a = gaussian_filter(base, 1.5) * 0.8 + 0.1 * rng.random((h, w))
    b = base * 0.7 + 0.3 * (np.arange(w)[None, :] / w)
    return (np.clip(a, 0, 1) * 255).astype(np.uint8), (np.clip(b, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A tiny infrared/visible set in MSRS layout (ir/, vi/): 5 scenes of two sizes, plus an external result folder."""
    root = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(0)
    for i in range(5):
        h, w = (40, 48) if i < 3 else (36, 44)
        a, b = _scene(rng, h, w)
        _write_png(root / "data" / "vi" / f"s{i}.png", a)
        _write_png(root / "data" / "ir" / f"s{i}.png", b)
        if i != 4:  # one scene without an external result: listed as missing
            _write_png(root / "external" / f"s{i}.png", ((a.astype(int) + b) // 2).astype(np.uint8))
    return root


def _cfg(root: Path, **report) -> dict:
    return {
        "task": "infrared-visible",
        "datasets": [{"name": "small", "adapter": "msrs", "path": str(root / "data")}],
        "methods": [
            {"name": "laplacian"},
            {"name": "laplacian", "label": "laplacian-2", "options": {"levels": 2}},
            {"folder": str(root / "external"), "label": "mean"},
        ],
        "metrics": {"names": METRICS},
        "batch": 2,
        "report": {"figures": False, "html": False, "stats": True, **report},
    }


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------
# adapters
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "adapter,parts,options,count,first",
    [
        ("vifb", ("vifb",), {}, 21, ("carLight", ("VI/carLight.jpg", "IR/carLight.jpg"))),
        ("mefb", ("mef", "mefb_pairs"), {}, 8, ("Balloons", ("Balloons_A.png", "Balloons_B.png"))),
        ("lytro", ("lytro",), {}, 20, ("lytro-01", ("lytro-01-A.jpg", "lytro-01-B.jpg"))),
        ("lytro", ("lytro", "triple"), {}, 4, ("lytro-01", ("lytro-01-A.jpg", "lytro-01-B.jpg", "lytro-01-C.jpg"))),
        ("mffw", ("mffw",), {}, 13, ("mffw_01", ("mffw_01_A.jpg", "mffw_01_B.jpg"))),
        ("tno", ("tno", "original"), {}, 20, ("2_men_in_front_of_house", ("2_men_in_front_of_house_VIS.png", "2_men_in_front_of_house_IR.png"))),
        ("roadscene", ("tno", "roadscene"), {}, 10, ("FLIR_00006", ("VIS/FLIR_00006.jpg", "IR/FLIR_00006.jpg"))),
        ("harvard", ("medical", "harvard"), {"pair": "CT-MRI"}, 10, ("16009", ("CT-MRI/CT/16009.png", "CT-MRI/MRI/16009.png"))),
    ],
)
def test_adapters_on_shared_data(adapter, parts, options, count, first):
    root = data_path(*parts)
    items = load_dataset(adapter, root, **options)
    assert len(items) == count
    name, files = first
    assert items[0].name == name
    assert tuple(str(p.relative_to(root)) for p in items[0].sources) == files
    assert [it.name for it in items] == sorted(it.name for it in items)


def test_mat_adapter_reads_scenes():
    items = load_dataset("mat", data_path("pansharpening"))
    assert [it.name for it in items] == ["imgGE1", "imgIK", "imgWV2"]
    from jfusion.bench.datasets import read_pansharpening_item
    from jfusion.pansharpening.io import read_scene

    sc = read_pansharpening_item(items[1])
    ref = read_scene(items[1].scene[0])
    np.testing.assert_array_equal(sc["ms"], ref.ms)
    assert sc["ratio"] == ref.ratio and sc["max_value"] == ref.data_range


@pytest.mark.parametrize("adapter,needle", [
    ("vifb", "IR/<name>.jpg and VI/<name>.jpg"), ("mefb", "<scene>_A.png"), ("tno", "an infrared folder"),
    ("folders", "folders = [\"A\", \"B\"]"), ("mat", "I_MS and I_PAN"), ("harvard", "modality folders"),
])
def test_adapter_on_wrong_folder_says_what_it_expected(tmp_path, adapter, needle):
    _write_png(tmp_path / "x" / "unrelated.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(FusionInputError) as err:
        load_dataset(adapter, tmp_path / "x")
    assert needle in str(err.value)
    with pytest.raises(FusionInputError, match="does not exist"):
        load_dataset(adapter, tmp_path / "nowhere")


def test_pancollection_h5(tmp_path):
    try:
        import h5py
    except ImportError:
        with pytest.raises(FusionInputError, match="pip install h5py"):
            load_dataset("pancollection", tmp_path)
        return
    rng = np.random.default_rng(1)
    with h5py.File(tmp_path / "test_gf2_multiExm1.h5", "w") as fh:
        fh["gt"] = rng.integers(0, 1023, (2, 4, 64, 64)).astype(np.float64)
        fh["ms"] = rng.integers(0, 1023, (2, 4, 16, 16)).astype(np.float64)
        fh["lms"] = rng.integers(0, 1023, (2, 4, 64, 64)).astype(np.float64)
        fh["pan"] = rng.integers(0, 1023, (2, 1, 64, 64)).astype(np.float64)
    items = load_dataset("pancollection", tmp_path)
    assert [it.max_value for it in items] == [1023.0, 1023.0]
    from jfusion.bench.datasets import read_pansharpening_item

    sc = read_pansharpening_item(items[1])
    assert sc["ms"].shape == (16, 16, 4) and sc["pan"].shape == (64, 64) and sc["ratio"] == 4 and sc["bit_depth"] == 10


def test_generic_folders_and_mefb_scene_folders(tmp_path):
    for d in ("A", "B"):
        for n in ("p1", "p2", "p3"):
            _write_png(tmp_path / "g" / d / f"{n}.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "g" / "B" / "p3.png").unlink()
    items = load_dataset("folders", tmp_path / "g", folders=["A", "B"])
    assert [it.name for it in items] == ["p1", "p2"]
    for s in ("Lamp", "House"):
        for t in ("A", "B"):
            _write_png(tmp_path / "m" / "input" / s / f"{s}_{t}.png", np.zeros((8, 8, 3), np.uint8))
    assert [it.name for it in load_dataset("mefb", tmp_path / "m")] == ["House", "Lamp"]


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------
def test_config_errors(small):
    good = _cfg(small)
    config_from_dict(good)
    bad = [
        ({**good, "colour": "vifb"}, "unknown key"),
        ({**good, "methods": good["methods"] + [{"name": "laplacian"}]}, "used twice"),
        ({**good, "methods": [{"name": "laplacian", "folder": "x"}]}, "either name"),
        ({**good, "methods": [{"name": "no-such-method"}]}, "unknown method"),
        ({**good, "metrics": {"names": ["nope"]}}, "unknown metric"),
        ({**good, "datasets": [{"adapter": "nope", "path": "."}]}, "unknown dataset adapter"),
        ({**good, "datasets": []}, "no \\[\\[datasets\\]\\]"),
        ({**good, "pansharpening": {"protocol": "half"}}, "protocol"),
    ]
    for raw, msg in bad:
        with pytest.raises(FusionInputError, match=msg):
            config_from_dict(raw)


def test_shipped_configs_parse():
    for name in ("vifb.toml", "mefb.toml"):
        cfg = load_config(REPO / "benchmarks" / "configs" / name)
        assert cfg.datasets and cfg.methods


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------
def test_tables_best_marks_and_mean_rank():
    values = {
        "A": {"s1": {"en": 1.0, "rmse": 3.0}, "s2": {"en": 3.0, "rmse": 1.0}},  # means 2, 2
        "B": {"s1": {"en": 4.0, "rmse": 4.0}, "s2": {"en": 4.0, "rmse": 4.0}},  # means 4, 4
        "C": {"s1": {"en": 0.0, "rmse": 0.0}, "s2": {"en": 2.0, "rmse": 1.0}},  # means 1, 0.5
    }
    methods, metrics, dirs = ["A", "B", "C"], ["en", "rmse"], ["higher", "lower"]
    means = _tables.mean_table(values, methods, metrics)
    np.testing.assert_allclose(means, [[2, 2], [4, 4], [1, 0.5]])
    # en (higher): B 1, A 2, C 3; rmse (lower): C 1, A 2, B 3 -> A 2, B 2, C 2
    np.testing.assert_allclose(_tables.mean_ranks(means, dirs), [2.0, 2.0, 2.0])
    md = _tables.markdown_mean(values, methods, metrics, dirs)
    assert "| B | **4** | 4 |" in md and "| C | 1 | **0.5** |" in md and "en ↑" in md and "rmse ↓" in md
    tex = _tables.latex_mean(values, methods, metrics, dirs)
    assert r"\textbf{4}" in tex and r"\toprule" in tex
    rows = list(csv.reader(_tables.csv_mean(values, methods, metrics).splitlines()))
    assert rows[0] == ["method", "en", "rmse"] and rows[1] == ["A", "2.0", "2.0"]
    per = _tables.markdown_per_image(values, methods, metrics, dirs, ["s1", "s2"])
    assert "| s1 | B | **4** | 4 |" in per and "| s1 | C | 0 | **0** |" in per


# ---------------------------------------------------------------------------------------------
# the bench end to end: values, cache, resume, force
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_run(small, tmp_path_factory):
    """One bench of the small set with everything on (tables, stats, figures, report, efficiency)."""
    out = tmp_path_factory.mktemp("full") / "out"
    res = run(config_from_dict(_cfg(small, figures=True, html=True, efficiency=True, montage_scenes=2)), out=out)
    return res, out


def test_bench_values_match_the_per_scene_path(small, full_run):
    import jfusion
    from jfusion.metrics import evaluate

    res, tmp = full_run
    tmp_path = tmp.parent
    assert res.computed == {"fused": 10, "metrics": 14}
    assert res.missing == ("small / mean / s4: no fused image named s4.* in " + str(small / "external"),)
    rows = _read_csv(tmp_path / "out" / "tables" / "small" / "per_image.csv")
    assert len(rows) == 14
    for r in rows:
        if r["image"] not in ("s0", "s1", "s2") or r["method"] == "laplacian-2":  # one shape: one more compilation
            continue
        folder = small / "external" if r["method"] == "mean" else tmp_path / "out" / "fused" / "small" / r["method"]
        fused = jfusion.read_image(folder / f"{r['image']}.png")
        srcs = [jfusion.read_image(small / "data" / d / f"{r['image']}.png") for d in ("vi", "ir")]
        ref = evaluate(srcs, fused, metrics=METRICS)
        for k in METRICS:
            assert float(r[k]) == pytest.approx(ref[k], rel=1e-5, abs=1e-6), (r["image"], r["method"], k)
    # the registered method's output is the API's output, written at 8 bits
    out = jfusion.read_image(tmp_path / "out" / "fused" / "small" / "laplacian-2" / "s0.png")
    srcs = [jfusion.read_image(small / "data" / d / "s0.png") for d in ("vi", "ir")]
    api = np.clip(np.asarray(jfusion.fuse(srcs, method="laplacian", levels=2)), 0, 1)
    np.testing.assert_allclose(out, np.round(api * 255) / 255, atol=1e-6)
    means = _read_csv(tmp_path / "out" / "tables" / "small" / "mean.csv")
    assert [m["method"] for m in means] == ["laplacian", "laplacian-2", "mean"]
    for m in means:
        vals = [float(r["sd"]) for r in rows if r["method"] == m["method"]]
        assert float(m["sd"]) == pytest.approx(np.mean(vals), rel=1e-12)
    from scipy.stats import wilcoxon

    wil = {(r["metric"], r["method_a"], r["method_b"]): r for r in _read_csv(tmp_path / "out" / "tables" / "small" / "wilcoxon.csv")}
    x = [float(r["en"]) for r in rows if r["method"] == "laplacian"]
    y = [float(r["en"]) for r in rows if r["method"] == "laplacian-2"]
    assert float(wil[("en", "laplacian", "laplacian-2")]["p_value"]) == pytest.approx(wilcoxon(x, y).pvalue)
    summary = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert summary["missing"] and summary["metrics"]["names"] == METRICS


def test_bench_cache_resume_and_force(small, tmp_path, monkeypatch):
    import jfusion.metrics as jm

    out = tmp_path / "out"
    cfg = config_from_dict(_cfg(small))
    calls: list[tuple] = []
    real = jm.evaluate_batch

    def recording(sources, fused, *a, **k):
        calls.append(np.shape(sources))
        return real(sources, fused, *a, **k)

    monkeypatch.setattr(jm, "evaluate_batch", recording)
    # a run killed midway: the third metric call is interrupted
    def dying(sources, fused, *a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        return recording(sources, fused, *a, **k)

    monkeypatch.setattr(jm, "evaluate_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, out=out)
    assert not list(out.rglob("*.partial"))
    done = len(list((out / "cache" / "metrics").rglob("*.json")))
    assert done == 4  # two chunks of two scenes
    monkeypatch.setattr(jm, "evaluate_batch", recording)
    calls.clear()
    resumed = run(cfg, out=out)
    assert resumed.computed == {"fused": 0, "metrics": 10}
    # every call has the fixed chunk size; one program per scene shape
    assert {c[0] for c in calls} == {2} and len({c for c in calls}) == 2
    tables = {p.name: p.read_bytes() for p in (out / "tables" / "small").iterdir()}
    clean = run(cfg, out=tmp_path / "clean")
    assert {p.name: p.read_bytes() for p in (tmp_path / "clean" / "tables" / "small").iterdir()} == tables
    again = run(cfg, out=out)
    assert again.computed == {"fused": 0, "metrics": 0}
    # changed options are a different key: only that method is redone
    raw = _cfg(small)
    raw["methods"][1]["options"] = {"levels": 3}
    assert run(config_from_dict(raw), out=out).computed == {"fused": 5, "metrics": 5}
    forced = run(cfg, out=out, force=True)
    assert forced.computed == {"fused": 10, "metrics": 14}
    assert {p.name: p.read_bytes() for p in (out / "tables" / "small").iterdir()} == tables


def test_bench_report_figures_and_efficiency(full_run):
    res, out = full_run
    tmp_path = out.parent
    figs = sorted(p.name for p in (tmp_path / "out" / "figures" / "small").iterdir())
    assert figs == ["boxplots.pdf", "boxplots.png", "montage_s0.pdf", "montage_s0.png", "montage_s1.pdf", "montage_s1.png"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "Spearman" in html and "Wilcoxon" in html and "s4" in html
    eff = _read_csv(tmp_path / "out" / "tables" / "efficiency.csv")
    assert [r["method"] for r in eff] == ["laplacian", "laplacian-2"]
    assert all(float(r["gflops"]) > 0 and float(r["latency_ms"]) > 0 and r["params"] == "0" for r in eff)
    assert res.files


def test_report_opens_in_headless_chromium(full_run):
    """The report renders in a real browser: a headless Chromium screenshot, and the DOM it built holds every figure."""
    import shutil
    import subprocess

    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        pytest.skip("no Chromium on PATH (apt-get install -y chromium)")
    _, out = full_run
    report = (out / "report.html").resolve()
    shot = out.parent / "report.png"
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,4000"]
    subprocess.run([*flags, f"--screenshot={shot}", report.as_uri()], check=True, capture_output=True, timeout=300)
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], check=True, capture_output=True, text=True, timeout=300).stdout
    import imageio.v3 as iio

    img = iio.imread(shot)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000 and img[..., :3].std() > 10  # not a blank page
    assert dom.count("<img") == 3 and dom.count("data:image/png;base64,") == 3 and "<table>" in dom


def test_bench_cli_flags_and_config(small, tmp_path):
    from typer.testing import CliRunner

    from jfusion.cli import app

    runner = CliRunner()
    args = ["bench", "--task", "infrared-visible", "-d", f"msrs={small / 'data'}", "-m", "laplacian", "-m", "lap2=laplacian:levels=2",
            "-r", f"mean={small / 'external'}", "--metrics", "en,sd", "--batch", "2", "--no-report", "--no-progress", "--out", str(tmp_path / "o")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "not evaluated: msrs / mean / s4" in r.output and "| lap2 |" in r.output
    means = _read_csv(tmp_path / "o" / "tables" / "msrs" / "mean.csv")
    assert [m["method"] for m in means] == ["laplacian", "lap2", "mean"] and list(means[0]) == ["method", "en", "sd"]
    r = runner.invoke(app, ["bench", "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "pass a CONFIG file" in r.output
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'task = "general"\n[[datasets]]\nadapter = "vifb"\npath = "{small}"\n[[methods]]\nname = "laplacian"\n')
    r = runner.invoke(app, ["bench", str(cfg), "--out", str(tmp_path / "o3"), "--no-progress"])
    assert r.exit_code == 2 and "IR/<name>.jpg" in r.output


# ---------------------------------------------------------------------------------------------
# VIFB reproduction: the published table from VIFB's fused images, one command
# ---------------------------------------------------------------------------------------------
VIFB_COLUMNS = dict(zip(
    ("ce", "en", "mi", "psnr", "ag", "ei", "qabf", "sd", "sf", "rmse", "ssim", "qcb", "qcv"),
    ("Cross_entropy", "Entropy", "Mutinf", "Psnr", "Avg_gradient", "Edge_intensity", "Qabf", "Variance", "Spatial_frequency",
     "Rmse", "Ssim", "Qcb", "Qcv"),
))


def _check_vifb(rows: list[dict[str, str]]) -> None:
    ref = {(r["image"], r["method"]): r for r in _read_csv(data_path("vifb", "metrics", "vifb_metrics_per_image.csv"))}
    for r in rows:
        for k, col in VIFB_COLUMNS.items():
            want = float(ref[(r["image"], r["method"])][col])
            assert abs(float(r[k]) - want) <= 1e-4 * abs(want), (r["image"], r["method"], k, r[k], want)


def test_vifb_config_on_two_scenes(tmp_path):
    """The shipped VIFB config restricted to the two 320x240 pairs (one compilation): VIFB's values to 1e-4."""
    import tomllib

    data_path("vifb")
    path = REPO / "benchmarks" / "configs" / "vifb.toml"
    raw = tomllib.loads(path.read_text())
    raw["datasets"][0]["scenes"] = ["peopleshadow", "walking"]
    raw["batch"] = 5
    res = run(config_from_dict(raw, base=path.parent), out=tmp_path / "vifb", report=False)
    assert res.computed["metrics"] == 10 and not res.missing
    _check_vifb(_read_csv(tmp_path / "vifb" / "tables" / "vifb" / "per_image.csv"))


FULL = os.environ.get("JFUSION_FULL") == "1"


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the full VIFB reproduction (105 images, > 60 s on 2 shared cores) runs with JFUSION_FULL=1")
def test_vifb_reproduction(tmp_path):
    """``jfusion bench benchmarks/configs/vifb.toml``: all 21 pairs x 5 methods x 13 metrics, VIFB's table to 1e-4."""
    t0 = time.perf_counter()
    res = run(REPO / "benchmarks" / "configs" / "vifb.toml", out=tmp_path / "vifb")
    first = time.perf_counter() - t0
    rows = _read_csv(tmp_path / "vifb" / "tables" / "vifb" / "per_image.csv")
    assert len(rows) == 105 and not res.missing
    _check_vifb(rows)
    avg = {r["method"]: r for r in _read_csv(data_path("vifb", "metrics", "vifb_metrics_average.csv"))}
    for m in _read_csv(tmp_path / "vifb" / "tables" / "vifb" / "mean.csv"):
        for k, col in VIFB_COLUMNS.items():
            assert float(m[k]) == pytest.approx(float(avg[m["method"]][col]), rel=1e-4)
    t0 = time.perf_counter()
    again = run(REPO / "benchmarks" / "configs" / "vifb.toml", out=tmp_path / "vifb")
    second = time.perf_counter() - t0
    assert again.computed == {"fused": 0, "metrics": 0}
    print(f"VIFB reproduction: {first:.1f} s, cached rerun {second:.1f} s")


# ---------------------------------------------------------------------------------------------
# two local processes under jax.distributed (CPU): the work is split, the tables are the same
# ---------------------------------------------------------------------------------------------
_WORKER = """
import sys
from jfusion.parallel import initialize_distributed
initialize_distributed(coordinator_address=sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
from jfusion.bench import load_config, run
res = run(load_config(sys.argv[3]), out=sys.argv[4])
print("computed", res.computed["fused"], res.computed["metrics"])
"""


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="two JAX processes compile on their own (about 130 s on the shared CPU); runs with JFUSION_FULL=1")
def test_bench_two_processes_jax_distributed(small, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'task = "infrared-visible"\nbatch = 2\n'
        f'[[datasets]]\nname = "small"\nadapter = "msrs"\npath = "{small / "data"}"\n'
        '[[methods]]\nname = "laplacian"\n'
        f'[[methods]]\nlabel = "mean"\nfolder = "{small / "external"}"\n'
        '[metrics]\nnames = ["en", "sd"]\n[report]\nfigures = false\nhtml = false\n'
    )
    with socket.socket() as sk:
        sk.bind(("localhost", 0))
        port = sk.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, f"localhost:{port}", str(i), str(cfg), str(tmp_path / "dist")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    counts = [tuple(map(int, o.split("computed")[-1].split()[:2])) for o in outs]
    assert sum(c[0] for c in counts) == 5 and sum(c[1] for c in counts) == 9 and all(c[1] > 0 for c in counts)  # shared out
    run(load_config(cfg), out=tmp_path / "one")
    # one process here runs the metric program sharded over its fake devices, each worker on one
    # device: the same arithmetic up to float rounding, so values agree to 1e-6 and the rounded tables exactly
    a, b = (_read_csv(tmp_path / d / "tables" / "small" / "per_image.csv") for d in ("dist", "one"))
    assert [(r["image"], r["method"]) for r in a] == [(r["image"], r["method"]) for r in b] and len(a) == 9
    for ra, rb in zip(a, b):
        assert float(ra["en"]) == pytest.approx(float(rb["en"]), rel=1e-6) and float(ra["sd"]) == pytest.approx(float(rb["sd"]), rel=1e-6)
    assert (tmp_path / "dist" / "tables" / "small" / "mean.md").read_text() == (tmp_path / "one" / "tables" / "small" / "mean.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="compiles 8 remote-sensing programs twice (about 450 s on the shared CPU); runs with JFUSION_FULL=1")
def test_pansharpening_bench_matches_the_evaluation_module(tmp_path):
    """protocol = "both" on a small synthetic .mat scene: the values of jfusion.pansharpening.evaluation."""
    import scipy.io as sio
    from scipy.ndimage import gaussian_filter

    from jfusion.pansharpening.evaluation import evaluate_full, evaluate_reduced

    rng = np.random.default_rng(3)
    pan = gaussian_filter(rng.random((128, 128)), 2.0) * 1500 + 200
    ms = np.stack([pan.reshape(32, 4, 32, 4).mean(axis=(1, 3)) * (0.6 + 0.2 * b) + 30 * rng.random((32, 32)) for b in range(4)], -1)
    sio.savemat(tmp_path / "scene.mat", {"I_MS": ms.astype(np.uint16), "I_PAN": pan.astype(np.uint16), "L": 11, "ratio": 4, "sensor": "none"})
    cfg = config_from_dict({"task": "pansharpening", "datasets": [{"adapter": "mat", "path": str(tmp_path / "scene.mat")}],
                            "methods": [{"name": "brovey"}], "pansharpening": {"protocol": "both"},
                            "report": {"figures": True, "html": False, "stats": False}})
    res = run(cfg, out=tmp_path / "out")
    got = res.values["mat"]["brovey"]["scene"]
    from jfusion.pansharpening.io import read_scene

    sc = read_scene(tmp_path / "scene.mat")
    want = {**evaluate_reduced(sc.ms, sc.pan, "brovey", ratio=4, bit_depth=11), **evaluate_full(sc.ms, sc.pan, "brovey", ratio=4, bit_depth=11)}
    want["uiqi"] = want.pop("q")
    assert list(got) == ["q2n", "sam", "ergas", "scc", "uiqi", "d_lambda", "d_s", "qnr"]
    for k, v in got.items():
        assert v == pytest.approx(want[k], rel=1e-6, abs=1e-9), k
    assert (tmp_path / "out" / "figures" / "mat" / "distortion_plane.png").exists()


def test_eval_table_fits_80_columns():
    from jfusion.cli import _text_table

    names = ["ce", "en", "mi", "psnr", "ag", "ei", "qabf", "sd", "sf", "rmse", "ssim", "qcb", "qcv"]
    header = ["image", *(f"{n} ↑" for n in names)]
    body = [["walkingnight", *(f"{1234.5678 / (i + 1):.6g}" for i in range(13))], ["mean", *(["0.5"] * 13)]]
    text = _text_table(header, body, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    blocks = text.split("\n\n")
    assert len(blocks) == 2 and all(b.startswith("image") for b in blocks)
    assert sum(b.splitlines()[0].count("↑") for b in blocks) == 13  # every metric once
    assert all(b.splitlines()[2].startswith("walkingnight") for b in blocks)
