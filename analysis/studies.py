"""The paper's studies: which runs each table reads and which factors make its rows."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from analysis.tables import extra_test_sets
from medvqa_rl.factors import STUDIED_FACTORS


@dataclass(frozen=True)
class Study:
    name: str  # the sweep (sweeps/<name>.yaml) whose runs it reads; also the output file stem
    title: str
    rows: tuple[str, ...]  # factors whose levels make the table's rows
    method: str | None = "grpo"  # only runs of this method (None: every method)
    version: int | None = None  # set when the runs hold several versions of the sweep: one study each
    adhoc: bool = True  # also pools runs of no named sweep; False: its own sweep's runs only

    @property
    def stem(self) -> str:
        """The output files' stem: the sweep's name, with -v<version> when versions are told apart."""
        return self.name if self.version is None else f"{self.name}-v{self.version}"


STUDIES = (
    Study("init", "Initialisation (base vs instruct)", ("model_init",)),
    Study("semantic", "Medical semantic alignment reward", ("reward",)),
    Study("length", "Length rewards", ("length_reward",)),
    Study("bias", "GRPO vs Dr.GRPO", ("bias",)),
    # method none: the init evaluated untrained (the zero-shot row), on the same seeds' test questions.
    Study("methods", "GRPO vs SFT and DPO (none: the init, untrained)", ("method",), method=None),
    Study("factorial", "Full factorial", STUDIED_FACTORS),
    # Issue 38: the policy objective (TRL's loss types, the bias group's levels), the KL weight, the reasoning format.
    # Their own sweeps' runs only: ad-hoc runs of the bias factor already fill the bias study.
    Study("objectives", "Policy objective (TRL loss type)", ("bias",), adhoc=False),
    Study("kl", "KL weight (method.beta)", ("beta",), adhoc=False),
    Study("reasoning", "Reasoning format", ("reasoning",), adhoc=False),
)

# Each factor's reference level: the paired tables (analysis/paired.py) report every other level as
# level - reference. The paper's baseline choice of each factor: instruct init, accuracy reward, no
# length term, plain GRPO, and GRPO among the training methods.
REFERENCE_LEVELS = {"model_init": "instruct", "reward": "accuracy", "length_reward": "none", "bias": "grpo",
                    "method": "grpo", "beta": "0.04", "reasoning": "think"}  # beta: the paper's KL weight


def study_versions(runs: pd.DataFrame, study: Study) -> list[tuple[Study, pd.DataFrame]]:
    """(study, its runs) for each version of the study's sweep among the runs: versions of a sweep are never
    pooled (bumping a version changes the config for good). One version, or none recorded: the study as it
    is; several: one study per version, named <sweep>-v<version>. Empty when the runs fill no study."""
    chosen = without_unrecorded_sets(study_runs(runs, study))
    if chosen.empty:
        return []
    versions = sorted(chosen["sweep_version"].dropna().unique()) if "sweep_version" in chosen else []
    if len(versions) <= 1:
        return [(study, chosen)]
    return [(replace(study, version=int(v), title=f"{study.title} (version {int(v)})"),
             chosen[chosen["sweep_version"] == v]) for v in versions]


def without_unrecorded_sets(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs without the columns of extra test sets none of them recorded (another study's runs did): a study's
    tables get a column group only for the sets its own runs were scored on."""
    unrecorded = [name for name in extra_test_sets(runs.columns) if runs[f"test/{name}/accuracy"].isna().all()]
    prefixes = tuple(f"{stage}test/{name}/" for name in unrecorded for stage in ("", "init/"))
    return runs.drop(columns=[c for c in runs.columns if c.startswith(prefixes)]) if prefixes else runs


def study_runs(runs: pd.DataFrame, study: Study) -> pd.DataFrame:
    """The study's own sweep's runs; where no run names a sweep (ad-hoc multiruns), every run of the
    study's method, so that each row pools the runs at that level (the other factors pooled; the
    tables average the runs that share a seed, so n still counts seeds). Empty when the runs cannot
    fill the study (its sweep absent, or one level only).
    """
    if (runs["sweep"] == study.name).any():
        chosen = runs[runs["sweep"] == study.name]
    elif runs["sweep"].isna().all() and study.adhoc:
        chosen = runs if study.method is None else runs[runs["method"] == study.method]
        if all(chosen[f].nunique() < 2 for f in study.rows):
            return chosen.iloc[0:0]
    else:
        return runs.iloc[0:0]
    return chosen
