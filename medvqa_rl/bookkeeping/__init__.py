"""A run's bookkeeping: its record (run_record) and provenance, and how reruns reuse what earlier attempts left:
skip or resume (resumable, checkpoints), copy another sweep's record (shared_arms), the per-question outcomes
the question-level tests compare (question_outcomes), the stable folder of a
sweep's grid point (grid_point_dirs) and SLURM tasks as accelerate ranks (slurm_tasks)."""
