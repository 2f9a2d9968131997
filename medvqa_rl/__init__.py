"""GRPO fine-tuning ablations of vision-language models for medical VQA (Zhu et al. 2025).

The package's floors, top to bottom; a module imports only from its own floor or those below it, never in a
circle (pyproject.toml's import-linter contract; tests/test_import_layers.py runs it):
1. the CLIs: __main__ (`python -m medvqa_rl`), build_tiny (the shipped tiny models' recipe);
2. run: one run, top to bottom (data, model, trainer, train, evaluate, record);
3. reuse: skip a finished run, resume a checkpoint, copy a study's shared arm;
4. config_checks: every value checked before anything loads;
5. tracking: W&B;
6. bookkeeping: run records, provenance digests, checkpoints, per-question outcomes, the init-evaluation cache;
7. training (TRL's trainers and their inputs) | evaluation (scoring a model on a test split);
8. models: loading checkpoints, generating, the tiny VLM and its build;
9. rewards: TRL reward callables and completion parsing;
10. judges: the semantic-alignment judge back ends;
11. data: loaders, validation, record caches, test sets;
12. prompts: the chat prompt and reference completion of a record;
13. helpers with no project imports: questions, decoding, distributed, factors, digests, batching, reasoning_formats
    (where the reasoning goes: the prompts' and the rewards' one layout), cache_entries (a corrupt entry set aside).
"""

from medvqa_rl import batching
from medvqa_rl.bookkeeping.grid_point_dirs import register_resolver
from medvqa_rl.data import protocol_variants

# On import of the package, not of __main__: joblib and submitit workers unpickle the task function
# and resolve the job's folder (sweeps/_common.yaml) without running `python -m medvqa_rl`'s module.
register_resolver()
batching.register_resolver()  # method.gradient_accumulation_steps from the process count
protocol_variants.register_resolver()  # test_sets=protocol: the run's dataset, blind and circular
