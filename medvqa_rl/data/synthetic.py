"""Deterministic synthetic medical VQA data.

Each record is a 4-option multiple-choice question about a tiny rendered "scan"
whose ground truth (modality, lesion location/count/size) is fully known, so
every question is answerable from the image alone and rewards can be exact.

Determinism: every record gets its own generator seeded from
(seed, crc32(split), index). crc32 rather than hash() because Python's string
hash is salted per process. Per-record seeding also makes splits prefix-stable
(the first 10 records of n=200 equal the n=10 split).

Disjointness: records of different splits come from different seed streams, so
lesion jitter, slot choice and the full-frame pixel noise differ; an identical
image between train and test would need 64*64 noise draws to coincide.
tests/test_synthetic.py checks this for n=200 per split.

Shift (out-of-distribution test set, dataset=synthetic_ood): `shift="scanner"` renders
the same records (findings, questions, options, answers, layout, noise) as if
acquired by another scanner (SHIFTS): softer optics, a brighter intensity curve
and more noise. Its extra random draws come after all others,
so a shifted split holds exactly the questions of the unshifted one, and an
unshifted image is the same as before shifts existed. No stage of the tiny
models' build sees a shifted image.
"""
from __future__ import annotations

import zlib

import numpy as np
from PIL import Image

QUESTION_TYPES = ("modality", "location", "count", "size")
CHOICES = {  # canonical option order per question type
    "modality": ("x-ray", "ct", "mri", "ultrasound"),
    "location": ("left upper", "right upper", "left lower", "right lower"),
    "count": ("1", "2", "3", "4"),
    "size": ("small", "medium", "large", "very large"),
}
# The dataset options (conf/dataset/<name>.yaml, dataset.name) this generator makes.
DATASETS = ("synthetic", "synthetic_ood")
OPTION_ORDERS = ("fixed", "shuffled")
# Acquisition shifts (render_image's `shift`): another scanner's optics, transfer curve and noise, applied to the
# rendered scan in [0, 1] (geometry untouched, so every finding stays in the image and every answer the same).
# blur: Gaussian sigma in px at 64 px (softer optics); gamma: the intensity curve (< 1 lifts the mid-tones, so the
# bodies come closer to the lesions' brightness); noise: std of sensor noise added on top of the usual 0.025.
SHIFTS = {"scanner": {"blur": 0.5, "gamma": 0.7, "noise": 0.05}}
LABELS = "ABCD"

# Lesion radius in px at 64x64. Areas ~13/28/44/64 px so sizes differ clearly
# even after 8x8 patch pooling; small >= 2 px so it survives ultrasound speckle;
# capped at 4.5 so a 2x2 cluster of the largest lesions still fits in a quadrant
# *and* inside the round body outlines.
SIZE_RADIUS = {"small": 2.0, "medium": 3.0, "large": 3.75, "very large": 4.5}
LESION_INTENSITY = 1.0  # brightest value: lesions contrast with every body type

QUESTIONS = {
    "modality": (
        "What imaging modality was used for this scan?",
        "Which modality produced this image?",
        "What type of scan is this?",
    ),
    "location": (
        "Where are the lesions located?",
        "In which region are the lesions?",
        "Which quadrant contains the abnormality?",
    ),
    "count": (
        "How many lesions are visible?",
        "How many lesions does this scan show?",
        "What is the number of lesions?",
    ),
    "size": (
        "How large are the lesions?",
        "What is the size of the lesions?",
        "How big is the abnormality?",
    ),
}


def _lesion_noun(count: int) -> str:
    return "lesion" if count == 1 else "lesions"


def report_text(findings: dict) -> str:
    """Short radiology-style report covering all findings.

    e.g. "ct scan. 2 large lesions in the left upper region."
    """
    n = findings["count"]
    return (f"{findings['modality']} scan. {n} {findings['size']} {_lesion_noun(n)} "
            f"in the {findings['location']} region.")


def rationale_text(question_type: str, findings: dict) -> str:
    """One short lowercase sentence stating only the asked-about finding.

    Kept to <= 6 words so a tiny model can emit it inside a ~20-token budget, and ending with the
    answer text, so the letter that follows depends on the last words of the reasoning.
    """
    n = findings["count"]
    subject = "the lesion is" if n == 1 else "the lesions are"
    if question_type == "modality":
        return f"the scan is {findings['modality']}"
    if question_type == "location":
        return f"{subject} at {findings['location']}"
    if question_type == "count":
        return f"the lesion count is {n}"
    if question_type == "size":
        return f"{subject} {findings['size']}"
    raise ValueError(f"unknown question type {question_type!r}")


