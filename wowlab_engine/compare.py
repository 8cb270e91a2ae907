"""Compare documents (see :mod:`wowlab_core.compare`): variants of a config run side by side.

Every chunk runs the same iterations of the base and of each variant, with the randomness of
``(seed, iteration_offset + k)`` (common random numbers). The chunk's result is the base's,
with the ``compare.*`` sums of all variants added, so a compare job is an ordinary job to the
scheduler: chunked, leased, verified and merged like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from wowlab_core.compare import (
    BASE,
    MAX_VARIANTS,
    CompareSums,
    compare_metrics,
    merge_patch,
    paired_difference,
    variant_estimate,
)
from wowlab_core.errors import ConfigInvalid
from wowlab_core.results import MAX_METRICS, ChunkResult
from wowlab_engine.compiler import PreparedSim, prepare
from wowlab_engine.config import MAX_STAT, Model, Name, format_path
from wowlab_engine.runner import metric_bound

Stat = Literal["primary", "crit", "haste", "mastery", "versatility"]
StatDelta = Annotated[float, Field(ge=-MAX_STAT, le=MAX_STAT)]


class Variant(Model):
    """A variant: a JSON merge patch of the base, or stat changes (rating; primary: points)."""

    name: Name
    patch: dict[str, Any] | None = None
    stats: dict[Stat, StatDelta] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Variant:
        if self.name == BASE:
            raise ValueError(f"'{BASE}' is the base's name")
        if (self.patch is None) == (self.stats is None):
            raise ValueError("give exactly one of 'patch' and 'stats'")
        return self


class CompareSpec(Model):
    """The ``compare`` object of a compare document."""

    base: dict[str, Any]
    variants: list[Variant] = Field(max_length=MAX_VARIANTS)
    iteration_offset: int = Field(0, ge=0, lt=2**61)
    profileset: dict[str, Any] | None = Field(
        None, description="a profile-set stage's place in its chain (wowlab_core.compare)"
    )

    @model_validator(mode="after")
    def _unique(self) -> CompareSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        return self


@dataclass(frozen=True)
class PreparedCompare:
    """The base and its variants, compiled; ``config`` is the base's (for reports)."""

    base: PreparedSim
    variants: tuple[tuple[str, PreparedSim], ...]
    iteration_offset: int

    @property
    def config(self) -> Any:
        """The base's validated config."""
        return self.base.config


def is_compare_document(raw: Any) -> bool:
    """Whether ``raw`` is a compare document (an object with just a ``compare`` key)."""
    return isinstance(raw, Mapping) and "compare" in raw


def with_stats(config: Mapping[str, Any], stats: Mapping[str, float]) -> dict[str, Any]:
    """``config`` with ``stats`` added: secondary stats as rating, primary as points."""
    actor = dict(config.get("actor") or {})
    for stat, delta in stats.items():
        key = "primary_stat" if stat == "primary" else f"{stat}_rating"
        actor[key] = actor.get(key, 0.0) + delta
    return {**config, "actor": actor}


def _prepare_at(raw: Any, path: str) -> PreparedSim:
    try:
        return prepare(raw)
    except ConfigInvalid as exc:
        inner = exc.field or "config"
        raise ConfigInvalid(f"{path}: {exc.message}", field=f"{path}.{inner}") from None


def prepare_compare(raw: Any) -> PreparedCompare:
    """Validate a compare document and compile the base and every variant.

    Raises:
        ConfigInvalid: naming the path (``compare.variants[2]: actor.crit_rating: ...``).
    """
    if set(raw) != {"compare"}:
        extra = sorted(set(raw) - {"compare"})
        raise ConfigInvalid(f"{extra[0]}: a compare document has only 'compare'", field=extra[0])
    try:
        spec = CompareSpec.model_validate(raw["compare"])
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = format_path(["compare", *first["loc"]])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigInvalid(f"{path}: {message}", field=path) from None
    base = _prepare_at(spec.base, "compare.base")
    variants = []
    for i, v in enumerate(spec.variants):
        if v.patch is not None:
            config = merge_patch(spec.base, v.patch)
        else:
            config = with_stats(spec.base, {str(k): d for k, d in (v.stats or {}).items()})
        variants.append((v.name, _prepare_at(config, f"compare.variants[{i}]")))
    check_result_size(base, len(variants))
    return PreparedCompare(
        base=base, variants=tuple(variants), iteration_offset=spec.iteration_offset
    )


def compare_metric_count(base: PreparedSim, variants: int) -> int:
    """Most metrics of a chunk: the base's detail, 3 sums per run and per pair of runs."""
    runs = 1 + variants
    return metric_bound(base) + 3 * runs + 3 * runs * (runs - 1) // 2


def check_result_size(base: PreparedSim, variants: int) -> None:
    """Refuse more variants than a chunk's result may carry (a node's result is refused
    beyond MAX_METRICS metrics, so the job could never finish)."""
    if compare_metric_count(base, variants) <= MAX_METRICS:
        return
    fits = 0
    while compare_metric_count(base, fits + 1) <= MAX_METRICS:
        fits += 1
    raise ConfigInvalid(
        f"compare.variants: {variants} variants of this config make too large a result "
        f"(at most {fits} fit)",
        field="compare.variants",
    )


def run_compare_chunk(
    prepared: PreparedCompare, loop: ModuleType, *, seed: int, seed_offset: int, iterations: int
) -> ChunkResult:
    """Iterations ``[seed_offset, seed_offset + iterations)`` of the job, of every variant."""
    from wowlab_engine.runner import check_range, run_values

    check_range(seed_offset + prepared.iteration_offset, iterations)
    first = prepared.iteration_offset + seed_offset
    base_values, metrics = run_values(
        prepared.base, loop, seed=seed, first=first, iterations=iterations
    )
    values = {BASE: base_values}
    for name, variant in prepared.variants:
        values[name], _ = run_values(variant, loop, seed=seed, first=first, iterations=iterations)
    metrics.update(compare_metrics(values))
    return ChunkResult.from_values(base_values, seed_offset=seed_offset, metrics=metrics)


def compare_section(prepared: PreparedCompare, result: ChunkResult) -> dict[str, Any]:
    """This job's variants: DPS with errors and the paired difference to the base."""
    sums = CompareSums.from_metrics(result.metrics)
    rows = []
    for name in (BASE, *(n for n, _ in prepared.variants)):
        e = variant_estimate(sums, name)
        d = paired_difference(sums, name, BASE)
        rows.append(
            {
                "variant": name,
                "dps": round(e.mean, 3),
                "error95": round(e.error95, 3),
                "vs_base": round(d.mean, 3),
                "vs_base_error95": round(d.error95, 3) if name != BASE else 0.0,
            }
        )
    return {"iteration_offset": prepared.iteration_offset, "variants": rows}
