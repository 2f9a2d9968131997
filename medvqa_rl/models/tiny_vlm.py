"""A tiny Qwen2-VL (or Qwen2.5-VL) built from config, with a tokenizer trained on the task's text.

Nothing is downloaded: the tokenizer is a byte-level BPE trained locally, the processor is the real
transformers Qwen2-VL processor with a small patch size, and the model is the real transformers class
with tiny dimensions. Saved with ``save_pretrained`` so it loads back through the same
``from_pretrained`` path that a hub checkpoint takes.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForImageTextToText,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2VLConfig,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
)

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Ordinary (non-special) added tokens: decoding with skip_special_tokens must keep them.
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

# Qwen2-VL's chat layout without the default system turn (the tiny model never saw one).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CONFIG_CLASSES = {"qwen2_vl": Qwen2VLConfig, "qwen2_5_vl": Qwen2_5_VLConfig}


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE over the task text; specials and tags added as whole tokens."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.add_tokens(TAG_TOKENS, special_tokens=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_processor(tokenizer: PreTrainedTokenizerFast, image_size: int, patch_size: int, merge_size: int):
    """The real Qwen2-VL processor; pixel bounds pin every image to image_size x image_size."""
    pixels = image_size * image_size
    kwargs = dict(patch_size=patch_size, merge_size=merge_size, temporal_patch_size=2)
    image_processor = Qwen2VLImageProcessor(min_pixels=pixels, max_pixels=pixels, **kwargs)
    video_processor = Qwen2VLVideoProcessor(size={"shortest_edge": pixels, "longest_edge": pixels}, **kwargs)
    return Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def build_model(tokenizer: PreTrainedTokenizerFast, arch: dict, seed: int):
    """A randomly initialised tiny VLM of the family ``arch['family']`` (qwen2_vl or qwen2_5_vl).

    ``arch`` holds text_hidden, text_layers, heads, kv_heads, intermediate, vision_depth,
    vision_embed, vision_heads, patch_size, merge_size (the model_init config's ``arch`` section).
    """
    import torch

    family = arch["family"]
    if family not in CONFIG_CLASSES:
        raise ValueError(f"model_init.arch.family must be one of {sorted(CONFIG_CLASSES)}, got {family!r}")
    ids = tokenizer.convert_tokens_to_ids
    head_dim = arch["text_hidden"] // arch["heads"]
    # mrope splits each head's rotary half into (time, height, width) sections; Qwen uses 1:1.5:1.5.
    half = head_dim // 2
    mrope = [half // 4, (half - half // 4) // 2, half - half // 4 - (half - half // 4) // 2]
    text_config = dict(
        vocab_size=len(tokenizer),
        hidden_size=arch["text_hidden"],
        intermediate_size=arch["intermediate"],
        num_hidden_layers=arch["text_layers"],
        num_attention_heads=arch["heads"],
        num_key_value_heads=arch["kv_heads"],
        max_position_embeddings=1024,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|im_end|>"),
        pad_token_id=ids("<|endoftext|>"),
    )
    vision_config = dict(
        depth=arch["vision_depth"],
        num_heads=arch["vision_heads"],
        patch_size=arch["patch_size"],
        spatial_merge_size=arch["merge_size"],
        temporal_patch_size=2,
    )
    if family == "qwen2_vl":
        vision_config.update(embed_dim=arch["vision_embed"], hidden_size=arch["text_hidden"], mlp_ratio=2)
    else:
        vision_config.update(
            hidden_size=arch["vision_embed"],
            out_hidden_size=arch["text_hidden"],
            intermediate_size=2 * arch["vision_embed"],
            fullatt_block_indexes=[arch["vision_depth"] - 1],
            window_size=arch["patch_size"] * arch["merge_size"] * 2,
        )
    config = CONFIG_CLASSES[family](
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    set_generation_tokens(model, tokenizer)
    return model


def set_generation_tokens(model, tokenizer) -> None:
    """Generation stops at <|im_end|> (chat turn end) or <|endoftext|> (document end, what the base
    model learned) and pads with <|endoftext|>, as a real Qwen2-VL checkpoint does."""
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.pad_token_id
