"""`python -m medvqa_rl [overrides]`; `-m` for a multirun, `-m sweep=<name>` for a named sweep (conf/sweep/)."""

import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from medvqa_rl.config_checks import ConfigError
from medvqa_rl.data.validation import BadRowsError
from medvqa_rl.models.shipped_tiny import ShippedCheckpointError
from medvqa_rl.reuse.resumable import RunDirBusy, resumable_run
from medvqa_rl.run import run

# Errors in what the user gave (a config value, a dataset's rows, a damaged install, a run dir in use): their message says
# what to fix, so a single run prints it alone; HYDRA_FULL_ERROR=1 shows the traceback as well.
USER_ERRORS = (ConfigError, BadRowsError, ShippedCheckpointError, RunDirBusy)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    try:
        metrics = resumable_run(run, cfg, HydraConfig.get().runtime.output_dir)
    except USER_ERRORS as error:
        # A multirun goes on to its other grid points and reports every failure at the end, as Hydra does.
        if HydraConfig.get().mode == RunMode.MULTIRUN or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return metrics.get("test/accuracy")  # the sweeper's objective; None off the main process


if __name__ == "__main__":
    main()
