"""The ``mqtt`` section, validated (no aiomqtt import: ``ems check-config`` reads only this)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from integrations.mqtt import discovery


@dataclass(frozen=True, slots=True)
class Z2mDeviceSettings:
    """What the configuration says about one zigbee2mqtt device (anything left out is read)."""

    name: str | None = None
    device_class: str | None = None  # an ems.model.DeviceClass name, lower case
    enrollment_group: int | None = None
    nominal_kw: float | None = None


@dataclass(frozen=True, slots=True)
class Zigbee2MqttSettings:
    """``mqtt.zigbee2mqtt``: drive zigbee2mqtt's plugs and thermostats on the same broker."""

    enabled: bool = False
    base_topic: str = "zigbee2mqtt"
    command_timeout_s: float = 5.0
    devices: dict[str, Z2mDeviceSettings] = field(default_factory=dict)  # friendly name or IEEE -> settings

    @classmethod
    def from_section(cls, section: dict[str, Any] | None) -> Zigbee2MqttSettings:
        section = dict(section or {})
        devices = {str(k): Z2mDeviceSettings(**(v or {})) for k, v in (section.pop("devices", None) or {}).items()}
        return cls(**section, devices=devices)

    def device(self, friendly_name: str, ieee: str) -> Z2mDeviceSettings:
        """The settings named by the friendly name, the IEEE address or zigbee2mqtt's 0x form."""
        for key in (friendly_name, ieee, "0x" + ieee.replace(":", "")):
            found = self.devices.get(key)
            if found is not None:
                return found
        return Z2mDeviceSettings()


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """The validated ``mqtt`` section (``host`` None: the integration is off)."""

    host: str | None = None
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None  # a CA bundle for a broker whose certificate the system does not trust
    site_id: str = "home"
    topic_prefix: str = discovery.DEFAULT_TOPIC_PREFIX
    discovery_prefix: str = discovery.DEFAULT_DISCOVERY_PREFIX
    keepalive_s: int = 30
    first_retry_s: float = 1.0
    max_retry_s: float = 60.0
    connect_timeout_s: float = 5.0
    refresh_s: float = 5.0
    cost_min_gap_s: float = 30.0
    zigbee2mqtt: Zigbee2MqttSettings = field(default_factory=Zigbee2MqttSettings)
