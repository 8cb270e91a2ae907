"""Claim codes (``wowlab_core.claim_codes``): alphabet, generation, entry, rate limiting."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wowlab_core import claim_codes
from wowlab_core.claim_codes import (
    ALPHABET,
    CODE_LENGTH,
    DEFAULT_LIFETIME,
    RateLimiter,
    claim_code_expiry,
    format_claim_code,
    generate_claim_code,
    is_valid_claim_code,
    normalize_claim_code,
)
from wowlab_core.errors import ClaimCodeInvalid, RateLimited

CODES = st.text(alphabet=ALPHABET, min_size=CODE_LENGTH, max_size=CODE_LENGTH)


def test_alphabet_has_32_unambiguous_symbols() -> None:
    assert len(ALPHABET) == 32
    assert len(set(ALPHABET)) == 32
    assert not set(ALPHABET) & set("0O1I")
    assert all(c.isascii() and (c.isupper() or c.isdigit()) for c in ALPHABET)
    assert CODE_LENGTH == 6


def test_generated_codes_use_the_alphabet_evenly() -> None:
    codes = [generate_claim_code() for _ in range(2000)]
    assert all(len(c) == CODE_LENGTH and is_valid_claim_code(c) for c in codes)
    # 2^30 possible codes: 2000 draws collide with probability ~0.2 %; allow a few.
    assert len(set(codes)) >= 1995
    # 12,000 symbols from 32: each expected 375 times (sd ~19); the bounds are > 7 sd away
    # (secrets cannot be seeded; a false failure is below 1e-10).
    counts = Counter("".join(codes))
    assert set(counts) == set(ALPHABET)
    assert all(225 <= n <= 525 for n in counts.values()), counts


@given(CODES, st.data())
def test_entry_ignores_case_spaces_and_dashes(code: str, data: st.DataObject) -> None:
    typed = ""
    for c in code:
        typed += data.draw(st.sampled_from(["", " ", "-", "\t", " - "]))
        typed += c.lower() if data.draw(st.booleans()) else c
    typed += data.draw(st.sampled_from(["", " ", "-"]))
    assert normalize_claim_code(typed) == code


@given(CODES)
def test_display_form_round_trips(code: str) -> None:
    shown = format_claim_code(code)
    assert shown == f"{code[:3]}-{code[3:]}"
    assert normalize_claim_code(shown) == code
    assert normalize_claim_code(shown.lower()) == code


@pytest.mark.parametrize(
    "entered",
    [
        "",
        "   ",
        "ABC23",  # too short
        "ABC2345",  # too long
        "ABC-23O",  # letter O
        "ABC-230",  # digit 0
        "abc-21x",  # digit 1
        "ABI-234",  # letter I
        "ABC_234",  # underscore is not a separator
        "ABC.234",
        "\uff21\uff22\uff23\uff12\uff13\uff14",  # full-width look-alikes
        "abcdß",  # "ß".upper() == "SS" must not make a 6-letter code
        "\u017f" * 6,  # long s upper-cases to "S"
    ],
)
def test_invalid_entry_is_rejected_with_field(entered: str) -> None:
    with pytest.raises(ClaimCodeInvalid) as info:
        normalize_claim_code(entered)
    assert info.value.field == "code"
    assert "\n" not in str(info.value)
    assert "no 0, O, 1 or I" in str(info.value)


@given(st.text(max_size=12))
def test_normalize_accepts_only_what_is_valid(entered: str) -> None:
    try:
        code = normalize_claim_code(entered)
    except ClaimCodeInvalid:
        stripped = entered.replace(" ", "").replace("-", "").replace("\t", "")
        assert not is_valid_claim_code(stripped.upper()) or not stripped.isascii()
    else:
        assert is_valid_claim_code(code)
        assert entered.isascii()
        assert code == entered.replace(" ", "").replace("-", "").replace("\t", "").upper()


def test_is_valid_only_for_the_stored_form() -> None:
    assert is_valid_claim_code("ABC234")
    assert not is_valid_claim_code("abc234")
    assert not is_valid_claim_code("ABC-234")
    assert not is_valid_claim_code("ABC23O")


def test_expiry_defaults_to_fifteen_minutes() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert timedelta(minutes=15) == DEFAULT_LIFETIME
    assert claim_code_expiry(now) == datetime(2024, 5, 1, 12, 15, tzinfo=UTC)
    assert claim_code_expiry(now, timedelta(seconds=30)) == now + timedelta(seconds=30)
    before = datetime.now(UTC)
    expiry = claim_code_expiry()
    assert expiry.tzinfo is not None
    assert before + DEFAULT_LIFETIME <= expiry <= datetime.now(UTC) + DEFAULT_LIFETIME


# --------------------------------------------------------------------------- rate limiting


def test_rate_limiter_blocks_then_allows_after_the_window() -> None:
    limiter = RateLimiter(limit=3, window_seconds=0.2)
    for _ in range(3):
        limiter.hit("alice")
    with pytest.raises(RateLimited) as info:
        limiter.hit("alice", what="claim attempts")
    assert "too many claim attempts" in str(info.value)
    assert info.value.status_code == 429
    limiter.hit("bob")  # keys are independent
    time.sleep(0.25)
    for _ in range(3):
        limiter.hit("alice")
    with pytest.raises(RateLimited):
        limiter.hit("alice")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(claim_codes.time, "monotonic", fake)
    return fake


def test_rate_limiter_window_slides(clock: FakeClock) -> None:
    limiter = RateLimiter(limit=3, window_seconds=10)
    for t in (0, 2, 4):
        clock.now = 1000.0 + t
        limiter.hit("k")
    clock.now = 1009.0
    with pytest.raises(RateLimited, match="try again in 2 s"):
        limiter.hit("k")
    clock.now = 1010.0  # the attempt at t=0 has left the window
    limiter.hit("k")
    clock.now = 1011.0
    with pytest.raises(RateLimited):  # t=2, 4, 10 still inside
        limiter.hit("k")
    clock.now = 1012.0
    limiter.hit("k")


def test_refused_attempts_do_not_extend_the_lockout(clock: FakeClock) -> None:
    limiter = RateLimiter(limit=2, window_seconds=10)
    limiter.hit("k")
    limiter.hit("k")
    for t in range(1, 10):
        clock.now = 1000.0 + t
        with pytest.raises(RateLimited):
            limiter.hit("k")
    clock.now = 1010.0
    limiter.hit("k")


def test_rate_limiter_is_thread_safe() -> None:
    limiter = RateLimiter(limit=50, window_seconds=60)
    allowed: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        ok = 0
        for _ in range(40):
            try:
                limiter.hit("shared")
                ok += 1
            except RateLimited:
                pass
        with lock:
            allowed.append(ok)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 50
