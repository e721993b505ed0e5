"""The ``jfusion`` command line (typer): fuse, pansharpen, eval, methods, train, data, bench, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(help="jfusion: pixel-level image fusion in JAX.", no_args_is_help=True, add_completion=False)
train_app = typer.Typer(help="Train models and dictionaries; writes weights with a manifest.", no_args_is_help=True)
data_app = typer.Typer(help="Build training data shards from local files.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")


@app.callback()
def _main() -> None:
    """jfusion: pixel-level image fusion in JAX.

    Compiled programs are kept in JAX's persistent cache ($JFUSION_CACHE_DIR, else
    $XDG_CACHE_HOME/jfusion/jax or ~/.cache/jfusion/jax; JFUSION_NO_CACHE=1 turns it off), so a
    repeated command on images of the same shapes does not compile again.
    """
    from jfusion.cache import enable_compilation_cache

    enable_compilation_cache()


def split_options(pairs: list[str] | None) -> dict[str, str]:
    """``["levels=4", "rule=max-abs"]`` -> ``{"levels": "4", "rule": "max-abs"}`` (text; ``-`` in keys -> ``_``).

    The values stay text: :func:`jfusion.options.parse_options` converts each by the option's
    declared type, so ``levels=2.5`` is refused instead of being guessed.
    """
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            _fail(f"option {pair!r} is not KEY=VALUE")
        key, value = pair.split("=", 1)
        out[key.strip().replace("-", "_")] = value
    return out


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


def _warn(msg: str) -> None:
    typer.secho(f"warning: {msg}", fg=typer.colors.YELLOW, err=True)


def _names(paths: list[Path], limit: int = 20) -> str:
    shown = ", ".join(str(p) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _name_files(msg: str, paths: list[Path]) -> str:
    """Rewrite an API message about ``sources[i]`` so that it names the files (every CLI error names its files)."""
    import re

    out = re.sub(r"\bsources\[(\d+)\]", lambda m: str(paths[int(m[1])]) if int(m[1]) < len(paths) else m[0], msg)
    out = re.sub(r"^sources:", f"{' + '.join(map(str, paths))}:", out)
    if not any(str(p) in out for p in paths):
        out = f"{' + '.join(map(str, paths))}: {out}"
    return out


def _check_not_input(out: Path, inputs: list[Path]) -> None:
    resolved = out.resolve()
    for p in inputs:
        if p.resolve() == resolved:
            _fail(f"output {out} is one of the inputs; refusing to overwrite an input (choose another -o).")


def _output_depth(infos: list[Any], out: Path) -> int:
    """The output bit depth: the deepest source's (8, 16 or float), as far as ``out``'s file type holds it."""
    depths = [32 if i.dtype.startswith("float") else (16 if i.bit_depth == 16 else 8) for i in infos]
    depth = max(depths)
    suffix = out.suffix.lower()
    if depth == 32 and suffix not in (".tif", ".tiff"):
        depth = 16 if suffix == ".png" else 8
    if depth == 16 and suffix in (".jpg", ".jpeg", ".bmp"):
        _warn(f"{out}: {suffix} holds 8 bits; the {'float' if max(depths) == 32 else '16-bit'} result is written at 8 bits (use .png or .tif to keep the depth).")
        depth = 8
    return depth


def _fuse_files(
    paths: list[Path], out: Path, method: str, options: dict[str, Any], tile: int | None, *, force: bool = False, drop_alpha: bool = False
) -> Path:
    """Read, check, fuse and write one scene; every error names the scene's files.

    ``tile``: a tile side (fuse tile by tile), ``-1`` (never tile) or ``None`` (tile a method of
    bounded support when :func:`jfusion.tiling.should_tile` says the image is large).
    """
    import numpy as np

    import jfusion
    from jfusion.errors import FusionInputError, validate_sources
    from jfusion.io import _read_with_info, channels_fit

    images, infos = zip(*(_read_with_info(p, keep_alpha=not drop_alpha) for p in paths))
    try:
        stack = validate_sources(list(images))  # the API's own checks, before any work
    except FusionInputError as err:
        msg = _name_files(str(err), paths)
        if "band counts differ" in msg and any(i.shape[-1:] == (4,) and len(i.shape) == 3 for i in infos):
            msg += " An RGBA file's alpha channel is a band here, as in jfusion.fuse; pass --drop-alpha to fuse colour only."
        raise FusionInputError(msg) from None
    depth = _output_depth(list(infos), out)
    channels_fit(out, 1 if stack.ndim == 3 else stack.shape[-1])
    try:
        from jfusion.tiling import fuse_tiled, should_tile

        if tile is None:  # automatic: tile a bounded method on a large image
            tile = 0 if should_tile(method, stack.shape, options) else -1
        if tile >= 0:
            fused = fuse_tiled(stack, method, tile=tile or None, **options)
        else:
            fused = np.asarray(jfusion.fuse(list(images), method=method, **options))
    except FusionInputError as err:
        raise FusionInputError(_name_files(str(err), paths)) from None
    return jfusion.write_image(out, fused, bit_depth=depth, overwrite=force)


def _matching_files(folders: list[Path]) -> tuple[list[tuple[str, list[Path]]], list[Path]]:
    """``([(stem, [file per folder]), ...], files without a match in every folder)``.

    Hidden files (a temporary ``.name.*.partial`` among them) are ignored; a stem held by two
    files of one folder (``a.png`` and ``a.tif``) is ambiguous and counts as unmatched.
    """
    from jfusion.io import IMAGE_SUFFIXES

    by_stem: list[dict[str, list[Path]]] = []
    for folder in folders:
        files: dict[str, list[Path]] = {}
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file():
                files.setdefault(p.stem, []).append(p)
        by_stem.append(files)
    common = set.intersection(*(set(d) for d in by_stem))
    common = {s for s in common if all(len(d[s]) == 1 for d in by_stem)}
    unmatched = sorted(p for d in by_stem for stem, ps in d.items() if stem not in common for p in ps)
    return [(stem, [d[stem][0] for d in by_stem]) for stem in sorted(common)], unmatched


def _fuse_batch(
    inputs: list[Path], output: Path, method: str, opts: dict[str, Any], tile: int | None, *, force: bool, skip_existing: bool, drop_alpha: bool
) -> None:
    from rich.progress import track

    from jfusion.errors import FusionInputError
    from jfusion.io import probe_folder

    if output.suffix:
        _fail(f"batch mode writes into a folder; {output} looks like a file name.")
    if output.exists() and not output.is_dir():
        _fail(f"batch mode writes into a folder; {output} is a file.")
    pairs, unmatched = _matching_files(inputs)
    if unmatched:
        _warn(f"{len(unmatched)} file(s) without a match in every folder are skipped: {_names(unmatched)}")
    if not pairs:
        _fail(f"the folders {_names(inputs)} share no image names; name matching sources alike (e.g. A/01.png, B/01.png).")
    jobs = [(paths, output / (stem + paths[0].suffix.lower().replace(".jpeg", ".jpg"))) for stem, paths in pairs]
    sources = {q.resolve() for paths, _ in jobs for q in paths}
    clash = [t for _, t in jobs if t.resolve() in sources]
    if clash:
        _fail(f"outputs would overwrite inputs: {_names(clash)}; refusing to overwrite an input (choose another -o).")
    existing = [t for _, t in jobs if t.exists() or t.is_symlink()]
    if existing and not (force or skip_existing):
        _fail(f"{len(existing)} of {len(jobs)} output(s) exist in {output} ({_names(existing, 5)}); pass --skip-existing "
              "to keep them and fuse the rest (resume), or --force to overwrite them.")
    if skip_existing:
        jobs = [(paths, t) for paths, t in jobs if not (t.exists() or t.is_symlink())]
        if existing:
            typer.echo(f"skipping {len(existing)} existing output(s) in {output}")
    try:
        probe_folder(output)
    except FusionInputError as err:
        _fail(str(err))
    output.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    failed: list[tuple[list[Path], str]] = []
    try:
        for paths, target in track(jobs, description=f"fusing ({method})", disable=len(jobs) < 2):
            try:
                written.append(_fuse_files(paths, target, method, opts, tile, force=force, drop_alpha=drop_alpha))
            except FusionInputError as err:
                failed.append((paths, str(err)))
                typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    except KeyboardInterrupt:
        typer.secho(
            f"interrupted: {len(written)} of {len(jobs)} scene(s) written to {output}, no partial file left under a final "
            "name; rerun with --skip-existing to fuse the rest.", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=130) from None
    typer.echo(f"fused {len(written)} scene(s) into {output}")
    if failed:
        _fail(f"{len(failed)} of {len(jobs)} scene(s) failed (listed above): {_names([p for ps, _ in failed for p in ps[:1]])}")


@app.command("fuse")
def fuse_cmd(
    *,
    inputs: list[Path] = typer.Argument(..., help="Two or more source images of one scene, or folders of images with matching names."),
    method: str = typer.Option("laplacian", "-m", "--method", help="Registered method (see `jfusion methods`)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output image, or output folder in batch mode."),
    option: Optional[list[str]] = typer.Option(
        None, "-p", "--option",
        help="Method option KEY=VALUE (repeatable), converted and checked by the option's declared type and range; "
        "`jfusion methods NAME` lists a method's options (type, default, range or choices, doc).",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files (never an input)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Batch mode: keep outputs that exist and fuse the rest (resume an interrupted batch)."),
    drop_alpha: bool = typer.Option(False, "--drop-alpha", help="Drop the alpha channel of RGBA PNG sources (by default it is a band, as in jfusion.fuse)."),
    tile: Optional[int] = typer.Option(None, "--tile", help="Fuse tile by tile with this tile side (pixels), whatever the size (default: tile automatically above 4096 x 4096 pixels or when the image does not fit in memory, for methods of bounded support)."),
    no_tile: bool = typer.Option(False, "--no-tile", help="Never tile: fuse the whole image at once, however large."),
) -> None:
    """Fuse images (or, given folders, every set of files with matching names).

    Outputs are written under a temporary name and renamed when complete: an interrupted run
    leaves no partial file, and `--skip-existing` resumes a batch. Method options (`-p KEY=VALUE`)
    are listed by `jfusion methods NAME`.
    """
    from jfusion.errors import FusionInputError
    from jfusion.options import parse_options

    raw_opts = split_options(option)
    if tile is not None and no_tile:
        _fail("--tile and --no-tile contradict each other; pass one of them.")
    if tile is not None and tile < 1:
        _fail(f"--tile {tile}: pass a tile side of at least 1 pixel.")
    tile = -1 if no_tile else tile
    if force and skip_existing:
        _fail("--force and --skip-existing contradict each other; pass one of them.")
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        _fail(f"no such file or folder: {', '.join(missing)}")
    if len(inputs) < 2:
        _fail("fusion needs at least two sources.")
    try:
        from jfusion.methods.registry import get_info

        opts = parse_options(get_info(method), raw_opts)
    except ValueError as err:
        _fail(str(err))
    if all(p.is_dir() for p in inputs):
        _fuse_batch(list(inputs), output, method, opts, tile, force=force, skip_existing=skip_existing, drop_alpha=drop_alpha)
    elif any(p.is_dir() for p in inputs):
        _fail("mix of files and folders; pass only files (one scene) or only folders (batch).")
    else:
        from jfusion.io import IMAGE_SUFFIXES, check_output_path

        _check_not_input(output, list(inputs))
        if skip_existing and (output.exists() or output.is_symlink()):
            typer.echo(f"kept {output} (exists; --skip-existing)")
            return
        try:
            check_output_path(output, overwrite=force, suffixes=IMAGE_SUFFIXES)  # before any work
            written = _fuse_files(list(inputs), output, method, opts, tile, force=force, drop_alpha=drop_alpha)
        except FusionInputError as err:
            _fail(str(err))
        except KeyboardInterrupt:
            _fail(f"interrupted; nothing was written to {output}.", code=130)
        typer.echo(f"wrote {written}")


def _print_options(info: Any, title: str) -> None:
    """One registry entry's options as a table: name, type, default, range or choices, doc."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    for col in ("option", "type", "default", "allowed", "doc"):
        table.add_column(col, overflow="fold")
    for o in info.options:
        doc = o.doc + (f" ({o.fixed}; not settable)" if o.fixed else "")
        table.add_row(*(escape(v) for v in (o.name, o.type, repr(o.default), o.allowed(), doc)))
    console = Console(width=160)
    if info.summary:
        console.print(escape(f"{info.name}: {info.summary}"))
    if info.options:
        console.print(table)
    else:
        console.print(f"{info.name} takes no options.")


