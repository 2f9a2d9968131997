"""The paper's studied factors and the other config groups a run records: the one list that tracking,
analysis and the tests derive theirs from."""

STUDIED_FACTORS = ("model_init", "reward", "length_reward", "bias")  # the four GRPO factors of the ablation
# Every run records the chosen option of each as factor/<group> (metrics.json, W&B config and tags), plus
# factor/judge: the back end of the run's judge (medvqa_rl/judges/selection.py).
RECORDED_GROUPS = (*STUDIED_FACTORS, "family", "dataset", "method")
