"""Profile sets and stat weights as runs of compare jobs (see :mod:`wowlab_core.compare`).

Both run on whatever runs a job (``run_stage``): the embedded pool for ``wowlab sim``, the
portal's pool for a submitted compare. ``run_stage(document, iterations)`` runs one
ordinary job of a compare document, all stages with one seed, and returns its report (whose
``compare_sums`` are the exact per-variant sums).

* Stat weights: one job of the base and one ``+delta`` variant per stat.
* Profile sets: staged like Raidbots' Top Gear. Stage 1 runs every variant at low precision
  (100 iterations); each later stage runs only the contenders (within ``CULL_ERRORS`` paired
  95 % errors of the best) until the worst of them reaches the next stage error (1 %, 0.2 %,
  then the target); its ``iteration_offset`` continues where the last stage ended, so every
  variant's sums cover iterations ``0 .. n`` and add up exactly across stages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wowlab_core.compare import (
    BASE,
    FIRST_STAGE_ITERATIONS,
    MAX_VARIANTS,
    CompareSums,
    check_name,
    compare_document,
    next_stage,
    ranking,
    scale_factor_variants,
    scale_factors,
)
from wowlab_core.errors import ConfigInvalid, InvalidRequest
from wowlab_core.hashing import parse_json

RunStage = Callable[[dict[str, Any], int], dict[str, Any]]
#: Stat added by each scale-factor variant (rating for secondary stats, points of primary).
DEFAULT_DELTA = 1000.0
#: A sweep file may produce at most this many variants.
MAX_SWEEP = MAX_VARIANTS


def _sums(report: Mapping[str, Any]) -> CompareSums:
    sums = report.get("compare_sums")
    if not isinstance(sums, Mapping):
        raise InvalidRequest("the engine did not return compare sums", field="engine")
    return CompareSums.from_metrics(sums)


def run_scale_factors(
    base: Any, stats: Sequence[str], delta: float, iterations: int, run_stage: RunStage
) -> dict[str, Any]:
    """Base and ``+delta`` per stat in one job; the report with a ``scale_factors`` section."""
    if not delta > 0:
        raise InvalidRequest("--delta must be positive", field="delta")
    document = compare_document(base, scale_factor_variants(stats, delta))
    report = run_stage(document, iterations)
    rows = scale_factors(_sums(report), list(stats), delta)
    return {**report, "scale_factors": {"delta": delta, "stats": rows}}


def run_profile_set(
    base: Any,
    variants: Sequence[Mapping[str, Any]],
    run_stage: RunStage,
    *,
    target_error: float,
    max_iterations: int,
    first_iterations: int = FIRST_STAGE_ITERATIONS,
) -> dict[str, Any]:
    """Rank ``variants`` (``{"name", "patch"}``) of ``base`` with staged culling.

    Returns the report of the first stage (the base in detail) with a ``profilesets``
    section: the ranking, each stage, the winner and the iterations spent.
    """
    if not 0.001 <= target_error <= 50:
        raise InvalidRequest("target_error must be between 0.001 and 50", field="target_error")
    by_name = {check_name(v.get("name")): dict(v) for v in variants}
    compare_document(base, list(by_name.values()))  # names and count checked before any run
    active: list[str] = [BASE, *by_name]
    sums = CompareSums()
    done, number = 0, 0
    culled_at: dict[str, int] = {}
    stages: list[dict[str, Any]] = []
    first_report: dict[str, Any] | None = None
    while True:
        stage = next_stage(
            sums,
            active,
            target_error=target_error,
            done=done,
            number=number + 1,
            max_iterations=max_iterations,
            first_iterations=first_iterations,
        )
        if stage is None:
            break
        for v in active:
            if v not in stage.variants:
                culled_at[v] = number
        active = list(stage.variants)
        document = compare_document(
            base,
            [by_name[v] for v in active if v != BASE],
            iteration_offset=stage.iteration_offset,
        )
        report = run_stage(document, stage.iterations)
        first_report = first_report or report
        sums = sums.merge(_sums(report))
        done += stage.iterations
        number = stage.number
        stages.append(
            {
                "stage": stage.number,
                "variants": len(active),
                "iterations": stage.iterations,
                "target_error": stage.target_error,
            }
        )
    assert first_report is not None
    rows = ranking(sums, culled_at)
    section = {
        "target_error": target_error,
        "winner": rows[0]["name"],
        "ranking": rows,
        "stages": stages,
        "variant_iterations": sum(s["variants"] * s["iterations"] for s in stages),
    }
    out = {k: v for k, v in first_report.items() if k not in ("compare", "compare_sums")}
    return {**out, "profilesets": section}


#: Target error of a profile set's last stage when none is given (SimC's default error).
DEFAULT_PROFILESET_ERROR = 0.2


def compare_submission(
    config: Any,
    *,
    iterations: int | None,
    target_error: float | None,
    scale_factors: Sequence[str] | None = None,
    delta: float | None = None,
    profilesets: Mapping[str, Any] | None = None,
) -> tuple[Any, int | None, float | None]:
    """A submitted job's config, iterations and target error, made a compare job if asked.

    Stat weights: one job of the base and ``+delta`` per stat. A profile set: its first
    stage (every variant, 100 iterations); :mod:`wowlab_core.profileset_chain` submits the
    next stages, down to ``target_error`` (default 0.2 %) for the contenders.
    """
    if scale_factors is not None and profilesets is not None:
        raise InvalidRequest("give scale_factors or profilesets, not both", field="profilesets")
    if scale_factors is not None:
        step = DEFAULT_DELTA if delta is None else delta
        if not step > 0:
            raise InvalidRequest("delta must be positive", field="delta")
        return (
            compare_document(config, scale_factor_variants(scale_factors, step)),
            iterations,
            target_error,
        )
    if profilesets is not None:
        if not isinstance(profilesets, Mapping) or not profilesets:
            raise InvalidRequest("profilesets: give {name: patch, ...}", field="profilesets")
        target = DEFAULT_PROFILESET_ERROR if target_error is None else target_error
        if not 0.001 <= target <= 50:
            raise InvalidRequest("target_error must be between 0.001 and 50", field="target_error")
        variants = [
            {"name": check_name(name, "profile set name"), "patch": patch}
            for name, patch in profilesets.items()
        ]
        meta: dict[str, Any] = {
            "target_error": target,
            "stage": 1,
            "previous_job": None,
            "culled": {},
        }
        document = compare_document(config, variants, profileset=meta)
        return document, FIRST_STAGE_ITERATIONS, None
    return config, iterations, target_error


def parse_profileset_option(value: str, load: Callable[[str], Any]) -> dict[str, Any]:
    """``name=PATCH.json`` (a JSON merge patch of the base) as a variant."""
    name, sep, source = value.partition("=")
    if not sep or not source:
        raise InvalidRequest(f"--profileset {value!r}: give NAME=PATCH.json", field="profileset")
    patch = load(source)
    if not isinstance(patch, Mapping):
        raise ConfigInvalid(f"--profileset {name}: the patch must be a JSON object")
    return {"name": check_name(name, "profile set name"), "patch": dict(patch)}


def sweep_variants(path: Path) -> list[dict[str, Any]]:
    """Variants of a sweep file: ``{"NAME": PATCH, ...}``, or
    ``{"sweep": {"path": "actor.crit_rating", "values": [0, 500, 1000]}}`` (one variant per
    value, named ``<last key>_<index>``)."""
    try:
        data = parse_json(path.read_bytes(), what=str(path))
    except OSError as exc:
        raise ConfigInvalid(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(data, Mapping):
        raise ConfigInvalid(f"{path}: a sweep file is a JSON object")
    if "sweep" in data:
        sweep = data["sweep"]
        if not isinstance(sweep, Mapping) or not isinstance(sweep.get("path"), str):
            raise ConfigInvalid(f"{path}: sweep needs 'path' (a.b.c) and 'values'")
        keys = sweep["path"].split(".")
        values = sweep.get("values")
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_SWEEP:
            raise ConfigInvalid(f"{path}: sweep.values must be a list of 1 to {MAX_SWEEP}")
        out = []
        for i, value in enumerate(values):
            patch: Any = value
            for key in reversed(keys):
                patch = {key: patch}
            out.append({"name": check_name(f"{keys[-1]}_{i}"), "patch": patch})
        return out
    return [
        {"name": check_name(name, "profile set name"), "patch": patch}
        for name, patch in data.items()
    ]


__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_PROFILESET_ERROR",
    "compare_submission",
    "parse_profileset_option",
    "run_profile_set",
    "run_scale_factors",
    "sweep_variants",
]
