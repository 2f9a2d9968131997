"""Every command in the user docs is checked, so the docs cannot drift from the code.

The docs are README.md, docs/*.md and sweeps/README.md. Every command line in their ```bash / ```sh blocks
(`\\` continuations joined, `&&` / `;` chains split into steps, comments and leading VAR=value assignments
dropped) must be one of:

- `python -m medvqa_rl [-m] <overrides>`, also as the module of `accelerate launch` or `torchrun`: the
  overrides compose against conf/ with Hydra's compose API and the config resolves; under `-m` a comma list
  is expanded so that every value is composed once (the other lists at their first value); an accelerate
  `--config_file` exists;
- `sbatch [--option=value ...] <script> <overrides>`: the script exists and starts `-m medvqa_rl`, and the
  overrides compose as one run's;
- `python -m <module> ...` / `python <script>.py ...`: the module or script exists, `--help` exits 0, and
  the command's own arguments pass its argparse parser (in-process, stopped right after parsing, so nothing
  runs); Hydra overrides among them (`build_tiny`, `default_gain.py`) compose too;
- `pip install ...`: a local project is this one and each `.[extra]` is in pyproject.toml;
- `bash <script> ...`: the script exists; `sweeps/paper_studies.sh`'s arguments compose with every study
  it runs;
- a step listed in DELEGATED, which names the CI step or test that runs it (checked to exist).

Anything else fails, naming the file and line: a new doc command cannot go unchecked. Environment variables
set in front of a command must be read somewhere (medvqa_rl/, conf/ or the script). The file also checks
README.md's length, that the quick-start test command is the one .ci/run runs, every fence's language, and
every relative link (and #anchor) and every repository path quoted in the prose.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import io
import re
import runpy
import shlex
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

import medvqa_rl  # noqa: F401  (its OmegaConf resolvers: the paper overlay's accumulation, medvqa_rl/batching.py)

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")
CI_SCRIPT = ROOT / ".ci" / "run"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "sweeps" / "README.md"]
README_MAX_LINES = 250

COMMAND_LANGUAGES = {"bash", "sh"}
# Fences that hold no commands. An unlabelled fence is an error, so a command cannot hide in one.
OTHER_LANGUAGES = {"text", "yaml", "json", "python"}

# Doc steps that are not checked here, each with the CI step (a line of .ci/run) or the test that runs it.
DELEGATED = {
    ". .venv/bin/activate": ("ci", ". .venv-ci/bin/activate"),
    "python -m pytest -q": ("ci", "python -m pytest -q"),
}

# Paths quoted in prose (`...`) that start with one of these must exist in the repository.
REPO_DIRS = ("conf/", "medvqa_rl/", "benchmarks/", "analysis/", "tests/", "sweeps/", "docs/", "results/", ".ci/",
             "accelerate_configs/")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


# --- extraction ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One step of a doc command: argv after the VAR=value assignments, which are kept in env."""

    file: str
    line: int
    command: str  # the whole command line it came from (continuations joined)
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def text(self) -> str:
        return " ".join(self.argv)


def fences(path: Path):
    """(language, first line number, lines) of every fenced block of a Markdown file."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^\s*```(\S*)", lines[i])
        if opening:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            yield opening.group(1), start + 1, body
        i += 1


def split_words(command: str) -> list[str]:
    """Shell words of one command line; `&&`, `;`, `|`, ... as their own words; from an unquoted #, nothing."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words = []
    for word in lexer:
        if word.startswith("#"):
            break
        words.append(word)
    return words


def command_lines(lines: list[str], first_line: int) -> list[tuple[int, str]]:
    """(line number, command) with backslash continuations joined; blank and comment lines skipped."""
    commands, pending, start = [], "", None
    for number, line in enumerate(lines, first_line):
        if not pending and (not line.strip() or line.strip().startswith("#")):
            continue
        start = number if not pending else start
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        commands.append((start, pending + line))
        pending = ""
    if pending:
        commands.append((start, pending))
    return commands


def steps_of(command: str, file: str, line: int) -> list[Step]:
    steps, current = [], []
    for word in split_words(command) + ["&&"]:
        if word in ("&&", ";"):
            if current:
                env = []
                while current and ENV_ASSIGNMENT.match(current[0]):
                    name, _, value = current.pop(0).partition("=")
                    env.append((name, value))
                steps.append(Step(file, line, command, tuple(current), tuple(env)))
            current = []
        else:
            current.append(word)
    return steps


def doc_commands() -> list[tuple[str, int, str]]:
    found = []
    for path in DOCS:
        for language, first, body in fences(path):
            if language in COMMAND_LANGUAGES:
                found += [(str(path.relative_to(ROOT)), n, c) for n, c in command_lines(body, first)]
    return found


