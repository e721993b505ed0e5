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


@train_app.command("focus-cnn")
def train_focus_cnn(
    model: str = typer.Option("focus-cnn", help="preset: focus-cnn | focus-cnn-direct | weight-net"),
    data: str = typer.Option("../shared/data/natural", help="folder of natural images (searched recursively)"),
    steps: int = typer.Option(0, help="optimiser steps (0: the preset's)"),
    batch: int = typer.Option(0, help="global batch of pairs (0: the preset's)"),
    seed: int = typer.Option(0, help="seed of initialisation and data"),
    out: str = typer.Option("", help="weights folder to write (default: jfusion/weights/<preset with _>)"),
    checkpoint_dir: str = typer.Option("", help="orbax checkpoint folder; an existing one is resumed"),
    progress: bool = typer.Option(True, help="show a progress bar"),
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
    cfg = dataclasses.replace(cfg, seed=seed, **({"steps": steps} if steps else {}), **({"batch": batch} if batch else {}))
    trained, result, dat = train_weightnet(cfg, data, checkpoint_dir=checkpoint_dir or None, progress=progress)
    folder = Path(out) if out else Path(__file__).resolve().parent / "weights" / model.replace("-", "_")
    args = sys.argv[sys.argv.index("focus-cnn") + 1 :] if "focus-cnn" in sys.argv else []
    command = " ".join(["jfusion train focus-cnn", *args])
    man = ship(trained, cfg, dat, result, folder, name=model, source=data, command=command)
    v = man["validation"]
    typer.echo(f"wrote {folder}: val acc {v['accuracy']:.4f} (incl. textureless {v['accuracy_incl_textureless']:.4f})")
