"""results/studies/ is what `python -m analysis` makes of results/studies/runs/: regenerated into tmp_path, every
committed table (.csv, .md; README.md is written by hand) must come out identical, but for the lines that carry the time
of generation. Images and index.html (which embeds them and the time) are not compared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "results" / "studies"
HAND_WRITTEN = {"README.md"}
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")


def _tables(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): TIMESTAMP.sub("<time>", p.read_text())
            for p in sorted(folder.rglob("*")) if p.suffix in (".csv", ".md") and p.is_file()
            and "runs" not in p.relative_to(folder).parts and p.name not in HAND_WRITTEN}


@pytest.mark.slow  # reads 66 run records with every question's outcome and recomputes every study: about a minute
def test_results_studies_regenerate_from_their_run_records(tmp_path, monkeypatch):
    from analysis.__main__ import main

    monkeypatch.chdir(ROOT)  # runs.csv names each run by the path given, as results/studies/README.md's command does
    assert main(["--runs", "results/studies/runs", "--out", str(tmp_path)]) == 0
    committed, regenerated = _tables(STUDIES), _tables(tmp_path)
    assert committed, "no committed tables under results/studies"
    missing = sorted(set(committed) - set(regenerated))
    differing = sorted(name for name in set(committed) & set(regenerated) if committed[name] != regenerated[name])
    assert not missing and not differing, f"not regenerated: {missing}; different: {differing}"
