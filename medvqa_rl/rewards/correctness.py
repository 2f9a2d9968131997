"""Whether a completion answers its question: a closed one by its option letter, an open one (no options)
by normalised exact match of the <answer> text. One rule for the rewards and the evaluation.

Only a well-formed completion has an answer (completion_parsing.well_formed). Outside that format which part
is the answer is a guess: text after </answer> can take it back ("... Actually the answer is C"), and an
answer written before its reasoning is not the one the reasoning led to. So accuracy counts answers given the
way the prompt asks, and never exceeds the format rate."""

from __future__ import annotations

from typing import Any, Callable

from medvqa_rl.reasoning_formats import DEFAULT
from medvqa_rl.rewards.completion_parsing import completion_text, well_formed
from medvqa_rl.rewards.open_answer import exact_match, token_f1
from medvqa_rl.rewards.option_letter import letter_of


def parsed_answer(text: str, options: list[str], reasoning: str = DEFAULT) -> str | None:
    """The option letter a closed completion commits to, or an open completion's answer text; None if neither,
    and None for any completion that is not well-formed in the reasoning format."""
    parts = well_formed(text, reasoning)
    if parts is None:
        return None
    return letter_of(parts.answer, options) if options else parts.answer


def is_correct(text: str, options: list[str], answer_label: str, answer_text: str | None,
               reasoning: str = DEFAULT) -> bool:
    """Closed: the committed letter is the label. Open: the answer equals answer_text after SQuAD normalisation."""
    reference = None if options else _reference(answer_text)  # a missing column fails whatever the completion
    parsed = parsed_answer(text, options, reasoning)
    if parsed is None:
        return False
    if options:
        return parsed == answer_label.strip().upper()
    return exact_match(parsed, reference)


def answer_f1(text: str, options: list[str], answer_label: str, answer_text: str | None,
              reasoning: str = DEFAULT) -> float:
    """Open: token F1 (0-1) of the answer text against answer_text, 0 without an answer. Closed: 1.0 or 0.0 as
    is_correct (a letter has no partial credit), so one function scores a mixed set."""
    if options:
        return float(is_correct(text, options, answer_label, answer_text, reasoning))
    reference = _reference(answer_text)
    parsed = parsed_answer(text, options, reasoning)
    return 0.0 if parsed is None else token_f1(parsed, reference)


def _reference(answer_text: str | None) -> str:
    if answer_text is None:  # a reward called without the answer_text column on an open question
        raise ValueError("an open question (no options) is scored against its answer_text, which is missing")
    return answer_text


def score_completions(score, completions: list, answer_label: list[str], options: list[list[str]],
                      answer_text: list[str] | None, reasoning: str = DEFAULT) -> list[float]:
    """`score(text, options, answer_label, answer_text, reasoning)` per TRL completion, as floats. answer_text may
    be None (a caller without that column) when every question is closed."""
    references = answer_text or [None] * len(completions)
    return [float(score(completion_text(c), opts, label, reference, reasoning))
            for c, label, opts, reference in zip(completions, answer_label, options, references, strict=True)]


class AnswerReward:
    """Base of the TRL rewards that score each completion's answer with `score(text, options, answer_label,
    answer_text, reasoning)` (a staticmethod of the subclass), in the reasoning format (the `reasoning` group's
    option). Holds only that name, so it pickles; subclasses set `__name__`."""

    score: Callable[[str, list[str], str, str | None, str], float | bool]

    def __init__(self, reasoning: str = DEFAULT) -> None:
        self.reasoning = reasoning

    def __call__(self, completions: list[Any], answer_label: list[str], options: list[list[str]],
                 answer_text: list[str] | None = None, **kwargs: Any) -> list[float]:
        return score_completions(self.score, completions, answer_label, options, answer_text, self.reasoning)
