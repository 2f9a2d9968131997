"""What every judge back end shares: the item it judges, the per-run verdict cache, the failure policy."""

from __future__ import annotations

import logging
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
    on_failure="error" (the default) raises JudgeError; "zero" scores it 0 and counts it in `failures`.
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
        pending = [item for item in dict.fromkeys(items) if item not in self.cache]
        if pending:
            self.requests += len(pending)
            failed = {}
            for item, verdict in zip(pending, self._judge(pending), strict=True):
                if isinstance(verdict, BaseException):
                    failed[item] = verdict
                else:
                    self.cache[item] = float(verdict)
            if failed:
                self._handle_failures(failed)
        return [self.cache.get(item, 0.0) for item in items]

    def _handle_failures(self, failed: dict[JudgeItem, BaseException]) -> None:
        item, error = next(iter(failed.items()))
        message = (f"{type(self).__name__}: {len(failed)} verdict(s) failed after retries; first for question "
                   f"{item.question[:80]!r}: {type(error).__name__}: {error}")
        if self.on_failure == "error":
            raise JudgeError(message + " (set judge.on_failure=zero to score failures 0 and go on)") from error
        self.failures += len(failed)
        log.warning("%s; scored 0", message)

    def _judge(self, items: list[JudgeItem]) -> list[float | BaseException]:
        raise NotImplementedError


def yes_no_verdict(answer: str) -> float:
    """1.0 when a judge's free-text answer starts with "yes" (any case, leading spaces/punctuation ignored)."""
    return 1.0 if answer.strip().lstrip("\"'*([").lower().startswith("yes") else 0.0


def render_prompt(template: str, item: JudgeItem) -> str:
    """The judge prompt from the config template; placeholders {question}, {reference}, {reasoning}."""
    return template.format(question=item.question, reference=item.reference, reasoning=item.reasoning)
