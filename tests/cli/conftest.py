"""Fixtures of the command-line tests: a runner, a tiny CSV and prepared synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tuijian.cli import app

RUNNER = CliRunner()


def run(*args: str | Path) -> Result:
    """Invoke `tuijian ARGS...` in-process."""
    return RUNNER.invoke(app, [str(a) for a in args])


def ok(*args: str | Path) -> Result:
    """Invoke and require success (the output is shown when it fails)."""
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def fails(result: Result, *words: str) -> str:
    """Require exit code 1 and one `error:` line on stderr naming every word; return it."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    """6 users x 5 items (ts = 10 * position + user), named like MovieLens: userId, movieId, ..."""
    lines = ["userId,movieId,rating,ts"]
    for u in range(6):
        for j in range(5):
            item = (u + j) % 6
            lines.append(f"u{u},m{item},{1 + (u + j) % 5},{10 * j + u}")
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic shop, prepared and split 8:1:1 (300 users, 150 items)."""
    out = tmp_path_factory.mktemp("synth") / "data"
    ok("data", "synth", "--out", out, "--scale", "tiny", "--seed", "0")
    return out
