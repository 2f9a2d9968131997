"""Sampled evaluation (eval.samples): does training teach the model something new, or only sharpen what the init
could already sample? (Yue et al. 2025, "Does reinforcement learning really incentivize reasoning capacity beyond
the base model?"). Per question, n = eval.samples completions drawn with eval.sampling's decoder; then

- pass@1: the mean correctness over the n samples (percent);
- pass@k for k = 1, 2, 4, ... up to n (n itself included): the unbiased estimator of Chen et al. 2021 (Codex,
  eq. 1), 1 - C(n - c, k) / C(n, k) per question with c correct samples, averaged over questions (percent);
- maj@k for the same k: the majority answer of the question's first k samples is right (percent). A tie for the
  most votes counts as wrong, and so does a question with no parsed answer among its k samples (a completion that
  is not well-formed has no answer, as for accuracy: medvqa_rl/rewards/correctness.py).

The per-question outcomes stay in the prediction rows (samples_correct: n booleans; samples_answers: n parsed answers
or None), so the question-level analysis can pair pass@k and maj@k between the init and the trained model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from medvqa_rl.models.generation import generate_completions
from medvqa_rl.questions import is_open
from medvqa_rl.reasoning_formats import DEFAULT
from medvqa_rl.rewards import is_correct, is_well_formed, parsed_answer
from medvqa_rl.rewards.open_answer import normalise_answer

CORRECT, ANSWERS = "samples_correct", "samples_answers"  # the prediction row's per-sample fields
FIELDS = (CORRECT, ANSWERS)


def ks(samples: int) -> list[int]:
    """The k of pass@k / maj@k reported for n = samples: 1, 2, 4, ... below n, and n itself."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    found, k = [], 1
    while k < samples:
        found.append(k)
        k *= 2
    return found + [samples]


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of one question with c of n samples correct (Chen et al. 2021, eq. 1): the chance that
    k samples drawn without replacement from the n hold at least one correct, 1 - C(n-c, k) / C(n, k), as a
    fraction in [0, 1]. Computed as 1 - prod_{i=n-c+1}^{n} (1 - k / i) (their numerically stable form)."""
    if not 0 <= c <= n:
        raise ValueError(f"c = {c} correct of n = {n} samples")
    if not 1 <= k <= n:
        raise ValueError(f"k = {k} must be between 1 and the number of samples n = {n}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def majority_correct(answers: Sequence[str | None], correct: Sequence[bool], k: int) -> bool:
    """maj@k of one question: among its first k samples, the answer given most often (None, no answer, never
    votes) is a correct one. A tie for the most votes is wrong, as is no answer at all."""
    if not 1 <= k <= len(answers):
        raise ValueError(f"k = {k} must be between 1 and the number of samples n = {len(answers)}")
    votes = Counter(answer for answer in answers[:k] if answer is not None)
    if not votes:
        return False
    ranked = votes.most_common(2)
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        return False
    winner = ranked[0][0]
    return next(ok for answer, ok in zip(answers[:k], correct[:k], strict=True) if answer == winner)


def sample_fields(texts: Sequence[str], record: dict, reasoning: str = DEFAULT) -> dict:
    """A prediction row's per-sample fields from its n sampled completions: samples_correct (booleans),
    samples_answers (the parsed answer: a closed question's letter, an open one's normalised text; None when the
    completion is not well-formed), samples_well_formed (how many are)."""
    scored = [(text, record["options"], record["answer_label"], record["answer_text"], reasoning) for text in texts]
    answers = [parsed_answer(text, record["options"], reasoning) for text in texts]
    if is_open(record):  # one vote per answer, however it is written
        answers = [None if a is None else normalise_answer(a) for a in answers]
    return {CORRECT: [is_correct(*s) for s in scored], ANSWERS: answers,
            "samples_well_formed": sum(is_well_formed(text, reasoning) for text in texts)}


def sampled_metrics(predictions: Sequence[dict], reported: Sequence[int] | None = None) -> dict:
    """pass@1, pass@k and maj@k (percent) and sampled/format_rate over rows that carry sample_fields; {} when they
    do not. reported: the k (eval.pass_k; None: ks(n)), each at most n. Keys: pass@<k>, maj@<k>,
    sampled/format_rate, sampled/n (the samples per question); pass@1 is always there (the mean over samples)."""
    if not predictions or CORRECT not in predictions[0]:
        return {}
    n = len(predictions[0][CORRECT])
    if any(len(p[CORRECT]) != n for p in predictions):
        raise ValueError("every question must have the same number of samples")
    metrics = {"sampled/n": n}
    for k in sorted({1, *(ks(n) if reported is None else reported)}):
        metrics[f"pass@{k}"] = 100.0 * sum(pass_at_k(n, sum(p[CORRECT]), k) for p in predictions) / len(predictions)
        metrics[f"maj@{k}"] = 100.0 * sum(majority_correct(p[ANSWERS], p[CORRECT], k)
                                          for p in predictions) / len(predictions)
    metrics["sampled/format_rate"] = 100.0 * sum(p["samples_well_formed"] for p in predictions) / (n * len(predictions))
    return metrics


def sampling_problem(eval_cfg) -> tuple[str, str] | None:
    """(key, why) of the first unusable sampled-evaluation setting in eval_cfg (the config's eval), or None."""
    samples = eval_cfg.get("samples")
    if samples is None:
        return None
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        return "eval.samples", f"must be null (off) or a positive number of samples per question, got {samples!r}"
    for k in eval_cfg.get("pass_k") or []:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= samples:
            return "eval.pass_k", (f"each k must be a whole number from 1 to eval.samples = {samples} (pass@k and "
                                   f"maj@k need k of the samples), got {k!r}")
    sampling = eval_cfg.get("sampling") or {}
    temperature = sampling.get("temperature")
    if temperature is None or not temperature > 0:
        return "eval.sampling.temperature", (f"must be above 0 when eval.samples = {samples} (a temperature of 0 "
                                             f"is greedy: every sample the same; greedy is eval.generation), "
                                             f"got {temperature!r}")
    top_p = sampling.get("top_p", 1.0)
    if top_p is None or not 0 < top_p <= 1:
        return "eval.sampling.top_p", f"must be in (0, 1], got {top_p!r}"
    if eval_cfg.get("backend", "hf") != "hf":
        return "eval.samples", (f"sampled evaluation runs on eval.backend=hf only, got eval.backend="
                                f"{eval_cfg.get('backend')!r}")
    return None


def question_pass_at_k(row: dict, k: int) -> float:
    """One prediction (or outcome) row's pass@k in [0, 1]: the question-level value the analysis pairs."""
    return pass_at_k(len(row[CORRECT]), sum(row[CORRECT]), k)


def generate_samples(model, processor, records: Sequence[dict], batch_size: int, max_new_tokens: int, samples: int,
                     sampling: dict, progress: bool = False, reasoning: str = DEFAULT) -> list[list[str]]:
    """`samples` completions per record, drawn with `sampling` (eval.sampling: temperature, top_p; do_sample and
    top_k = 0 are ours, every other knob transformers' default, never the checkpoint's): [[text] * samples] per
    record. Batches hold ceil(batch_size / samples) records, so a batch stays about eval.batch_size sequences."""
    per_batch = max(1, -(-batch_size // samples))
    decoding = {"do_sample": True, "top_k": 0, "num_beams": 1, **dict(sampling), "num_return_sequences": samples}
    flat = generate_completions(model, processor, list(records), per_batch, max_new_tokens, progress,
                                reasoning=reasoning, **decoding)
    return [[text for text, _ in flat[i * samples:(i + 1) * samples]] for i in range(len(records))]
