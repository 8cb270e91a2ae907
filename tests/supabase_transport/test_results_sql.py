"""The SQL checks a node's result as ChunkResult.from_dict does, and stores the same
normal form: whatever SQL accepts, the core's exact merge can merge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wowlab_core.errors import ResultInvalid
from wowlab_core.histogram import legacy_bucket_index
from wowlab_core.results import ChunkResult
from wowlab_transport_supabase.testing.harness import supabase_database

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection[Any]]:
    with supabase_database() as engine:
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as c:
            yield c


def sql_check(conn: psycopg.Connection[Any], result: Any) -> tuple[Any, str | None]:
    row = conn.execute(
        "select normal, problem from wowlab.check_result(%s::jsonb)", (json.dumps(result),)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def python_check(result: Any) -> dict[str, Any] | None:
    try:
        return ChunkResult.from_dict(result).to_dict()
    except ResultInvalid:
        return None


values = st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=1, max_size=30)
mutations = st.sampled_from(
    [
        None,
        ("count", 1),
        ("count", -1),
        ("total", 1),
        ("total_sq", -1),
        ("total_sq", 10**30),
        ("minimum", 1),
        ("maximum", -1),
        ("seed_offset", -(10**6)),
        ("histogram", "extra"),
        ("histogram", "drop"),
        ("metrics", "float"),
        ("metrics", "bool"),
        ("count", "float"),
        ("maximum", "huge"),
        ("histogram_format", "drop"),  # format-2 buckets read as format 1
        ("histogram_format", 3),
        ("histogram_format", 2.0),
    ]
)


def _mutate(data: dict[str, Any], mutation: Any) -> dict[str, Any]:
    if mutation is None:
        return data
    key, how = mutation
    if key == "histogram_format":
        if how == "drop":
            del data[key]
        else:
            data[key] = how
    elif key == "histogram":
        hist = dict(data["histogram"])
        if how == "extra":
            hist["999999"] = 1
        else:
            hist.pop(next(iter(hist)))
        data["histogram"] = hist
    elif key == "metrics":
        data["metrics"] = {"x": 1.5 if how == "float" else True}
    elif how == "float":
        data[key] = float(data[key])
    elif how == "huge":
        data[key] = 2**63
    else:
        data[key] = data[key] + how
    return data


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(vals=values, offset=st.integers(0, 10**9), mutation=mutations, events=st.integers(0, 10**6))
def test_sql_accepts_exactly_what_the_core_accepts(
    conn: psycopg.Connection[Any], vals: list[int], offset: int, mutation: Any, events: int
) -> None:
    base = ChunkResult.from_values(vals, seed_offset=offset, metrics={"events": events}).to_dict()
    candidate = _mutate(json.loads(json.dumps(base)), mutation)
    python = python_check(candidate)
    normal, problem = sql_check(conn, candidate)
    if python is None:
        assert normal is None and problem, f"SQL accepted what the core refuses: {mutation}"
    else:
        assert problem is None, problem
        assert normal == python  # the stored form is the core's normal form
    if normal is not None:
        assert python_check(normal) == normal  # whatever SQL stores, the core can merge


def test_format_1_results_are_converted_as_the_core_converts_them(
    conn: psycopg.Connection[Any],
) -> None:
    # Results stored (or sent by nodes) before format 2: tests/fixtures, made by that code.
    stored = json.loads((FIXTURES / "v1_chunk_results.json").read_text())
    negative = ChunkResult.from_values([-5_000_000, -4_000, 3_000], seed_offset=0).to_dict()
    del negative["histogram_format"]
    negative["histogram"] = {str(legacy_bucket_index(v)): 1 for v in (-5_000_000, -4_000, 3_000)}
    for v1 in [*stored, negative]:
        normal, problem = sql_check(conn, v1)
        assert problem is None, problem
        assert normal["histogram_format"] == 2
        assert normal == python_check(v1)
        assert normal["histogram"] != v1["histogram"]  # converted, not copied


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "x",
        {"count": 1},
        {
            "seed_offset": 0,
            "count": 1,
            "total": 5,
            "total_sq": 25,
            "minimum": 5,
            "maximum": 5,
            "histogram": {"five": 1},
        },
    ],
)
def test_malformed_results_get_a_reason(conn: psycopg.Connection[Any], bad: Any) -> None:
    normal, problem = sql_check(conn, bad)
    assert normal is None and problem
    assert python_check(bad) is None