def doc_steps() -> list[Step]:
    return [step for file, line, command in doc_commands() for step in steps_of(command, file, line)]


def ci_steps() -> list[str]:
    """The steps of .ci/run, as doc steps are split."""
    steps = []
    for _, command in command_lines(CI_SCRIPT.read_text().splitlines(), 1):
        steps += [step.text for step in steps_of(command, ".ci/run", 0)]
    return steps


STEPS = doc_steps()


# --- checks per kind of command --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def compose_checked(overrides: tuple[str, ...]) -> None:
    """Compose config + overrides (hydra's own node included) and resolve everything but the hydra node."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)


def override_variants(overrides: list[str], multirun: bool, where: str) -> list[list[str]]:
    """The override lists to compose: one with every sweep at its first value, then one per other value."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    sweeps = {i: list(o.sweep_string_iterator()) for i, o in enumerate(parsed) if o.is_sweep_override()}
    if sweeps and not multirun:
        pytest.fail(f"{where}: {[overrides[i] for i in sweeps]} sweep(s) several values without -m")

    def variant(chosen: dict[int, str]) -> list[str]:
        return [f"{o.get_key_element()}={chosen[i]}" if i in sweeps else overrides[i] for i, o in enumerate(parsed)]

    variants = [variant({i: values[0] for i, values in sweeps.items()})]
    for i, values in sweeps.items():
        for value in values[1:]:
            variants.append(variant({j: (value if j == i else v[0]) for j, v in sweeps.items()}))
    return variants


def check_hydra_args(args: list[str], where: str, extra: list[str] | None = None) -> None:
    """`python -m medvqa_rl` arguments: -m / --multirun and overrides, composed (plus `extra` overrides)."""
    multirun = any(a in ("-m", "--multirun") for a in args)
    flags = [a for a in args if a.startswith("-") and a not in ("-m", "--multirun")]
    if flags:
        pytest.fail(f"{where}: Hydra flags {flags} are not checked here; add a rule to tests/test_docs.py")
    overrides = (extra or []) + [a for a in args if not a.startswith("-")]
    for variant in override_variants(overrides, multirun, where):
        try:
            compose_checked(tuple(variant))
        except Exception as error:  # noqa: BLE001 - any compose error is the doc's error
            pytest.fail(f"{where}: overrides {variant} do not compose: {type(error).__name__}: {error}")


class _Parsed(BaseException):  # not an Exception: a program's `except Exception` must not swallow it
    def __init__(self, namespace, extras):
        super().__init__("parsed")
        self.namespace, self.extras = namespace, extras


_PARSE_KNOWN_ARGS = argparse.ArgumentParser.parse_known_args


def _parse_then_stop(self, args=None, namespace=None):
    namespace, extras = _PARSE_KNOWN_ARGS(self, args, namespace)
    raise _Parsed(namespace, extras)


def run_parser_only(target: str, argv: list[str], monkeypatch, *, module: bool):
    """Run `python -m target argv` / `python target argv` in this process up to its argparse call.

    Returns ("exit", code, output) when the parser exits (--help, a usage error), ("parsed", namespace,
    unrecognised) when it parsed the arguments; fails if the program got past a parser without one.
    """
    if not module:
        source = (ROOT / target).read_text()
        if "argparse" not in source:
            pytest.fail(f"{target} has no argparse parser: --help would run it")
        monkeypatch.syspath_prepend(str((ROOT / target).parent))  # as `python path/x.py` puts its folder first
    monkeypatch.setattr(sys, "argv", [target, *argv])
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", _parse_then_stop)
    monkeypatch.chdir(ROOT)
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if module:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(str(ROOT / target), run_name="__main__")
    except SystemExit as done:
        return "exit", done.code, output.getvalue()
    except _Parsed as parsed:
        return "parsed", parsed.namespace, parsed.extras
    pytest.fail(f"{target} {' '.join(argv)} ran to the end without parsing its arguments")


def check_program(target: str, argv: list[str], where: str, monkeypatch, *, module: bool) -> None:
    """--help exits 0, and the doc's own arguments parse; Hydra overrides among them compose."""
    kind, code, output = run_parser_only(target, ["--help"], monkeypatch, module=module)
    assert kind == "exit" and code in (0, None), f"{where}: `{target} --help` exited {code}:\n{output}"
    kind, namespace, extras = run_parser_only(target, argv, monkeypatch, module=module)
    assert kind == "parsed", f"{where}: `{target} {' '.join(argv)}` is not accepted by its parser:\n{extras}"
    assert not extras, f"{where}: `{target}` does not take {extras}"
    overrides = getattr(namespace, "overrides", None)  # build_tiny, default_gain.py: Hydra overrides
    if overrides:
        check_hydra_args(list(overrides), where)


