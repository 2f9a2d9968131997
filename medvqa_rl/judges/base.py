"""What every judge back end shares: the item it judges, the per-run verdict cache, the failure policy."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

ON_FAILURE = ("error", "zero")


class JudgeError(RuntimeError):
    """A judge that cannot give a verdict (after its retries) or cannot start."""


@dataclass(frozen=True)
class JudgeItem:
    """One verdict request. Hashable: the cache key is the whole item (question, reference, reasoning)."""

    question: str
    reference: str  # the reference answer's text
    reasoning: str  # the model's <think> content
    findings: str = ""  # JSON ground truth of the image, where the dataset has it (synthetic); used by `rule`


class Judge:
    """Base class. Subclasses implement `_judge(items)`: one verdict (1.0 / 0.0) or the exception per item.

    Verdicts are cached per item for the judge's lifetime (one run), so repeated completions within a
    GRPO group, across steps and in the final evaluation cost one request. A failed item is not cached.
    on_failure="error" (the default) raises JudgeError; "zero" scores it 0 in the reward (__call__), leaves it
    out of the evaluation's judge score (verdicts: None) and counts it in `failures`. A back end's failure is an
    exception per item (an HTTP error after retries, a malformed reply, a reply without a verdict).
    """

    backend = "none"

    def __init__(self, on_failure: str = "error") -> None:
        if on_failure not in ON_FAILURE:
            raise JudgeError(f"judge.on_failure must be one of {ON_FAILURE}, got {on_failure!r}")
        self.on_failure = on_failure
        self.cache: dict[JudgeItem, float] = {}
        self.failures = 0  # total items scored 0 because the back end failed
        self.requests = 0  # total items sent to the back end (cache misses)

    def __call__(self, items: list[JudgeItem]) -> list[float]:
        """The verdicts, a failed one (under on_failure=zero) scored 0.0: the reward's view."""
        return [0.0 if verdict is None else verdict for verdict in self.verdicts(items)]

    def verdicts(self, items: list[JudgeItem]) -> list[float | None]:
        """The verdicts, None where the back end failed (under on_failure=zero): the evaluation's view, which
        must not count a failure as a "no"."""
        pending = [item for item in dict.fromkeys(items) if item not in self.cache]
        failed = {}
        if pending:
            self.requests += len(pending)
            for item, verdict in zip(pending, self._judge(pending), strict=True):
                if isinstance(verdict, BaseException):
                    failed[item] = verdict
                else:
                    self.cache[item] = float(verdict)
            if failed:
                self._handle_failures(failed)
        return [self.cache.get(item) for item in items]

    def describe(self) -> str:
        """The judge as an error message names it."""
        return type(self).__name__

    def _handle_failures(self, failed: dict[JudgeItem, BaseException]) -> None:
        item, error = next(iter(failed.items()))
        message = (f"{self.describe()}: {len(failed)} verdict(s) failed after retries; first for question "
                   f"{item.question[:80]!r}: {type(error).__name__}: {error}")
        if self.on_failure == "error":
            raise JudgeError(message + " (set judge.on_failure=zero to score failures 0 and go on)") from error
        self.failures += len(failed)
        log.warning("%s; scored 0 in the reward, left out of the judge score", message)

    def _judge(self, items: list[JudgeItem]) -> list[float | BaseException]:
        raise NotImplementedError


_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def stated_verdict(answer: str) -> float:
    """1.0 / 0.0 for the first "yes" / "no" the judge's free-text answer states as a word, wherever it stands
    ("Yes.", "Answer: Yes", "**no**", "The reasoning is consistent: yes"). An answer that states neither raises
    JudgeError: a failed verdict (judge.on_failure decides), never a silent "no"."""
    found = _VERDICT.search(answer)
    if found is None:
        raise JudgeError(f"no yes/no verdict in the judge's reply {answer[:200]!r}")
    return 1.0 if found.group(1).lower() == "yes" else 0.0


def render_prompt(template: str, item: JudgeItem) -> str:
    """The judge prompt from the config template; placeholders {question}, {reference}, {reasoning}."""
    return template.format(question=item.question, reference=item.reference, reasoning=item.reasoning)
