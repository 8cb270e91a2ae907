"""New simulation, the jobs list, a job's live progress and its report, and the public
read-only page a job's share link opens."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError

from wowlab_core.errors import NotFound, WowlabError
from wowlab_core.job_info import elapsed_seconds, fight_text, job_title
from wowlab_core.models import SimJob
from wowlab_core.notices import notices_of
from wowlab_core.progress import in_chunk_iterations, iterations_done
from wowlab_core.report_html import report_html
from wowlab_core.report_view import row_label, split_abilities
from wowlab_core.share_links import shared_job
from wowlab_core.verification import job_provenance
from wowlab_portal.api.deps import CoordinatorDep, HooksDep, IdPath, SessionDep, SettingsDep
from wowlab_portal.api.routes import jobs as api
from wowlab_portal.request_limits import check_json_depth
from wowlab_portal.web import charts
from wowlab_portal.web.compare_view import compare_view
from wowlab_portal.web.forms import CsrfChecked, PageUser, field_errors, flash, redirect, render
from wowlab_portal.web.timeline_charts import timeline_charts

router = APIRouter(prefix="/jobs", include_in_schema=False)
share_router = APIRouter(prefix="/share", include_in_schema=False)

#: Headers of every answer of a share link: the token in its URL must not leak to the sites
#: its page links to, and the page is not for search engines.
SHARE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}

#: Statuses after which a job does not change.
FINISHED = frozenset({"completed", "failed", "cancelled"})
#: A share link's token in a URL (anything longer is no token of ours).
ShareToken = Annotated[str, Path(max_length=100)]


@router.get("")
def jobs_list(request: Request, user: PageUser, session: SessionDep) -> Response:
    """My jobs with status and headline DPS."""
    return render(
        request,
        "jobs.html",
        user,
        jobs=api.list_jobs(user, session),
        notices=notices_of(session, user=user, unread_only=True),
    )


#: What the new-simulation form runs: one of the examples, or the config pasted in its box.
SOURCES = {"example": "Run an example", "paste": "Paste a config"}


def _new_page(
    request: Request,
    user: PageUser,
    hooks: HooksDep,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    problems: list[str] | None = None,
    **values: str,
) -> Response:
    form = {"source": "", "example": "", "config": "", "iterations": "1000", "target_error": "",
            "nodes": "shared", "compare": "none", "delta": "1000",
            "stats": "crit,haste,mastery,versatility,primary", "profilesets": ""}  # fmt: skip
    form.update(values)
    examples = api.list_examples(user, hooks)
    if form["source"] not in SOURCES:  # first visit: an example if there is one to run
        form["source"] = "paste" if form["config"].strip() or not examples else "example"
    return render(
        request, "new_job.html", user, status_code,
        examples=examples, form=form, errors=errors or {}, problems=problems or [],
        sources=SOURCES, max_iterations=request.app.state.settings.job_limits().max_iterations,
    )  # fmt: skip


@router.get("/new")
def new_job_page(request: Request, user: PageUser, hooks: HooksDep, example: str = "") -> Response:
    """The new-simulation form."""
    return _new_page(request, user, hooks, example=example[:100])


def _source_mistakes(source: str, example: str, config: str) -> dict[str, str]:
    """Whether the form says unambiguously what to run: the chosen source, and only it."""
    if not source and bool(example) != bool(config.strip()):
        return {}  # a post without the choice (a script) that names just one thing to run
    if source == "example":
        if not example:
            return {"example": "Choose an example, or choose “Paste a config”."}
        if config.strip():
            # Never run the example while a pasted config sits in the box unnoticed.
            return {
                "config": "You pasted a config but chose “Run an example”: choose “Paste a "
                "config” to run what you pasted, or empty this box to run the example."
            }
        return {}
    if source == "paste":
        return {} if config.strip() else {"config": "Paste a config (JSON), or choose an example."}
    return {"source": "Choose what to run: an example, or a config you paste."}


@router.post("/new", dependencies=[CsrfChecked])
def new_job(
    request: Request,
    user: PageUser,
    session: SessionDep,
    hooks: HooksDep,
    coordinator: CoordinatorDep,
    settings: SettingsDep,
    source: Annotated[str, Form(max_length=20)] = "",
    example: Annotated[str, Form(max_length=100)] = "",
    config: Annotated[str, Form(max_length=4_000_000)] = "",
    iterations: Annotated[str, Form(max_length=20)] = "",
    target_error: Annotated[str, Form(max_length=20)] = "",
    nodes: Annotated[str, Form(max_length=10)] = "shared",
    compare: Annotated[str, Form(max_length=20)] = "none",
    stats: Annotated[str, Form(max_length=200)] = "",
    delta: Annotated[str, Form(max_length=20)] = "",
    profilesets: Annotated[str, Form(max_length=1_000_000)] = "",
) -> Response:
    """Submit the simulation (or a compare: stat weights, profile sets); go to its page."""
    values = {"source": source, "example": example, "config": config, "iterations": iterations,
              "target_error": target_error, "nodes": nodes, "compare": compare,
              "stats": stats, "delta": delta, "profilesets": profilesets}  # fmt: skip
    if errors := _source_mistakes(source, example, config):
        return _new_page(request, user, hooks, 422, errors, None, **values)
    source = source or ("example" if example else "paste")
    try:
        parsed = _json_field(config, "config") if source == "paste" else None
        body = api.JobCreate(
            example=example if source == "example" else None,
            config=parsed,
            iterations=iterations.strip() or None,  # type: ignore[arg-type]
            target_error=target_error.strip() or None,  # type: ignore[arg-type]
            nodes=nodes,  # type: ignore[arg-type]
            scale_factors=[s.strip() for s in stats.split(",") if s.strip()]
            if compare == "scale_factors"
            else None,
            delta=delta.strip() or None if compare == "scale_factors" else None,  # type: ignore[arg-type]
            profilesets=_json_field(profilesets, "profilesets")
            if compare == "profilesets"
            else None,
        )
        job = api.create_job(user, session, hooks, coordinator, settings, body)
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        errors = {}
        for field, message in field_errors(exc, "config").items():
            # A mistake inside the config (actor.crit_rating ...) is shown at the config box.
            key = field if field in values or field == "scale_factors" else "config"
            errors[key] = f"{errors[key]}; {message}" if key in errors else message
        # A config with several mistakes: all of them, each with its path.
        problems = [f"{path}: {message}" for path, message in getattr(exc, "problems", ())]
        return _new_page(request, user, hooks, 422, errors, problems, **values)
    return redirect(f"/jobs/{job.id}")


def _json_field(text: str, field: str) -> Any:
    check_json_depth(text, field=field)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WowlabError(f"not valid JSON: {exc}", field=field) from None


def clock(seconds: float | None) -> str:
    """Seconds as "m:ss" (or "h:mm:ss"); a dash for None."""
    if seconds is None:
        return "\u2013"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _report_charts(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "report": report,
        "abilities": split_abilities(report.get("abilities") or []),
        "label": row_label,
        "ability_chart": charts.ability_bars(report.get("abilities") or []),
        "histogram_chart": charts.dps_histogram(report.get("histogram") or [], report.get("dps")),
        "aura_chart": charts.aura_uptimes(report.get("auras") or []),
        "timeline_charts": timeline_charts(report),
    }


def _job_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    job_id: int,
    *,
    share_url: str | None = None,
    status_code: int = 200,
) -> Response:
    job = api.get_job(user, session, job_id)
    row = api.own_job(session, user, job_id)
    return render(
        request,
        "job.html",
        user,
        status_code,
        job=job,
        finished=job.status in FINISHED,
        fight=fight_text(row),
        clock=clock,
        share_url=share_url,
        compare=compare_view(session, row),
        **_report_charts(job.report or {}),
    )


@router.get("/{job_id}")
def job_page(request: Request, user: PageUser, session: SessionDep, job_id: IdPath) -> Response:
    """Live progress while the job runs; its report, with charts, once done."""
    return _job_page(request, user, session, job_id)


@router.post("/{job_id}/share", dependencies=[CsrfChecked])
def share_job(request: Request, user: PageUser, session: SessionDep, job_id: IdPath) -> Response:
    """Make the job's public link and show it, once (only its hash is kept)."""
    link = api.create_share(request, user, session, job_id)
    # Answered with the page itself, not a redirect: the link must not travel in a cookie.
    response = _job_page(request, user, session, job_id, share_url=link.url)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/{job_id}/share/revoke", dependencies=[CsrfChecked])
