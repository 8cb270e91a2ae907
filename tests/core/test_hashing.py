"""Content hashing (``wowlab_core.hashing``): canonical JSON, sha256, strict parsing."""

from __future__ import annotations

import hashlib
import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wowlab_core.errors import ConfigInvalid
from wowlab_core.hashing import canonical_json, content_hash, parse_json

# JSON values as a config holds them: finite floats only, any Unicode text.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


def reorder(value: Any, rnd: random.Random) -> Any:
    """The same value with every object's keys inserted in a shuffled order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: reorder(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [reorder(v, rnd) for v in value]
    return value


def test_canonical_form_is_exact() -> None:
    value = {"b": 1, "a": [1, 2.5, {"d": None, "c": True}], "e": "x y"}
    assert canonical_json(value) == '{"a":[1,2.5,{"c":true,"d":null}],"b":1,"e":"x y"}'


def test_key_order_does_not_change_hash() -> None:
    one = {"actor": {"haste": 10, "crit": 20}, "iterations": 100}
    two = {"iterations": 100, "actor": {"crit": 20, "haste": 10}}
    assert list(one) != list(two)
    assert canonical_json(one) == canonical_json(two)
    assert content_hash(one) == content_hash(two)
    assert content_hash(one) != content_hash({**one, "iterations": 101})


def test_non_ascii_is_kept_as_utf8() -> None:
    value = {"name": "Jaïna \u2013 日本 🔥"}
    text = canonical_json(value)
    assert text == '{"name":"Jaïna \u2013 日本 🔥"}'
    assert "\\u" not in text
    assert content_hash(value) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_hash_is_sha256_hex_of_canonical_text() -> None:
    assert content_hash({}) == hashlib.sha256(b"{}").hexdigest()
    assert content_hash({"a": 1}) == (
        "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    )
    digest = content_hash([1, "two"])
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")


@settings(max_examples=75)
@given(JSON_VALUES, st.randoms(use_true_random=False))
def test_hash_ignores_key_insertion_order(value: Any, rnd: random.Random) -> None:
    assert canonical_json(reorder(value, rnd)) == canonical_json(value)
    assert content_hash(reorder(value, rnd)) == content_hash(value)


@settings(max_examples=75)
@given(JSON_VALUES)
def test_canonical_json_is_a_fixed_point(value: Any) -> None:
    text = canonical_json(value)
    again = canonical_json(json.loads(text))
    assert again == text
    assert parse_json(text) == json.loads(text)
    # No insignificant whitespace: compact dumps of the parsed value reproduce it exactly.
    assert text == json.dumps(
        json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        {"a": [1, {"b": math.nan}]},
        [0.5, math.inf],
    ],
)
def test_nan_and_infinity_are_rejected(value: Any) -> None:
    with pytest.raises(ConfigInvalid, match="not valid JSON"):
        canonical_json(value)
    with pytest.raises(ConfigInvalid):
        content_hash(value)


@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), b"bytes", {"a": {1: "x", "b": "y"}}, {(1, 2): "tuple key"}],
)
def test_values_json_cannot_express_are_rejected(value: Any) -> None:
    with pytest.raises(ConfigInvalid, match="config is not"):
        canonical_json(value)


def test_lone_surrogate_is_config_invalid_not_a_crash() -> None:
    # JSON text may escape a lone surrogate; it has no UTF-8 form, so it cannot be hashed.
    value = parse_json('{"name": "\\ud800"}')
    with pytest.raises(ConfigInvalid, match="UTF-8"):
        content_hash(value)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_parse_json_rejects_non_finite_constants(constant: str) -> None:
    with pytest.raises(ConfigInvalid, match=f"{constant} is not allowed"):
        parse_json(f'{{"a": [1, {constant}]}}')


def test_parse_json_error_is_one_line_with_position() -> None:
    text = '{\n  "a": 1,\n  "b": oops\n}'
    with pytest.raises(ConfigInvalid) as info:
        parse_json(text, what="sim config")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("sim config is not valid JSON: ")
    assert "line 3 column 8" in message


@pytest.mark.parametrize(
    "text",
    ["", "{", '{"a": 1,}', "[1 2]", "{'a': 1}", b"\xff\xfe{", "[" * 100_000 + "]" * 100_000],
    ids=[
        "empty",
        "unclosed",
        "trailing-comma",
        "missing-comma",
        "single-quotes",
        "bad-utf8",
        "nested-too-deeply",
    ],
)
def test_parse_json_malformed_input_is_config_invalid(text: str | bytes) -> None:
    with pytest.raises(ConfigInvalid) as info:
        parse_json(text)
    assert "\n" not in str(info.value)
    assert info.value.status_code == 422


def test_parse_json_accepts_bytes_and_unicode() -> None:
    assert parse_json('{"n": "日本"}'.encode()) == {"n": "日本"}
    assert parse_json(" [1, 2.5, null] ") == [1, 2.5, None]
