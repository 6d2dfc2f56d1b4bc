"""The ``mqtt`` section, validated (no aiomqtt import: ``ems check-config`` reads only this)."""

from __future__ import annotations

from dataclasses import dataclass

from integrations.mqtt import discovery


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """The validated ``mqtt`` section (``host`` None: the integration is off)."""

    host: str | None = None
    port: int = 1883
    username: str | None = None
    password: str | None = None
    site_id: str = "home"
    topic_prefix: str = discovery.DEFAULT_TOPIC_PREFIX
    discovery_prefix: str = discovery.DEFAULT_DISCOVERY_PREFIX
    keepalive_s: int = 30
    first_retry_s: float = 1.0
    max_retry_s: float = 60.0
    connect_timeout_s: float = 5.0
    refresh_s: float = 5.0
    cost_min_gap_s: float = 30.0
