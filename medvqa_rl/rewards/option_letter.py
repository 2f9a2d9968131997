"""The option letter a closed question's answer commits to: `answer_letter` and its rules.

Kept apart from the tag parsing (completion_parsing.py): this reads the text inside one <answer> block.
"""

from __future__ import annotations

import re
import string

from medvqa_rl.rewards.completion_parsing import answer_content

# Markdown emphasis/code marks ("**B**", "`B`", "__B__"), dropped everywhere; two passes keep it idempotent.
_MARKS, _UNDERSCORES = re.compile(r"[*`]+"), re.compile(r"_{2,}")
_QUOTES = "\"'“”‘’"
# Stripped from both ends before texts are compared: "MRI." and "(MRI)" name the option "MRI".
_EDGE = string.whitespace + string.punctuation + "“”‘’–—"

# A lead-in before the answer: "Answer:", "The correct answer is", "Final answer -", "Option", "my choice is".
_PREFIX = re.compile(
    r"(?:(?:the|my)\s+)?(?:(?:final|correct|right|best)\s+)?(?:answer|option|choice)\b(?:\s+is)?\s*(?:[:=\-]\s*)?",
    re.IGNORECASE,
)
# A letter at the start: "(B)", "[B]", or a bare "B" that does not begin a word ("Brain", "B12", "AB").
_LETTER_HEAD = re.compile(r"\(\s*(?P<paren>[A-Za-z])\s*\)|\[\s*(?P<bracket>[A-Za-z])\s*\]|(?P<bare>[A-Za-z])(?![^\W_])")
_PUNCT_ONLY = re.compile(rf"[\s.,:;!?)\]\-–—{_QUOTES}]*")
# After a bare letter: "B)", "B:", "B,", "B." + space ("e.g." is no letter), "B -" + space ("A-fib" is no letter).
_DELIMITER = re.compile(r"\s*(?:[):,]|\.(?=\s)|[-–—](?=\s))\s*")
_AFTER_BRACKET = re.compile(r"\s*(?:[.:,]|[-–—](?=\s))?\s*")
# Text that is only more letters: "C", "(C)", "or C", "C, D", "and (D)."
_LETTER_ITEM = r"(?:\(\s*[A-Za-z]\s*\)|[A-Za-z](?![^\W_]))[.):]?"
_LETTER_LIST = re.compile(rf"(?:\s*(?:(?:,|;|/|&|\+|or\b|and\b)\s*)?{_LETTER_ITEM})+[\s.,;:!?]*", re.IGNORECASE)
_SINGLE_LETTER = re.compile(r"(?<![^\W_])[A-Za-z](?![^\W_])")
# A hedge inside commentary: "B. MRI or C", "B. MRI or (C) CT", "B. MRI / C."
_HEDGE = re.compile(r"(?:\bor\b|\band\b|/)\s*(?:\(\s*([A-Z])\s*\)|([A-Z])(?=[.):,]|\s*$))")
_NO_MATCH = object()  # _read found neither a letter form nor an option text: try the next reading


def _clean(text: str) -> str:
    """Markdown marks dropped, whitespace collapsed to single spaces, wrapping quotes stripped."""
    text = _UNDERSCORES.sub("", _MARKS.sub("", text))
    return " ".join(text.split()).strip(_QUOTES + " ")


def normalize_answer_text(text: str) -> str:
    """The form in which an answer's text is compared with an option's: `_clean`, case-folded, edge punctuation
    stripped ("**MRI.**" -> "mri")."""
    return _clean(text).casefold().strip(_EDGE)


def _strip_prefix(text: str) -> str:
    for _ in range(3):  # "The answer is option B" carries two lead-ins
        match = _PREFIX.match(text)
        if match is None or not match.end():
            break
        text = text[match.end():]
    return text


def _letter_head(body: str) -> tuple[str, str, bool] | None:
    """(upper-case letter, the text attached after it, whether a delimiter separates them) for an answer that
    starts with a letter form; None when it does not ("Brain", "B/C", "B-MRI")."""
    match = _LETTER_HEAD.match(body)
    if match is None:
        return None
    letter = (match["paren"] or match["bracket"] or match["bare"]).upper()
    rest = body[match.end():]
    if _PUNCT_ONLY.fullmatch(rest):
        return letter, "", True
    if match["bare"] is None:  # "(B) MRI", "(B): MRI": the bracket delimits
        return letter, rest[_AFTER_BRACKET.match(rest).end():], True
    delimiter = _DELIMITER.match(rest)
    if delimiter:
        return letter, rest[delimiter.end():], True
    if rest[:1].isspace():  # "B MRI", but also "A mass in the liver"
        return letter, rest.strip(), False
    return None


