"""Open (free-text) answers: SQuAD normalisation, exact match and token F1, and the rewards that use them
(AccuracyReward by exact match, OpenAnswerF1Reward by token F1) on crafted completions; closed rows
score by their letter (tests/test_rewards.py's table)."""

from __future__ import annotations

import copy
import pickle

import pytest
from trl.trainer.utils import get_callable_name

from medvqa_rl.rewards import AccuracyReward, FormatReward, OpenAnswerF1Reward
from medvqa_rl.rewards.open_answer import exact_match, normalise_answer, token_f1
from medvqa_rl.training.grpo import reward_functions

from .conftest import compose_config
from .test_rewards import CASES as CLOSED_CASES
from .test_rewards import IDS as CLOSED_IDS
from .test_rewards import LABEL, OPTIONS

REFERENCE = "left lung"


@pytest.mark.parametrize(("text", "expected"), [
    ("The Left Lung.", "left lung"),
    ("  an   MRI,\tT2-weighted!  ", "mri t2weighted"),  # punctuation deleted, as in SQuAD's script
    ("theory of a thing", "theory of thing"),  # whole-word articles only
    ("A", ""),
    ("Lésion, GRÖßER", "lésion größer"),
])
def test_normalise_answer(text, expected):
    assert normalise_answer(text) == expected


@pytest.mark.parametrize(("prediction", "reference", "expected"), [
    ("left lung", "left lung", True),
    ("The LEFT lung.", "left lung", True),
    ("left  lung ", "Left Lung", True),
    ("left lungs", "left lung", False),
    ("lung left", "left lung", False),  # order matters for exact match (not for F1)
    ("", "left lung", False),
])
def test_exact_match(prediction, reference, expected):
    assert exact_match(prediction, reference) is expected


@pytest.mark.parametrize(("prediction", "reference", "expected"), [
    ("left lung", "left lung", 1.0),
    ("lung left", "left lung", 1.0),
    ("left lower lobe", "left lobe", 0.8),  # overlap 2: P = 2/3, R = 1, F1 = 2PR/(P+R) = 0.8
    ("right lung base", "left lung", 0.4),  # overlap 1: P = 1/3, R = 1/2, F1 = (1/3)/(5/6) = 0.4
    ("lung lung", "lung", 2 / 3),  # tokens count with multiplicity: P = 1/2, R = 1
    ("The liver.", "left lung", 0.0),
    ("", "left lung", 0.0),
    ("the", "a", 1.0),  # both empty after normalisation: SQuAD's rule
])
def test_token_f1(prediction, reference, expected):
    assert token_f1(prediction, reference) == pytest.approx(expected)


# (name, completion, accuracy by exact match, token F1) against the reference "left lung".
OPEN_CASES = [
    ("exact", "<think>r</think><answer>left lung</answer>", 1.0, 1.0),
    ("case_punctuation_article", "<think>r</think><answer>The Left Lung.</answer>", 1.0, 1.0),
    ("whitespace", "\n<think>r</think>\n<answer>\n left   lung \n</answer>\n", 1.0, 1.0),
    ("partial_overlap", "<think>r</think><answer>left lower lung</answer>", 0.0, 0.8),
    ("wrong", "<think>r</think><answer>liver</answer>", 0.0, 0.0),
    ("option_letter", "<think>r</think><answer>A</answer>", 0.0, 0.0),
    ("empty_answer", "<think>r</think><answer></answer>", 0.0, 0.0),
    ("blank_answer", "<think>r</think><answer>   </answer>", 0.0, 0.0),
    ("article_only", "<think>r</think><answer>the</answer>", 0.0, 0.0),
    ("missing_answer", "<think>r</think>", 0.0, 0.0),
    ("unclosed_answer", "<think>r</think><answer>left lung", 0.0, 0.0),
    ("nested_answer", "<think>r</think><answer><answer>left lung</answer></answer>", 0.0, 0.0),
    ("two_answers", "<think>r</think><answer>left lung</answer><answer>liver</answer>", 0.0, 0.0),
    # Only a well-formed completion has an answer (rewards/correctness.py), open questions as closed ones.
    ("text_after_answer", "<think>r</think><answer>left lung</answer> I hope this helps.", 0.0, 0.0),
    ("trailing_correction", "<think>r</think><answer>liver</answer> Actually: left lung", 0.0, 0.0),
    ("missing_think", "<answer>left lung</answer>", 0.0, 0.0),
    ("blank_think", "<think> </think><answer>left lung</answer>", 0.0, 0.0),
    ("unicode_reasoning", "<think>größer → lésion</think><answer>left lung</answer>", 1.0, 1.0),
]
OPEN_IDS = [case[0] for case in OPEN_CASES]


