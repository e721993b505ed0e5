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
