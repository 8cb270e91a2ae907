"""Portal settings: pydantic-settings, read from ``WOWLAB_*`` environment variables and,
optionally, a TOML file named by ``WOWLAB_CONFIG_FILE`` (environment variables win)::

    # /etc/wowlab/portal.toml
    database_url = "postgresql://wowlab@db/wowlab"
    mqtt_url = "mqtt://broker:1883"
    lease_seconds = 90
"""

from __future__ import annotations

import os
from datetime import timedelta

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from wowlab_core.coordinator import CoordinatorSettings
from wowlab_core.errors import InvalidRequest

_COORDINATOR = CoordinatorSettings()


class PortalSettings(BaseSettings):
    """Where the portal listens, its database, and the coordinator's timings.

    Every field is read from the environment with the ``WOWLAB_`` prefix
    (``WOWLAB_DATABASE_URL``, ``WOWLAB_LEASE_SECONDS``, ...), the same variables a node
    on the ``local`` transport reads.
    """

    model_config = SettingsConfigDict(env_prefix="WOWLAB_", extra="ignore")

    #: SQLAlchemy URL; None: the default SQLite file in the data directory.
    database_url: str | None = None
    #: An MQTT broker (``mqtt://host:1883``, ``mqtts://user:pass@host``): when set, the
    #: portal runs the MQTT bridge, so nodes can use the ``mqtt`` transport.
    mqtt_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    lease_seconds: float = Field(default=_COORDINATOR.lease_seconds, gt=0)
    heartbeat_seconds: float = Field(default=_COORDINATOR.heartbeat_seconds, gt=0)
    offline_after_seconds: float = Field(default=_COORDINATOR.offline_after_seconds, gt=0)
    claim_lifetime_seconds: float = Field(default=_COORDINATOR.claim_lifetime.total_seconds(), gt=0)
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
    #: Login attempts per account and minute, and per client address and minute.
    login_limit_per_minute: int = Field(default=10, ge=1)
    login_limit_per_address_per_minute: int = Field(default=30, ge=1)
    #: Claim attempts (and previews) per account and minute, and per client address.
    claim_limit_per_minute: int = Field(default=10, ge=1)
    claim_limit_per_address_per_minute: int = Field(default=30, ge=1)
    #: Argon2 cost of password hashes (lower only in tests).
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=8)

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
        )


__all__ = ["PortalSettings"]
