"""The simulation config: pydantic models, limits and the JSON Schema.

A config describes one character against one or more targets. Times are in seconds (floats)
in the JSON and become integer milliseconds when compiled. Secondary stats are given in
percent, in rating, or both (they add up); see :data:`RATING_PER_PERCENT`.

The models only check shapes and ranges. Cross references (spell and aura names, rotation
conditions, cycles of triggered spells) are checked by :mod:`wowlab_engine.compiler`.
Every limit exists so that an untrusted config cannot exhaust a node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wowlab_core.errors import ConfigInvalid

# --- limits ---------------------------------------------------------------------------

MAX_SPELLS = 64
MAX_AURAS = 64
MAX_PROCS = 32
MAX_ROTATION = 64
MAX_TARGETS = 20
MAX_RESOURCES = 4
MAX_EFFECTS = 8
MAX_LIST = 16  # auras applied, spells triggered, filters ...
MAX_STACKS = 100
MAX_FIGHT_SECONDS = 1800.0
MAX_CONDITION_CHARS = 400
MAX_NAME_CHARS = 40
MAX_DURATION_SECONDS = 3600.0
#: Tick periods below this would let a config flood the event queue.
MIN_PERIOD_SECONDS = 0.1
MAX_STAT = 1_000_000.0
MAX_PERCENT = 1000.0
MAX_COEFFICIENT = 1000.0

#: Rating per 1 % of each secondary stat (approximate level-80 values; no diminishing returns).
RATING_PER_PERCENT = {"crit": 700.0, "haste": 660.0, "mastery": 700.0, "versatility": 780.0}

SCHOOLS = ("physical", "holy", "fire", "nature", "frost", "shadow", "arcane")
STATS = ("primary", "crit", "haste", "mastery", "versatility")

#: How a spell or aura is named in reports (default: its name, humanised: "Fire Blast").
Label = Annotated[
    str | None,
    Field(None, min_length=1, max_length=80, description="name shown in reports"),
]
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="lower-case identifier: letters, digits, underscores",
    ),
]
Seconds = Annotated[float, Field(ge=0, le=MAX_DURATION_SECONDS)]
Percent = Annotated[float, Field(ge=-100, le=MAX_PERCENT)]
School = Literal["physical", "holy", "fire", "nature", "frost", "shadow", "arcane"]


class Model(BaseModel):
    """Base of every config model: unknown keys, NaN and infinity are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


# --- actor ----------------------------------------------------------------------------


class Resource(Model):
    """A resource such as mana, energy or combo points."""

    name: Name
    max: float = Field(gt=0, le=MAX_STAT)
    start: float | None = Field(None, ge=0, le=MAX_STAT, description="default: max")
    regen_per_second: float = Field(0.0, ge=0, le=MAX_STAT)
    regen_hasted: bool = Field(False, description="regeneration scales with haste")

    @model_validator(mode="after")
    def _start_fits(self) -> Resource:
        if self.start is not None and self.start > self.max:
            raise ValueError("start must not exceed max")
        return self


class Actor(Model):
    """The simulated character: stats and resources."""

    name: Name = "player"
    primary_stat: float = Field(ge=0, le=MAX_STAT, description="intellect, agility or strength")
    crit_pct: Percent = 0.0
    haste_pct: Percent = 0.0
    mastery_pct: Percent = 0.0
    versatility_pct: Percent = 0.0
    crit_rating: float = Field(0.0, ge=0, le=MAX_STAT)
    haste_rating: float = Field(0.0, ge=0, le=MAX_STAT)
    mastery_rating: float = Field(0.0, ge=0, le=MAX_STAT)
    versatility_rating: float = Field(0.0, ge=0, le=MAX_STAT)
    crit_multiplier: float = Field(2.0, ge=1, le=10)
    resources: list[Resource] = Field(default_factory=list, max_length=MAX_RESOURCES)

    def stat_percent(self, stat: str) -> float:
        """Total percent of a secondary stat: percent plus rating / rating-per-percent."""
        pct: float = getattr(self, f"{stat}_pct")
        rating: float = getattr(self, f"{stat}_rating")
        return pct + rating / RATING_PER_PERCENT[stat]


# --- fight ----------------------------------------------------------------------------


class Fight(Model):
    """Fight length and targets. Target health falls linearly from 100 % to 0 %."""

    max_time: float = Field(300.0, ge=1, le=MAX_FIGHT_SECONDS, description="seconds")
    vary_combat_length: float = Field(
        0.2, ge=0, le=0.5, description="each iteration lasts [1-v, 1+v] x max_time"
    )
    targets: int = Field(1, ge=1, le=MAX_TARGETS)
    damage_taken_pct: Percent = Field(0.0, description="extra damage taken by the targets")
    armor: float = Field(0.0, ge=0, le=MAX_STAT, description="reduces physical damage")
    armor_constant: float = Field(
        7390.0, gt=0, le=MAX_STAT, description="physical damage x (1 - armor/(armor + K))"
    )


