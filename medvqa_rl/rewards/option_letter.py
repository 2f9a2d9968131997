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
# A letter standing alone: the C of "C", "(C)", "C:", "or C", not of "CT", "C3" or "C-arm"... but of "X-ray" too,
# which is why a letter is only read where no option's text covers it (_named_options).
_LONE_LETTER = re.compile(r"(?<![^\W_])[A-Za-z](?![^\W_])")
# Lower-case "a" and "i" are words ("a lesion"); they name an option only as "(a)", "[a]" or "option a".
_WORD_LETTERS = "ai"
_LETTER_LEAD = re.compile(r"(?:option|choice|answer)\s*$", re.IGNORECASE)
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


def _named_options(text: str, options: list[str], letters: str) -> set[int]:
    """Indices of the options `text` names: by an option's text (whole words, case-insensitive) or by a lone
    letter. Where names overlap the longest wins, so "Vitamin C" names the option "Vitamin C", not the letter C,
    and "T2-weighted MRI" names that option, not "MRI"."""
    text = _clean(text)
    found = []  # (start, end, option index)
    for index, option in enumerate(options):
        form = _clean(option).strip(_EDGE)
        if form:
            pattern = rf"(?<![^\W_]){re.escape(form)}(?![^\W_])"
            found += [(m.start(), m.end(), index) for m in re.finditer(pattern, text, re.IGNORECASE)]
    for m in _LONE_LETTER.finditer(text):
        index = letters.find(m.group().upper())
        bracketed = text[m.start() - 1 : m.start()] in ("(", "[") and text[m.end() : m.end() + 1] in (")", "]")
        if index >= 0 and (m.group() not in _WORD_LETTERS or bracketed or _LETTER_LEAD.search(text[: m.start()])):
            found.append((m.start(), m.end(), index))
    named, taken = set(), []
    for start, end, index in sorted(found, key=lambda f: (f[0] - f[1], f[0])):  # longest first
        if all(end <= s or start >= e for s, e in taken):
            taken.append((start, end))
            named.add(index)
    return named


def _contradicts(attached: str, index: int, options: list[str], letters: str) -> bool:
    """Whether the text after an explicit letter names any other option, by letter or by text: a hedge
    ("B, maybe C", "B: or C", "B: MRI or CT"), an alternative ("B: C is also possible", "B: option C") or a
    self-correction ("B. Actually C"); also "B. CT" with C = CT. The letter's own text is no second name, so
    "B. Hepatitis C" with B = "Hepatitis C" and "D. Vitamin D" commit to B and D."""
    return bool(_named_options(attached, options, letters) - {index})


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
    if index < 0 or _contradicts(attached, index, options, letters):
        return None
    return letter


def answer_letter(text: str, options: list[str]) -> str | None:
    """Upper-case option letter ("A", "B", ...) the completion's single <answer> block commits to, or None:
    `letter_of` its content, the block read wherever it stands (as `answer_content`: missing, unclosed, repeated
    or empty is None). Scores read a well-formed completion's answer instead (correctness.parsed_answer)."""
    content = answer_content(text)
    return None if content is None else letter_of(content, options)


def letter_of(answer: str, options: list[str]) -> str | None:
    """Upper-case option letter ("A", "B", ...) an answer's text commits to, or None.

    The text, with markdown marks (**, `, __) and wrapping quotes dropped and whitespace collapsed, is accepted as
      - a letter, any case, alone or delimited: "B", "b", "B.", "B)", "(B)", "[B]", "B:";
      - a letter with its option's text: "B. MRI", "(B) MRI", "B) MRI", "B: MRI", "B - MRI", "B MRI";
      - a letter with other commentary after a delimiter, when that names no other option:
        "B: the lesion is hyperintense";
      - the text of exactly one option, case-insensitive, edge punctuation ignored: "MRI", " mri. ";
      - any of these after lead-ins "Answer:", "The (correct|final) answer is", "Option", "my choice is":
        "Answer: B", "The answer is B", "The correct answer is (B) MRI.", "Option b", "The answer is MRI".
    It is None when the answer
      - names another option besides its letter, by a lone letter or by the option's text: "A or B", "B, C",
        "B/C", "B, maybe C", "B: or C", "B (or C)", "B: option C", "B: C is also possible", "B: MRI or CT",
        "B. Actually C", "B. CT" when B is MRI and C is CT (a lone lower-case "a" or "i" is a word, not a
        letter, unless written "(a)" or "option a"; an upper-case "A" is always a letter, so "B: A lesion..."
        counts as naming A);
      - names a letter beyond the options ("E" with four), unless that is an option's text;
      - matches the text of two options;
      - is a letter, a plain space and text that is not that option's ("A mass in the liver" is the letter A
        only if it is option A's text; it is option C if C's text is exactly that), or anything else.
    A bare letter reads as a letter before an option whose text is a letter ("A" with options A, B, AB, O).
    """
    if not isinstance(answer, str):
        return None
    letters = string.ascii_uppercase[: len(options)]
    options = [option if isinstance(option, str) else "" for option in options[: len(letters)]]
    normalized = [normalize_answer_text(option) for option in options]
    body = _clean(answer)
    for reading in dict.fromkeys([body, _strip_prefix(body)]):  # as written, then without a lead-in
        if reading:
            letter = _read(reading, options, normalized, letters)
            if letter is not _NO_MATCH:
                return letter
    return None
