"""Fuzz the loaders, `data prepare` and the commands' option values (hypothesis).

The property of every run: exit 0, or exit 1 with exactly one `error:` line on stderr and no
traceback (or exit 2, the option parser's usage error for a flag of the wrong type); and a
prepared or model folder given as --out is byte-identical after a failure. The example count
is bounded for `make test`; TUIJIAN_FUZZ_EXAMPLES=2000 runs the long mode.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.conftest import ok, run

EXAMPLES = int(os.environ.get("TUIJIAN_FUZZ_EXAMPLES", "12"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize="TUIJIAN_FUZZ_EXAMPLES" not in os.environ,
)

HEADER = "user_id,item_id,rating,timestamp"
ROWS = [f"u{u},i{(u + j) % 7},{1 + (u + j) % 5},{1_600_000_000 + 60 * j}" for u in range(8)
        for j in range(4)]  # fmt: skip
CELLS = st.one_of(
    st.sampled_from(["", "nan", "NULL", "inf", "-1", "0", "1e309", "x" * 2000, '"', "a,b"]),
    st.text(max_size=8),
    st.integers(-(2**70), 2**70).map(str),
)
OPTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["has_header", "names", "encoding", "separator", "timestamp_unit", "rating",
             "timestamp", "user_id", "weight", "event", "columns", "bogus"]
        ),
        st.one_of(
            st.sampled_from(["true", "maybe", "1", "a,b", "latin-1", "klingon", ";", "\\t", "ms",
                             "raw", "auto", "{}", "[1]", ""]),
            st.text(max_size=6),
        ),
    ),
    max_size=2,
)  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def one_line_or_success(result, before: dict[str, bytes] | None = None, out: Path | None = None):
    """The fuzz property (see the module docstring)."""
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 2:  # a usage error of the option parser (typed flag, e.g. -k 1,1)
        assert "Usage:" in result.output, result.output
        return
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
    if result.exit_code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert isinstance(result.exception, SystemExit), result.exception
        if before is not None and out is not None:
            assert snapshot(out) == before


def _mutate(draw) -> bytes:
    rows = [r.split(",") for r in ROWS]
    for _ in range(draw(st.integers(0, 4))):
        row = draw(st.integers(0, len(rows) - 1))
        col = draw(st.integers(0, 5))
        cell = draw(CELLS)
        if col < len(rows[row]):
            rows[row][col] = cell
        else:
            rows[row].append(cell)
    text = "\n".join([HEADER, *(",".join(r) for r in rows)]) + "\n"
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=6)) + data[at:]
    if draw(st.integers(0, 9)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def csv_files(draw) -> bytes:
    return _mutate(draw)


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared folder that every failing `prepare --out` must leave as it was."""
    folder = tmp_path_factory.mktemp("fuzz") / "prepared"
    src = folder.parent / "good.csv"
    src.write_text("\n".join([HEADER, *ROWS]) + "\n")
    ok("data", "prepare", "csv", src, "--out", folder, "--ratios", "0.8,0.2")
    return folder


@FUZZ
@given(data=csv_files(), opts=OPTIONS, fmt=st.sampled_from(["csv", "csv", "parquet"]))
def test_prepare_mutated_files(previous: Path, tmp_path: Path, data: bytes, opts, fmt) -> None:
    path = previous.parent / f"fuzz.{fmt}"
    if fmt == "parquet":
        try:
            pl.read_csv(data, infer_schema=False).write_parquet(path)
        except Exception:
            path.write_bytes(data)  # not a table: the loader must say so
    else:
        path.write_bytes(data)
    args = [a for key, value in opts for a in ("--option", f"{key}={value}")]
    before = snapshot(previous)
    result = run("data", "prepare", fmt, path, "--out", previous, "--ratios", "0.8,0.2", *args)
    one_line_or_success(result, before if result.exit_code else None, previous)


@pytest.fixture(scope="module")
def model(previous: Path) -> Path:
    folder = previous.parent / "pop"
    ok("train", "pop", "--data", previous, "--out", folder)
    return folder


NUMBERS = st.one_of(
    st.integers(-5, 10**25).map(str),
    st.sampled_from(["0", "1,1", "10,abc", "", "1e3", "-0", "NaN"]),
    st.text(max_size=5),
)


@FUZZ
@given(k=NUMBERS, user=st.one_of(st.sampled_from(["u1", "u7", "zz"]), st.text(max_size=4)))
def test_recommend_and_evaluate_values(model: Path, previous: Path, k: str, user: str) -> None:
    one_line_or_success(run("recommend", model, "--user", user, "-k", k, "--json"))
    one_line_or_success(run("evaluate", model, "--data", previous, "--k", k))


@FUZZ
@given(
    name=st.sampled_from(["pop", "itemknn", "ease", "bpr", "nothere"]),
    sets=st.lists(
        st.tuples(
            st.sampled_from(["epochs", "l2", "k", "lr", "seed", "valid_metric", "x"]),
            st.one_of(NUMBERS, st.sampled_from(["ndcg@10", "bogus@10", "1e-3"])),
        ),
        max_size=2,
    ),
)
def test_train_set_values(model: Path, previous: Path, name: str, sets) -> None:
    if name == "bpr":
        sets = [*sets, ("epochs", "1")]
    args = [a for key, value in sets for a in ("--set", f"{key}={value}")]
    before = snapshot(model)
    result = run("train", name, "--data", previous, "--out", model, *args)
    one_line_or_success(result, before if result.exit_code else None, model)
