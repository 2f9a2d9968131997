"""A causal LM judge loaded with transformers (BioMistral-7B, BioGPT, or a tiny model in tests)."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from medvqa_rl.judges.base import Judge, JudgeError, JudgeItem, render_prompt, stated_verdict

VERDICT_MODES = ("logprob", "generate")


class HFJudge(Judge):
    """Batched verdicts from a local causal LM.

    verdict="logprob": 1 iff the next-token logit of `yes_token` beats that of `no_token` after the prompt
    (one forward pass per batch). verdict="generate": greedy-decode up to `max_new_tokens` and read a
    stated "yes" or "no" (base.stated_verdict; a reply with neither is a failed verdict). Prompts are left-padded so the last position is every row's next token.
    """

    backend = "hf"  # the judge=<option> that selects it

    def __init__(self, model: str, template: str, verdict: str = "logprob", yes_token: str = " Yes",
                 no_token: str = " No", batch_size: int = 16, max_new_tokens: int = 4, device: str = "cpu",
                 dtype: str = "float32", on_failure: str = "error") -> None:
        super().__init__(on_failure)
        if verdict not in VERDICT_MODES:
            raise JudgeError(f"judge.verdict must be one of {VERDICT_MODES}, got {verdict!r}")
        self.template, self.verdict, self.batch_size, self.max_new_tokens = template, verdict, batch_size, max_new_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype)).to(device).eval()
        self.yes_id, self.no_id = self._first_token(yes_token), self._first_token(no_token)
        if self.yes_id == self.no_id:
            raise JudgeError(f"judge.yes_token {yes_token!r} and judge.no_token {no_token!r} start with the same token")

    def _first_token(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if not ids:
            raise JudgeError(f"judge verdict token {text!r} is empty under the judge's tokenizer")
        return ids[0]

    def _batches(self, items: list[JudgeItem]):
        for start in range(0, len(items), self.batch_size):
            prompts = [render_prompt(self.template, item) for item in items[start:start + self.batch_size]]
            yield self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.model.device)

    @torch.no_grad()
    def margins(self, items: list[JudgeItem]) -> torch.Tensor:
        """Next-token logit of yes_token minus that of no_token, per item (the logprob verdict is margin > 0)."""
        margins = []
        for batch in self._batches(items):
            # Positions counted from each row's first real token, so left padding changes nothing.
            position_ids = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            # logits_to_keep=1: only the last position's logits (a 7B judge's full logits are seq x 32k floats).
            logits = self.model(**batch, position_ids=position_ids, logits_to_keep=1).logits[:, -1].float()
            margins.append(logits[:, self.yes_id] - logits[:, self.no_id])
        return torch.cat(margins).cpu()

    @torch.no_grad()
    def _judge(self, items: list[JudgeItem]) -> list[float | BaseException]:
        if self.verdict == "logprob":
            return (self.margins(items) > 0).float().tolist()
        return [verdict for batch in self._batches(items) for verdict in self._generated_verdicts(batch)]

    def _generated_verdicts(self, batch) -> list[float | BaseException]:
        generated = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                        pad_token_id=self.tokenizer.pad_token_id)
        answers = self.tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        return [_verdict_or_error(answer) for answer in answers]


def _verdict_or_error(answer: str) -> float | JudgeError:
    try:
        return stated_verdict(answer)
    except JudgeError as error:
        return error
