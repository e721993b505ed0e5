"""``python -m jfusion`` runs the command line."""

from jfusion.cli import app

app()
