"""The docs match the software: README.md and docs/usage.md fail these tests when they drift."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuijian.cli.app import app
from tuijian.cli.config import SECTIONS, load_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
USAGE = ROOT / "docs" / "usage.md"
RUN_TOML = ROOT / "examples" / "run.toml"
RUNNER = CliRunner()
GLOBAL_WITH_VALUE = {"--config", "--threads"}
GLOBAL_FLAGS = {"--debug", "--version"}


def _code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)


def _tuijian_commands(text: str) -> list[list[str]]:
    """Each `tuijian ...` line of the bash blocks (continuations joined, comments dropped)."""
    found = []
    for block in _code_blocks(text, "bash"):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("tuijian "):
                found.append(shlex.split(line, comments=True))
    return found


def _command_words(argv: list[str]) -> list[str]:
    """`tuijian --config x.toml data synth --out d` -> ["data", "synth"]."""
    args = argv[1:]
    while args and args[0].startswith("-"):
        args = args[2:] if args[0] in GLOBAL_WITH_VALUE else args[1:]
    if not args:
        return []
    return args[:2] if args[0] == "data" else args[:1]


def _doc_commands() -> set[tuple[str, ...]]:
    commands = set()
    for doc in (README, USAGE):
        for argv in _tuijian_commands(doc.read_text(encoding="utf-8")):
            words = _command_words(argv)
            assert words, f"{doc.name}: no command in {' '.join(argv)}"
            commands.add(tuple(words))
    return commands


def test_the_readme_cli_block_names_every_command() -> None:
    names = {words[0] for words in _doc_commands()}
    assert {"quickstart", "data", "train", "evaluate", "compare", "recommend", "models"} <= names


@pytest.mark.parametrize("words", sorted(_doc_commands()))
def test_every_command_in_the_docs_exists(words: tuple[str, ...]) -> None:
    result = RUNNER.invoke(app, [*words, "--help"])
    assert result.exit_code == 0, f"tuijian {' '.join(words)} --help: {result.output}"


def test_config_files_named_in_the_docs_exist() -> None:
    for doc in (README, USAGE):
        for argv in _tuijian_commands(doc.read_text(encoding="utf-8")):
            if "--config" in argv:
                name = argv[argv.index("--config") + 1]
                if name != "prepare.toml":  # the sketch for the reader's own log
                    assert (ROOT / name).is_file(), f"{doc.name}: {name} does not exist"


def test_example_run_toml_is_shown_verbatim_and_loads(tmp_path: Path) -> None:
    text = RUN_TOML.read_text(encoding="utf-8")
    assert text in _code_blocks(USAGE.read_text(encoding="utf-8"), "toml")
    assert "examples/run.toml" in README.read_text(encoding="utf-8")
    config = load_config(RUN_TOML)
    assert set(config.tables) <= set(SECTIONS)
    assert {"data.synth", "train", "evaluate", "compare", "recommend"} <= set(config.tables)
    assert config.values("train")["data"] == RUN_TOML.parent / "../runs/shop"
    for doc in (README, USAGE):
        for block in _code_blocks(doc.read_text(encoding="utf-8"), "toml"):
            if block != text:  # the other examples parse through the same loader
                sketch = tmp_path / "sketch.toml"
                sketch.write_text(block, encoding="utf-8")
                assert load_config(sketch).tables


def test_example_run_toml_trains_on_a_tiny_shop(tmp_path: Path) -> None:
    config = tmp_path / "examples" / "run.toml"
    config.parent.mkdir()
    shutil.copy(RUN_TOML, config)
    result = RUNNER.invoke(app, ["--config", str(config), "data", "synth", "--scale", "tiny"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "shop" / "split.json").is_file()
    result = RUNNER.invoke(app, ["--config", str(config), "train", "ease"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "shop-ease" / "fit.json").is_file()
    result = RUNNER.invoke(
        app,
        [
            "--config",
            str(config),
            "recommend",
            str(tmp_path / "runs" / "shop-ease"),
            "--user",
            "u001",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "top 5 for user u001" in result.output


def _environment_variables() -> set[str]:
    """The variables the code reads: os.environ.get("X"), "X" in os.environ, *_ENV = "X"."""
    patterns = (
        r"environ\.get\(\s*\"([A-Z][A-Z0-9_]*)\"",
        r"getenv\(\s*\"([A-Z][A-Z0-9_]*)\"",
        r"\"([A-Z][A-Z0-9_]*)\"\s+(?:not\s+)?in\s+os\.environ",
        r"^[A-Z_]*ENV\s*=\s*\"([A-Z][A-Z0-9_]*)\"",
    )
    found = set()
    for folder in ("src", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue  # this file's patterns
            text = path.read_text(encoding="utf-8")
            for pattern in patterns:
                found.update(re.findall(pattern, text, flags=re.MULTILINE))
    return found


def test_every_environment_variable_is_documented() -> None:
    names = _environment_variables()
    assert {"TUIJIAN_THREADS", "TUIJIAN_SHARED_DATA", "TUIJIAN_FUZZ_EXAMPLES"} <= names
    section = USAGE.read_text(encoding="utf-8").split("## Environment", 1)[1].split("\n## ", 1)[0]
    missing = sorted(name for name in names if f"`{name}`" not in section)
    assert not missing, f"not in docs/usage.md's Environment section: {missing}"


def test_no_machine_paths_in_the_docs() -> None:
    """Paths are relative to the repository or ../shared; /tmp only as a documented default
    of the benchmarks (TUIJIAN_BENCH_DIR, RECBOLE_VENV) and in benchmark commands."""
    for doc in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
            where = f"{doc.name}:{number}: {line}"
            assert not re.search(r"(?<![\w.])/(work|root|home|Users)/", line), where
            benchmark_default = "TUIJIAN_BENCH_DIR" in line or "RECBOLE_VENV" in line
            if doc.name != "benchmarks.md" and not benchmark_default:
                assert not re.search(r"(?<![\w.])/tmp/", line), where


def test_the_quickstart_counts_in_the_docs_are_the_codes() -> None:
    from tuijian.cli.data_commands import synthetic_split

    raw, split, report = synthetic_split("small", seed=0)
    pairs = report.to_rows()[-1]["rows_after"]
    readme = " ".join(README.read_text(encoding="utf-8").split())
    usage = " ".join(USAGE.read_text(encoding="utf-8").split())
    assert (
        f"{raw.n_users:,} users, {split.train.n_items:,} items, {pairs:,} user-item pairs" in readme
    )
    assert f"{split.train.interactions.height:,} train" in readme
    assert f"{raw.interactions.height:,} view / cart / buy events" in usage
    assert f"{pairs:,} user-item pairs" in usage
    assert "about 30 s" not in readme and "about 30 seconds" not in usage
