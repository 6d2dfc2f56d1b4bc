"""zigbee2mqtt's payloads read as the appliance reads them (protocol only, on bytes)."""

from __future__ import annotations

import json

import pytest

from integrations.mqtt.zigbee2mqtt_exposes import (
    Z2mError,
    acknowledged,
    describe,
    ieee_of,
    parse_availability,
    parse_devices,
    parse_state,
    switch_payload,
)
from tests.integrations.mqtt.zigbee2mqtt_sim import COORDINATOR, PLUG, SENSOR, THERMOSTAT


def _relay(endpoint: str) -> dict:
    """A two-gang relay: each switch on its own endpoint, its property suffixed (Exposes: ``name_endpoint``)."""
    features = [{"type": "binary", "name": "state", "property": f"state_{endpoint}", "access": 7,
                 "value_on": "ON", "value_off": "OFF", "endpoint": endpoint}]
    return {"type": "switch", "endpoint": endpoint, "features": features}


def test_the_device_list_keeps_switches_and_thermostats_only() -> None:
    devices, skipped = parse_devices(json.dumps([COORDINATOR, PLUG, THERMOSTAT, SENSOR]).encode())
    assert [(d.ieee, d.kind) for d in devices] == [("a4:c1:38:00:00:00:00:01", "switch"),
                                                    ("00:0d:6f:00:00:00:00:02", "thermostat")]
    assert skipped == 2
    plug, thermostat = devices
    assert (plug.switch_property, plug.power_property, plug.energy_property) == ("state", "power", "energy")
    assert thermostat.cooling is not None and thermostat.cooling.step_c == 0.5
    assert thermostat.modes == ("off", "heat", "cool")  # emergency_heating is not a mode the appliance sets


def test_a_switch_on_an_endpoint_uses_its_suffixed_property() -> None:
    entry = {**PLUG, "definition": {**PLUG["definition"], "exposes": [_relay("l1"), _relay("l2")]}}
    device = describe(entry)
    assert device is not None and device.switch_property == "state_l1"
    assert switch_payload(device, False) == {"state_l1": "OFF"}
    assert parse_state(device, b'{"state_l1": "ON", "state_l2": "OFF"}') == {"on": True}


def test_a_radiator_valve_heats_only_on_its_current_heating_setpoint() -> None:
    climate = {"type": "climate", "features": [
        {"type": "numeric", "name": "current_heating_setpoint", "property": "current_heating_setpoint",
         "access": 7, "value_min": 5, "value_max": 30, "value_step": 0.5, "unit": "°C"},
        {"type": "numeric", "name": "local_temperature", "property": "local_temperature", "access": 5}]}
    entry = {**THERMOSTAT, "definition": {**THERMOSTAT["definition"], "exposes": [climate]}}
    device = describe(entry)
    assert device is not None and device.cooling is None and device.heating is not None
    assert device.heating.property == "current_heating_setpoint"
    assert parse_state(device, b'{"current_heating_setpoint": 21.5, "local_temperature": 19}') == {
        "heating_setpoint_c": 21.5, "indoor_c": 19.0}
    with pytest.raises(Z2mError):
        switch_payload(device, False)  # no system mode to set


def test_a_read_only_switch_is_not_a_target() -> None:
    entry = {**PLUG, "definition": {**PLUG["definition"], "exposes": [
        {"type": "switch", "features": [{"type": "binary", "name": "state", "property": "state", "access": 1,
                                         "value_on": "ON", "value_off": "OFF"}]}]}}
    assert describe(entry) is None


@pytest.mark.parametrize(("payload", "expected"), [
    (b'{"state":"online"}', True), (b'{"state":"offline"}', False), (b"online", True), (b"offline", False),
    (b'{"state":"maybe"}', None), (b"\xff", None), (b"[]", None)])
def test_availability_in_both_formats(payload: bytes, expected: bool | None) -> None:
    assert parse_availability(payload) is expected


def test_state_values_of_the_wrong_type_are_left_out() -> None:
    (plug,) = parse_devices(json.dumps([PLUG]).encode())[0]
    assert parse_state(plug, b'{"state": "TOGGLE", "power": "12", "energy": 3}') == {}
    assert parse_state(plug, b'{"power": 1e400}') == {}
    for bad in (b"[1]", b"\xff", b"{" * 5000):
        with pytest.raises(Z2mError):
            parse_state(plug, bad)


def test_ieee_addresses_and_acknowledgement() -> None:
    assert ieee_of("0x00158D00018255DF") == "00:15:8d:00:01:82:55:df"
    assert ieee_of("0x1234") is None and ieee_of(7) is None
    assert acknowledged({"cooling_setpoint_c": 26.0}, {"cooling_setpoint_c": 26.04})
    assert not acknowledged({"on": False}, {"power_kw": 0.0})
