"""The README's Results section says what results/studies/ holds: each number is the table's, rounded as written,
and each verdict word ("resolved", "not resolved at n = 3 seeds", the detectable size, the Holm p) is the verdict
table's (<study>_questions.csv; the factorial's model: factorial_effects.csv)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "results" / "studies"

# The accuracy table: (method row, in-domain, OOD) as the README's table writes them.
METHODS = [("grpo", "67.6", "51.1"), ("sft_full", "58.3", "43.3"), ("sft_lora", "48.5", "38.0"),
           ("dpo", "40.1", "30.7"), ("none", "37.8", "28.7")]
# (text in the README, verdict table, level, test set, metric, column, digits)
NUMBERS = [
    ("DPO (-27.5 points", "methods-v1_questions.csv", "dpo", "in-domain", "accuracy", "effect", 1),
    ("[-35.9, -19.0]", "methods-v1_questions.csv", "dpo", "in-domain", "accuracy", ("low", "high"), 1),
    ("instruct (-29.8)", "methods-v1_questions.csv", "none", "in-domain", "accuracy", "effect", 1),
    ("(Holm p 0.041)", "methods-v1_questions.csv", "dpo", "in-domain", "accuracy", "p_adjusted", 3),
    ("full SFT (-9.3", "methods-v1_questions.csv", "sft_full", "in-domain", "accuracy", "effect", 1),
    ("[-17.7, -0.9]", "methods-v1_questions.csv", "sft_full", "in-domain", "accuracy", ("low", "high"), 1),
    ("OOD -7.9)", "methods-v1_questions.csv", "sft_full", "synthetic_ood", "accuracy", "effect", 1),
    ("LoRA SFT (-19.1)", "methods-v1_questions.csv", "sft_lora", "in-domain", "accuracy", "effect", 1),
    ("about 14.3 points", "methods-v1_questions.csv", "sft_full", "in-domain", "accuracy", "detectable", 1),
    ("(+18.2 for", "init_questions.csv", "base", "in-domain", "accuracy", "effect", 1),
    ("(Holm p 0.028)", "init_questions.csv", "base", "in-domain", "accuracy", "p_adjusted", 3),
    ("semantic reward\n(-1.6)", "semantic_questions.csv", "semantic", "in-domain", "accuracy", "effect", 1),
    ("Dr.GRPO (-1.5)", "bias_questions.csv", "dr_grpo", "in-domain", "accuracy", "effect", 1),
    ("about 10.5 and", "semantic_questions.csv", "semantic", "in-domain", "accuracy", "detectable", 1),
    ("and 11.9 points", "bias_questions.csv", "dr_grpo", "in-domain", "accuracy", "detectable", 1),
    ("costs (-8.4,", "length_questions.csv", "ecr", "in-domain", "accuracy", "effect", 1),
    ("-6.3; detectable", "length_questions.csv", "cwr", "in-domain", "accuracy", "effect", 1),
    ("about 37.7 points", "length_questions.csv", "ecr", "in-domain", "accuracy", "detectable", 1),
    ("by 3.4 tokens", "length_questions.csv", "ecr", "in-domain", "completion_tokens", "effect", 1),
    ("(Holm p 0.038)", "length_questions.csv", "ecr", "in-domain", "completion_tokens", "p_adjusted", 3),
    ("CWR's 2.7 tokens", "length_questions.csv", "cwr", "in-domain", "completion_tokens", "effect", 1),
    ("DAPO +3.8 points in-domain", "objectives_questions.csv", "dapo", "in-domain", "accuracy", "effect", 1),
    ("LUSPO +3.4,", "objectives_questions.csv", "luspo", "in-domain", "accuracy", "effect", 1),
    ("SAPO -6.2,", "objectives_questions.csv", "sapo", "in-domain", "accuracy", "effect", 1),
    ("CISPO -11.4,", "objectives_questions.csv", "cispo", "in-domain", "accuracy", "effect", 1),
    ("(detectable: about 11.1 points); against", "objectives_questions.csv", "cispo", "in-domain", "accuracy",
     "detectable", 1),
    ("no KL -6.9 and", "kl_questions.csv", "0.0", "in-domain", "accuracy", "effect", 1),
    ("ten times it -3.3", "kl_questions.csv", "0.4", "in-domain", "accuracy", "effect", 1),
    ("(detectable: about 16.4); against", "kl_questions.csv", "0.4", "in-domain", "accuracy", "detectable", 1),
    ("the answer alone -3.9", "reasoning_questions.csv", "none", "in-domain", "accuracy", "effect", 1),
    ("its reasoning -8.0", "reasoning_questions.csv", "after", "in-domain", "accuracy", "effect", 1),
    ("(detectable: about 14.9", "reasoning_questions.csv", "after", "in-domain", "accuracy", "detectable", 1),
]
# The objectives study's levels against its reference, grpo; the README names those with |effect| >= 2 points
# in-domain ("the other four within 2").
OBJECTIVES = ("dr_grpo", "dapo", "gspo", "bnpo", "cispo", "sapo", "luspo", "vespo")
OBJECTIVES_NAMED = {"dapo", "luspo", "sapo", "cispo"}
# (verdict table, level, test set, metric, how the verdict the README gives it begins)
VERDICTS = [
    ("methods-v1_questions.csv", "dpo", "in-domain", "accuracy", "lower: resolved at n = 3 seeds"),
    ("methods-v1_questions.csv", "none", "in-domain", "accuracy", "lower: resolved at n = 3 seeds"),
    ("methods-v1_questions.csv", "sft_full", "in-domain", "accuracy", "not resolved at n = 3 seeds"),
    ("methods-v1_questions.csv", "sft_full", "synthetic_ood", "accuracy", "not resolved at n = 3 seeds"),
    ("methods-v1_questions.csv", "sft_lora", "in-domain", "accuracy", "not resolved at n = 3 seeds"),
    ("init_questions.csv", "base", "in-domain", "accuracy", "higher: resolved at n = 3 seeds"),
    ("semantic_questions.csv", "semantic", "in-domain", "accuracy", "not resolved at n = 3 seeds"),
    ("bias_questions.csv", "dr_grpo", "in-domain", "accuracy", "not resolved at n = 3 seeds"),
    ("length_questions.csv", "ecr", "in-domain", "accuracy", "not resolved at n = 3 seeds"),
    ("length_questions.csv", "cwr", "in-domain", "accuracy", "not resolved at n = 3 seeds"),
    ("length_questions.csv", "ecr", "in-domain", "completion_tokens", "higher: resolved at n = 3 seeds"),
    ("length_questions.csv", "cwr", "in-domain", "completion_tokens", "not resolved at n = 3 seeds"),
    *[(table, level, test_set, "accuracy", "not resolved at n = 3 seeds")  # "resolves anything at n = 3 seeds"
      for table, levels in (("kl_questions.csv", ("0.0", "0.4")), ("reasoning_questions.csv", ("none", "after")),
                            ("objectives_questions.csv", OBJECTIVES))
      for level in levels for test_set in ("in-domain", "synthetic_ood")],
]


def _readme() -> str:
    return " ".join((ROOT / "README.md").read_text().split())


def _row(table: str, level: str, test_set: str, metric: str) -> pd.Series:
    frame = pd.read_csv(STUDIES / table)
    return frame[(frame["level"].astype(str) == level) & (frame["test_set"] == test_set) & (frame["metric"] == metric)].iloc[0]


@pytest.mark.parametrize(("method", "in_domain", "ood"), METHODS, ids=[m[0] for m in METHODS])
def test_the_accuracy_table_is_the_methods_table(method, in_domain, ood):
    frame = pd.read_csv(STUDIES / "methods-v1.csv").set_index("method")
    assert f"{frame.loc[method, 'test/accuracy_mean']:.1f}" == in_domain
    assert f"{frame.loc[method, 'test/synthetic_ood/accuracy_mean']:.1f}" == ood
    lines = (ROOT / "README.md").read_text().split("## Results", 1)[1].splitlines()
    column = ["grpo", "sft_full", "sft_lora", "dpo", "none"].index(method) + 2
    cells = {line.split("|")[1].strip(): line.split("|")[column].strip() for line in lines
             if line.startswith(("| in-domain", "| OOD"))}
    assert cells == {"in-domain": in_domain, "OOD": ood}


@pytest.mark.parametrize(("text", "table", "level", "test_set", "metric", "column", "digits"), NUMBERS,
                         ids=[n[0].replace("\n", " ") for n in NUMBERS])
def test_each_number_in_the_readme_is_the_tables(text, table, level, test_set, metric, column, digits):
    assert " ".join(text.split()) in _readme(), text
    row = _row(table, level, test_set, metric)
    if isinstance(column, tuple):
        assert f"[{row[column[0]]:.{digits}f}, {row[column[1]]:.{digits}f}]" in text
        return
    number = next(float(tok.strip("()[],;%+")) for tok in text.split() if _is_number(tok.strip("()[],;%+")))
    assert round(float(row[column]), digits) == pytest.approx(number), (text, row[column])


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("table", "level", "test_set", "metric", "verdict"), VERDICTS,
                         ids=[f"{v[1]}-{v[2]}-{v[3]}" for v in VERDICTS])
def test_what_the_readme_says_of_each_verdict_is_the_tables(table, level, test_set, metric, verdict):
    assert _row(table, level, test_set, metric)["verdict"].startswith(verdict)


def test_what_the_readme_says_of_the_factorial_is_its_model():
    frame = pd.read_csv(STUDIES / "factorial_effects.csv")
    accuracy = frame[frame["metric"] == "accuracy"]
    resolved = accuracy[accuracy["p_adjusted"] < 0.05]
    assert set(resolved["term"]) == {"model_init"}  # "resolves only model_init in accuracy"
    main = accuracy[accuracy["term"] == "model_init"].set_index("test_set")["effect"]
    assert f"(+{main['in-domain']:.1f} points in-domain, +{main['synthetic_ood']:.1f} OOD)" in _readme()
    assert not resolved["term"].str.contains("×").any()  # "no two-way interaction is resolved"
    unresolved = accuracy[accuracy["p_adjusted"] >= 0.05]["detectable"]
    assert f"(detectable: about {unresolved.min():.1f} to {unresolved.max():.1f} points)" in _readme()
    run_noise = accuracy["run_noise"].unique()
    assert list(run_noise) == ["replicate seeds, 46 df"]  # "against its replicate seeds' run-to-run noise, 46 df"
    runs = pd.read_csv(STUDIES / "runs.csv")
    factorial = runs[runs["sweep"] == "factorial"]
    assert factorial.groupby("seed").size().to_dict() == {0: 24, 1: 24, 2: 24}  # "24 arms at 3 seeds"
    assert "The factorial (24 arms at 3 seeds;" in _readme()
    assert "all 72 runs" in (STUDIES / "README.md").read_text()


def test_what_the_readme_says_of_the_reasoning_formats_init_is_the_records():
    """"from a tiny instruct 100% well-formed in all three before training"."""
    runs = pd.read_csv(STUDIES / "runs.csv")
    reasoning = runs[runs["sweep"] == "reasoning"]
    assert sorted(reasoning["reasoning"]) == ["after"] * 3 + ["none"] * 3 + ["think"] * 3
    assert (reasoning["init/test/format_rate"] == 100.0).all()
    assert "from a tiny instruct 100% well-formed in all three before training" in _readme()


def test_what_the_readme_says_of_the_evaluation_protocol_is_the_methods_v2_tables():
    """The sharpening, blind and circular sentences: methods-v2's sharpening table, its arm table, its verdicts."""
    readme = _readme()
    sharpening = pd.read_csv(STUDIES / "methods-v2_sharpening.csv")
    grpo = sharpening[(sharpening["arm"] == "method=grpo") & (sharpening["test_set"] == "in-domain")].set_index("k")
    first, last = grpo.loc[1], grpo.loc[grpo.index.max()]
    assert grpo.index.max() == 8
    assert f"pass@1 +{first['effect']:.1f} points in-domain [+{first['low']:.1f}, +{first['high']:.1f}]" in readme
    assert f"pass@8 +{last['effect']:.1f} [{last['low']:+.1f}, +{last['high']:.1f}]" in readme
    assert f"right answer among 8 samples for {last['init']:.1f}% of questions" in readme
    arms = pd.read_csv(STUDIES / "methods-v2.csv").set_index("method")
    blind, circular = arms["test/blind/accuracy_mean"], arms["test/circular/accuracy_mean"]
    assert f"blind, every arm scores {blind.min():.1f} to {blind.max():.1f}%" in readme
    assert f"circular accuracy (right in every rotation) is {circular.min():.1f} to {circular.max():.1f}%" in readme
    assert (arms["test/accuracy_mean"].round(1).astype(str).to_dict()
            == pd.read_csv(STUDIES / "methods-v1.csv").set_index("method")["test/accuracy_mean"].round(1)
            .astype(str).to_dict())  # "greedy accuracy as above"
    dpo = _row("methods-v2_questions.csv", "dpo", "in-domain", "accuracy")
    assert dpo["verdict"].startswith("not resolved") and f"(Holm p {dpo['p_adjusted']:.3f})" in readme