@app.command("methods")
def methods_cmd(
    *,
    name: Optional[str] = typer.Argument(None, help="A method: show its options (type, default, range or choices, doc)."),
    task: Optional[str] = typer.Option(None, "--task", help="Only methods for this task."),
) -> None:
    """List every registered method (general fusion, pan-sharpening, MS/HS), or one method's options.

    `jfusion methods laplacian` shows what `jfusion fuse -m laplacian -p KEY=VALUE` accepts.
    """
    from rich.console import Console
    from rich.table import Table

    from jfusion.api import list_methods

    if name is not None:
        from jfusion.methods.registry import REGISTRY as general
        from jfusion.pansharpening.registry import REGISTRY as remote

        reg = remote if name in remote else general
        try:
            info = reg.get(name)
        except ValueError as err:
            _fail(str(err))
        usage = "jfusion fuse -m" if reg is general else "jfusion.pansharpen(..., method="
        _print_options(info, f"options of {info.name} ({usage} {info.name}{')' if reg is remote else ''})")
        return
    try:
        infos = list_methods(task=task)
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
    typer.echo("`jfusion methods NAME` shows a method's options.")


@app.command("metrics")
def metrics_cmd(
    *,
    name: Optional[str] = typer.Argument(None, help="A metric: show its options (type, default, range or choices, doc)."),
) -> None:
    """List the registered metrics, or one metric's options (what `jfusion eval -p METRIC.KEY=VALUE` accepts)."""
    from rich.console import Console
    from rich.table import Table

    from jfusion.metrics import get_metric_info, list_metrics

    if name is not None:
        try:
            info = get_metric_info(name)
        except ValueError as err:
            _fail(str(err))
        _print_options(info, f"options of {info.name} (jfusion eval -m {info.name} -p {info.name}.KEY=VALUE)")
        return
    table = Table(title="jfusion metrics")
    for col in ("name", "direction", "kind", "convention", "options", "summary"):
        table.add_column(col, overflow="fold")
    for m in list_metrics():
        opts = ", ".join(o.name for o in m.options if not o.fixed) or "-"
        table.add_row(m.name, m.direction, m.kind, m.convention, opts, m.summary)
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
    *,
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
# train / data sub-commands: `jfusion train <recipe>` for every registered recipe
# (jfusion.training.recipes), its config's fields as flags; see _recipe_command below.
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# remote sensing: `jfusion pansharpen` and `jfusion train <pan-sharpening model> --scene ...`
# ---------------------------------------------------------------------------
@app.command("pansharpen")
def pansharpen_cmd(
    *,
    ms: str = typer.Option(..., "--ms", help="Multispectral image (multiband TIFF/GeoTIFF, sensor units)."),
    pan: str = typer.Option(..., "--pan", help="Panchromatic image (TIFF/GeoTIFF), r times the MS size."),
    method: str = typer.Option("gsa", "-m", "--method", help="Pan-sharpening method (see jfusion.pansharpening.list_pansharpening_methods())."),
    out: str = typer.Option(..., "-o", "--out", help="Output TIFF; GeoTIFF tags of the PAN (same grid) are kept."),
    sensor: str = typer.Option(None, "--sensor", help="QB, IKONOS, GeoEye1, WV2, WV3 (MTF gains / learned weights)."),
    scene: str = typer.Option(None, "--scene", help="MS/HS methods (cnn3d-mshs): the scene model, houston, paris-ms or paris-pan (default: picked by band counts)."),
    bit_depth: int = typer.Option(None, "--bit-depth", help="Radiometric depth of the data (default: as jfusion.pansharpen decides: inferred for 8/16-bit integer files, none for float files; learned methods on float data need it)."),
    out_bit_depth: int = typer.Option(None, "--out-bit-depth", help="8, 16 or 32 (float32); default: the input's (integer files: 8 or 16 bits, float files: float32)."),
    evaluate: str = typer.Option(None, "--eval", help="Also print quality indices: 'reduced' (Wald's protocol: Q2n, SAM, ERGAS, sCC, Q), 'full' (D_lambda, D_s, QNR) or 'both'."),
    option: Optional[list[str]] = typer.Option(None, "-p", "--option", help="Method option KEY=VALUE (e.g. interp=bicubic), checked by its declared type (`jfusion methods NAME` lists them)."),
    adapt: bool = typer.Option(False, "--adapt", help="Learned networks (pnn, pnn-residual, drpnn): fine-tune on this pair first (PNN+ target-adaptive), with a progress bar."),
    adapt_steps: int = typer.Option(50, "--adapt-steps", help="Fine-tuning steps with --adapt."),
    adapt_seconds: float = typer.Option(None, "--adapt-seconds", help="Time budget of the fine-tuning (stops early, between chunks of 10 steps)."),
    adapt_loss: str = typer.Option(None, "--adapt-loss", help="Loss of the fine-tuning (implies --adapt): 'wald' (PNN+, the default: the Wald-degraded pair) or 'full-resolution' (Z-PNN: the pair itself, spectral + spatial consistency)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output (never an input)."),
) -> None:
    """Pan-sharpen MS with PAN; the result keeps the sensor's scale and the PAN's georeferencing."""
    from pathlib import Path

    import numpy as np

    from jfusion.errors import FusionInputError
    from jfusion.io import check_output_path
    from jfusion.pansharpening import pansharpen, read_multiband, validate_pair, write_multiband
    from jfusion.pansharpening.registry import get_info

    try:
        if Path(out).resolve() in (Path(ms).resolve(), Path(pan).resolve()):
            raise FusionInputError(f"{out}: would overwrite an input; choose another output path.")
        check_output_path(out, overwrite=force, suffixes=(".tif", ".tiff"))  # before any work
        if evaluate not in (None, "reduced", "full", "both"):
            raise FusionInputError(f"--eval {evaluate!r}: pass reduced, full or both.")
        if out_bit_depth not in (None, 8, 16, 32):
            raise FusionInputError(f"--out-bit-depth {out_bit_depth}: pass 8, 16 or 32.")
        try:
            info = get_info(method)
        except ValueError as err:
            raise FusionInputError(str(err)) from None
        if scene is not None and info.family != "mshs":
            raise FusionInputError(f"--scene {scene}: only the MS/HS methods (cnn3d-mshs) are per scene; {method!r} takes --sensor.")
        from jfusion.options import parse_options

        method_options = parse_options(info, split_options(option))  # before reading any file
        if adapt_loss is not None:
            if adapt_loss not in ("wald", "full-resolution"):
                raise FusionInputError(f"--adapt-loss {adapt_loss!r}: pass wald or full-resolution.")
            adapt = True
        if adapt and "adapt" not in {o.name for o in info.options}:
            raise FusionInputError(f"--adapt: {method!r} has no target-adaptive fine-tuning; use pnn, pnn-residual or drpnn.")
        if adapt_steps < 1 or (adapt_seconds is not None and adapt_seconds <= 0):
            raise FusionInputError("--adapt-steps / --adapt-seconds: pass a positive number of steps and seconds.")
        ms_arr, _ = read_multiband(ms, keep_dtype=True)
        pan_arr, pan_geo = read_multiband(pan, keep_dtype=True)
        is_float = ms_arr.dtype.kind == "f" or pan_arr.dtype.kind == "f"
        top = max(float(np.max(ms_arr)), float(np.max(pan_arr)))
        if info.family != "mshs":
            # the API's bit-depth rule, applied once to the files' own arrays (integer: inferred, float: none)
            try:
                depth = validate_pair(ms_arr, pan_arr, bit_depth=bit_depth)[3]
            except FusionInputError as err:
                raise FusionInputError(f"{ms} / {pan}: {err}".replace("bit_depth=", "--bit-depth ")) from None
            if info.learned and depth is None and top <= 1.0:
                raise FusionInputError(
                    f"{ms} / {pan}: float data in [0, 1] (reflectance?); the learned method {method!r} needs the sensor's "
                    "scale and radiometric depth: pass the data in sensor units (DN) with --bit-depth N (e.g. 11)."
                )
        else:
            depth = bit_depth
        if out_bit_depth is None:
            out_bit_depth = 32 if is_float else 8 if ms_arr.dtype == np.uint8 and pan_arr.dtype == np.uint8 else 16
        if is_float and out_bit_depth in (8, 16) and top <= 1.0:
            raise FusionInputError(
                f"{ms} / {pan}: float data in [0, 1] would be rounded to {{0, 1}} at {out_bit_depth} bits; write float32 "
                "(--out-bit-depth 32, the default for float input)."
            )
        try:
            extra = {"scene": scene} if scene is not None else {}
            if adapt:
                import tempfile

                from jfusion.pansharpening import learned, prepare

                _, ms_f, pan_f, r, opts = prepare(ms_arr, pan_arr, method=method, sensor=sensor, bit_depth=depth,
                                                  options=method_options)
                tmp = tempfile.TemporaryDirectory()
                path, done = learned.adapted_asset(
                    info.name, ms_f, pan_f, tmp.name, ratio=r, sensor=sensor, bit_depth=opts["bit_depth"],
                    interp=opts.get("interp", "23tap"), weights=opts.get("weights"), steps=adapt_steps,
                    lr=opts.get("adapt_lr", 1e-4), seconds=adapt_seconds, mode=adapt_loss or "wald",
                )
                typer.echo(f"adapted {method} to this pair: {done} steps" + (" (full-resolution loss)" if adapt_loss == "full-resolution" else ""))
                method_options = {**method_options, "weights": str(path)}
            fused = pansharpen(ms_arr, pan_arr, method=method, sensor=sensor, bit_depth=depth, **extra, **method_options)
        except FusionInputError as err:
            raise FusionInputError(f"{ms} / {pan}: {err}".replace("bit_depth=", "--bit-depth ")) from None
        write_multiband(out, np.asarray(fused), geo=pan_geo, bit_depth=out_bit_depth, overwrite=force)
        typer.echo(f"wrote {out} ({fused.shape[0]}x{fused.shape[1]}x{fused.shape[2]}, method {method}, "
                   f"{'float32' if out_bit_depth == 32 else f'{out_bit_depth}-bit'})")
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