def _sample_findings(rng: np.random.Generator) -> dict:
    return {
        "modality": str(rng.choice(CHOICES["modality"])),
        "location": str(rng.choice(CHOICES["location"])),
        "count": int(rng.integers(1, 5)),
        "size": str(rng.choice(CHOICES["size"])),
    }


def is_synthetic(dataset_cfg) -> bool:
    """Whether a dataset config is this generator's (its images carry ground-truth findings, for the rule judge)."""
    return dataset_cfg.get("name") in DATASETS


# ---------------------------------------------------------------- rendering --

def _disc(yy, xx, cy, cx, r):
    """Anti-aliased disc mask in [0, 1] (1-px soft edge keeps small radii visible)."""
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    return np.clip(r + 0.5 - d, 0.0, 1.0)


def _ellipse(yy, xx, cy, cx, ry, rx):
    """Normalised radius: < 1 inside the ellipse."""
    return np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)


def _body(modality: str, yy, xx, s: float, rng: np.random.Generator) -> np.ndarray:
    """Background anatomy; each modality differs in layout and mean intensity so
    coarse 8x8 patches alone can separate them."""
    c = s / 2
    if modality == "x-ray":
        # Bright chest silhouette filling the frame, darker lung fields, rib bands.
        img = np.full(yy.shape, 0.04)
        img[_ellipse(yy, xx, c + 2 * s / 64, c, 0.47 * s, 0.46 * s) < 1] = 0.62
        lungs = (_ellipse(yy, xx, 0.44 * s, 0.31 * s, 0.30 * s, 0.14 * s) < 1) | \
                (_ellipse(yy, xx, 0.44 * s, 0.69 * s, 0.30 * s, 0.14 * s) < 1)
        img[lungs] = 0.40
        ribs = lungs & ((np.round(yy / (6 * s / 64)) % 2) == 0)
        img[ribs] += 0.08
        return img
    if modality == "ct":
        # Black field, mid-gray round cross-section, thin bright skin/bone ring.
        img = np.zeros(yy.shape)
        r = _ellipse(yy, xx, c, c, 0.48 * s, 0.48 * s)
        img[r < 1] = 0.38
        img[(r < 1) & (r > 1 - 2.2 / (0.48 * s))] = 0.92
        return img
    if modality == "mri":
        # Dark-gray (not black) field; rounded head with a soft radial gradient.
        img = np.full(yy.shape, 0.16)
        r = _ellipse(yy, xx, c, c, 0.47 * s, 0.44 * s)
        inside = r < 1
        img[inside] = 0.30 + 0.32 * (1 - r[inside] ** 2)
        return img
    if modality == "ultrasound":
        # Fan from just above the top centre; wide enough (+-57 deg) to cover
        # all lesion slots; depth attenuation + multiplicative speckle.
        ay = -6 * s / 64
        dy, dx = yy - ay, xx - c
        dist = np.sqrt(dx ** 2 + dy ** 2)
        ang = np.degrees(np.arctan2(np.abs(dx), dy))
        fan = (ang < 57) & (dist < 0.98 * s + 6 * s / 64) & (dy > 0)
        # Gamma speckle (mean 1, std 0.5), capped so it never rivals a lesion.
        speckle = np.minimum(rng.gamma(4.0, 0.25, yy.shape), 2.0)
        img = np.zeros(yy.shape)
        img[fan] = (0.36 - 0.12 * dist[fan] / s) * speckle[fan]
        return img
    raise ValueError(f"unknown modality {modality!r}")


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (kernel radius 3 sigma, edges reflected)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(img, radius, mode="reflect")
    rows = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 0, rows)


def _acquire(img: np.ndarray, shift: str, rng: np.random.Generator, k: float) -> np.ndarray:
    """The scan `img` (float, ~[0, 1]) as the scanner SHIFTS[shift] records it; draws its noise last."""
    spec = SHIFTS[shift]
    img = _gaussian_blur(np.clip(img, 0.0, 1.0), spec["blur"] * k) ** spec["gamma"]
    return img + rng.normal(0.0, spec["noise"], img.shape)


