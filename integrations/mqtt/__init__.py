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
      tls: false                # true: TLS to the broker (usually port 8883); ca_file: a CA of its own
      zigbee2mqtt:              # drive zigbee2mqtt's plugs and thermostats as load-control targets
        enabled: true
        base_topic: zigbee2mqtt
        devices:                # optional, by friendly name or IEEE address
          pool_pump_plug: {device_class: pool_pump, nominal_kw: 1.5}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol

from integrations.mqtt.discovery import DEFAULT_DISCOVERY_PREFIX, DEFAULT_TOPIC_PREFIX
from integrations.mqtt.settings import MqttSettings, Zigbee2MqttSettings

if TYPE_CHECKING:  # aiomqtt and the core's services: imported when the bridge starts
    from integrations.mqtt.bridge import MqttBridge

__all__ = ["CONFIG_SCHEMA", "MqttSettings", "async_setup", "enabled", "settings_from_section"]

DEVICE_CLASSES = (
    "hvac", "strip_heater", "water_heater", "pool_pump", "smart_appliance", "irrigation_pump",
    "commercial_load", "simple_load", "exterior_lighting", "interior_lighting", "electric_vehicle",
    "generation",
)
_LEVEL = vol.All(str, vol.Match(r"^[A-Za-z0-9_-]{1,64}$", msg="expected letters, digits, _ or - (no / + #)"))

_Z2M_DEVICE = vol.Schema(
    {
        vol.Optional("name"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional("device_class"): vol.All(
            str, vol.Lower, vol.In(DEVICE_CLASSES, msg=f"expected one of {', '.join(DEVICE_CLASSES)}")),
        vol.Optional("enrollment_group"): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("nominal_kw"): vol.All(vol.Coerce(float), vol.Range(min=0, max=1000)),
    }
)

ZIGBEE2MQTT_SCHEMA = vol.Schema(
    {
        vol.Optional("enabled", default=False): bool,
        vol.Optional("base_topic", default="zigbee2mqtt"): vol.All(
            str, vol.Match(r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,3}$",
                           msg="expected a topic such as zigbee2mqtt (letters, digits, _ - and /)")),
        vol.Optional("command_timeout_s", default=5.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=120)),
        vol.Optional("devices", default={}): vol.Any(None, {str: vol.Any(None, _Z2M_DEVICE)}),
    }
)

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=253))),
        vol.Optional("port", default=1883): vol.All(int, vol.Range(min=1, max=65535)),
        vol.Optional("username", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=128))),
        vol.Optional("password", default=None): vol.Any(None, vol.All(str, vol.Length(max=256))),
        vol.Optional("tls", default=False): bool,
        vol.Optional("ca_file", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=1024))),
        vol.Optional("site_id", default="home"): _LEVEL,
        vol.Optional("topic_prefix", default=DEFAULT_TOPIC_PREFIX): _LEVEL,
        vol.Optional("discovery_prefix", default=DEFAULT_DISCOVERY_PREFIX): _LEVEL,
        vol.Optional("keepalive_s", default=30): vol.All(int, vol.Range(min=5, max=3600)),
        vol.Optional("first_retry_s", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=600)),
        vol.Optional("max_retry_s", default=60.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=3600)),
        vol.Optional("connect_timeout_s", default=5.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=120)),
        vol.Optional("refresh_s", default=5.0): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=3600)),
        vol.Optional("cost_min_gap_s", default=30.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=3600)),
        vol.Optional("zigbee2mqtt", default={}): vol.Any(None, ZIGBEE2MQTT_SCHEMA),
    }
)


def settings_from_section(section: dict[str, Any]) -> MqttSettings:
    values = dict(section)
    z2m = values.pop("zigbee2mqtt", None)
    if z2m is not None and not isinstance(z2m, Zigbee2MqttSettings):
        z2m = Zigbee2MqttSettings.from_section(ZIGBEE2MQTT_SCHEMA(dict(z2m)))
    return MqttSettings(**values, zigbee2mqtt=z2m or Zigbee2MqttSettings())


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