def check_python(argv: list[str], where: str, monkeypatch) -> None:
    if len(argv) >= 3 and argv[1] == "-m":
        name, args = argv[2], argv[3:]
        if name == "medvqa_rl":
            return check_hydra_args(args, where)
        if importlib.util.find_spec(name) is None:
            pytest.fail(f"{where}: no module {name}")
        return check_program(name, args, where, monkeypatch, module=True)
    if len(argv) >= 2 and argv[1].endswith(".py"):
        if not (ROOT / argv[1]).is_file():
            pytest.fail(f"{where}: no script {argv[1]}")
        return check_program(argv[1], argv[2:], where, monkeypatch, module=False)
    pytest.fail(f"{where}: a python command without -m MODULE or a script: {' '.join(argv)}")


def check_launcher(argv: list[str], where: str, monkeypatch) -> None:
    """`accelerate launch ... -m medvqa_rl ...` / `torchrun ... -m medvqa_rl ...`: the launcher's own parser."""
    if argv[0] == "accelerate":
        assert argv[1:2] == ["launch"], f"{where}: only `accelerate launch` is checked"
        from accelerate.commands.launch import launch_command_parser

        parser, launcher_args = launch_command_parser(), argv[2:]
    else:
        from torch.distributed.run import get_args_parser

        parser, launcher_args = get_args_parser(), argv[1:]
    try:
        with contextlib.redirect_stderr(io.StringIO()) as errors:
            args = parser.parse_args(launcher_args)
    except SystemExit:
        pytest.fail(f"{where}: {argv[0]} does not accept these arguments:\n{errors.getvalue()}")
    if argv[0] == "accelerate" and args.config_file is not None:
        assert (ROOT / args.config_file).is_file(), f"{where}: no accelerate config {args.config_file}"
    if args.module and args.training_script == "medvqa_rl":
        return check_hydra_args(list(args.training_script_args), where)
    pytest.fail(f"{where}: {argv[0]} runs {args.training_script}; only `-m medvqa_rl` is checked")


def pyproject_extras() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10: the table's keys, read by hand
        section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
        return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*=", section, re.MULTILINE))
    return set(tomllib.loads(text)["project"].get("optional-dependencies", {}))


def check_pip(argv: list[str], where: str) -> None:
    from packaging.requirements import Requirement

    assert argv[1:2] == ["install"], f"{where}: only `pip install` is checked"
    for arg in argv[2:]:
        if arg in ("-e", "--editable", "-q", "--quiet", "-U", "--upgrade"):
            continue
        if arg.startswith("-"):
            pytest.fail(f"{where}: pip option {arg} is not checked here; add it to tests/test_docs.py")
        if arg.startswith("."):
            path, _, extras = arg.partition("[")
            assert (ROOT / path / "pyproject.toml").is_file(), f"{where}: {path} is not this project"
            missing = {e.strip() for e in extras.rstrip("]").split(",") if e.strip()} - pyproject_extras()
            assert not missing, f"{where}: pyproject.toml has no extra(s) {sorted(missing)}"
        else:
            Requirement(arg)  # a valid requirement specifier


def default_studies(script: Path) -> list[str]:
    return re.search(r"STUDIES:-([^}]*)\}", script.read_text()).group(1).split()


def check_bash(step: Step, where: str) -> None:
    script = step.argv[1]
    assert (ROOT / script).is_file(), f"{where}: no script {script}"
    if script == "sweeps/paper_studies.sh":
        studies = dict(step.env).get("STUDIES", "").split() or default_studies(ROOT / script)
        for study in studies:
            check_hydra_args(["-m", f"sweep={study}", *step.argv[2:]], where)


def check_sbatch(argv: list[str], where: str) -> None:
    """`sbatch [--option=value ...] script overrides`: the script runs medvqa_rl; the overrides compose."""
    args = argv[1:]
    while args and args[0].startswith("-"):
        assert "=" in args[0], f"{where}: write sbatch options as --option=value, so the script is found"
        args = args[1:]
    assert args and (ROOT / args[0]).is_file(), f"{where}: no sbatch script {args[:1]}"
    assert "-m medvqa_rl" in (ROOT / args[0]).read_text(), f"{where}: {args[0]} does not run medvqa_rl"
    check_hydra_args(args[1:], where)


