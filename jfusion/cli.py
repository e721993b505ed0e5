"""The ``jfusion`` command line (typer): fuse, pansharpen, eval, methods, train, data, bench, demo."""

from __future__ import annotations

import typer

app = typer.Typer(help="jfusion: pixel-level image fusion in JAX.", no_args_is_help=True, add_completion=False)
train_app = typer.Typer(help="Train models and dictionaries; writes weights with a manifest.", no_args_is_help=True)
data_app = typer.Typer(help="Build training data shards from local files.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")


# ---------------------------------------------------------------------------
# train / data sub-commands: each family adds its own command below, importing its
# training module inside the function so that `jfusion --help` stays fast.
# ---------------------------------------------------------------------------


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
        fused = pansharpen(ms_arr, pan_arr, method, sensor=sensor, bit_depth=depth)
        write_multiband(out, np.asarray(fused), geo=pan_geo, bit_depth=out_bit_depth)
    except FusionInputError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {out} ({fused.shape[0]}x{fused.shape[1]}x{fused.shape[2]}, method {method})")


def _pansharpening_train_command(model_name: str):
    def command(
        scene: str = typer.Option(..., "--scene", help="Scene .mat file (I_MS, I_PAN, sensor, L), e.g. shared/data/pansharpening/imgIK.mat."),
        steps: int = typer.Option(None, "--steps", help="Optimiser steps (default: the model's recipe)."),
        batch: int = typer.Option(None, "--batch", help="Batch size (default: the recipe)."),
        seed: int = typer.Option(0, "--seed"),
        out: str = typer.Option(None, "--out", help="Weights folder (default: the package's jfusion/weights/pansharpening)."),
        score: bool = typer.Option(True, "--score/--no-score", help="Score on the held-out test region (needs jfusion.metrics)."),
    ) -> None:
        from jfusion.training.pansharpening import train_pansharpening

        meta = train_pansharpening(model_name, scene, steps=steps, batch=batch, seed=seed, out_dir=out, score=score)
        typer.echo(f"trained {model_name} for {meta['sensor']}: final loss {meta['final_loss']:.4g}; scores {meta.get('scores_test')}")

    command.__doc__ = f"Train the {model_name} pan-sharpening model on a scene under Wald's protocol (left 3/4; right 1/4 held out)."
    return command


for _name in ("pnn", "pnn-residual", "drpnn", "srcnn-gs", "sae"):
    train_app.command(_name)(_pansharpening_train_command(_name))
