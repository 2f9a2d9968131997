"""Real-dataset images kept encoded: validated and shrunk once, then held as bytes and decoded only where used.

At the paper's scale (PMC-VQA 10K train + 7K test, up to 512 px) decoded RGB images would hold ~13 GB;
encoded they are a fraction of that, and memory-mapped from the record cache (medvqa_rl/data/record_cache.py).
"""

from __future__ import annotations

import io

from PIL import ExifTags, Image


def processed_image_bytes(data: bytes, max_side: int | None) -> bytes:
    """The image file `data` as training sees it, encoded: RGB, shrunk (aspect kept) to at most `max_side`
    pixels per side. That is `data` itself when processing changes nothing (an RGB image within max_side,
    without an EXIF orientation), so a JPEG is not re-encoded with a loss; else a lossless PNG of the processed
    image. Either way open_image() of the result gives exactly the processed pixels, and so does datasets'
    Image() decoding (which would apply an EXIF orientation: a PNG written here carries none).

    Raises what PIL raises for a missing, truncated or non-image file (validation reports it as corrupt_image).
    """
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if (image.mode == "RGB" and (not max_side or max(image.size) <= max_side)
                and ExifTags.Base.Orientation not in image.getexif()):
            return data
        processed = image.convert("RGB")
    if max_side:
        processed.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    # zlib level 1: ~4x faster than PIL's default 6 on 512-px scans and figures, and no larger there
    # (measured: 18 vs 69 ms, 271 vs 304 KB on a noisy 512x384 image); the first load encodes thousands.
    processed.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def open_image(data: bytes) -> Image.Image:
    """A PIL image of encoded bytes, opened lazily (PIL reads the header now and decodes the pixels on first
    use), so a consumer that reads only a record's text decodes nothing."""
    return Image.open(io.BytesIO(data))
