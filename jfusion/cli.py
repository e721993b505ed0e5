"""The ``jfusion`` command line (typer): fuse, pansharpen, eval, methods, train, data, bench, demo."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(help="jfusion: pixel-level image fusion in JAX.", no_args_is_help=True, add_completion=False)
train_app = typer.Typer(help="Train models and dictionaries; writes weights with a manifest.", no_args_is_help=True)
data_app = typer.Typer(help="Build training data shards from local files.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["levels=4", "rule=max"]`` -> ``{"levels": 4, "rule": "max"}`` (Python literals, else strings)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise typer.BadParameter(f"option {pair!r} is not KEY=VALUE")
        key, value = pair.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip().replace("-", "_")] = value
    return out


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _check_output(out: Path, inputs: list[Path], force: bool) -> None:
    resolved = out.resolve()
    for p in inputs:
        if p.resolve() == resolved:
            _fail(f"output {out} is one of the inputs; refusing to overwrite an input (choose another -o).")
    if out.exists() and not force:
        _fail(f"output {out} exists; pass --force to overwrite it.")


def _output_depth(path: Path, out: Path) -> int:
    from jfusion.io import read_image_info

    info = read_image_info(path)
    depth = info.bit_depth if info.bit_depth in (8, 16) else (32 if info.dtype.startswith("float") else 8)
    suffix = out.suffix.lower()
    if depth == 32 and suffix not in (".tif", ".tiff"):
        depth = 16 if suffix == ".png" else 8
    if depth == 16 and suffix in (".jpg", ".jpeg", ".bmp"):
        depth = 8
    return depth


def _fuse_files(paths: list[Path], out: Path, method: str, options: dict[str, Any], tile: int | None) -> Path:
    import numpy as np

    import jfusion

    images = [jfusion.read_image(p) for p in paths]
    if tile:
        from jfusion.tiling import fuse_tiled

        fused = fuse_tiled(images, method, tile=tile, **options)
    else:
        fused = np.asarray(jfusion.fuse(images, method=method, **options))
    return jfusion.write_image(out, fused, bit_depth=_output_depth(paths[0], out))


def _matching_files(folders: list[Path]) -> list[tuple[str, list[Path]]]:
    from jfusion.io import IMAGE_SUFFIXES

    by_stem = []
    for folder in folders:
        files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        by_stem.append(files)
    common = sorted(set.intersection(*(set(d) for d in by_stem)))
    return [(stem, [d[stem] for d in by_stem]) for stem in common]


@app.command("fuse")
def fuse_cmd(
    inputs: list[Path] = typer.Argument(..., help="Two or more source images of one scene, or folders of images with matching names."),
    method: str = typer.Option("laplacian", "-m", "--method", help="Registered method (see `jfusion methods`)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output image, or output folder in batch mode."),
    option: Optional[list[str]] = typer.Option(None, "-p", "--option", help="Method option KEY=VALUE (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file (never an input)."),
    tile: Optional[int] = typer.Option(None, "--tile", help="Fuse tile by tile (tile side in pixels) for large images."),
) -> None:
    """Fuse images (or, given folders, every set of files with matching names)."""
    from jfusion.errors import FusionInputError

    opts = parse_options(option)
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        _fail(f"no such file or folder: {', '.join(missing)}")
    if len(inputs) < 2:
        _fail("fusion needs at least two sources.")
    try:
        if all(p.is_dir() for p in inputs):
            pairs = _matching_files(inputs)
            if not pairs:
                _fail("the folders share no image names; name matching sources alike (e.g. A/01.png, B/01.png).")
            if output.suffix:
                _fail(f"batch mode writes into a folder; {output} looks like a file name.")
            output.mkdir(parents=True, exist_ok=True)
            from rich.progress import track

            for stem, paths in track(pairs, description=f"fusing ({method})"):
                target = output / (stem + paths[0].suffix.lower().replace(".jpeg", ".jpg"))
                _check_output(target, [q for p in inputs for q in p.iterdir()], force)
                _fuse_files(paths, target, method, opts, tile)
            typer.echo(f"fused {len(pairs)} scene(s) into {output}")
        elif any(p.is_dir() for p in inputs):
            _fail("mix of files and folders; pass only files (one scene) or only folders (batch).")
        else:
            _check_output(output, list(inputs), force)
            written = _fuse_files(list(inputs), output, method, opts, tile)
            typer.echo(f"wrote {written}")
    except FusionInputError as err:
        _fail(str(err))


@app.command("methods")
def methods_cmd(task: Optional[str] = typer.Option(None, "--task", help="Only methods for this task.")) -> None:
    """List every registered method: general fusion, pan-sharpening and MS/HS fusion."""
    from rich.console import Console
    from rich.table import Table

    from jfusion.api import list_methods

    try:
        infos = list_methods(task)
    except ValueError as err:
        _fail(str(err))
    table = Table(title="jfusion methods")
    for col in ("name", "tasks", "kind", "weights", "reference"):
        table.add_column(col)
    for m in infos:
        kind = getattr(m, "colour", None) or getattr(m, "family", "")
        weights = getattr(m, "weights", None) or ("shipped" if getattr(m, "learned", False) else "-")
        table.add_row(m.name, ", ".join(m.tasks), kind, weights, m.reference)
    Console(width=160).print(table)


def demo_sources() -> tuple[Any, Any, Any]:
    """A built-in multi-focus pair made from scikit-image's ``astronaut``: (A, B, all-in-focus), [0, 1]."""
    import numpy as np
    from skimage import data
    from skimage.filters import gaussian

    sharp = data.astronaut().astype(np.float32) / 255.0
    blurred = gaussian(sharp, sigma=3.0, channel_axis=-1).astype(np.float32)
    h, w = sharp.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((xx - 0.42 * w) ** 2 + (yy - 0.45 * h) ** 2 < (0.3 * h) ** 2)[..., None]
    a = np.where(mask, sharp, blurred)
    b = np.where(mask, blurred, sharp)
    return a, b, sharp


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("jfusion-demo"), "-o", "--out", help="Folder for the demo outputs."),
    method: str = typer.Option("laplacian", "-m", "--method", help="Method to demonstrate."),
) -> None:
    """Fuse a built-in multi-focus example and write the fused image and a side-by-side figure."""
    import numpy as np

    import jfusion

    a, b, sharp = demo_sources()
    fused = np.clip(np.asarray(jfusion.fuse([a, b], method=method)), 0.0, 1.0)
    psnr = float(10 * np.log10(1.0 / np.mean((fused - sharp) ** 2)))
    psnr_a = float(10 * np.log10(1.0 / np.mean((a - sharp) ** 2)))
    out.mkdir(parents=True, exist_ok=True)
    fused_path = jfusion.write_image(out / f"fused_{method}.png", fused)
    jfusion.write_image(out / "source_a.png", a)
    jfusion.write_image(out / "source_b.png", b)
    gap = np.ones((a.shape[0], 8, 3), np.float32)
    figure = np.concatenate([a, gap, b, gap, fused], axis=1)
    fig_path = jfusion.write_image(out / f"side_by_side_{method}.png", figure)
    typer.echo(f"method {method}: PSNR vs the all-in-focus image {psnr:.2f} dB (source A alone: {psnr_a:.2f} dB)")
    typer.echo(f"fused image: {fused_path}")
    typer.echo(f"side-by-side figure (A | B | fused): {fig_path}")


