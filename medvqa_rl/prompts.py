"""The text the model sees and the text it is taught to produce, shared by every method and evaluator."""

from __future__ import annotations

LETTERS = "ABCD"

INSTRUCTION = "Reason in <think></think>, then give the letter in <answer></answer>."


def question_text(question: str, options: list[str]) -> str:
    """The user turn's text: question, lettered options, and the answer-format instruction."""
    lines = [question] + [f"{LETTERS[i]}. {option}" for i, option in enumerate(options)]
    return "\n".join(lines + [INSTRUCTION])


def prompt_messages(question: str, options: list[str]) -> list[dict]:
    """TRL's conversational prompt; TRL (and our evaluator) put the image block before the text."""
    return [{"role": "user", "content": question_text(question, options)}]


def reference_completion(rationale: str, answer_label: str) -> str:
    """The target response of supervised tuning: the reference rationale, then the letter."""
    return f"<think>{rationale}</think><answer>{answer_label}</answer>"
