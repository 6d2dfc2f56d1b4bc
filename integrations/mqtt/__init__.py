"""MQTT with Home Assistant discovery: the appliance's state out, the customer's commands in.

``discovery.py`` is the protocol as data (topics, sensors, discovery payloads; no ``ems``
import); ``bridge.py`` is the adapter (aiomqtt, the bus, the commands). Off unless the ``mqtt``
section names a broker ``host``::

    mqtt:
      host: 192.168.1.10        # the broker (Home Assistant's Mosquitto add-on, or a fleet's)
      port: 1883
      username: ems             # optional, the broker's own login
      password: ...
      site_id: maple-street-12  # the topics' site level: ems/<site_id>/<meter>/...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol

from integrations.mqtt.discovery import DEFAULT_DISCOVERY_PREFIX, DEFAULT_TOPIC_PREFIX
from integrations.mqtt.settings import MqttSettings

if TYPE_CHECKING:  # aiomqtt and the core's services: imported when the bridge starts
    from integrations.mqtt.bridge import MqttBridge

__all__ = ["CONFIG_SCHEMA", "MqttSettings", "async_setup", "enabled", "settings_from_section"]

_LEVEL = vol.All(str, vol.Match(r"^[A-Za-z0-9_-]{1,64}$", msg="expected letters, digits, _ or - (no / + #)"))

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=253))),
        vol.Optional("port", default=1883): vol.All(int, vol.Range(min=1, max=65535)),
        vol.Optional("username", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=128))),
        vol.Optional("password", default=None): vol.Any(None, vol.All(str, vol.Length(max=256))),
        vol.Optional("site_id", default="home"): _LEVEL,
        vol.Optional("topic_prefix", default=DEFAULT_TOPIC_PREFIX): _LEVEL,
        vol.Optional("discovery_prefix", default=DEFAULT_DISCOVERY_PREFIX): _LEVEL,
        vol.Optional("keepalive_s", default=30): vol.All(int, vol.Range(min=5, max=3600)),
        vol.Optional("first_retry_s", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=600)),
        vol.Optional("max_retry_s", default=60.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=3600)),
        vol.Optional("connect_timeout_s", default=5.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=120)),
        vol.Optional("refresh_s", default=5.0): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=3600)),
        vol.Optional("cost_min_gap_s", default=30.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=3600)),
    }
)


def settings_from_section(section: dict[str, Any]) -> MqttSettings:
    return MqttSettings(**section)


def enabled(section: dict[str, Any] | None) -> bool:
    return bool(section and section.get("host"))


async def async_setup(hub: Any, settings: MqttSettings) -> MqttBridge:
    """Start the bridge: connected to the broker, or retrying in the background after a while."""
    from integrations.mqtt.bridge import MqttBridge

    bridge = MqttBridge(hub, settings)
    try:
        await bridge.start()
    except BaseException:
        await bridge.close()
        raise
    return bridge
