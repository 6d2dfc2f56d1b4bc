"""Home Assistant MQTT discovery, as data: the topics, the sensors and their config payloads.

No ``ems`` import: this module knows MQTT topics and Home Assistant's discovery format only
(https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery). The adapter (``bridge.py``)
fills the values.

Topics carry the site and the meter, so a fleet can share one broker::

    ems/<site>/status                          online | offline (retained; the last will says offline)
    ems/<site>/<meter>/<key>                   one retained value per sensor (demand_kw, price, ...)
    ems/<site>/<meter>/<key>/attributes        JSON details of a text sensor (the event, the message)
    ems/<site>/device/<device>/<key>           a home device's state and power
    ems/<site>/device/<device>/availability    online | offline: whether the device answers
    ems/<site>/<meter>/command/<name>          commands in (see ``COMMANDS``); answers on .../result

Home Assistant's rules for what it accepts (read from its source, ``components/sensor/const.py``
``DEVICE_CLASS_UNITS`` and ``DEVICE_CLASS_STATE_CLASSES``, ``components/mqtt/sensor.py``
``validate_sensor_state_and_device_class_config``, ``components/energy/validate.py``): power in W or
kW with state class measurement; energy in Wh or kWh with total or total_increasing (the Energy
dashboard takes only those); a monetary sensor's unit is a currency and its state class total;
an enum sensor lists its options and has neither unit nor state class. A price per kWh is a plain
sensor ("USD/kWh"), which is what the Energy dashboard's "use an entity with the current price" takes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

DEFAULT_DISCOVERY_PREFIX = "homeassistant"
DEFAULT_TOPIC_PREFIX = "ems"
ONLINE, OFFLINE = "online", "offline"

EVENT_STATES = ("none", "scheduled", "active", "opted_out")

# Commands in, and the scope of the appliance's API tokens each needs (ems.accounts.Scope values).
COMMANDS: dict[str, str] = {
    "opt_out": "override_events",  # {"event_id": 5101} (or the event running now)
    "opt_in": "override_events",
    "take_out": "override_events",  # {"device_id": "...", "event_id": ...}: one device out of the event
    "put_back": "override_events",
    "confirm": "confirm_messages",  # {"message_id": 7, "answer": "yes"}
}


def slug(text: str) -> str:
    """A topic level and discovery id made of [a-z0-9_-] (HA's node_id and object_id)."""
    return re.sub(r"[^a-z0-9_-]+", "_", text.strip().lower()).strip("_") or "x"


@dataclass(frozen=True, slots=True)
class Sensor:
    """One Home Assistant sensor: its key (the last topic level), name and classes."""

    key: str
    name: str
    device_class: str | None = None
    state_class: str | None = None
    unit: str | None = None  # "{currency}" is filled in with the plan's currency
    icon: str | None = None
    options: tuple[str, ...] = ()
    attributes: bool = False  # has a JSON attributes topic
    precision: int | None = None
    # The program information it delivers (``ems.preferences.INFORMATION``): a sensor of information
    # the customer switched off is not offered (its discovery config is removed) nor published.
    information: str | None = None

    def unit_for(self, currency: str) -> str | None:
        return None if self.unit is None else self.unit.replace("{currency}", currency)


METER_SENSORS: tuple[Sensor, ...] = (
    Sensor("demand_kw", "Demand", "power", "measurement", "kW", precision=3, information="usage_and_demand"),
    Sensor("energy_delivered_kwh", "Energy from the grid", "energy", "total_increasing", "kWh", precision=3,
           information="usage_and_demand"),
    Sensor("energy_received_kwh", "Energy to the grid", "energy", "total_increasing", "kWh", precision=3,
           information="usage_and_demand"),
    Sensor("price", "Price", None, "measurement", "{currency}/kWh", "mdi:cash", precision=4,
           information="current_price"),
    Sensor("tier", "Price tier", None, None, None, "mdi:stairs", information="current_tier"),
    Sensor("cycle_cost", "Cost this billing cycle", "monetary", "total", "{currency}", precision=2,
           information="usage_and_demand"),
    Sensor("projected_bill", "Projected bill", "monetary", "total", "{currency}", precision=2,
           information="usage_and_demand"),
    Sensor("dr_event", "Demand response event", "enum", None, None, "mdi:transmission-tower",
           options=EVENT_STATES, attributes=True, information="dr_events"),
    Sensor("message", "Latest message", None, None, None, "mdi:message-text", attributes=True),
)

DEVICE_SENSORS: tuple[Sensor, ...] = (
    Sensor("state", "State", None, None, None, "mdi:power-plug", attributes=True),
    Sensor("power_kw", "Power", "power", "measurement", "kW", precision=3),
    Sensor("indoor_c", "Indoor temperature", "temperature", "measurement", "°C", precision=1),
    Sensor("soc_pct", "Battery charge", "battery", "measurement", "%", precision=0),
)


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of one site."""

    prefix: str
    site: str
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX

    @property
    def base(self) -> str:
        return f"{self.prefix}/{slug(self.site)}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def birth(self) -> str:
        """Home Assistant's own status topic: "online" when it (re)starts."""
        return f"{self.discovery_prefix}/status"

    def meter(self, meter_id: str, key: str) -> str:
        return f"{self.base}/{slug(meter_id)}/{key}"

    def device(self, device_id: str, key: str) -> str:
        return f"{self.base}/device/{slug(device_id)}/{key}"

    def device_availability(self, device_id: str) -> str:
        return self.device(device_id, "availability")

    @property
    def commands(self) -> str:
        """The subscription to every command of the site."""
        return f"{self.base}/+/command/+"

    def command(self, meter_id: str, name: str) -> str:
        return f"{self.base}/{slug(meter_id)}/command/{name}"

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """(meter slug, command name) of a command topic, or None."""
        parts = topic.split("/")
        if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != self.base or parts[3] != "command":
            return None
        return parts[2], parts[4]

    def config(self, node: str, key: str) -> str:
        return f"{self.discovery_prefix}/sensor/{node}/{key}/config"

    def meter_node(self, meter_id: str) -> str:
        return slug(f"ems_{self.site}_{meter_id}")

    def device_node(self, device_id: str) -> str:
        return slug(f"ems_{self.site}_{device_id}")


def _config(sensor: Sensor, *, node: str, state_topic: str, availability: list[str], device: dict[str, object],
            currency: str) -> dict[str, object]:
    payload: dict[str, object] = {
        "name": sensor.name,
        "unique_id": f"{node}_{sensor.key}",
        "object_id": f"{node}_{sensor.key}",
        "state_topic": state_topic,
        "availability": [{"topic": t} for t in availability],
        "availability_mode": "all",
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device,
    }
    for name, value in (("device_class", sensor.device_class), ("state_class", sensor.state_class),
                        ("unit_of_measurement", sensor.unit_for(currency)), ("icon", sensor.icon),
                        ("suggested_display_precision", sensor.precision)):
        if value is not None:
            payload[name] = value
    if sensor.options:
        payload["options"] = list(sensor.options)
    if sensor.attributes:
        payload["json_attributes_topic"] = f"{state_topic}/attributes"
    return payload


def meter_configs(topics: Topics, meter_id: str, site_name: str, currency: str,
                  hidden: frozenset[str] = frozenset()) -> dict[str, str]:
    """Discovery topic -> config payload (JSON) of every sensor of one meter; "" (which removes
    the entity in Home Assistant) for a sensor of information in ``hidden``."""
    node = topics.meter_node(meter_id)
    device = {"identifiers": [node], "name": f"{site_name} meter {meter_id}", "manufacturer": "premise-ems",
              "model": "Energy management system"}
    return {topics.config(node, s.key): "" if s.information in hidden else json.dumps(_config(
        s, node=node, state_topic=topics.meter(meter_id, s.key), availability=[topics.status], device=device,
        currency=currency), sort_keys=True) for s in METER_SENSORS}


SENSOR_INFORMATION = {s.key: s.information for s in METER_SENSORS}


def device_configs(topics: Topics, device_id: str, name: str, kind: str, model: str,
                   keys: tuple[str, ...]) -> dict[str, str]:
    """Discovery topic -> config payload of a home device's sensors (only ``keys`` it can report)."""
    node = topics.device_node(device_id)
    device: dict[str, object] = {"identifiers": [node], "name": name, "model": model or kind,
                                 "manufacturer": "premise-ems"}
    return {topics.config(node, s.key): json.dumps(_config(
        s, node=node, state_topic=topics.device(device_id, s.key),
        availability=[topics.status, topics.device_availability(device_id)], device=device, currency=""),
        sort_keys=True) for s in DEVICE_SENSORS if s.key in keys}


def number(value: float, precision: int = 3) -> str:
    """A sensor value as its payload: a plain decimal number."""
    text = f"{value:.{precision}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
