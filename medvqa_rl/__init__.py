"""GRPO fine-tuning ablations of vision-language models for medical VQA (Zhu et al. 2025)."""

from medvqa_rl.bookkeeping.grid_point_dirs import register_resolver

# On import of the package, not of __main__: joblib and submitit workers unpickle the task function
# and resolve the job's folder (sweeps/_common.yaml) without running `python -m medvqa_rl`'s module.
register_resolver()
