"""Retrain every shipped pan-sharpening and MS/HS asset from its registered preset, under the protocol.

    python tools/retrain_shipped.py [--only pnn,sae] [--assets pnn-WV2,...] [--runs runs/protocol]

For each preset of the ``pansharpening`` and ``mshs`` recipes (:mod:`jfusion.training.recipes`),
in the order given by ``--only`` (default: all), the recipe's ``train_and_evaluate`` trains into
``<runs>/<asset>`` (resumable: a killed run called again continues from its orbax checkpoints) and
decides on the validation strip whether the asset ships. A shipping asset replaces the package's;
one that does not is removed from the package (the previous file was chosen under the old
protocol, on the test strip) and listed, with its validation scores, in the package's
``jfusion/weights/pansharpening/not_shipped.json``. The test strips are not
read here: ``jfusion train final-report`` does that afterwards.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from jfusion import assets
from jfusion.training.recipes import list_recipes

PACKAGE = Path(__file__).resolve().parents[1] / "jfusion"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="comma-separated recipe names, in this order (default: all)")
    ap.add_argument("--runs", default="runs/protocol", help="run folders (resumable)")
    ap.add_argument("--assets", default="", help="comma-separated asset names to run (default: every preset), e.g. drpnn-WV2")
    args = ap.parse_args()
    recipes = {r.name: r for r in list_recipes() if r.family in ("pansharpening", "mshs")}
    order = [n for n in args.only.split(",") if n] or sorted(recipes)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    log = PACKAGE / "weights" / "pansharpening" / "not_shipped.json"
    dropped = json.loads(log.read_text()) if log.exists() else {}
    for name in order:
        recipe = recipes[name]
        for key, config in recipe.presets.items():
            asset = Path(key).name
            if args.assets and asset not in args.assets.split(","):
                continue
            done = runs / asset / f"{asset}.json"
            if done.exists() and "ships" in json.loads(done.read_text()):
                print(f"{asset}: done already ({done})", flush=True)
                continue
            t0 = time.time()
            man = recipe.fn(config, runs / asset, install=False, force=True, progress=False)
            shipped = PACKAGE / key
            if man.get("ships"):
                arrays = assets.read_asset(runs / asset / asset)
                assets.write_asset(shipped, dict(arrays.arrays), arrays.manifest, force=True)
                dropped.pop(key, None)
                verdict = "ships"
            else:
                for f in assets.asset_files(shipped):
                    if f.exists():
                        f.unlink()
                dropped[key] = {"validation": man["scores"]["validation"], "rule": man.get("ship_rule"),
                                "command": man["command"], "steps": man["steps"], "run": str(runs / asset)}
                verdict = "does not ship (removed from the package)"
            log.write_text(json.dumps(dropped, indent=2, sort_keys=True) + "\n")
            v = man["scores"]["validation"]
            print(f"{asset}: {verdict}; steps {man['steps']}; validation {json.dumps(v)}; {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