def _recipe_command(info: Any):
    """The ``jfusion train <recipe>`` command of a registered recipe: one typed flag per scalar config field."""
    import dataclasses
    import inspect

    from jfusion.training.recipes import flag_name, scalar_fields

    config = info.config
    fields = {f.name: f for f in dataclasses.fields(config)}
    params: list[inspect.Parameter] = []
    annotations: dict[str, Any] = {}

    def add(name: str, annotation: Any, option: Any) -> None:
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
        annotations[name] = annotation

    settings = scalar_fields(config)
    for name, t in settings.items():
        flag = flag_name(config, name)
        default = getattr(config, name)
        help_ = fields[name].metadata.get("help", "")
        shown = f" (default: {default!r})" if default != "" else ""
        decl = f"{flag}/--no-{flag.removeprefix('--')}" if t is bool else flag
        add(name, Optional[t], typer.Option(None, decl, help=help_ + shown))
    if info.variants:
        add("model", Optional[str], typer.Option(None, "--model", help=f"Train this recipe instead: {' | '.join(info.variants)}."))
    add("out", Optional[str], typer.Option(None, "--out", help=f"Run folder (workdir: asset, manifest, checkpoints; default ./runs/{info.name}). "
                                           "An interrupted run resumes from it."))
    if info.family in ("pansharpening", "mshs"):
        add("score", bool, typer.Option(True, "--score/--no-score", help="Score the written asset on the scene's held-out right quarter."))
    add("progress", bool, typer.Option(True, "--progress/--no-progress", help="Show a progress bar."))
    add("install", bool, typer.Option(False, "--install", help="Also install the asset into the package (where the library finds it)."))
    add("force", bool, typer.Option(False, "--force", help="Overwrite existing assets (in the run folder, and with --install the shipped ones)."))

    def command(**kwargs: Any) -> None:
        from jfusion.errors import FusionInputError
        from jfusion.training.recipes import configure, get_recipe
        from jfusion.weights import default_run_dir

        if info.family == "focus":
            from jfusion.parallel import initialize_distributed

            initialize_distributed()
        name = kwargs.pop("model", None) or info.name
        if name not in (info.name, *info.variants):
            raise typer.BadParameter(f"unknown preset {name!r}; choose one of {list(info.variants)}")
        recipe = get_recipe(name)
        out, install, force, progress = kwargs.pop("out"), kwargs.pop("install"), kwargs.pop("force"), kwargs.pop("progress")
        extra = {"score": kwargs.pop("score")} if "score" in kwargs else {}
        try:
            config = configure(recipe.config, **kwargs)
            workdir = Path(out) if out else default_run_dir(name)
            man = recipe.fn(config, workdir, install=install, force=force, progress=progress, **extra)
        except FusionInputError as err:
            _fail(str(err))
        typer.echo(_run_summary(name, man, workdir, install))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = annotations
    command.__doc__ = (info.summary or f"Train {info.name}.") + (
        f"\n\nWrites the asset and its manifest to --out (default ./runs/{info.name}; checkpoints in <out>/checkpoints, "
        "resumed when the run is started again); the package changes only with --install."
    )
    return command