def _contradicts(letter: str, attached: str, index: int, options: list[str], normalized: list[str]) -> bool:
    """Whether the text after an explicit letter names another option or another letter ("B. CT" with C = CT;
    "B, C"; "B. MRI or C"). The letter's own option text is blanked first, so "B. Hepatitis C" with
    B = "Hepatitis C" or "D. Vitamin D" are not read as naming a second letter."""
    own = normalized[index]
    for form in {normalize_answer_text(attached), normalize_answer_text(_strip_prefix(attached))}:
        if form and form != own and form in normalized:
            return True
    if _LETTER_LIST.fullmatch(attached):
        return any(other.upper() != letter for other in _SINGLE_LETTER.findall(attached))
    own_text = _clean(options[index])
    if own_text:
        attached = re.sub(re.escape(own_text), " ", attached, flags=re.IGNORECASE)
    return any((paren or bare) != letter for paren, bare in _HEDGE.findall(attached))


def _read(body: str, options: list[str], normalized: list[str], letters: str) -> str | None | object:
    """The letter `body` commits to, None if it is ambiguous or contradicts itself, _NO_MATCH if it is neither
    a letter form nor an option's text."""
    head = _letter_head(body)
    if head is not None:  # 1. a letter alone, or with its own option's text ("B", "(B) MRI", "B MRI")
        letter, attached, delimited = head
        index, attached_form = letters.find(letter), normalize_answer_text(attached)
        if index >= 0 and attached_form in ("", normalized[index]):
            return letter
    target = normalize_answer_text(body)  # 2. an option's text ("MRI", "A mass in the liver", "X-ray")
    hits = [i for i, form in enumerate(normalized) if target and form == target]
    if hits:
        return letters[hits[0]] if len(hits) == 1 else None
    if head is None or not delimited or not attached_form:
        return _NO_MATCH
    # 3. a delimited letter with commentary ("B: hyperintense on T2"), unless it is out of range or contradicted
    if index < 0 or _contradicts(letter, attached, index, options, normalized):
        return None
    return letter


def answer_letter(text: str, options: list[str]) -> str | None:
    """Upper-case option letter ("A", "B", ...) the completion's <answer> commits to, or None.

    The <answer> block is as strict as `answer_content` (missing, unclosed, repeated or empty: None). Its text,
    with markdown marks (**, `, __) and wrapping quotes dropped and whitespace collapsed, is accepted as
      - a letter, any case, alone or delimited: "B", "b", "B.", "B)", "(B)", "[B]", "B:";
      - a letter with its option's text: "B. MRI", "(B) MRI", "B) MRI", "B: MRI", "B - MRI", "B MRI";
      - a letter with other commentary after a delimiter: "B: the lesion is hyperintense";
      - the text of exactly one option, case-insensitive, edge punctuation ignored: "MRI", " mri. ";
      - any of these after lead-ins "Answer:", "The (correct|final) answer is", "Option", "my choice is":
        "Answer: B", "The answer is B", "The correct answer is (B) MRI.", "Option b", "The answer is MRI".
    It is None when the answer
      - names two different letters: "A or B", "B, C", "A and C", "(B) or (C)", "B/C", "B. MRI or C";
      - names a letter beyond the options ("E" with four), unless that is an option's text;
      - matches the text of two options;
      - attaches to its letter the text of a different option: "B. CT" when B is MRI and C is CT;
      - is a letter, a plain space and text that is not that option's ("A mass in the liver" is the letter A
        only if it is option A's text; it is option C if C's text is exactly that), or anything else.
    A bare letter reads as a letter before an option whose text is a letter ("A" with options A, B, AB, O).
    """
    content = answer_content(text)
    if content is None:
        return None
    letters = string.ascii_uppercase[: len(options)]
    options = options[: len(letters)]
    normalized = [normalize_answer_text(option) for option in options]
    body = _clean(content)
    for reading in dict.fromkeys([body, _strip_prefix(body)]):  # as written, then without a lead-in
        if reading:
            letter = _read(reading, options, normalized, letters)
            if letter is not _NO_MATCH:
                return letter
    return None
