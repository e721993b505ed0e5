"""The training recipe registry: one frozen config per shipped asset, one ``train_and_evaluate`` per family.

A *recipe* is a :class:`RecipeInfo` (the :class:`jfusion.registry.Info` shape): its ``fn`` is the
family's ``train_and_evaluate(config, workdir, *, install=False, force=False, progress=True) ->
manifest``, its ``config`` the default frozen-dataclass config (architecture, data, loss,
optimiser, steps, seed, batch: everything the run depends on), and ``presets`` the configs the
shipped assets were trained with, keyed by the asset's path under the package
(``"weights/pansharpening/pnn-IKONOS"``, ``"sparse/dictionaries/csr32"``). A test checks every
shipped manifest against its preset.

``jfusion train <name>`` is built from this registry (:func:`jfusion.cli`): one subcommand per
recipe, the config's scalar fields as typed flags (``--steps``, ``--lr``, ``--seed``, ...; a
field's ``metadata`` may give ``flag`` and ``help``). The registering modules are the public
modules of :mod:`jfusion.training` and of :mod:`jfusion.pansharpening` (so a learned
pan-sharpening model file registers its method and its recipe in one place).

Every ``train_and_evaluate`` writes into ``workdir``: the orbax checkpoints
(``workdir/checkpoints``; calling it again with the same workdir resumes and ends with the same
parameters as an uninterrupted run), the config (``workdir/config.json``; a workdir holding
checkpoints of another config is refused) and the asset (:func:`jfusion.assets.write_asset`)
whose manifest has the config, the validation scores and the training data's radiometric
statistics (``radiometry``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jfusion.errors import FusionInputError
from jfusion.registry import Info, Registry

__all__ = [
    "RecipeInfo", "RECIPES", "register_recipe", "get_recipe", "list_recipes", "scalar_fields", "configure",
    "config_dict", "command_line", "prepare_workdir", "radiometric_stats",
]

PACKAGE_DIR = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecipeInfo(Info):
    """A registered training recipe (fields of :class:`jfusion.registry.Info` plus these).

    Attributes:
      config: the default config (a frozen dataclass).
      presets: the config of each shipped asset this recipe produced, keyed by the asset's path
        relative to the package without suffix (``"weights/pansharpening/pnn-IKONOS"``).
      family: ``"pansharpening"``, ``"mshs"``, ``"focus"`` or ``"dictionary"``.
      variants: other recipe names ``jfusion train <name> --model NAME`` accepts (kept for the
        focus family's older command line).
    """

    config: Any
    presets: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    family: str = ""
    variants: tuple[str, ...] = ()


RECIPES: Registry[RecipeInfo] = Registry("training recipe", loader=("jfusion.training", "jfusion.pansharpening"))


def register_recipe(
    name: str,
    *,
    fn: Callable[..., dict[str, Any]],
    config: Any,
    family: str,
    presets: Mapping[str, Any] | None = None,
    summary: str = "",
    reference: str = "",
    variants: tuple[str, ...] = (),
) -> RecipeInfo:
    """Register the recipe ``name``: ``fn(config, workdir, ...)`` trains ``config`` (a frozen dataclass)."""
    if not dataclasses.is_dataclass(config) or not type(config).__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"recipe {name!r}: config must be a frozen dataclass, got {type(config).__name__}")
    for key, preset in (presets or {}).items():
        if type(preset) is not type(config):
            raise TypeError(f"recipe {name!r}: preset {key!r} is a {type(preset).__name__}, not a {type(config).__name__}")
    return RECIPES.add(RecipeInfo(
        name=name, fn=fn, config=config, family=family, presets=types.MappingProxyType(dict(presets or {})),
        summary=summary, reference=reference, variants=variants,
    ))


def get_recipe(name: str) -> RecipeInfo:
    """The :class:`RecipeInfo` of ``name`` (:class:`FusionInputError` naming the recipes if unknown)."""
    return RECIPES.get(name)


def list_recipes(*, family: str | None = None) -> list[RecipeInfo]:
    """Registered recipes sorted by name (only one ``family`` when given)."""
    return RECIPES.list(None if family is None else (lambda r: r.family == family))


def _resolved_hints(cls: type) -> dict[str, Any]:
    import sys

    return typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]))


def scalar_fields(config: Any) -> dict[str, type]:
    """The config fields a command line can set: ``{name: int | float | str | bool}``.

    Nested, tuple and ``metadata={"cli": False}`` fields (the architecture, the method name) are not.
    """
    hints = _resolved_hints(type(config))
    out: dict[str, type] = {}
    for f in dataclasses.fields(config):
        t = hints.get(f.name)
        if t in (int, float, str, bool) and f.metadata.get("cli", True):
            out[f.name] = t
    return out


def configure(config: Any, **overrides: Any) -> Any:
    """``config`` with the scalar fields in ``overrides`` replaced (``None`` values ignored); types checked."""
    fields = scalar_fields(config)
    changes: dict[str, Any] = {}
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in fields:
            raise FusionInputError(f"{k}=: not a setting of {type(config).__name__}; pass one of {', '.join(fields)}.")
        t = fields[k]
        if t is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, t) or (t is int and isinstance(v, bool)):
            raise FusionInputError(f"{k}={v!r}: pass a {t.__name__}.")
        changes[k] = v
    return dataclasses.replace(config, **changes)


def config_dict(config: Any) -> dict[str, Any]:
    """The config as JSON-able data (nested dataclasses as dicts, tuples as lists, functions by qualified name)."""

    def name_of(obj: Any) -> str:
        if callable(obj):
            return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', repr(obj))}"
        raise TypeError(f"config value {obj!r} is not JSON-able")

    return json.loads(json.dumps(dataclasses.asdict(config), default=name_of))


def flag_name(config: Any, field: str) -> str:
    """The command-line flag of ``field`` (its ``metadata["flag"]``, else ``--field-name``)."""
    f = {f.name: f for f in dataclasses.fields(config)}[field]
    return f.metadata.get("flag", "--" + field.replace("_", "-"))


def command_line(name: str, config: Any, *, always: tuple[str, ...] = ("steps", "seed")) -> str:
    """The ``jfusion train`` command that reproduces ``config``: the fields ``always`` plus those that differ from the recipe's default."""
    default = get_recipe(name).config
    parts = [f"jfusion train {name}"]
    for field, t in scalar_fields(config).items():
        v, d = getattr(config, field), getattr(default, field)
        if field not in always and v == d:
            continue
        flag = flag_name(config, field)
        if t is bool:
            parts.append(flag if v else "--no-" + flag.removeprefix("--"))
        elif t is str:
            parts.append(f"{flag} {Path(v).name if field in ('scene',) else v}")
        else:
            parts.append(f"{flag} {v:g}" if t is float else f"{flag} {v}")
    return " ".join(parts)


def prepare_workdir(workdir: str | Path, config: Any, *, extendable: bool = False) -> Path:
    """Create ``workdir``, refuse one holding checkpoints of another config, record ``config.json``; returns ``workdir/checkpoints``.

    ``extendable``: the run's optimiser does not depend on its total step count (a constant learning
    rate, batches keyed by step), so a finished or killed run may be continued to a larger ``steps``:
    the result equals a fresh run of the larger count. Only ``steps`` may then differ, and only upwards.

    Raises:
      FusionInputError: ``workdir/checkpoints`` exists but ``workdir/config.json`` records another config.
    """
    from jfusion.io import atomic_output

    workdir = Path(workdir)
    ckpt = workdir / "checkpoints"
    record = workdir / "config.json"
    now = config_dict(config)
    if ckpt.exists() and any(ckpt.iterdir()):
        before = json.loads(record.read_text()) if record.exists() else None
        if before != now:
            diff = sorted(k for k in set(now) | set(before or {}) if (before or {}).get(k) != now.get(k))
            if extendable and diff == ["steps"] and int(now["steps"]) > int(before["steps"]):
                with atomic_output(record, overwrite=True) as tmp:
                    Path(tmp).write_text(json.dumps(now, indent=2, sort_keys=True) + "\n")
                return ckpt
            raise FusionInputError(
                f"{workdir}: holds checkpoints of another run (settings that differ: {', '.join(diff) or 'unknown'}); "
                "pass another --out (workdir) or delete its checkpoints folder to start afresh."
            )
        return ckpt
    workdir.mkdir(parents=True, exist_ok=True)
    with atomic_output(record, overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(now, indent=2, sort_keys=True) + "\n")
    return ckpt


def radiometric_stats(x: Any, *, per_channel: bool = True) -> dict[str, Any]:
    """Statistics of training data as the network sees it (normalised), for the manifest's ``radiometry``.

    Args:
      x: ``(..., C)`` array (``per_channel``: one value per channel ``C``) or any array (``per_channel=False``).

    Returns:
      ``{"mean", "std", "min", "max", "p01", "p99"}`` (lists of ``C`` floats, or floats), computed in float64, so that
      inference can refuse input whose normalised statistics lie far outside the training range.
    """
    import numpy as np

    a = np.asarray(x, np.float64)
    a = a.reshape(-1, a.shape[-1]) if per_channel else a.reshape(-1, 1)
    p01, p99 = np.percentile(a, [1, 99], axis=0)
    stats = {"mean": a.mean(0), "std": a.std(0), "min": a.min(0), "max": a.max(0), "p01": p01, "p99": p99}
    if per_channel:
        return {k: [float(v) for v in vals] for k, vals in stats.items()}
    return {k: float(vals[0]) for k, vals in stats.items()}


def train_validate_ship(
    config: Any,
    workdir: str | Path,
    *,
    model: str,
    asset_name: str,
    train: Callable[..., Any],
    data_record: Callable[..., Any],
    validate: Callable[..., Any],
    ship_decision: Callable[..., Any],
    ship_rule: str,
    final_evaluation: Callable[..., Any],
    deviations: str,
    radiometry: Callable[..., Any],
    command: str | None = None,
    install: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """The protocol every synthetic-truth recipe follows, once: train, record, decide on validation, test once, install.

    Refuses (before training) to overwrite ``<workdir>/weights.{npz,json}`` or, with ``install``, the package's
    ``jfusion/weights/<asset_name>`` unless ``force``; trains (resuming from ``<workdir>/checkpoints``); writes the
    asset with a manifest holding the recipe, the data record, the ship rule and the deviations; scores the *stored*
    weights on validation; records that score and the decision; raises when the asset does not ship (kept for
    inspection); otherwise runs the final evaluation (the only reader of the test split) and with ``install`` copies
    the asset into the package.

    Args:
      config: the recipe's frozen config (``steps`` and ``seed`` fields).
      workdir: the run folder.
      model: the manifest's model name; asset_name: the package weights folder.
      train: ``checkpoint_dir -> (model, TrainResult, data)``.
      data_record: ``data -> dict`` (the manifest's ``data``).
      validate: ``(weights_stem, data) -> dict`` validation scores of the stored asset.
      ship_decision: ``scores -> bool``; ship_rule: its statement.
      final_evaluation: ``folder -> None``; reads the test split once and records its scores.
      deviations: from the papers (a sentence); radiometry: ``data -> dict`` (the manifest's ``radiometry``).
      command: the training command recorded (default: :func:`command_line` of ``model`` and ``config``).

    Returns:
      The asset's final manifest.

    Raises:
      FusionInputError: an output exists (without ``force``), or the asset does not pass ``ship_rule``.
    """
    import platform

    import jax
    import numpy as np

    from jfusion import assets
    from jfusion import weights as weights_mod
    from jfusion.io import check_output_path

    folder = Path(workdir)
    package_dir = weights_mod.WEIGHTS_DIR / asset_name
    files = [folder / "weights.npz", folder / "weights.json"]
    same = folder.resolve() == package_dir.resolve()
    for f in files + ([package_dir / f.name for f in files] if install and not same else []):
        check_output_path(f, overwrite=force)
    ckpt = prepare_workdir(folder, config, extendable=True)
    net, result, data = train(ckpt)
    manifest = assets.new_manifest(
        model=model,
        config=config_dict(config),
        data=data_record(data),
        command=command or command_line(model, config),
        steps=config.steps,
        seed=config.seed,
        best_step=result.best_step,
        final_train_loss=float(np.mean([h["loss"] for h in result.history[-50:]])) if result.history else None,
        trained_on=f"{jax.device_count()} x {jax.devices()[0].platform} ({platform.machine()})",
        jax=jax.__version__,
        ship_rule=ship_rule,
        deviations=deviations,
        radiometry=radiometry(data),
    )
    weights_mod.save_params(net, folder, manifest, force=force)
    val = validate(folder / "weights", data)  # the ship decision on the *stored* weights
    shipped = ship_decision(val)
    assets.update_manifest(folder / "weights", {"scores": {"validation": val, "test": {}}, "ships": shipped,
                                               "history": {"validation": result.validation}})
    if not shipped:
        raise FusionInputError(f"{model}: does not ship ({ship_rule} failed: {val}); the asset in {folder} is kept for inspection.")
    final_evaluation(folder)
    man = assets.read_manifest(folder / "weights")
    if install and not same:
        weights_mod.install(files, package_dir, overwrite=force)
    return man


def shared_data_root() -> Path:
    """The shared data folder: ``$JFUSION_DATA``, else ``shared/data`` beside the checkout."""
    import os

    return Path(os.environ.get("JFUSION_DATA", PACKAGE_DIR.parents[1] / "shared" / "data"))


def data_folder(path: str | Path, *, default: str | Path) -> Path:
    """A recipe's data folder as its config records it, relative to the working directory; when that is the
    recipe's ``default`` (``../shared/data/<name>``) and not there, ``<shared_data_root()>/<name>``."""
    p = Path(path)
    if not p.is_dir() and Path(path) == Path(default):
        return shared_data_root() / Path(default).name
    return p
