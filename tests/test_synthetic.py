"""Tests for the deterministic synthetic medical VQA generator."""
import numpy as np
import pytest

from medvqa_rl.data.synthetic import (CHOICES, QUESTION_TYPES, make_split,
                                      render_image, report_text)

KEYS = {"id", "image", "question", "options", "answer_label", "answer_text",
        "question_type", "rationale", "findings"}
TEXT_FIELDS = ("id", "question", "options", "answer_label", "answer_text",
               "question_type", "rationale", "findings")


@pytest.fixture(scope="module")
def train():
    return make_split("train", 200, seed=0)


@pytest.fixture(scope="module")
def test_split():
    return make_split("test", 200, seed=0)


def _same(a, b):
    return a["image"].tobytes() == b["image"].tobytes() and all(a[k] == b[k] for k in TEXT_FIELDS)


def test_deterministic():
    a, b = make_split("train", 30, seed=3), make_split("train", 30, seed=3)
    assert all(_same(x, y) for x, y in zip(a, b))


def test_prefix_stable_and_other_split_names(train):
    # Per-record seeding: a shorter split is a prefix of a longer one.
    assert all(_same(x, y) for x, y in zip(make_split("train", 10, seed=0), train))
    # ...and its tail, drawn alone, is the same records (the tiny build draws only what it keeps).
    tail = make_split("train", 200, seed=0, first=190)
    assert len(tail) == 10 and all(_same(x, y) for x, y in zip(tail, train[190:], strict=True))
    inst = make_split("instruct", 20, seed=0)
    assert inst[0]["id"] == "synthetic-instruct-000000"
    train_bytes = {r["image"].tobytes() for r in train}
    assert not any(r["image"].tobytes() in train_bytes for r in inst)


def test_different_seeds_differ():
    a, b = make_split("train", 20, seed=0), make_split("train", 20, seed=1)
    assert all(x["image"].tobytes() != y["image"].tobytes() for x, y in zip(a, b))
    assert [x["findings"] for x in a] != [y["findings"] for y in b]


def test_train_test_disjoint(train, test_split):
    train_bytes = {r["image"].tobytes() for r in train}
    assert len(train_bytes) == len(train)  # also unique within a split
    assert not any(r["image"].tobytes() in train_bytes for r in test_split)
    assert len({r["id"] for r in train + test_split}) == 400


def test_record_schema_and_answers(train):
    for r in train:
        assert set(r) == KEYS
        assert r["answer_label"] in "ABCD"
        assert len(r["options"]) == 4 and len(set(r["options"])) == 4
        assert r["answer_text"] == r["options"]["ABCD".index(r["answer_label"])]
        assert r["answer_text"] in r["options"]
        assert r["question_type"] in QUESTION_TYPES
        # Answerable from ground truth alone.
        assert r["answer_text"] == str(r["findings"][r["question_type"]])
        f = r["findings"]
        assert f["modality"] in CHOICES["modality"] and f["location"] in CHOICES["location"]
        assert f["size"] in CHOICES["size"] and isinstance(f["count"], int) and 1 <= f["count"] <= 4
        assert r["answer_text"] in r["rationale"]
        assert r["rationale"] == r["rationale"].lower() and len(r["rationale"].split()) <= 8


def test_all_question_types_and_phrasings_appear(train):
    assert {r["question_type"] for r in train} == set(QUESTION_TYPES)
    assert len({r["question"] for r in train}) > len(QUESTION_TYPES)


def test_option_order():
    fixed = make_split("train", 50, seed=0, option_order="fixed")
    assert all(r["options"] == list(CHOICES[r["question_type"]]) for r in fixed)
    shuffled = make_split("train", 50, seed=0, option_order="shuffled")
    for f, s in zip(fixed, shuffled):
        assert sorted(s["options"]) == sorted(CHOICES[s["question_type"]])
        assert s["image"].tobytes() == f["image"].tobytes()  # order does not change content
        assert s["answer_text"] == f["answer_text"]
    assert len({tuple(CHOICES[r["question_type"]].index(o) for o in r["options"]) for r in shuffled}) > 5
    assert {r["answer_label"] for r in shuffled} == set("ABCD")


@pytest.mark.parametrize("kwargs, bad", [({"n": 0}, "0"), ({"n": -3}, "-3"),
                                         ({"n": 5, "option_order": "random"}, "random")])
def test_bad_args_raise(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        make_split("train", seed=0, **kwargs)


def test_images(train):
    for r in train[:20]:
        assert r["image"].size == (64, 64) and r["image"].mode == "RGB"
    big = make_split("train", 2, seed=0, image_size=96)
    assert big[0]["image"].size == (96, 96)


QUADRANTS = {"left upper": (slice(0, 32), slice(0, 32)), "right upper": (slice(0, 32), slice(32, 64)),
             "left lower": (slice(32, 64), slice(0, 32)), "right lower": (slice(32, 64), slice(32, 64))}


@pytest.mark.parametrize("modality", CHOICES["modality"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lesions_stay_inside_their_quadrant(modality, seed):
    # Same rng seed, only location changes, so the renders differ only where the
    # lesions are: inside the two quadrants involved and nowhere else.
    f = {"modality": modality, "count": 4, "size": "very large"}
    imgs = {loc: np.asarray(render_image({**f, "location": loc}, np.random.default_rng(seed)))[..., 0].astype(int)
            for loc in CHOICES["location"]}
    for a in CHOICES["location"]:
        for b in CHOICES["location"]:
            if a == b:
                continue
            diff = np.abs(imgs[a] - imgs[b])
            outside = np.ones_like(diff, dtype=bool)
            outside[QUADRANTS[a]] = outside[QUADRANTS[b]] = False
            assert diff[outside].sum() == 0
            # The lesion quadrant is brighter than the same quadrant without lesions.
            assert imgs[a][QUADRANTS[a]].sum() > imgs[b][QUADRANTS[a]].sum()


def test_size_and_count_change_bright_area():
    def bright(size, count):
        f = {"modality": "ct", "location": "left upper", "count": count, "size": size}
        return (np.asarray(render_image(f, np.random.default_rng(0)))[:32, :32, 0] > 200).sum()
    areas = [bright(s, 1) for s in CHOICES["size"]]
    assert areas == sorted(areas) and len(set(areas)) == 4
    counts = [bright("medium", c) for c in (1, 2, 3, 4)]
    assert counts == sorted(counts) and len(set(counts)) == 4


def test_report_text():
    f = {"modality": "ct", "location": "left upper", "count": 2, "size": "large"}
    assert report_text(f) == "ct scan. 2 large lesions in the left upper region."
    assert report_text({**f, "count": 1}) == "ct scan. 1 large lesion in the left upper region."