def unshare_job(request: Request, user: PageUser, session: SessionDep, job_id: IdPath) -> Response:
    """Revoke the job's public link."""
    reply = api.revoke_share(user, session, job_id)
    flash(request, "Public link revoked." if reply.revoked else "The job had no public link.")
    return redirect(f"/jobs/{job_id}")


@router.get("/{job_id}/report.html")
def report_html_file(user: PageUser, session: SessionDep, job_id: IdPath) -> Response:
    """The report of a completed job as one standalone HTML file (inline SVG, no script)."""
    job = api.get_job(user, session, job_id)
    if job.status != "completed" or not job.report:
        raise NotFound(f"job {job_id} has no report (it is {job.status})", field="job_id")
    return Response(
        report_html(job.report, title=job.title or job.name),
        media_type="text/html; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="wowlab-job-{job_id}.html"'},
    )


@router.post("/{job_id}/cancel", dependencies=[CsrfChecked])
def cancel_job(
    request: Request,
    user: PageUser,
    session: SessionDep,
    coordinator: CoordinatorDep,
    job_id: IdPath,
) -> Response:
    """Cancel the job."""
    reply = api.cancel(user, session, coordinator, job_id)
    flash(request, "Job cancelled." if reply.cancelled else f"The job had ended ({reply.status}).")
    return redirect(f"/jobs/{job_id}")


