"""Where the reasoning goes (the `reasoning` config group): one layout of tags per format, from which the prompt's
instruction, the reference completion (SFT, DPO, perplexity) and the well-formedness rule (every reward and score:
rewards/completion_parsing.py) all follow.

- think (the paper's, the default): `<think>reasoning</think><answer>answer</answer>`;
- none (Med-R1's no-thinking answer): `<answer>answer</answer>`, no reasoning at all;
- after (Med-R1's reasoning after the answer): `<answer>answer</answer><think>reasoning that explains it</think>`.

No project imports: the prompts and the rewards both read it.
"""

from __future__ import annotations

from dataclasses import dataclass

THINK, ANSWER = "think", "answer"


@dataclass(frozen=True)
class ReasoningFormat:
    name: str
    blocks: tuple[str, ...]  # the tag blocks of a well-formed completion, in order
    instruction: str  # the closed question's answer-format instruction (the prompt's last line)
    open_instruction: str  # an open question's (no options): the answer in a few words

    @property
    def has_reasoning(self) -> bool:
        """Whether the completion carries a reasoning block (length rewards, judge, similarity need one)."""
        return THINK in self.blocks

    @property
    def layout(self) -> list[str]:
        """The tags of a well-formed completion, in order."""
        return [tag for block in self.blocks for tag in (f"<{block}>", f"</{block}>")]

    def completion(self, rationale: str, answer: str) -> str:
        """The completion that gives `answer` (and `rationale`, where the format has reasoning) in this layout."""
        contents = {THINK: rationale, ANSWER: answer}
        return "".join(f"<{block}>{contents[block]}</{block}>" for block in self.blocks)


FORMATS = {
    # The paper's: byte-identical to the prompts the shipped tiny models were trained on (tests/test_reasoning_formats.py).
    "think": ReasoningFormat(
        "think", (THINK, ANSWER),
        "Reason in <think></think>, then give the letter in <answer></answer>.",
        "Reason in <think></think>, then give the answer in a few words in <answer></answer>."),
    "none": ReasoningFormat(
        "none", (ANSWER,),
        "Give the letter in <answer></answer>.",
        "Give the answer in a few words in <answer></answer>."),
    "after": ReasoningFormat(
        "after", (ANSWER, THINK),
        "Give the letter in <answer></answer>, then explain it in <think></think>.",
        "Give the answer in a few words in <answer></answer>, then explain it in <think></think>."),
}
DEFAULT = "think"


def reasoning_format(name: str = DEFAULT) -> ReasoningFormat:
    """The format called `name` (the reasoning group's option); KeyError names the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown reasoning format {name!r}; one of {tuple(FORMATS)}") from None
