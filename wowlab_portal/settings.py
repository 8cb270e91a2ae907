"""Portal settings: pydantic-settings, read from ``WOWLAB_*`` environment variables and,
optionally, a TOML file named by ``WOWLAB_CONFIG_FILE`` (environment variables win)::

    # /etc/wowlab/portal.toml
    database_url = "postgresql://wowlab@db/wowlab"
    mqtt_url = "mqtt://broker:1883"
    mqtt_password_file = "/etc/wowlab/mqtt-bridge.password"
    lease_seconds = 90
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from wowlab_core.coordinator import CoordinatorSettings
from wowlab_core.errors import InvalidRequest
from wowlab_core.jobs import JobLimits
from wowlab_portal.proxies import Network, parse_networks

_COORDINATOR = CoordinatorSettings()
_LIMITS = JobLimits()


class PortalSettings(BaseSettings):
    """Where the portal listens, its database, and the coordinator's timings.

    Every field is read from the environment with the ``WOWLAB_`` prefix
    (``WOWLAB_DATABASE_URL``, ``WOWLAB_LEASE_SECONDS``, ...), the same variables a node
    on the ``local`` transport reads.
    """

    model_config = SettingsConfigDict(env_prefix="WOWLAB_", extra="ignore")

    #: SQLAlchemy URL; None: the default SQLite file in the data directory.
    database_url: str | None = None
    #: An MQTT broker (``mqtt://host:1883``, ``mqtts://host:8883``): when set, the portal
    #: runs the MQTT bridge, so nodes can use the ``mqtt`` transport.
    mqtt_url: str | None = None
    #: The bridge's broker password: a file holding it (``wowlab mqtt setup-broker``
    #: writes one), or the password itself. The user name is ``wowlab-bridge``.
    mqtt_password_file: str | None = None
    mqtt_password: SecretStr | None = None
    #: The hosted bridge's name when several bridges share the load (each portal host its
    #: own, stable across restarts: it names the bridge's MQTT session).
    mqtt_bridge_instance: str = ""
    #: Redis or Valkey (``redis://host:6379/0``): when set, rate limits are counted there;
    #: else in PostgreSQL (or, on SQLite, in the one process's memory).
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    lease_seconds: float = Field(default=_COORDINATOR.lease_seconds, gt=0)
    heartbeat_seconds: float = Field(default=_COORDINATOR.heartbeat_seconds, gt=0)
    offline_after_seconds: float = Field(default=_COORDINATOR.offline_after_seconds, gt=0)
    claim_lifetime_seconds: float = Field(default=_COORDINATOR.claim_lifetime.total_seconds(), gt=0)
    #: Share (0-1) of results of nodes a submitter does not own that are run again
    #: elsewhere, besides each node's first result for each user.
    verify_rate: float = Field(default=_COORDINATOR.verify_rate, ge=0, le=1)
    #: Per user: jobs pending or running at once, and iterations queued over them.
    max_active_jobs: int = Field(default=_LIMITS.max_active_jobs, ge=1)
    max_queued_iterations: int = Field(default=_LIMITS.max_queued_iterations, ge=1)
    #: The longest a node's long poll (claim status, wait for work) is held open.
    long_poll_max_seconds: float = Field(default=30.0, gt=0, le=300)
    #: Node registrations accepted per client address and minute (anonymous callers).
    register_limit_per_minute: int = Field(default=60, ge=1)
    #: How often a claim-status long poll looks at the database, for claims made by
    #: another process (claims made by this portal answer at once).
    claim_recheck_seconds: float = Field(default=1.0, gt=0)
    #: Signs session cookies. None: made once and kept in ``<data dir>/portal_secret_key``.
    secret_key: str | None = Field(default=None, min_length=16)
    #: Send the session cookie over HTTPS only (set it behind TLS).
    https_only: bool = False
    session_max_age_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    #: Login and sign-up attempts per client address and minute (whatever the account).
    login_limit_per_address_per_minute: int = Field(default=30, ge=1)
    #: Wrong passwords for one account from one address before delays start; the first
    #: delay (it doubles with each further failure) and the longest one, in seconds.
    login_free_failures: int = Field(default=3, ge=0)
    login_backoff_seconds: float = Field(default=1.0, gt=0)
    login_backoff_max_seconds: float = Field(default=900.0, gt=0)
    #: Claim attempts (and previews) per account and minute, and per client address.
    claim_limit_per_minute: int = Field(default=10, ge=1)
    claim_limit_per_address_per_minute: int = Field(default=30, ge=1)
    #: Argon2 cost of password hashes (lower only in tests).
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=8)
    #: Reverse proxies whose ``X-Forwarded-For`` is believed: addresses or CIDR blocks,
    #: comma-separated (``WOWLAB_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8``). Default: none.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: A Supabase project's JWT secret: its Supabase Auth sessions (``Authorization: Bearer
    #: <access token>``) log in as the wowlab user the database made for them (the portal
    #: must run on that project's database; see docs/supabase.md). Default: off.
    supabase_jwt_secret: str | None = Field(default=None, min_length=32)
    #: When set, ``GET /metrics`` needs ``Authorization: Bearer <this token>``.
    metrics_token: str | None = Field(default=None, min_length=16)
    #: The largest request body, and the largest one where a config is submitted.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_submission_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: How long the portal waits at start for a database that is not up yet (0: fail at
    #: once), retrying with growing pauses and logging each attempt.
    database_wait_seconds: float = Field(default=60.0, ge=0)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            parse_networks(str(v) for v in value)  # a clear error for a bad entry
        return value

    def trusted_networks(self) -> list[Network]:
        """:attr:`trusted_proxies` as networks."""
        return parse_networks(self.trusted_proxies)

    @model_validator(mode="after")
    def _mqtt_bridge_has_a_password(self) -> PortalSettings:
        if self.mqtt_url and not (
            self.mqtt_password_file or self.mqtt_password or urlsplit(self.mqtt_url).password
        ):
            raise ValueError(
                "mqtt_url needs the bridge's broker password: mqtt_password_file (written by "
                "`wowlab mqtt setup-broker`) or mqtt_password"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the file of ``WOWLAB_CONFIG_FILE``."""
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        path = os.environ.get("WOWLAB_CONFIG_FILE")
        if path:
            if not os.path.isfile(path):
                raise InvalidRequest(
                    f"WOWLAB_CONFIG_FILE={path!r} is not a file", field="config_file"
                )
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources

    def coordinator_settings(self) -> CoordinatorSettings:
        """The coordinator's share of these settings."""
        return CoordinatorSettings(
            lease_seconds=self.lease_seconds,
            heartbeat_seconds=self.heartbeat_seconds,
            offline_after_seconds=self.offline_after_seconds,
            claim_lifetime=timedelta(seconds=self.claim_lifetime_seconds),
            verify_rate=self.verify_rate,
        )

    def job_limits(self) -> JobLimits:
        """The per-job and per-user limits of submissions."""
        return JobLimits(
            max_active_jobs=self.max_active_jobs,
            max_queued_iterations=self.max_queued_iterations,
        )


__all__ = ["PortalSettings"]