@share_router.get("/{token}")
def shared_report(request: Request, session: SessionDep, token: ShareToken) -> Response:
    """A job's report, read-only, for anyone with its link (no login)."""
    job = _shared(session, token)
    nodes = job_provenance(session, job_id=job.id or 0)
    report = job.result if job.status == "completed" and isinstance(job.result, dict) else {}
    response = render(
        request,
        "share.html",
        None,  # the same page for everyone: no account of the viewer's shows
        job=job,
        title=job_title(job),
        fight=fight_text(job),
        nodes=len(nodes),
        iterations_done=iterations_done(
            job, in_chunk_iterations(session, job_ids=[job.id or 0]).get(job.id or 0, 0)
        ),
        elapsed=clock(elapsed_seconds(job)),
        token=token,
        compare=compare_view(session, job),
        **_report_charts(report),
    )
    response.headers.update(SHARE_HEADERS)
    return response


@share_router.get("/{token}/report.json")
def shared_report_json(session: SessionDep, token: ShareToken) -> Response:
    """The report of a shared job as a JSON file."""
    job = _shared(session, token)
    response = api.report_file(session, job)
    response.headers.update(SHARE_HEADERS)
    return response


@share_router.get("/{token}/report.html")
def shared_report_html(session: SessionDep, token: ShareToken) -> Response:
    """The report of a shared job as one standalone HTML file."""
    job = _shared(session, token)
    if job.status != "completed" or not isinstance(job.result, dict):
        raise NotFound(f"this simulation has no report (it is {job.status})", field="token")
    response = Response(
        report_html(job.result, title=job_title(job)),
        media_type="text/html; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="wowlab-job-{job.id}.html"'},
    )
    response.headers.update(SHARE_HEADERS)
    return response


def _shared(session: SessionDep, token: str) -> SimJob:
    job = shared_job(session, token=token)
    if job is None:
        # Unknown and revoked links look the same: nothing tells which tokens once worked.
        raise NotFound("no such shared report (the link may have been revoked)", field="token")
    return job


__all__ = ["router", "share_router"]
