"""A small synchronous client of the portal's user API (``/api/v1``), for the CLI.

It needs only httpx (no web stack). Error answers are raised as the
:mod:`wowlab_core.errors` type the portal names; a portal that cannot be reached raises
:class:`~wowlab_core.errors.TransportError`.
"""

from __future__ import annotations

from typing import Any

import httpx

from wowlab_core import __version__
from wowlab_core.errors import TransportError
from wowlab_core.http_client import error_from_response

API = "/api/v1"
USER_AGENT = f"wowlab-cli/{__version__}"
CSRF_HEADER = "X-CSRF-Token"


def portal_url(url: str) -> str:
    """``url`` without a trailing slash; a bare ``host:port`` gets ``http://``."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


class PortalClient:
    """Calls the user API of one portal, with an API token or a login session."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = portal_url(url)
        headers = {"User-Agent": USER_AGENT}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._csrf: str | None = None

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> PortalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, body: Any = None) -> Any:
        headers = {CSRF_HEADER: self._csrf} if self._csrf and method != "GET" else None
        try:
            response = self._http.request(method, API + path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise TransportError(f"cannot reach the portal at {self.url}: {reason}") from None
        if response.status_code >= 400:
            raise error_from_response(response)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise TransportError(
                f"{self.url} answered {path} with something that is not JSON "
                "(is this a wowlab portal?)"
            ) from None

    # --- accounts -------------------------------------------------------------------

    def login(self, *, username: str, password: str) -> dict[str, Any]:
        """Start a session (kept in this client's cookies); returns the user."""
        answer = self._call(
            "POST", "/auth/login", body={"username": username, "password": password}
        )
        self._csrf = answer["csrf_token"]
        user: dict[str, Any] = answer["user"]
        return user

    def create_token(self, *, name: str) -> str:
        """A new personal API token of the logged-in user (the secret, shown once)."""
        answer = self._call("POST", "/tokens", body={"name": name})
        return str(answer["token"])

    def me(self) -> dict[str, Any]:
        """The calling user."""
        user: dict[str, Any] = self._call("GET", "/me")
        return user

    # --- jobs and nodes -------------------------------------------------------------

    def submit(
        self,
        *,
        example: str | None = None,
        config: Any = None,
        iterations: int | None = None,
        target_error: float | None = None,
        seed: int | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Submit a simulation (an example by name, or a config); returns the job.

        ``name`` names the job when the config has no name of its own (its file's name).
        """
        body = {
            "example": example,
            "config": config,
            "name": name,
            "iterations": iterations,
            "target_error": target_error,
            "seed": seed,
        }
        job: dict[str, Any] = self._call(
            "POST", "/jobs", body={k: v for k, v in body.items() if v is not None}
        )
        return job

    def job(self, job_id: int) -> dict[str, Any]:
        """One of my jobs: progress, and the report once completed."""
        job: dict[str, Any] = self._call("GET", f"/jobs/{job_id}")
        return job

    def cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel one of my jobs; ``{"cancelled": bool, "status": ...}``."""
        answer: dict[str, Any] = self._call("POST", f"/jobs/{job_id}/cancel")
        return answer

    def job_url(self, job_id: int) -> str:
        """The web page of a job."""
        return f"{self.url}/jobs/{job_id}"

    def jobs(self) -> list[dict[str, Any]]:
        """My newest jobs."""
        jobs: list[dict[str, Any]] = self._call("GET", "/jobs")
        return jobs

    def nodes(self) -> list[dict[str, Any]]:
        """My nodes."""
        nodes: list[dict[str, Any]] = self._call("GET", "/nodes")
        return nodes


__all__ = ["PortalClient", "portal_url"]