def test_what_the_readme_says_of_the_objectives_is_their_table():
    """"against GRPO, DAPO ..., LUSPO ..., SAPO ..., CISPO ..., the other four within 2": every objective of the sweep
    is a level of the verdict table, and the ones the README leaves unnamed moved accuracy by less than 2 points."""
    frame = pd.read_csv(STUDIES / "objectives_questions.csv")
    accuracy = frame[(frame["metric"] == "accuracy") & (frame["test_set"] == "in-domain")].set_index("level")
    assert set(accuracy.index) == set(OBJECTIVES)
    assert (accuracy["reference"] == "grpo").all()
    assert set(accuracy.index[accuracy["effect"].abs() >= 2]) == OBJECTIVES_NAMED
    runs = pd.read_csv(STUDIES / "runs.csv")
    assert runs[runs["sweep"] == "objectives"].groupby("seed").size().to_dict() == {0: 9, 1: 9, 2: 9}


def test_the_quick_start_output_is_the_reference_runs_record():
    """"What you see (seed 0; the numbers are those of the same run in results/studies ...)": the quick start's init
    and trained accuracies are seed 0's reference arm (GRPO from instruct, trained once, in `bias`)."""
    record = json.loads((STUDIES / "runs" / "bias-v1" / "bias=grpo,seed=0" / "metrics.json").read_text())
    block = (ROOT / "README.md").read_text().split("What you see", 1)[1].split("```", 2)[1]
    assert "seed 0; the numbers are those of the same run in results/studies" in _readme()
    assert (f"init: in-domain test split accuracy {record['init/test/accuracy']:.1f}%" in block
            and f"init: test set synthetic_ood accuracy {record['init/test/synthetic_ood/accuracy']:.1f}%" in block)
    assert (f"trained: in-domain test split accuracy {record['test/accuracy']:.1f}% "
            f"(init {record['init/test/accuracy']:.1f}%)") in block
    assert (f"trained: test set synthetic_ood accuracy {record['test/synthetic_ood/accuracy']:.1f}% "
            f"(init {record['init/test/synthetic_ood/accuracy']:.1f}%)") in block
    assert record["seed"] == 0
