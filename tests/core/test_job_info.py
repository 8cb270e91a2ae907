"""What a job ran, named for people: its name, fight, title and the report's job section."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from wowlab_core.db import read_session
from wowlab_core.job_info import (
    config_name,
    fight_setup,
    fight_text,
    job_name,
    job_section,
    job_title,
)
from wowlab_core.models import SimJob
from wowlab_core.plugins import Hooks
from wowlab_engine.engine import NumbaEngine

from .helpers import make_job, make_user


def test_a_job_is_named_by_its_config_then_its_example_then_its_file() -> None:
    assert job_name({"name": " fire_mage "}, source="mine.json") == "fire_mage"
    assert job_name({"spells": []}, example="rogue", source="x") == "rogue"
    assert job_name({"spells": []}, source="my_rogue") == "my_rogue"
    assert job_name({"name": ""}, source=None) is None
    # A compare document (scale factors, profile sets) is named by its base.
    assert config_name({"compare": {"base": {"name": "affliction"}, "variants": []}}) == (
        "affliction"
    )
    assert config_name({"base": {"name": "rogue"}}) == "rogue"
    assert config_name([1, 2]) is None
    assert len(job_name({"name": "x" * 500}) or "") == 200


def test_the_engine_says_the_fight_and_a_silent_or_broken_engine_says_nothing() -> None:
    engine = NumbaEngine()
    aoe = json.loads(engine.examples()["aoe_mage"].read_bytes())
    assert fight_setup(engine, engine.prepare(aoe)) == {
        "fight_seconds": 120.0,
        "fight_variation": 0.1,
        "targets": 5,
    }

    class Silent:
        pass

    class Broken:
        def describe(self, prepared: Any) -> Any:
            raise RuntimeError("no")

    class Odd:
        def describe(self, prepared: Any) -> Any:
            return {"fight_seconds": float("nan"), "targets": True, "fight_variation": 0.2}

    assert fight_setup(Silent(), None) == {} and fight_setup(Broken(), None) == {}
    assert fight_setup(Odd(), None) == {"fight_variation": 0.2}


def test_title_fight_and_job_section(db: Engine, wowlab_hooks: Hooks) -> None:
    owner = make_user(db, "owner")
    job_id = make_job(db, owner, wowlab_hooks, iterations=10_000, config={"base_dps": 5})
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None
        assert job.name is None  # the toy config has no name, nor came from an example
        assert job_title(job) == f"Job {job_id} · toy · 10,000 iterations"
        job.name, job.fight_seconds, job.fight_variation, job.targets = "fire_mage", 300, 0.2, 1
        assert job_title(job) == "fire_mage · toy · 10,000 iterations"
        assert fight_text(job) == "300 s ± 20 %, 1 target"
        job.target_error, job.targets = 0.1, 3
        assert job_title(job) == "fire_mage · toy · target error 0.1 %"
        assert fight_text(job) == "300 s ± 20 %, 3 targets"
        job.finished_at = job.created_at + timedelta(seconds=83.25)
        section = job_section(job, nodes=[{"node_id": 1}, {"node_id": 2}])
        assert section["nodes"] == 2 and section["elapsed_seconds"] == 83.2
        assert section["seed"] == job.seed and section["name"] == "fire_mage"
        assert datetime.fromisoformat(section["finished_at"]).tzinfo is not None
        assert job.created_at.tzinfo == UTC or job.created_at.utcoffset() == timedelta(0)
