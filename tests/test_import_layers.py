"""The package's floors (medvqa_rl/__init__.py): import-linter's layers contract in pyproject.toml holds, and an
import that runs up a floor breaks it with a message naming the import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]  # import-linter's console script


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(cwd)})


def test_the_package_keeps_its_floors():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_fails_and_names_the_import(tmp_path):
    shutil.copytree(ROOT / "medvqa_rl", tmp_path / "medvqa_rl", ignore=shutil.ignore_patterns("tiny_checkpoints",
                                                                                               "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    questions = tmp_path / "medvqa_rl" / "questions.py"  # the bottom floor reaching up into the run
    questions.write_text(questions.read_text() + "\nfrom medvqa_rl.run import run  # noqa: E402\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "medvqa_rl.questions -> medvqa_rl.run" in result.stdout
