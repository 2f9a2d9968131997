"""The closed-question answer parser (`answer_letter`) on the answer forms real models write.

Our prompt lists options as "B. text" (medvqa_rl/prompts.py), so models echo that form, wrap the letter in
parentheses or a sentence ("The answer is B"), or answer with the option's text. The parser reads a letter
only when the answer commits to exactly one option, and None when it hedges or contradicts itself.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from medvqa_rl.rewards import answer_letter
from medvqa_rl.rewards.option_letter import normalize_answer_text

# A = X-ray, B = MRI, C = CT, D = Ultrasound: the issue's examples (B is MRI, C is CT).
OPTS = ["X-ray", "MRI", "CT", "Ultrasound"]
VITAMINS = ["Vitamin A", "Vitamin C", "Vitamin K", "Vitamin D"]
TYPES = ["Type A", "Type B", "Type C", "None of the above"]
WEIGHTED = ["T1-weighted MRI", "T2-weighted MRI", "CT with contrast", "PET"]
FINDINGS = ["Normal liver", "Cirrhosis", "A mass in the liver", "Fatty liver"]
BLOOD = ["A", "B", "AB", "O"]  # option texts that are themselves letters

# (answer content, options, expected letter or None)
TABLE = [
    # --- the issue's list, verbatim ---
    ("B", OPTS, "B"),
    ("B.", OPTS, "B"),
    ("B)", OPTS, "B"),
    ("(B)", OPTS, "B"),
    ("B:", OPTS, "B"),
    ("B. MRI", OPTS, "B"),
    ("(B) MRI", OPTS, "B"),
    ("B) MRI", OPTS, "B"),
    ("B - MRI", OPTS, "B"),
    ("Answer: B", OPTS, "B"),
    ("The answer is B", OPTS, "B"),
    ("The correct answer is (B) MRI.", OPTS, "B"),
    ("Option B", OPTS, "B"),
    ("option b", OPTS, "B"),
    ("b", OPTS, "B"),
    ("**B**", OPTS, "B"),
    ("MRI", OPTS, "B"),
    ("The answer is MRI", OPTS, "B"),
    # --- more accepted forms ---
    ("B: MRI", OPTS, "B"),
    ("  B .  ", OPTS, "B"),
    ("b. mri", OPTS, "B"),
    ("(b) mri", OPTS, "B"),
    ("B MRI", OPTS, "B"),  # letter + plain space + that option's own text
    ("B (MRI)", OPTS, "B"),
    ("[B]", OPTS, "B"),
    ('"B"', OPTS, "B"),
    ("**B. MRI**", OPTS, "B"),
    ("**Answer:** B", OPTS, "B"),
    ("Answer: b.", OPTS, "B"),
    ("Answer - (B)", OPTS, "B"),
    ("The answer is: B.", OPTS, "B"),
    ("The answer is option B.", OPTS, "B"),
    ("Final answer: (B)", OPTS, "B"),
    ("Correct option: B) MRI", OPTS, "B"),
    ("B.\n\nMRI", OPTS, "B"),
    ("B: the lesion is hyperintense on T2", OPTS, "B"),  # explicit delimiter: commentary is allowed
    ("B: the lesion is hyperintense", OPTS, "B"),
    ("The answer is (B) MRI.", OPTS, "B"),
    ("B: a hyperintense lesion on T1 and T2", OPTS, "B"),  # lower-case "a" is a word; "T1" no lone letter
    ("B. I am fairly sure", OPTS, "B"),  # "I" is beyond the four options
    ("B. Vitamin C, the water-soluble one", VITAMINS, "B"),
    ("mri", OPTS, "B"),
    ("  MRI  ", OPTS, "B"),
    ("MRI.", OPTS, "B"),
    ("**mri**!", OPTS, "B"),
    ("Answer: MRI", OPTS, "B"),
    ("x-ray", OPTS, "A"),  # option text that starts with a letter and a hyphen
    ("D. Ultrasound", OPTS, "D"),
    ("B. Vitamin C", VITAMINS, "B"),
    ("D. Vitamin D", VITAMINS, "D"),  # the option's own letter inside its text is no second letter
    ("Vitamin D", VITAMINS, "D"),
    ("(D) Vitamin D.", VITAMINS, "D"),
    ("Type A", TYPES, "A"),
    ("C. Type C", TYPES, "C"),
    ("A. T1-weighted MRI", WEIGHTED, "A"),
    ("t2-weighted mri", WEIGHTED, "B"),
    ("A mass in the liver", FINDINGS, "C"),  # option C's text, not the letter A
    ("C. A mass in the liver", FINDINGS, "C"),
    ("A", BLOOD, "A"),  # a bare letter reads as a letter
    ("AB", BLOOD, "C"),  # ... and text that is no letter form as an option's text
    ("O", BLOOD, "D"),  # a letter beyond the options that is an option's text
    # --- rejected: ambiguous, out of range, contradictory, or no commitment ---
    ("A or B", OPTS, None),
    ("B, C", OPTS, None),
    ("A and C", OPTS, None),
    ("B or C", OPTS, None),
    ("(B) or (C)", OPTS, None),
    ("B/C", OPTS, None),
    ("B. or C", OPTS, None),
    ("B. MRI or C", OPTS, None),
    ("B: MRI or (C) CT", OPTS, None),
    # hedges, alternatives and self-corrections: the commentary names another option by letter or by text
    ("B, maybe C", OPTS, None),
    ("b, maybe c", OPTS, None),
    ("B: or C", OPTS, None),
    ("B (or C)", OPTS, None),
    ("B: MRI or CT", OPTS, None),
    ("B: option C", OPTS, None),
    ("B: option a", OPTS, None),
    ("B, maybe (a)", OPTS, None),
    ("B: C is also possible", OPTS, None),
    ("B. Actually C", OPTS, None),
    ("B; actually it is CT", OPTS, None),
    ("B: MRI, possibly X-ray", OPTS, None),
    ("B: not CT", OPTS, None),  # names CT, if only to rule it out
    ("The answer is B, maybe C", OPTS, None),
    ("B. Vitamin C or D", VITAMINS, None),
    ("The answer is B or C", OPTS, None),
    ("E", OPTS, None),  # 4 options: A-D
    ("e.", OPTS, None),
    ("E. MRI", OPTS, None),
    ("B. CT", OPTS, None),  # the letter says MRI, its text says CT
    ("(B) CT", OPTS, None),
    ("B) ct.", OPTS, None),
    ("The answer is B. CT", OPTS, None),
    ("B. Vitamin D", VITAMINS, None),  # B is Vitamin C; the text names option D
    ("A mass in the liver", OPTS, None),  # a capitalised word, not the letter A
    ("A mass in the liver", ["Abscess", "Cyst", "Hemangioma", "Metastasis"], None),
    ("B because the scan shows T2 hyperintensity", OPTS, None),  # plain space + text not B's own
    ("AB", OPTS, None),
    ("I think B", OPTS, None),
    ("MRI or CT", OPTS, None),
    ("same", ["same", "same", "other", "x"], None),  # text matching two options
    ("Same.", ["same", "SAME ", "other", "x"], None),
    ("", OPTS, None),
    ("   ", OPTS, None),
    ("...", OPTS, None),
    ("Answer:", OPTS, None),
]

# The issue's forms that must parse (B = MRI): letter forms, prefixes, lowercase, option text, whitespace and
# punctuation. The old parser parsed 8 of these 13.
ISSUE_FORMS = ["B", "B.", "B)", "(B)", "B:", "B. MRI", "(B) MRI", "Answer: B", "The answer is B", "Option B",
               "b", "MRI", "  mri . "]


def _wrap(content: str) -> str:
    return f"<think>x</think><answer>{content}</answer>"


@pytest.mark.parametrize(("content", "options", "expected"), TABLE)
def test_answer_table(content, options, expected):
    assert answer_letter(_wrap(content), options) == expected


def test_table_size():
    assert len(TABLE) >= 40
    assert {expected for _, _, expected in TABLE} >= {"A", "B", "C", "D", None}


def test_every_issue_form_parses():
    parsed = sum(answer_letter(_wrap(form), OPTS) == "B" for form in ISSUE_FORMS)
    assert parsed == len(ISSUE_FORMS) == 13


@pytest.mark.parametrize("text", [
    "<think>x</think><answer>B. MRI</answer><answer>B</answer>",  # repeated
    "<think>x</think><answer>B. MRI",  # unclosed
    "<think>x</think>B. MRI",  # missing
    "<think>x</think><answer> ** </answer>",  # nothing but markdown
])
def test_answer_block_strictness_unchanged(text):
    assert answer_letter(text, OPTS) is None


TAGS = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "<answer></answer>"])
TEXT = st.lists(st.one_of(st.text(max_size=12), TAGS, st.sampled_from(list("ABCDEFab.():- *"))),
                max_size=8).map("".join)
OPTION_LISTS = st.lists(st.text(max_size=15), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(text=TEXT, options=OPTION_LISTS)
def test_never_raises_and_stays_in_range(text, options):
    for completion in (text, _wrap(text)):
        letter = answer_letter(completion, options)
        assert letter is None or letter in string.ascii_uppercase[: len(options)]


# Realistic option texts, some holding a letter ("Vitamin C", "Hepatitis B", "Type A"), one holding another
# ("T2-weighted MRI" and "MRI").
OPTION_POOL = ["MRI", "CT", "X-ray", "Ultrasound", "PET", "Vitamin C", "Vitamin D", "Hepatitis B", "Type A",
               "Left lung", "Right kidney", "A mass in the liver", "Normal", "Abnormal", "T2-weighted MRI", "yes", "no",
               "Cirrhosis", "Fatty liver", "Brain"]
JOINS = [" or ", ", maybe ", ": or ", " (or ", ", ", "; actually ", " / ", " and ", ": ", ". ", " - ", " vs ",
         ", possibly ", ", not ", ". No wait, ", " is likely but so is ", "\n"]
LEAD_INS = ["", "Answer: ", "The answer is ", "The correct answer is ", "**"]


def _names(option: str, letter: str) -> list[str]:
    """Ways an answer names one option: by its letter, by its text, or both."""
    return [letter, f"({letter})", f"{letter}.", f"option {letter}", f"option {letter.lower()}", f"({letter.lower()})",
            option, option.lower(), f"{letter}. {option}", f"({letter}) {option}"]


@settings(max_examples=400, deadline=None)
@given(options=st.lists(st.sampled_from(OPTION_POOL), min_size=2, max_size=5, unique=True), data=st.data())
def test_an_answer_naming_two_options_never_scores(options, data):
    """Whatever the label, an answer that names two different options (by letter or by text, in any order,
    joined as a hedge, an alternative or a correction) commits to neither: no letter, so never correct."""
    from medvqa_rl.rewards import is_correct

    first, second = data.draw(st.lists(st.integers(0, len(options) - 1), min_size=2, max_size=2, unique=True))
    letters = string.ascii_uppercase
    one = data.draw(st.sampled_from(_names(options[first], letters[first])))
    other = data.draw(st.sampled_from(_names(options[second], letters[second])))
    answer = data.draw(st.sampled_from(LEAD_INS)) + one + data.draw(st.sampled_from(JOINS)) + other
    answer += data.draw(st.sampled_from(["", ".", ")", "?"]))
    text = _wrap(answer)
    assert answer_letter(text, options) is None, answer
    assert not any(is_correct(text, options, label, None) for label in letters[: len(options)])


@settings(max_examples=200, deadline=None)
@given(options=OPTION_LISTS, data=st.data())
def test_letter_with_its_own_text_parses(options, data):
    index = data.draw(st.integers(0, len(options) - 1))
    option, letter = options[index], string.ascii_uppercase[index]
    assume("<answer>" not in option and "</answer>" not in option)
    normalized = [normalize_answer_text(o) for o in options]
    assume(normalized.count(normalized[index]) == 1)
    for form in (f"{letter}. {option}", f"({letter}) {option}", f"{letter.lower()}) {option}"):
        assert answer_letter(_wrap(form), options) == letter, form
    prefixed = f"Answer: {letter}"
    assume(normalize_answer_text(prefixed) not in normalized)  # the whole answer is no other option's text
    assert answer_letter(_wrap(prefixed), options) == letter