# ---------------------------------------------------------------------------
# train / data sub-commands: each family adds its own command below, importing its
# training module inside the function so that `jfusion --help` stays fast.
# ---------------------------------------------------------------------------


@train_app.command("dictionary")
def train_dictionary_cmd(
    data: str = typer.Option("", help="Folder of natural images (default: ../shared/data/natural when present)."),
    out: str = typer.Option("", help="Output folder (default: the package's jfusion/sparse/dictionaries)."),
    name: str = typer.Option("csr32", help="Dictionary name (asset files <name>.npz and <name>.json)."),
    num_filters: int = typer.Option(32, help="Number of filters M."),
    filter_size: int = typer.Option(8, help="Filter size h = w."),
    lmbda: float = typer.Option(0.1, help="l1 weight of the coding step."),
    iterations: int = typer.Option(300, help="Outer iterations (one CBPDN + one dictionary ADMM step each)."),
    num_images: int = typer.Option(16, help="Number of training crops (one per image)."),
    crop: int = typer.Option(128, help="Crop size in pixels."),
    seed: int = typer.Option(0, help="Seed of the crop choice and the random initial filters."),
    force: bool = typer.Option(False, "--force", help="Replace an existing asset of that name."),
) -> None:
    """Learn a convolutional dictionary (CSR fusion) from natural images; writes it with a manifest."""
    import os
    import sys
    from pathlib import Path

    from jfusion.sparse.dictionary import DICTIONARY_DIR
    from jfusion.sparse.train import train_dictionary

    default = Path(os.environ.get("JFUSION_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    folder = Path(data) if data else default / "natural"
    if not folder.exists():
        raise typer.BadParameter(f"training folder {folder} not found; pass --data FOLDER")
    m = train_dictionary(
        folder, Path(out) if out else DICTIONARY_DIR, name=name, num_filters=num_filters, filter_size=filter_size,
        lmbda=lmbda, num_iter=iterations, num_images=num_images, crop=crop, seed=seed,
        command=" ".join(["jfusion train dictionary", *sys.argv[sys.argv.index("dictionary") + 1 :]])
        if "dictionary" in sys.argv else None, force=force,
    )
    typer.echo(f"{m['name']}: {m['shape']} objective {m['objective_first']:.4g} -> {m['objective_final']:.4g} "
               f"in {m['seconds']} s")


@train_app.command("focus-cnn")
def train_focus_cnn(
    model: str = typer.Option("focus-cnn", help="preset: focus-cnn | focus-cnn-direct | weight-net"),
    data: str = typer.Option("../shared/data/natural", help="folder of natural images (searched recursively)"),
    steps: int = typer.Option(0, help="optimiser steps (0: the preset's)"),
    batch: int = typer.Option(0, help="global batch of pairs (0: the preset's)"),
    seed: int = typer.Option(0, help="seed of initialisation and data"),
    val_pairs: int = typer.Option(0, help="held-out validation pairs (0: the preset's)"),
    out: str = typer.Option("", help="weights folder to write (default: jfusion/weights/<preset with _>)"),
    checkpoint_dir: str = typer.Option("", help="orbax checkpoint folder; an existing one is resumed"),
    progress: bool = typer.Option(True, help="show a progress bar"),
    force: bool = typer.Option(False, "--force", help="Replace an existing asset of that name."),
) -> None:
    """Train a weight-map CNN on synthetic multi-focus pairs and write weights + manifest."""
    import dataclasses
    import sys
    from pathlib import Path

    from jfusion.parallel import initialize_distributed
    from jfusion.training.focus import CONFIGS, ship, train_weightnet

    initialize_distributed()
    if model not in CONFIGS:
        raise typer.BadParameter(f"unknown preset {model!r}; choose one of {sorted(CONFIGS)}")
    cfg = CONFIGS[model]
    cfg = dataclasses.replace(cfg, seed=seed, **({"steps": steps} if steps else {}), **({"batch": batch} if batch else {}),
                              **({"val_pairs": val_pairs} if val_pairs else {}))
    trained, result, dat = train_weightnet(cfg, data, checkpoint_dir=checkpoint_dir or None, progress=progress)
    folder = Path(out) if out else Path(__file__).resolve().parent / "weights" / model.replace("-", "_")
    args = sys.argv[sys.argv.index("focus-cnn") + 1 :] if "focus-cnn" in sys.argv else []
    command = " ".join(["jfusion train focus-cnn", *args])
    man = ship(trained, cfg, dat, result, folder, name=model, source=data, command=command, force=force)
    v = man["scores"]["validation"]
    typer.echo(f"wrote {folder}: val acc {v['accuracy']:.4f} (incl. textureless {v['accuracy_incl_textureless']:.4f})")
# ---------------------------------------------------------------------------
# remote sensing: `jfusion pansharpen` and `jfusion train <pan-sharpening model> --scene ...`
# ---------------------------------------------------------------------------
@app.command("pansharpen")
def pansharpen_cmd(
    ms: str = typer.Option(..., "--ms", help="Multispectral image (multiband TIFF/GeoTIFF, sensor units)."),
    pan: str = typer.Option(..., "--pan", help="Panchromatic image (TIFF/GeoTIFF), r times the MS size."),
    method: str = typer.Option("gsa", "-m", "--method", help="Pan-sharpening method (see jfusion.pansharpening.list_pansharpening_methods())."),
    out: str = typer.Option(..., "-o", "--out", help="Output TIFF; GeoTIFF tags of the PAN (same grid) are kept."),
    sensor: str = typer.Option(None, "--sensor", help="QB, IKONOS, GeoEye1, WV2, WV3 (MTF gains / learned weights)."),
    bit_depth: int = typer.Option(None, "--bit-depth", help="Radiometric depth of the data (default: inferred from the values)."),
    out_bit_depth: int = typer.Option(16, "--out-bit-depth", help="16 (default), 8 or 32 (float)."),
    evaluate: str = typer.Option(None, "--eval", help="Also print quality indices: 'reduced' (Wald's protocol: Q2n, SAM, ERGAS, sCC, Q), 'full' (D_lambda, D_s, QNR) or 'both'."),
) -> None:
    """Pan-sharpen MS with PAN; the result keeps the sensor's scale and the PAN's georeferencing."""
    from pathlib import Path

    import numpy as np

    from jfusion.errors import FusionInputError
    from jfusion.pansharpening import pansharpen, read_multiband, write_multiband

    try:
        ms_arr, _ = read_multiband(ms)
        pan_arr, pan_geo = read_multiband(pan)
        if Path(out).resolve() in (Path(ms).resolve(), Path(pan).resolve()):
            raise FusionInputError(f"{out}: would overwrite an input; choose another output path.")
        depth = bit_depth
        if depth is None:
            top = max(float(ms_arr.max()), float(pan_arr.max()))
            depth = 8 if top < 256 else 11 if top < 2048 else 12 if top < 4096 else 14 if top < 16384 else 16
        if evaluate not in (None, "reduced", "full", "both"):
            raise FusionInputError(f"--eval {evaluate!r}: pass reduced, full or both.")
        fused = pansharpen(ms_arr, pan_arr, method, sensor=sensor, bit_depth=depth)
        write_multiband(out, np.asarray(fused), geo=pan_geo, bit_depth=out_bit_depth)
        typer.echo(f"wrote {out} ({fused.shape[0]}x{fused.shape[1]}x{fused.shape[2]}, method {method})")
        if evaluate:
            from jfusion.pansharpening.evaluation import evaluate_full, evaluate_reduced

            ratio = pan_arr.shape[0] // ms_arr.shape[0]
            kinds = ("reduced", "full") if evaluate == "both" else (evaluate,)
            for kind in kinds:
                fn = evaluate_reduced if kind == "reduced" else evaluate_full
                try:
                    scores = fn(ms_arr, pan_arr, method, ratio=ratio, sensor=sensor, bit_depth=depth)
                except ValueError as err:  # e.g. images smaller than the 32x32 quality blocks
                    raise FusionInputError(f"--eval {kind}: {err}") from None
                typer.echo(f"{kind} resolution: " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items() if k != "seconds"))
    except FusionInputError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None


def _pansharpening_train_command(model_name: str):
    def command(
        scene: str = typer.Option(..., "--scene", help="Scene .mat file (I_MS, I_PAN, sensor, L), e.g. shared/data/pansharpening/imgIK.mat."),
        steps: int = typer.Option(None, "--steps", help="Optimiser steps (default: the model's recipe)."),
        batch: int = typer.Option(None, "--batch", help="Batch size (default: the recipe)."),
        seed: int = typer.Option(0, "--seed"),
        out: str = typer.Option(None, "--out", help="Weights folder (default: the package's jfusion/weights/pansharpening)."),
        score: bool = typer.Option(True, "--score/--no-score", help="Score on the held-out test region (needs jfusion.metrics)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing asset of that name."),
    ) -> None:
        from jfusion.training.pansharpening import train_pansharpening

        meta = train_pansharpening(model_name, scene, steps=steps, batch=batch, seed=seed, out_dir=out, score=score, force=force)
        typer.echo(f"trained {model_name} for {meta['sensor']}: final loss {meta['final_loss']:.4g}; scores {meta['scores']['test']}")

    command.__doc__ = f"Train the {model_name} pan-sharpening model on a scene under Wald's protocol (left 3/4; right 1/4 held out)."
    return command


def _register_pansharpening_train_commands() -> None:
    from jfusion.pansharpening.registry import list_pansharpening_methods

    for info in list_pansharpening_methods("learned"):
        train_app.command(info.name)(_pansharpening_train_command(info.name))


_register_pansharpening_train_commands()


@train_app.command("cnn3d-mshs")
def train_cnn3d_mshs_cmd(
    scene: str = typer.Option(..., "--scene", help="HS + high-resolution RGB/MS/PAN .mat in shared/data/hyperspectral (houston_dataset.mat, paris_data_hs_ms.mat, paris_data_hs_pan.mat)."),
    steps: int = typer.Option(300, "--steps"),
    seed: int = typer.Option(0, "--seed"),
    components: int = typer.Option(None, "--components", help="PCA components of the HS (default 8)."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    select_steps: bool = typer.Option(False, "--select-steps", help="Early stopping: pick the step count (<= --steps) on a validation strip of the training part."),
    out: str = typer.Option(None, "--out", help="Weights folder (default: jfusion/weights/pansharpening)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing asset of that name."),
) -> None:
    """Train the 3-D CNN MS/HS fusion (Palsson et al. 2017) on an HS scene (right quarter held out).

    Real pairs (Houston HS+RGB, Paris HS+PAN) train under Wald's protocol; HS and MS on one grid
    (Paris HS+MS) train with the HS degraded by 3 and the original HS as the target.
    """
    from jfusion.training.pansharpening import train_cnn3d_mshs

    meta = train_cnn3d_mshs(scene, steps=steps, lr=lr, seed=seed, n_components=components, select_steps=select_steps, out_dir=out, force=force)
    typer.echo(f"trained cnn3d-mshs for {meta['sensor']}: final loss {meta['final_loss']:.4g}")


@train_app.command("pansharpening-scores")
def pansharpening_scores_cmd(
    data: str = typer.Option(None, "--data", help="Shared data folder (default ../shared/data next to the repository)."),
    prune: bool = typer.Option(True, "--prune/--keep", help="Delete weights that do not beat EXP on Q2n, SAM and ERGAS."),
) -> None:
    """Score the shipped pan-sharpening / MS-HS weights on the held-out test regions and rebuild their manifest."""
    from jfusion.training.pansharpening import score_shipped

    entries = score_shipped(data, prune=prune)
    for key, meta in entries.items():
        if key == "not_shipped":
            continue
        m, e = meta["scores"]["test"]["model"], meta["scores"]["test"]["exp"]
        qk = "q2n" if "q2n" in m else "q"
        typer.echo(
            f"{key:28s} {'Q2n' if qk == 'q2n' else 'Q'} {m[qk]:.4f} (EXP {e[qk]:.4f})  SAM {m['sam']:.3f} ({e['sam']:.3f})  ERGAS {m['ergas']:.3f} ({e['ergas']:.3f})"
        )
    for key in entries.get("not_shipped", {}):
        typer.echo(f"{key:28s} not shipped: does not beat EXP")


# ---------------------------------------------------------------------------
# eval: objective metrics (jfusion.metrics)
# ---------------------------------------------------------------------------
def _metric_table_rows(rows: list[tuple[str, dict[str, float]]], names: list[str]) -> list[list[str]]:
    import math

    out = [[stem] + [f"{r[n]:.6g}" for n in names] for stem, r in rows]
    if len(rows) > 1:
        means = []
        for n in names:
            vals = [r[n] for _, r in rows if math.isfinite(r[n])]
            means.append(f"{sum(vals) / len(vals):.6g}" if vals else "nan")
        out.append(["mean"] + means)
    return out


@app.command("eval")
def eval_cmd(
    sources: list[Path] = typer.Argument(..., help="Source images of one scene, or folders of sources with matching names."),
    fused: Path = typer.Option(..., "-f", "--fused", help="The fused image, or a folder of fused images named like the sources."),
    metrics: str = typer.Option(
        "", "-m", "--metrics", help="Comma-separated metric names (jfusion.metrics.list_metrics() lists them; default: jfusion.metrics.DEFAULT_METRICS, VIFB's 13)."
    ),
    colour: str = typer.Option("vifb", "--colour", help="Colour rule: vifb, channels, mefb or gray."),
    option: Optional[list[str]] = typer.Option(None, "-p", "--option", help="Metric option METRIC.KEY=VALUE, e.g. psnr.convention=standard."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write the table (per image and mean) as CSV."),
    md_path: Optional[Path] = typer.Option(None, "--md", help="Write the table as Markdown."),
) -> None:
    """Objective fusion metrics of fused images against their sources: a table per image plus the mean."""
    import csv

    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    from jfusion.errors import FusionInputError
    from jfusion.io import read_image
    from jfusion.metrics import DEFAULT_METRICS, evaluate, get_metric_info

    names = [m.strip().lower() for m in metrics.split(",") if m.strip()] or list(DEFAULT_METRICS)
    try:
        infos = [get_metric_info(n) for n in names]
    except ValueError as err:
        _fail(str(err))
    if any(i.kind != "fusion" for i in infos):
        _fail("jfusion eval takes general fusion metrics; remote-sensing indices are in `jfusion pansharpen` / jfusion.metrics.remote.")
    per_metric: dict[str, dict[str, Any]] = {}
    for key, value in parse_options(option).items():
        if "." not in key:
            _fail(f"option {key!r}: write METRIC.KEY=VALUE, e.g. psnr.convention=standard.")
        m, k = key.split(".", 1)
        per_metric.setdefault(m.lower(), {})[k] = value
    missing = [str(p) for p in [*sources, fused] if not p.exists()]
    if missing:
        _fail(f"no such file or folder: {', '.join(missing)}")
    if len(sources) < 2:
        _fail("metrics need at least two sources.")
    if all(p.is_dir() for p in sources) and fused.is_dir():
        scenes = [(stem, paths[:-1], paths[-1]) for stem, paths in _matching_files([*sources, fused])]
        if not scenes:
            _fail("the folders share no image names; name matching files alike (e.g. VI/01.png, IR/01.png, fused/01.png).")
    elif not any(p.is_dir() for p in sources) and not fused.is_dir():
        scenes = [(fused.stem, list(sources), fused)]
    else:
        _fail("pass only files (one scene) or only folders (sources and fused) with matching names.")
    rows: list[tuple[str, dict[str, float]]] = []
    try:
        for stem, src_paths, fused_path in track(scenes, description="evaluating", disable=len(scenes) == 1):
            srcs = [read_image(p) for p in src_paths]
            rows.append((stem, evaluate(srcs, read_image(fused_path), metrics=names, colour=colour, options=per_metric)))
    except FusionInputError as err:
        _fail(str(err))
    arrows = {"higher": "↑", "lower": "↓", "zero": "→0"}
    header = ["image"] + [f"{n} {arrows[i.direction]}" for n, i in zip(names, infos)]
    body = _metric_table_rows(rows, names)
    table = Table(title=f"jfusion eval ({colour} colour rule)")
    for h in header:
        table.add_column(h, justify="left" if h == "image" else "right")
    for r in body:
        table.add_row(*r)
    Console().print(table)
    if csv_path is not None:
        with open(csv_path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", *names])
            w.writerows(body)
        typer.echo(f"wrote {csv_path}")
    if md_path is not None:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        md_path.write_text("\n".join(lines) + "\n")
        typer.echo(f"wrote {md_path}")


@data_app.command("build-focus")
def data_build_focus_cmd(
    images: Path = typer.Option(..., "--images", help="Folder of natural images (searched recursively)."),
    out: Path = typer.Option(..., "--out", help="Empty folder for the shards."),
    pairs: int = typer.Option(100_000, "--pairs", help="Number of synthetic focus pairs."),
    shard_size: int = typer.Option(4096, "--shard-size"),
    n_classes: int = typer.Option(2, "--classes", help="Weight classes K (2: focused/defocused)."),
    crop: int = typer.Option(96, "--crop", help="Crop size taken from each image."),
    per_image: int = typer.Option(4, "--per-image", help="Crops per image."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write synthetic multi-focus training pairs (Liu 2017 blur recipe) as .npz shards."""
    import jax

    from jfusion.data import load_crop_pool, write_focus_shards

    if not images.is_dir():
        _fail(f"{images} is not a folder of images.")
    try:
        pool = load_crop_pool(images, crop=crop, per_image=per_image, seed=seed)
        paths = write_focus_shards(
            jax.random.key(seed), pool, out, pairs=pairs, shard_size=shard_size, n_classes=n_classes
        )
    except (ValueError, FileExistsError) as err:
        _fail(str(err))
    typer.echo(f"wrote {pairs} pairs in {len(paths)} shard(s) to {out}")