def render_image(findings: dict, rng: np.random.Generator, image_size: int = 64,
                 shift: str | None = None) -> Image.Image:
    """Render a grayscale scan (copied to RGB) for `findings`; `shift` (a key of SHIFTS) renders it as
    another scanner acquires it.

    The rng draws happen in the same order regardless of findings, so two renders
    with equally-seeded generators differ only where the findings differ; a shift's
    draws come after all of them.
    """
    s = float(image_size)
    k = s / 64  # all geometry is designed at 64 px and scaled
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float64) + 0.5
    img = _body(findings["modality"], yy, xx, s, rng)
    if findings["modality"] != "ultrasound":
        rng.gamma(4.0, 0.25, yy.shape)  # keep rng consumption modality-independent

    # Lesions: a 2x2 slot grid anchored against the image centre (2 px from the
    # quadrant borders) so clusters stay inside the body and fully inside their
    # quadrant; spacing 2r+2 px plus +-0.5 px jitter means discs never overlap.
    r = SIZE_RADIUS[findings["size"]] * k
    slots = rng.permutation(4)[: findings["count"]]
    # Whole-cluster outward jitter; smaller lesions get more room so the largest
    # clusters still end inside the round body outlines.
    outward = rng.uniform(0, 1, size=2) * (5.0 * k - r)
    jitter = rng.uniform(-0.5 * k, 0.5 * k, size=(4, 2))
    left = findings["location"].startswith("left")
    upper = findings["location"].endswith("upper")
    for i, slot in enumerate(slots):
        # step 0 = slot nearest the centre, 1 = one slot further out
        steps = np.array([slot // 2, slot % 2])
        off = 2 * k + r + outward + steps * (2 * r + 2 * k) + jitter[i]  # distance from centre line
        cy = s / 2 - off[0] if upper else s / 2 + off[0]
        cx = s / 2 - off[1] if left else s / 2 + off[1]
        m = _disc(yy, xx, cy, cx, r)
        img = img * (1 - m) + LESION_INTENSITY * m

    img = img + rng.normal(0.0, 0.025, yy.shape)  # mild sensor noise
    if shift is not None:
        img = _acquire(img, shift, rng, k)
    gray = (np.clip(img, 0.0, 1.0) * 255).round().astype(np.uint8)
    return Image.fromarray(np.stack([gray] * 3, axis=-1))  # HxWx3 uint8 -> RGB (mode= kwarg is deprecated)


# -------------------------------------------------------------------- split --

def make_split(split: str, n: int, seed: int, image_size: int = 64,
               option_order: str = "fixed", first: int = 0, shift: str | None = None) -> list[dict]:
    """Build `n` records for `split` ("train", "test", or any other name), or only its records from index
    `first` on: each index is drawn on its own, so they equal the same records of the whole split. shift:
    a key of SHIFTS (the same records, their images acquired by another scanner) or None."""
    if n <= 0:
        raise ValueError(f"dataset size must be positive, got {n}")
    if option_order not in OPTION_ORDERS:
        raise ValueError(f"option_order must be one of {OPTION_ORDERS}, got {option_order!r}")
    if shift is not None and shift not in SHIFTS:
        raise ValueError(f"shift must be one of {tuple(SHIFTS)} or null, got {shift!r}")
    split_key = zlib.crc32(split.encode())
    records = []
    for i in range(first, n):
        rng = np.random.default_rng([seed, split_key, i])
        findings = _sample_findings(rng)
        qtype = QUESTION_TYPES[int(rng.integers(len(QUESTION_TYPES)))]
        question = QUESTIONS[qtype][int(rng.integers(len(QUESTIONS[qtype])))]
        # Always draw the permutation so "fixed" and "shuffled" share images.
        perm = rng.permutation(4)
        options = list(CHOICES[qtype]) if option_order == "fixed" else [CHOICES[qtype][j] for j in perm]
        answer_text = str(findings[qtype])
        image = render_image(findings, rng, image_size, shift)
        records.append({
            "id": f"synthetic-{split}-{i:06d}",
            "image": image,
            "question": question,
            "options": options,
            "answer_label": LABELS[options.index(answer_text)],
            "answer_text": answer_text,
            "question_type": qtype,
            "rationale": rationale_text(qtype, findings),
            "findings": findings,
        })
    return records