def check_env(step: Step, where: str) -> None:
    """Every VAR=value in front of a command is read somewhere: the package, the configs or the script."""
    if not step.env:
        return
    sources = [*ROOT.glob("medvqa_rl/**/*.py"), *ROOT.glob("conf/**/*.yaml")]
    if step.argv[:1] in (("bash",), ("sbatch",)):  # the script it runs reads them
        sources += [ROOT / arg for arg in step.argv[1:] if not arg.startswith("-") and "=" not in arg][:1]
    text = "\n".join(p.read_text() for p in sources if p.is_file())
    for name, _ in step.env:
        assert name in text, f"{where}: nothing reads the environment variable {name}"


# --- the tests -------------------------------------------------------------------------------------------

def test_the_docs_have_commands():
    assert len(STEPS) > 20 and {s.file for s in STEPS} >= {"README.md", "docs/datasets.md"}


@pytest.mark.parametrize("step", STEPS, ids=[f"{s.where}:{s.text[:60]}" for s in STEPS])
def test_doc_command(step, monkeypatch):
    where, argv = f"{step.where} `{step.command.strip()}`", list(step.argv)
    check_env(step, where)
    if step.text in DELEGATED:
        return  # test_delegated_commands_are_run_elsewhere checks who runs it
    if argv[0] in ("python", "python3"):
        check_python(argv, where, monkeypatch)
    elif argv[0] in ("accelerate", "torchrun"):
        check_launcher(argv, where, monkeypatch)
    elif argv[0] == "pip":
        check_pip(argv, where)
    elif argv[0] == "bash" and len(argv) > 1:
        check_bash(step, where)
    elif argv[0] == "sbatch":
        check_sbatch(argv, where)
    else:
        pytest.fail(f"{where}: `{step.text}` is no command kind that tests/test_docs.py checks; "
                    "check it there or list it in DELEGATED with the CI step or test that runs it")


@pytest.mark.parametrize("text", sorted(DELEGATED))
def test_delegated_commands_are_run_elsewhere(text):
    kind, target = DELEGATED[text]
    assert any(step.text == text for step in STEPS), f"DELEGATED lists `{text}`, which no doc has any more"
    if kind == "ci":
        assert target in ci_steps(), f"`{text}`: .ci/run has no step `{target}`"
    else:
        path, _, name = target.partition("::")
        assert re.search(rf"def {re.escape(name)}\(", (ROOT / path).read_text()), f"`{text}`: no test {target}"


def test_quick_start_test_command_is_what_ci_runs():
    """The README's test command, after making and activating a venv, is .ci/run's install-and-test line
    (which installs quietly: -q is the only difference)."""
    tests = [c for f, _, c in doc_commands() if f == "README.md" and "pytest" in c and "pip install" in c]
    assert len(tests) == 1, tests
    ci_line = next(line for line in CI_SCRIPT.read_text().splitlines()
                   if "pip install" in line and "python -m pytest" in line and not line.startswith("#"))
    expected = "python -m venv .venv && . .venv/bin/activate && " + ci_line.replace("pip install -q ", "pip install ")
    assert tests[0] == expected
    run = [c for f, _, c in doc_commands() if f == "README.md" and c.endswith("&& python -m medvqa_rl")]
    assert run == [expected.replace('-e ".[dev]"', "-e .").replace("python -m pytest -q", "python -m medvqa_rl")]


def test_readme_is_a_short_guide():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move details into docs/"


def test_every_fence_names_its_language():
    for path in DOCS:
        for language, line, _ in fences(path):
            assert language in COMMAND_LANGUAGES | OTHER_LANGUAGES, (
                f"{path.relative_to(ROOT)}:{line - 1}: fence language {language!r}: use bash/sh for commands "
                f"(they are checked), one of {sorted(OTHER_LANGUAGES)} otherwise")


def prose(path: Path) -> str:
    """The file without its fenced blocks."""
    return re.sub(r"^\s*```.*?^\s*```\s*$", "", path.read_text(), flags=re.DOTALL | re.MULTILINE)


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    anchors = set()
    for heading in re.findall(r"^#+\s+(.*?)\s*$", prose(path), re.MULTILINE):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


def test_relative_links_point_to_existing_files_and_headings():
    broken = []
    for path in DOCS:
        text = re.sub(r"`[^`]*`", "", prose(path))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue  # http(s), mailto
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_repository_paths_quoted_in_the_docs_exist():
    missing = []
    for path in DOCS:
        for span in re.findall(r"`([^`\s]+)`", prose(path)):
            file, _, name = span.partition("::")
            if not file.startswith(REPO_DIRS) or not re.fullmatch(r"[\w./-]+", file):
                continue
            if not (ROOT / file).exists():
                missing.append(f"{path.relative_to(ROOT)}: {span}")
            elif name and not re.search(rf"def {re.escape(name)}\(", (ROOT / file).read_text()):
                missing.append(f"{path.relative_to(ROOT)}: {span} (no such test)")
    assert not missing, missing
