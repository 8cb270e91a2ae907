"""What a compare job's page shows: its variants, and scale factors or a profile set's ranking.

A compare job is an ordinary job whose config is a compare document (wowlab_core.compare):
stat weights are one job; a profile set is a chain of stage jobs, linked from each page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup
from sqlmodel import Session

from wowlab_core.compare import CompareSums, scale_factors
from wowlab_core.models import JobStatus, SimConfig, SimJob
from wowlab_core.profileset_chain import profileset_view
from wowlab_portal.web.charts import bars


def _change(variant: Mapping[str, Any]) -> str:
    change = variant.get("patch") if "patch" in variant else variant.get("stats")
    text = json.dumps(change, sort_keys=True, separators=(", ", ": "))
    return text if len(text) <= 160 else text[:157] + "..."


def _stat_deltas(variants: list[Mapping[str, Any]]) -> tuple[list[str], float] | None:
    """Stats and delta when every variant is ``+delta`` of one stat named after it."""
    deltas = set()
    stats = []
    for v in variants:
        changes = v.get("stats")
        if not isinstance(changes, Mapping) or list(changes) != [v.get("name")]:
            return None
        stats.append(str(v["name"]))
        deltas.add(float(changes[v["name"]]))
    return (stats, deltas.pop()) if len(deltas) == 1 else None


def compare_view(session: Session, job: SimJob) -> dict[str, Any] | None:
    """The compare part of a job's page (None for an ordinary job)."""
    config = session.get(SimConfig, job.config_hash)
    document = config.config if config is not None else None
    compare = document.get("compare") if isinstance(document, Mapping) else None
    if not isinstance(compare, Mapping):
        return None
    variants = [v for v in compare.get("variants") or [] if isinstance(v, Mapping)]
    view: dict[str, Any] = {
        "kind": "variants",
        "variants": [{"name": v.get("name"), "change": _change(v)} for v in variants],
        "chart": Markup(""),
    }
    report = job.result if job.status == JobStatus.COMPLETED.value else None
    sums = (
        CompareSums.from_metrics(report["compare_sums"])
        if isinstance(report, Mapping) and isinstance(report.get("compare_sums"), Mapping)
        else None
    )
    if isinstance(compare.get("profileset"), Mapping):
        view["kind"] = "profileset"
        chain = profileset_view(session, job)
        view["profileset"] = chain
        rows = (chain or {}).get("ranking") or []
        view["chart"] = bars(
            [(r["name"], float(r["dps"]), f"{r['dps']:,.0f} ± {r['error95']:,.0f}") for r in rows],
            "Profile sets by DPS",
            None,
        )
        return view
    stat_deltas = _stat_deltas(variants)
    if stat_deltas is not None:
        view["kind"] = "scale_factors"
        stats, delta = stat_deltas
        view["delta"] = delta
        if sums is not None:
            rows = scale_factors(sums, stats, delta)
            view["scale_factors"] = rows
            view["chart"] = bars(
                [
                    (r["stat"], max(0.0, float(r["per_point"])), f"{r['per_point']:.4f}")
                    for r in rows
                ],
                "Scale factors (DPS per point)",
                None,
            )
    return view


__all__ = ["compare_view"]
