"""The paper's studied factors and the other config groups a run records: the one list that tracking,
analysis and the tests derive theirs from."""

STUDIED_FACTORS = ("model_init", "reward", "length_reward", "bias")  # the four GRPO factors of the ablation
# Every run records the chosen option of each as factor/<group> (metrics.json, W&B config and tags), plus
# factor/judge: the back end of the run's judge (medvqa_rl/judges/selection.py).
RECORDED_GROUPS = (*STUDIED_FACTORS, "family", "dataset", "method", "reasoning")  # reasoning: where it goes (issue 38)
# A studied value that is no group's option: GRPO's KL weight (method.beta), recorded as factor/beta, the rows of
# the kl study (sweep=kl); "none" for the methods without GRPO's KL term.
# factor/test_sets: the extra test sets a run evaluates beside its own split (test_sets=protocol, medical, ...).
RECORDED_VALUES = ("beta", "test_sets")


def kl_level(method) -> str:
    """factor/beta of a run: method.beta as a float's text ("0.0", "0.04") for GRPO, else "none"."""
    return str(float(method.beta)) if method.trainer == "grpo" else "none"


def extra_sets_level(eval_cfg) -> str:
    """factor/test_sets of a run: the names of eval.test_sets, sorted and joined by "+" ("none": its split only)."""
    return "+".join(sorted(eval_cfg.get("test_sets") or {})) or "none"