def _call(reward, texts, labels, options, references):
    return reward(completions=[[{"role": "assistant", "content": t}] for t in texts], answer_label=labels,
                  options=options, answer_text=references)


@pytest.mark.parametrize(("name", "text", "accuracy", "f1"), OPEN_CASES, ids=OPEN_IDS)
def test_open_question_rewards(name, text, accuracy, f1):
    assert _call(AccuracyReward(), [text], [""], [[]], [REFERENCE]) == [accuracy]
    assert _call(OpenAnswerF1Reward(), [text], [""], [[]], [REFERENCE]) == [pytest.approx(f1)]


def test_unicode_reference():
    text = "<think>r</think><answer>lésion größer</answer>"
    assert _call(AccuracyReward(), [text], [""], [[]], ["Lésion, Größer."]) == [1.0]


@pytest.mark.parametrize(("name", "text", "expected", "fmt"), CLOSED_CASES, ids=CLOSED_IDS)
@pytest.mark.parametrize("reward", [AccuracyReward(), OpenAnswerF1Reward()], ids=["accuracy", "answer_f1"])
def test_closed_rows_score_as_in_the_closed_table(name, text, expected, fmt, reward):
    # The gold option's text as answer_text, as the loaders give it: no partial credit on a closed question.
    assert _call(reward, [text], [LABEL], [OPTIONS], [OPTIONS[1]]) == [expected]


def test_mixed_batch():
    texts = ["<think>r</think><answer>B</answer>", "<think>r</think><answer>left lower lung</answer>",
             "<think>r</think><answer>A</answer>", "<think>r</think><answer>Left lung</answer>"]
    columns = ([LABEL, "", LABEL, ""], [OPTIONS, [], OPTIONS, []], ["ct", REFERENCE, "ct", REFERENCE])
    assert _call(AccuracyReward(), texts, *columns) == [1.0, 0.0, 0.0, 1.0]
    assert _call(OpenAnswerF1Reward(), texts, *columns) == pytest.approx([1.0, 0.8, 0.0, 1.0])


def test_open_question_without_answer_text_is_an_error():
    with pytest.raises(ValueError, match="answer_text"):
        OpenAnswerF1Reward()(completions=["<answer>x</answer>"], answer_label=[""], options=[[]])
    with pytest.raises(ValueError, match="answer_text"):  # whatever the completion: it is the call that is wrong
        AccuracyReward()(completions=["garbage"], answer_label=[""], options=[[]])


def test_f1_reward_name_pickle_and_trl_kwargs():
    assert get_callable_name(OpenAnswerF1Reward()) == "answer_f1"
    assert OpenAnswerF1Reward.__name__ == "OpenAnswerF1Reward"
    for reward in (pickle.loads(pickle.dumps(OpenAnswerF1Reward())), copy.deepcopy(OpenAnswerF1Reward())):
        assert reward.__name__ == "answer_f1"
        rewards = reward(prompts=["p"], completions=["<think>r</think><answer>left</answer>"], completion_ids=[[1]],
                         trainer_state=None, answer_label=[""], options=[[]], answer_text=[REFERENCE],
                         question_type=["open"], rationale=[""], findings=[""], id=["x"], question=["q"])
        assert rewards == [pytest.approx(2 / 3)] and isinstance(rewards[0], float)


def test_reward_accuracy_f1_config_builds_the_f1_reward():
    rewards = reward_functions(compose_config(["reward=accuracy_f1"]), tokenizer=None)
    assert [type(r) for r in rewards] == [OpenAnswerF1Reward, FormatReward]
    assert [r.__name__ for r in rewards] == ["answer_f1", "format"]
