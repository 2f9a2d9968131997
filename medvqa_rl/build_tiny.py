"""Builds the embedded tiny base and instruct from the recipe: `python -m medvqa_rl.build_tiny [overrides]`.

Without --ship it builds the composed config's `family.build` into the cache (what a run does on its own when
no shipped checkpoint matches its family.build) and prints the instruct's probe. With --ship it builds afresh
in a scratch folder and replaces the checkpoints shipped in medvqa_rl/models/tiny_checkpoints/, recording
the config, recipe version, package versions and the probe in their build_info.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from medvqa_rl.models.shipped_tiny import SHIPPED_DIR, ship
from medvqa_rl.models.tiny_inits import RECIPE_VERSION, built_root, cache_key, keyed_spec, read_build_log
from medvqa_rl.bookkeeping.run_record import package_versions

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def tiny_spec(overrides: list[str]) -> tuple[dict, str]:
    """The resolved family.build (tiny model) config of `config` composed with ``overrides``, and the cache_dir."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg.family.build, resolve=True), cfg.cache_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. family.build.seed=1")
    parser.add_argument("--ship", action="store_true", help="replace the checkpoints shipped with the package")
    parser.add_argument("--ship-dir", type=Path, default=SHIPPED_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
    spec, cache_dir = tiny_spec(args.overrides)
    if not args.ship:
        root = built_root(spec, cache_dir)
        print(json.dumps({"built": str(root), **read_build_log(root)}, indent=2))
        return
    with tempfile.TemporaryDirectory() as scratch:
        root = built_root(spec, scratch)
        info = {"cache_key": cache_key(spec), "recipe_version": RECIPE_VERSION, "family_build": keyed_spec(spec),
                "versions": package_versions(), "build": read_build_log(root)}
        shipped = ship(root, info, args.ship_dir)
    print(json.dumps({"shipped": str(shipped), **info}, indent=2))


if __name__ == "__main__":
    main()
