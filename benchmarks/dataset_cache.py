"""The processed-record cache and encoded images on a PMC-VQA-layout directory of 512x512 JPEGs.

Writes --rows rows (80% train.csv, 20% test.csv) with one JPEG each under a temp dir, then, each in a fresh
Python process so memory is measured from a clean start:
- first load: read, validate, process and store the splits in an empty cache (what every run did before,
  plus the write);
- cached load: the same config again, memory-mapped from the cache;
- decoded: the cached load, then every image decoded and kept, as the records used to hold them.
Prints wall time of each load (and cached / first), the resident memory each process added over its
imports (RSS, and how much of it is file-backed: pages of the memory-mapped cache that were read), and the
bytes the splits hold: encoded image bytes vs decoded RGB pixels. Also the time of one pass over the
records reading their text (images opened lazily, not decoded), and of the source-file fingerprint.
Usage: python benchmarks/dataset_cache.py [--rows 2000] [--side 512] [--large-every 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def write_layout(root: Path, rows: int, side: int, large_every: int) -> None:
    """train.csv / test.csv and images/ of noisy tinted gradients (JPEG quality 90), side x side; every
    large_every-th one 2*side x 1.5*side, which validation shrinks and stores as PNG (noise: PNG's worst case)."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(rows):
        height, width = (side * 3 // 2, side * 2) if large_every and i % large_every == 0 else (side, side)
        ramp = np.add.outer(np.linspace(0, 160, height), np.linspace(0, 80, width))
        pixels = (ramp + rng.normal(0, 18, (height, width)))[..., None] + rng.integers(0, 30, 3)
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / "images" / f"PMC{i:05d}.jpg", quality=90)
        records.append({"Figure_path": f"PMC{i:05d}.jpg", "Question": f"What is shown in case {i}?",
                        "Answer": "CT", "Choice A": "A:CT", "Choice B": "B:MRI", "Choice C": "C:X-ray",
                        "Choice D": "D:Ultrasound", "Answer_label": "A"})
    cut = rows * 4 // 5
    pd.DataFrame(records[:cut]).to_csv(root / "train.csv", index=False)
    pd.DataFrame(records[cut:]).to_csv(root / "test.csv", index=False)


def measure(mode: str, root: str, cache: str, rows: int) -> dict:
    """One load in this process: seconds, RSS added, bytes held (encoded / decoded)."""
    from collections import Counter

    import psutil
    from hydra import compose, initialize_config_dir

    from medvqa_rl.data.record_cache import source_fingerprint
    from medvqa_rl.data.splits import load_splits

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["dataset=pmc_vqa", f"dataset.path={root}", f"dataset.train_size={rows}",
                                           f"dataset.test_size={rows}", f"cache_dir={cache}"])
    process = psutil.Process()
    before = process.memory_info()
    start = time.perf_counter()
    splits = load_splits(cfg.dataset, Counter(), cfg.cache_dir)
    result = {"seconds": time.perf_counter() - start}
    start = time.perf_counter()
    result["files"] = len(source_fingerprint(Path(root)))
    result["fingerprint_seconds"] = time.perf_counter() - start
    if mode == "cached":
        start = time.perf_counter()
        questions = [r["question"] for split in splits for r in split]
        result["text_pass_seconds"] = time.perf_counter() - start
        assert len(questions) == rows
    if mode == "decoded":  # the records as they were: every image decoded and held
        start = time.perf_counter()
        held = [[r | {"image": r["image"].convert("RGB")} for r in split] for split in splits]
        result["decode_seconds"] = time.perf_counter() - start
        result["decoded_bytes"] = sum(r["image"].width * r["image"].height * 3 for split in held for r in split)
    after = process.memory_info()  # before the byte count below touches every page
    # RSS counts the pages of the memory-mapped cache that were read (file-backed, shared, reclaimable)
    # apart from the process's own (anonymous) memory.
    result["rss_added"] = after.rss - before.rss
    result["file_backed_added"] = after.shared - before.shared
    result["encoded_bytes"] = sum(len(cell["bytes"]) for s in splits for cell in s.dataset.data.column("image").to_pylist())
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--large-every", type=int, default=4, help="every n-th image larger than --side; 0: none")
    parser.add_argument("--measure", nargs=3, metavar=("MODE", "ROOT", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args.rows)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "pmc", Path(tmp) / "cache"
        start = time.perf_counter()
        write_layout(root, args.rows, args.side, args.large_every)
        source = sum(p.stat().st_size for p in (root / "images").iterdir())
        print(f"wrote {args.rows} rows, {args.side}x{args.side} JPEGs (every {args.large_every}th larger) "
              f"({source / 2**20:.1f} MiB) "
              f"in {time.perf_counter() - start:.1f} s")
        runs = {}
        for mode in ("first", "cached", "decoded"):
            out = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--measure", mode, str(root),
                                  str(cache)], capture_output=True, text=True, check=True)
            runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        first, cached, decoded = runs["first"], runs["cached"], runs["decoded"]
        entry = sum(p.stat().st_size for p in (cache / "datasets").rglob("*") if p.is_file())
        mib = lambda n: f"{n / 2**20:7.1f} MiB"
        rss = lambda run: f"RSS added {mib(run['rss_added'])} (file-backed {mib(run['file_backed_added'])})"
        print(f"first load (validate + process + store): {first['seconds']:6.2f} s   {rss(first)}")
        print(f"cached load (memory-mapped):             {cached['seconds']:6.2f} s   {rss(cached)}"
              f"   -> {first['seconds'] / cached['seconds']:.0f}x faster")
        print(f"  (after one pass over all records reading their text: {cached['text_pass_seconds']:.2f} s; "
              f"images opened, not decoded)")
        print(f"cached load + every image decoded, held: {decoded['decode_seconds']:6.2f} s   {rss(decoded)}")
        print(f"bytes held: encoded images {mib(cached['encoded_bytes'])} (cache entry on disk {mib(entry)}), "
              f"decoded RGB {mib(decoded['decoded_bytes'])} ({decoded['decoded_bytes'] / cached['encoded_bytes']:.1f}x)")
        print(f"source fingerprint (stat of {cached['files']} files, part of every load): "
              f"{1000 * cached['fingerprint_seconds']:.0f} ms")

if __name__ == "__main__":
    main()
