"""`python -m medvqa_rl [overrides]`; `-m` for a multirun, `-m +sweep=<name>` for a named sweep of sweeps/."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from medvqa_rl.resumable import resumable_run
from medvqa_rl.run import run


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    metrics = resumable_run(run, cfg, HydraConfig.get().runtime.output_dir)
    return metrics.get("test/accuracy")  # the sweeper's objective; None off the main process


if __name__ == "__main__":
    main()