def _run_summary(name: str, man: dict[str, Any], workdir: Path, install: bool) -> str:
    """One line about a finished run: where it went, its loss and scores."""
    where = "installed into the package" if install else f"wrote {workdir}"
    parts = [f"trained {name}" + (f" for {man['sensor']}" if "sensor" in man else ""), where]
    if "final_loss" in man:
        parts.append(f"final loss {man['final_loss']:.4g}")
    if "objective_final" in man:
        parts.append(f"{man['shape']} objective {man['objective_first']:.4g} -> {man['objective_final']:.4g} in {man['seconds']} s")
    v, t = man["scores"].get("validation") or {}, man["scores"].get("test") or {}
    if "accuracy" in v:
        parts.append(f"val acc {v['accuracy']:.4f} (incl. textureless {v['accuracy_incl_textureless']:.4f})")
    if t:
        parts.append(f"scores {t}")
    return "; ".join(parts)


def _register_train_commands() -> None:
    from jfusion.training.recipes import list_recipes

    for info in list_recipes():
        train_app.command(info.name)(_recipe_command(info))


_register_train_commands()


@train_app.command("final-report")
def final_report_cmd(
    *,
    data: str = typer.Option(None, "--data", help="Shared data folder (default $JFUSION_DATA or ../shared/data)."),
    out: str = typer.Option(None, "--out", help="Also write the report as Markdown here (e.g. benchmarks/results/learned_test.md)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
) -> None:
    """Score the shipped pan-sharpening / MS-HS weights on the test strips (read once per asset file) beside the classical methods."""
    from jfusion.errors import FusionInputError
    from jfusion.io import check_output_path, write_text
    from jfusion.training.report import final_report, report_markdown

    try:
        if out:
            check_output_path(Path(out), overwrite=force)
        report = final_report(data_dir=data)
        if out:
            write_text(Path(out), report_markdown(report) + "\n", overwrite=force)
            typer.echo(f"wrote {out}")
    except FusionInputError as err:
        _fail(str(err))


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


def _text_table(header: list[str], body: list[list[str]], *, width: int = 80) -> str:
    """A plain-text table no wider than ``width``: metric columns that do not fit go to a further block
    (each block repeats the first column)."""
    cols = list(zip(header, *body))
    widths = [max(len(c) for c in col) for col in cols]
    blocks: list[list[int]] = [[]]
    used = widths[0]
    for j in range(1, len(cols)):
        if blocks[-1] and used + 2 + widths[j] > width:
            blocks.append([])
            used = widths[0]
        blocks[-1].append(j)
        used += 2 + widths[j]
    out = []
    for block in blocks:
        idx = [0, *block]
        fmt = lambda row: "  ".join(str(row[j]).ljust(widths[j]) if j == 0 else str(row[j]).rjust(widths[j]) for j in idx)  # noqa: E731
        lines = [fmt(header), "  ".join("-" * widths[j] for j in idx)] + [fmt(r) for r in body]
        out.append("\n".join(line.rstrip() for line in lines))
    return "\n\n".join(out)


@app.command("eval")
def eval_cmd(
    *,
    sources: list[Path] = typer.Argument(..., help="Source images of one scene, or folders of sources with matching names."),
    fused: Path = typer.Option(..., "-f", "--fused", help="The fused image, or a folder of fused images named like the sources."),
    metrics: str = typer.Option(
        "", "-m", "--metrics", help="Comma-separated metric names (jfusion.metrics.list_metrics() lists them; default: jfusion.metrics.DEFAULT_METRICS, VIFB's 13)."
    ),
    colour: str = typer.Option("vifb", "--colour", help="Colour rule: vifb, channels, mefb or gray."),
    option: Optional[list[str]] = typer.Option(None, "-p", "--option", help="Metric option METRIC.KEY=VALUE, e.g. psnr.convention=standard, checked by its declared type (`jfusion metrics NAME` lists them)."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write the table (per image and mean) as CSV."),
    md_path: Optional[Path] = typer.Option(None, "--md", help="Write the table as Markdown."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing --csv / --md files."),
) -> None:
    """Objective fusion metrics of fused images against their sources: a table per image plus the mean.

    Scenes are evaluated in batches of one shape (the `jfusion bench` path); the table is
    printed in blocks of at most 80 columns. In folder mode, files without a counterpart (a source missing in one folder, a missing fused
    image) are listed on stderr and the matched scenes are evaluated; none matched is an error.
    """
    import csv
    import io

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
    from jfusion.options import parse_options

    raw_per_metric: dict[str, dict[str, str]] = {}
    for key, value in split_options(option).items():
        if "." not in key:
            _fail(f"option {key!r}: write METRIC.KEY=VALUE, e.g. psnr.convention=standard.")
        m, k = key.split(".", 1)
        raw_per_metric.setdefault(m.lower(), {})[k] = value
    per_metric: dict[str, dict[str, Any]] = {}
    for m, raw in raw_per_metric.items():
        try:
            info = get_metric_info(m)
        except ValueError as err:
            _fail(f"option {m}.*: {err}")
        if m not in names:
            _fail(f"option {m}.*: {m!r} is not among the metrics asked for ({', '.join(names)}); add it to -m or drop the option.")
        try:
            per_metric[m] = parse_options(info, raw)
        except FusionInputError as err:
            _fail(str(err))
    missing = [str(p) for p in [*sources, fused] if not p.exists()]
    if missing:
        _fail(f"no such file or folder: {', '.join(missing)}")
    if len(sources) < 2:
        _fail("metrics need at least two sources.")
    from jfusion.io import check_output_path

    tables = [t for t in (csv_path, md_path) if t is not None]
    for t in tables:  # before any work
        _check_not_input(t, [*sources, fused])
        try:
            check_output_path(t, overwrite=force)
        except FusionInputError as err:
            _fail(str(err))
    if len(set(map(Path.resolve, tables))) < len(tables):
        _fail(f"--csv and --md name one file ({tables[0]}); pass two names.")
    if all(p.is_dir() for p in sources) and fused.is_dir():
        matched, unmatched = _matching_files([*sources, fused])
        scenes = [(stem, paths[:-1], paths[-1]) for stem, paths in matched]
        done = {stem for stem, _ in matched}
        no_fused = [paths for stem, paths in _matching_files(list(sources))[0] if stem not in done]
        if no_fused:
            _warn(f"{len(no_fused)} scene(s) have no fused image in {fused} and are not evaluated: {_names([ps[0] for ps in no_fused])}")
        listed = {p for ps in no_fused for p in ps}
        other = [p for p in unmatched if p not in listed]
        if other:
            _warn(f"{len(other)} file(s) without a match in every folder are not evaluated: {_names(other)}")
        if not scenes:
            _fail("the folders share no image names; name matching files alike (e.g. VI/01.png, IR/01.png, fused/01.png).")
    elif not any(p.is_dir() for p in sources) and not fused.is_dir():
        scenes = [(fused.stem, list(sources), fused)]
    else:
        _fail("pass only files (one scene) or only folders (sources and fused) with matching names.")
    from jfusion.bench import ChunkError, evaluate_files

    try:  # the bench's batched path: scenes bucketed by shape, one metric program per shape
        values = evaluate_files([(stem, tuple(src), f) for stem, src, f in scenes], tuple(names), colour=colour,
                                options=per_metric, progress=len(scenes) > 1)
    except ChunkError as err:
        for job in err.jobs:  # name the files of the scene that fails
            try:
                evaluate([read_image(p) for p in job.item.sources], read_image(job.fused), metrics=names, colour=colour, options=per_metric)
            except FusionInputError as one:
                msg = str(one).replace("fused:", f"{job.fused}:", 1) if str(one).startswith("fused:") else str(one)
                _fail(_name_files(msg, [*job.item.sources, job.fused]))
        _fail(str(err))
    except FusionInputError as err:
        _fail(str(err))
    rows = [(stem, values[stem]) for stem, _, _ in scenes]
    arrows = {"higher": "↑", "lower": "↓", "zero": "→0"}
    header = ["image"] + [f"{n} {arrows[i.direction]}" for n, i in zip(names, infos)]
    body = _metric_table_rows(rows, names)
    typer.echo(f"jfusion eval ({colour} colour rule, {len(rows)} scene(s))")
    typer.echo(_text_table(header, body, width=80))
    from jfusion.io import write_text

    try:
        if csv_path is not None:
            buf = io.StringIO(newline="")
            w = csv.writer(buf)
            w.writerow(["image", *names])
            w.writerows(body)
            write_text(csv_path, buf.getvalue(), overwrite=force)
            typer.echo(f"wrote {csv_path}")
        if md_path is not None:
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(r) + " |" for r in body]
            write_text(md_path, "\n".join(lines) + "\n", overwrite=force)
            typer.echo(f"wrote {md_path}")
    except FusionInputError as err:
        _fail(str(err))


# ---------------------------------------------------------------------------
# bench: methods x datasets x metrics (jfusion.bench)
# ---------------------------------------------------------------------------


def _typed_options(name: str, raw: dict[str, str]) -> dict[str, Any]:
    """``-p``-style text options of a general or pan-sharpening method, converted and checked by its declared types."""
    from jfusion.errors import FusionInputError
    from jfusion.methods.registry import get_info
    from jfusion.options import parse_options
    from jfusion.pansharpening.registry import get_info as get_pansharpening_info

    try:
        try:
            info = get_info(name)
        except FusionInputError:
            info = get_pansharpening_info(name)
        return parse_options(info, raw)
    except FusionInputError as err:
        _fail(f"--method {name}: {err}")
        raise
def _bench_config_from_flags(task: str, datasets: list[str], methods: list[str], results: list[str], metrics: str,
                             colour: str, dtype: str, batch: int) -> dict[str, Any]:
    """The config dict of ``jfusion bench`` flags (the same keys as a TOML file)."""
    ds = []
    for d in datasets:
        adapter, sep, path = d.partition("=")
        if not sep:
            _fail(f"--dataset {d!r}: write ADAPTER=PATH, e.g. vifb=../shared/data/vifb.")
        ds.append({"name": adapter, "adapter": adapter, "path": path})
    ms: list[dict[str, Any]] = []
    for m in methods:
        label, sep, rest = m.partition("=")
        name, _, opts = (rest if sep else m).partition(":")
        options = _typed_options(name, split_options([o for o in opts.split(",") if o])) if opts else {}
        ms.append({"name": name, "label": label if sep else name + (":" + opts if opts else ""), "options": options})
    for r in results:
        label, sep, folder = r.partition("=")
        ms.append({"folder": folder, "label": label} if sep else {"folder": label})
    raw: dict[str, Any] = {"task": task, "datasets": ds, "methods": ms, "batch": batch,
                           "metrics": {"colour": colour, "dtype": dtype}}
    if metrics:
        raw["metrics"]["names"] = metrics
    return raw


@app.command("bench")
def bench_cmd(
    *,
    config: Optional[Path] = typer.Argument(None, help="Benchmark config (.toml; .yaml with PyYAML). Or give the flags below."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (tables, figures, report, cache)."),
    force: bool = typer.Option(False, "--force", help="Recompute every fused image and metric value (ignore the cache)."),
    task: str = typer.Option("general", "--task", help="Without CONFIG: the task (jfusion.registry.TASKS)."),
    dataset: Optional[list[str]] = typer.Option(None, "--dataset", "-d", help="Without CONFIG: ADAPTER=PATH (repeatable), e.g. vifb=../shared/data/vifb."),
    method: Optional[list[str]] = typer.Option(None, "--method", "-m", help="Without CONFIG: [LABEL=]NAME[:KEY=VALUE,...] (repeatable)."),
    results: Optional[list[str]] = typer.Option(None, "--results", "-r", help="Without CONFIG: [LABEL=]FOLDER of an external method's fused images (repeatable)."),
    metrics: str = typer.Option("", "--metrics", help="Without CONFIG: comma-separated metric names (default: the task's set)."),
    colour: str = typer.Option("vifb", "--colour", help="Without CONFIG: colour rule (vifb, channels, mefb, gray)."),
    dtype: str = typer.Option("float32", "--dtype", help="Without CONFIG: float32 or float64 metrics."),
    batch: int = typer.Option(8, "--batch", help="Without CONFIG: scenes per metric call."),
    report: bool = typer.Option(True, "--report/--no-report", help="Statistics, figures and the HTML report (as the config's [report] asks)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars with the remaining time."),
) -> None:
    """Benchmark methods x datasets x metrics: fuse what is missing, evaluate in batches, write tables and a report.

    Results are cached under OUT by scene, method, options and jfusion version: a killed run
    resumes where it stopped and writes the same tables; --force recomputes.
    """
    from jfusion.bench import config_from_dict, load_config, run
    from jfusion.errors import FusionInputError

    try:
        if config is not None:
            if dataset or method or results:
                _fail("pass a CONFIG file or --dataset/--method/--results flags, not both.")
            cfg = load_config(config)
        else:
            if not dataset or not (method or results):
                _fail("pass a CONFIG file, or --dataset ADAPTER=PATH and --method NAME / --results FOLDER.")
            cfg = config_from_dict(_bench_config_from_flags(task, dataset, method or [], results or [], metrics, colour, dtype, batch))
        res = run(cfg, out=out, force=force, progress=progress, report=report)
    except FusionInputError as err:
        _fail(str(err))
    except KeyboardInterrupt:
        _fail("interrupted; finished results are cached, run the same command again to resume.", code=130)
    for m in res.missing:
        _warn(f"not evaluated: {m}")
    for ds in res.scenes:
        md = res.out / "tables" / ds / "mean.md"
        if md.exists():
            typer.echo(f"{ds} (mean over {len(res.scenes[ds])} scenes):")
            typer.echo(md.read_text())
    typer.echo(f"computed {res.computed.get('fused', 0)} fused image(s) and {res.computed.get('metrics', 0)} metric row(s) "
               f"in {res.seconds['total']:.1f} s; tables and report in {res.out}")


@data_app.command("build-focus")
def data_build_focus_cmd(
    *,
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
