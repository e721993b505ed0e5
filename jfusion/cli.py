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


@train_app.command("dictionary")
def train_dictionary_cmd(
    data: str = typer.Option("", help="Folder of natural images (default: ../shared/data/natural when present)."),
    out: str = typer.Option("", help="Output folder (default: the package's jfusion/sparse/dictionaries)."),
    name: str = typer.Option("csr32", help="Dictionary name (files <name>.npy and <name>.json)."),
    num_filters: int = typer.Option(32, help="Number of filters M."),
    filter_size: int = typer.Option(8, help="Filter size h = w."),
    lmbda: float = typer.Option(0.1, help="l1 weight of the coding step."),
    iterations: int = typer.Option(300, help="Outer iterations (one CBPDN + one dictionary ADMM step each)."),
    num_images: int = typer.Option(16, help="Number of training crops (one per image)."),
    crop: int = typer.Option(128, help="Crop size in pixels."),
    seed: int = typer.Option(0, help="Seed of the crop choice and the random initial filters."),
) -> None:
    """Learn a convolutional dictionary (CSR fusion) from natural images; writes it with a manifest."""
    from pathlib import Path

    from jfusion.sparse.dictionary import DICTIONARY_DIR
    from jfusion.sparse.train import train_dictionary

    import os

    default = Path(os.environ.get("JFUSION_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    folder = Path(data) if data else default / "natural"
    if not folder.exists():
        raise typer.BadParameter(f"training folder {folder} not found; pass --data FOLDER")
    m = train_dictionary(
        folder, Path(out) if out else DICTIONARY_DIR, name=name, num_filters=num_filters, filter_size=filter_size,
        lmbda=lmbda, num_iter=iterations, num_images=num_images, crop=crop, seed=seed,
    )
    typer.echo(f"{m['name']}: {m['shape']} objective {m['objective_first']:.4g} -> {m['objective_final']:.4g} "
               f"in {m['seconds']} s")
