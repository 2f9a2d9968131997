"""The text the model sees and the text it is taught to produce, shared by every method and evaluator."""

from __future__ import annotations

from trl.data_utils import prepare_multimodal_messages

from medvqa_rl.questions import gold_answer
from medvqa_rl.reasoning_formats import DEFAULT, reasoning_format

LETTERS = "ABCD"

# The paper's format (reasoning=think): the instructions the tiny models were trained on and which key their cache.
# An open question (no options) is answered in words; closed prompts stay byte-identical to INSTRUCTION's.
INSTRUCTION = reasoning_format(DEFAULT).instruction
OPEN_INSTRUCTION = reasoning_format(DEFAULT).open_instruction


def question_text(question: str, options: list[str], reasoning: str = DEFAULT) -> str:
    """The user turn's text: question, lettered options (none for an open question), and the answer-format
    instruction of the reasoning format (medvqa_rl/reasoning_formats.py)."""
    fmt = reasoning_format(reasoning)
    lines = [question] + [f"{LETTERS[i]}. {option}" for i, option in enumerate(options)]
    return "\n".join(lines + [fmt.instruction if options else fmt.open_instruction])


def prompt_messages(question: str, options: list[str], reasoning: str = DEFAULT) -> list[dict]:
    """TRL's conversational prompt; TRL (and our evaluator) put the image block before the text."""
    return [{"role": "user", "content": question_text(question, options, reasoning)}]


def reference_completion(rationale: str, answer: str, reasoning: str = DEFAULT) -> str:
    """The target response of supervised tuning in the reasoning format: think, the reference rationale then the
    answer (the letter, or an open question's answer text: medvqa_rl.questions.gold_answer); none, the answer
    alone; after, the answer then the rationale."""
    return reasoning_format(reasoning).completion(rationale, answer)


def reference_response(record: dict, reasoning: str = DEFAULT) -> str:
    """A record's target response: its reference rationale and gold answer, as SFT, DPO's chosen turn, the
    perplexity metric and the tiny-instruct build all use it."""
    return reference_completion(record["rationale"], gold_answer(record), reasoning)


def prompt_conversation(question: str, options: list[str], image, reasoning: str = DEFAULT) -> list[dict]:
    """The user turn as TRL prepares it for a vision-language model (image block first)."""
    return prepare_multimodal_messages(prompt_messages(question, options, reasoning), [image])


def chat_prompt(processor, question: str, options: list[str], image, reasoning: str = DEFAULT) -> str:
    """The prompt text exactly as TRL renders it (image block first, then the generation prompt)."""
    return processor.apply_chat_template(prompt_conversation(question, options, image, reasoning), tokenize=False,
                                         add_generation_prompt=True)


def assistant_turn(processor, completion: str) -> str:
    """`completion` as the chat template closes an assistant turn (e.g. "...<|im_end|>"), so a teacher-forced
    target ends with the token that stops generation. Trailing newlines after it are dropped."""
    user = [{"role": "user", "content": "x"}]
    opened = processor.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    closed = processor.apply_chat_template(user + [{"role": "assistant", "content": completion}], tokenize=False)
    if not closed.startswith(opened):
        raise ValueError("the chat template renders an assistant turn differently from its generation prompt")
    return closed[len(opened):].rstrip("\n")
