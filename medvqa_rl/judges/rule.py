"""The embedded judge for the synthetic dataset: the findings the reasoning states, checked against the image."""

from __future__ import annotations

import json
import re

from medvqa_rl.judges.base import Judge, JudgeError, JudgeItem

# One pattern per finding; alternatives ordered so "very large" wins over "large" at the same position.
_FINDING_PATTERNS = {
    "modality": re.compile(r"\b(x-ray|ct|mri|ultrasound)\b"),
    "location": re.compile(r"\b((?:left|right) (?:upper|lower))\b"),
    "size": re.compile(r"\b(very large|large|medium|small)\b"),
    "count": re.compile(r"\b([1-4]|one|two|three|four)\b"),
}
_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4"}


def stated_findings(text: str) -> dict[str, set[str]]:
    """Every finding value a text states, per finding type (lowercase; counts as digits)."""
    text = text.lower()
    stated = {}
    for finding, pattern in _FINDING_PATTERNS.items():
        values = {_NUMBER_WORDS.get(v, v) for v in pattern.findall(text)}
        if values:
            stated[finding] = values
    return stated


class RuleJudge(Judge):
    """Verdict 1 iff the reasoning states the reference answer's finding and nothing the image contradicts.

    Every finding value the reasoning names (modality, location, lesion size, lesion count) must equal
    the image's ground truth, and the finding the reference answer names must be among them. So
    "the lesions are at left upper" is consistent for a left-upper image asked about location;
    "the scan is ct" is not (it does not address the question); "left upper, 3 lesions" with 2
    lesions is not (a contradicted finding). Needs the dataset's `findings` column (synthetic only).
    """

    backend = "rule"  # the judge=<option> that selects it

    def _judge(self, items: list[JudgeItem]) -> list[float]:
        return [self._verdict(item) for item in items]

    @staticmethod
    def _verdict(item: JudgeItem) -> float:
        if not item.findings:
            raise JudgeError("judge=rule needs the image's ground-truth findings, which only dataset=synthetic has; "
                             "use judge=hf or judge=openai")
        truth = {k: str(v).lower() for k, v in json.loads(item.findings).items()}
        stated = stated_findings(item.reasoning)
        if any(values != {truth[finding]} for finding, values in stated.items()):
            return 0.0
        asked = stated_findings(item.reference)
        return 1.0 if asked and all(finding in stated for finding in asked) else 0.0