# --- spells ---------------------------------------------------------------------------


class DirectDamage(Model):
    """Direct damage: coefficient x primary stat, then multipliers, variance and crit."""

    coefficient: float = Field(gt=0, le=MAX_COEFFICIENT)
    variance: float = Field(0.0, ge=0, le=1, description="uniform +-variance")
    school: School = "physical"
    can_crit: bool = True
    mastery: bool = Field(False, description="scaled by 1 + mastery%")
    max_targets: int = Field(1, ge=1, le=MAX_TARGETS, description="targets hit")


class AuraApplication(Model):
    """An aura applied by a spell or a proc."""

    aura: Name
    stacks: int = Field(1, ge=1, le=MAX_STACKS)


class Finisher(Model):
    """Spend all of a resource; damage is multiplied by the amount spent."""

    resource: Name
    min: float = Field(1.0, gt=0, le=MAX_STAT)


class Channel(Model):
    """A channelled spell: the actor is busy while its ticks deal damage."""

    duration: Seconds = Field(gt=0)
    ticks: int = Field(ge=1, le=100)
    hasted: bool = True


class Spell(Model):
    """A spell or ability."""

    name: Name
    label: Label = None
    cast_time: Seconds = 0.0
    channel: Channel | None = None
    gcd: float = Field(1.5, ge=0, le=10)
    gcd_hasted: bool = True
    gcd_min: float = Field(0.75, ge=0, le=10)
    off_gcd: bool = Field(False, description="usable without triggering the GCD")
    background: bool = Field(False, description="only triggered, never in the rotation")
    cost: dict[Name, Annotated[float, Field(gt=0, le=MAX_STAT)]] = Field(
        default_factory=dict, max_length=MAX_RESOURCES
    )
    gain: dict[Name, Annotated[float, Field(gt=0, le=MAX_STAT)]] = Field(
        default_factory=dict, max_length=MAX_RESOURCES
    )
    finisher: Finisher | None = None
    cooldown: Seconds = 0.0
    cooldown_hasted: bool = False
    charges: int = Field(1, ge=1, le=10)
    damage: DirectDamage | None = None
    apply: list[AuraApplication] = Field(default_factory=list, max_length=MAX_LIST)
    aura_targets: Literal["hit", "primary"] = Field(
        "hit", description="apply target auras to every target hit, or the primary only"
    )
    consume: list[Name] = Field(
        default_factory=list, max_length=MAX_LIST, description="auras removed on execute"
    )
    trigger: list[Name] = Field(
        default_factory=list, max_length=MAX_LIST, description="spells executed on execute"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Spell:
        if self.channel is not None and self.cast_time > 0:
            raise ValueError("a channelled spell has no cast_time (use channel.duration)")
        if self.charges > 1 and self.cooldown <= 0:
            raise ValueError("charges need a cooldown (the recharge time)")
        return self


# --- auras ----------------------------------------------------------------------------


class Periodic(Model):
    """Periodic damage of an aura (a DoT, or an auto attack on a permanent aura)."""

    period: float = Field(ge=MIN_PERIOD_SECONDS, le=MAX_DURATION_SECONDS)
    coefficient: float = Field(gt=0, le=MAX_COEFFICIENT, description="per tick, per stack")
    hasted: bool = True
    partial_last_tick: bool = True
    school: School = "physical"
    can_crit: bool = True
    mastery: bool = False
    variance: float = Field(0.0, ge=0, le=1)


class Effect(Model):
    """What an aura does while up, per stack.

    * ``stat_add``: adds ``value`` to a stat (percent points; flat for ``primary``).
    * ``stat_pct``: multiplies a stat by ``1 + value%``.
    * ``damage_pct``: multiplies damage by ``1 + value%`` (optionally only ``school`` or
      ``spells``); on a target aura it is extra damage taken by that target.
    * ``haste_pct``: multiplies haste by ``1 + value%``.
    * ``cooldown_rate_pct``: cooldowns of ``spells`` (or all) recover ``value%`` faster.
    * ``regen_pct``: regeneration of ``resource`` is multiplied by ``1 + value%``.
    * ``cast_time_pct``: cast times of ``spells`` (or all) change by ``value%`` (-100: instant).
    """

    type: Literal[
        "stat_add",
        "stat_pct",
        "damage_pct",
        "haste_pct",
        "cooldown_rate_pct",
        "regen_pct",
        "cast_time_pct",
    ]
    value: float = Field(
        ge=-MAX_STAT, le=MAX_STAT, description="percent per stack; flat for stat_add primary"
    )
    stat: Literal["primary", "crit", "haste", "mastery", "versatility"] | None = None
    school: School | None = None
    resource: Name | None = None
    spells: list[Name] = Field(default_factory=list, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _fields_fit_type(self) -> Effect:
        if self.type in ("stat_add", "stat_pct") and self.stat is None:
            raise ValueError(f"a {self.type} effect needs 'stat'")
        flat = self.type == "stat_add" and self.stat == "primary"
        if not flat and not -100 <= self.value <= MAX_PERCENT:
            raise ValueError(f"a {self.type} effect's value must be between -100 and {MAX_PERCENT}")
        if self.type == "regen_pct" and self.resource is None:
            raise ValueError("a regen_pct effect needs 'resource'")
        multiplier = ("stat_pct", "haste_pct", "cooldown_rate_pct", "regen_pct")
        if self.type in multiplier and self.value <= -100:
            raise ValueError(f"a {self.type} effect must be greater than -100")
        return self


class Aura(Model):
    """A buff on the actor or a debuff / DoT on each target."""

    name: Name
    label: Label = None
    on: Literal["player", "target"] = "player"
    duration: Seconds = Field(description="seconds; 0 = until the fight ends")
    max_stacks: int = Field(1, ge=1, le=MAX_STACKS)
    pandemic: bool = Field(
        False,
        description="a refresh keeps the time left, up to 30 % of the duration "
        "(new expiry: now + duration + min(remains, 0.3 x duration))",
    )
    periodic: Periodic | None = None
    effects: list[Effect] = Field(default_factory=list, max_length=MAX_EFFECTS)


# --- procs ----------------------------------------------------------------------------


class Proc(Model):
    """A chance-based reaction to casts, hits, crits or ticks."""

    name: Name
    on: Literal["cast", "hit", "crit", "tick"]
    spells: list[Name] = Field(
        default_factory=list,
        max_length=MAX_LIST,
        description="spells (aura names for 'tick') that can trigger it; empty = any",
    )
    chance: float | None = Field(None, gt=0, le=1)
    rppm: float | None = Field(None, gt=0, le=60)
    rppm_haste: bool = Field(True, description="RPPM scales with haste")
    bad_luck_protection: bool = True
    icd: Seconds = Field(0.0, description="internal cooldown")
    apply: AuraApplication | None = None
    trigger: Name | None = Field(None, description="spell executed")
    gain: dict[Name, Annotated[float, Field(gt=0, le=MAX_STAT)]] = Field(
        default_factory=dict, max_length=MAX_RESOURCES
    )
    reset_cooldown: Name | None = Field(None, description="spell whose charges are restored")

    @model_validator(mode="after")
    def _one_chance_some_effect(self) -> Proc:
        if (self.chance is None) == (self.rppm is None):
            raise ValueError("give exactly one of 'chance' and 'rppm'")
        if not (self.apply or self.trigger or self.gain or self.reset_cooldown):
            raise ValueError("a proc needs an effect: apply, trigger, gain or reset_cooldown")
        return self


# --- rotation and the whole config ----------------------------------------------------


class RotationEntry(Model):
    """One line of the priority list: cast ``spell`` if it is usable and ``condition`` holds."""

    spell: Name
    condition: str = Field("", max_length=MAX_CONDITION_CHARS)


class SimConfig(Model):
    """One character against one or more targets."""

    name: str = Field("unnamed", max_length=80)
    description: str = Field("", max_length=400)
    actor: Actor
    fight: Fight = Fight.model_validate({})
    spells: list[Spell] = Field(min_length=1, max_length=MAX_SPELLS)
    auras: list[Aura] = Field(default_factory=list, max_length=MAX_AURAS)
    procs: list[Proc] = Field(default_factory=list, max_length=MAX_PROCS)
    precombat: list[Name] = Field(
        default_factory=list, max_length=MAX_LIST, description="auras up when the fight starts"
    )
    rotation: list[RotationEntry] = Field(min_length=1, max_length=MAX_ROTATION)


# --- errors and schema ----------------------------------------------------------------


def format_path(loc: Sequence[int | str]) -> str:
    """Render a pydantic location as a JSON path.

    ``('rotation', 3, 'spell')`` becomes ``rotation[3].spell``.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "config"


def parse_config(raw: Any) -> SimConfig:
    """Validate a parsed JSON config; raise :class:`ConfigInvalid` naming the first bad path."""
    if not isinstance(raw, Mapping):
        raise ConfigInvalid("config: must be a JSON object", field="config")
    try:
        return SimConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # Model validators report at the model's own path with a "Value error, " prefix.
        problems = [
            (
                format_path(
                    [p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
                ),
                str(e["msg"]).removeprefix("Value error, "),
            )
            for e in errors
        ]
        path, message = problems[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigInvalid(f"{path}: {message}{more}", field=path, problems=problems) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a config."""
    schema = SimConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "wowlab engine config"
    return schema


def json_schema_text() -> str:
    """The JSON Schema as indented text."""
    return json.dumps(json_schema(), indent=2, sort_keys=True)
