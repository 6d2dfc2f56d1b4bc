"""MQTT with Home Assistant discovery: the whole appliance against a real Mosquitto on loopback.

Home Assistant is played by a plain MQTT client: it reads the retained discovery and state, sends
its birth message, and sends commands as a Home Assistant script would (``mqtt.publish``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ems.accounts import Accounts, Scope
from integrations.mqtt.discovery import number
from tests.conftest import require_tool
from tests.e2e.conftest import (
    FAST_SCENARIO,
    HOME_CONFIG,
    HOME_IEEE,
    HOME_RULES,
    HOME_SCENARIO,
    OWNER,
    Appliance,
    local_clock,
    running_appliance,
)
from tests.integrations.mqtt.ha_rules import check_sensor_config
from tests.mosquitto import MOSQUITTO, Broker, Watcher, running_broker

SITE = "maple-12"
BASE = f"ems/{SITE}"
METER = "main"


def _config(port: int) -> str:
    return HOME_CONFIG + f"""
mqtt:
  host: 127.0.0.1
  port: {port}
  site_id: {SITE}
  first_retry_s: 0.1
  max_retry_s: 0.5
  refresh_s: 0.5
  cost_min_gap_s: 1
"""


@contextlib.asynccontextmanager
async def _home(tmp_path: Path, scenario: dict[str, Any] = HOME_SCENARIO) -> AsyncIterator[
        tuple[Appliance, Broker, Watcher]]:
    require_tool(MOSQUITTO, "the MQTT tests run a real broker")
    async with running_broker(tmp_path / "broker") as broker, Watcher(broker.port) as ha:
        async with running_appliance(tmp_path, scenario, config_text=_config(broker.port),
                                     rules_text=HOME_RULES, clock=local_clock("20:00")) as home:
            await home.online()
            await home.wait_until(lambda: len(home.hub.control.registry.devices) == 3, timeout_s=15,
                                  what="the three home devices set up")
            await home.wait_until(lambda: home.hub.control.load_control.view(METER, 5101) is not None,
                                  timeout_s=15, what="the event heard")
            yield home, broker, ha


@pytest.fixture
async def home(tmp_path: Path) -> AsyncIterator[tuple[Appliance, Broker, Watcher]]:
    async with _home(tmp_path) as running:
        yield running


def _configs(ha: Watcher) -> dict[str, dict[str, Any]]:
    return {t: json.loads(p) for t, p in ha.latest.items() if t.startswith("homeassistant/sensor/") and p}


def _meter_config(ha: Watcher, key: str) -> dict[str, Any] | None:
    return _configs(ha).get(f"homeassistant/sensor/ems_{SITE}_{METER}/{key}/config")


async def test_discovery_is_what_home_assistant_accepts_and_the_energy_dashboard_takes(home: Any) -> None:
    _appliance, _broker, ha = home
    keys = ("demand_kw", "energy_delivered_kwh", "energy_received_kwh", "price", "tier", "cycle_cost",
            "projected_bill", "dr_event", "message")
    await ha.wait_for(lambda w: all(_meter_config(w, k) for k in keys), "every meter sensor discovered")
    await ha.wait_for(lambda w: sum(1 for t in _configs(w) if "/ems_maple-12_02_50" in t) >= 6,
                      "the home devices discovered")
    configs = _configs(ha)
    for topic, config in configs.items():
        assert check_sensor_config(config) == [], topic
    async with Watcher(_broker.port, ("homeassistant/#",)) as late:  # a Home Assistant that starts later
        await late.wait_for(lambda w: set(configs) <= set(w.latest), "the retained configs")
        assert all(retain for t, _p, retain, _at in late.seen if t in configs)

    demand = _meter_config(ha, "demand_kw")
    assert demand is not None
    assert (demand["device_class"], demand["state_class"], demand["unit_of_measurement"]) == ("power", "measurement", "kW")
    for key in ("energy_delivered_kwh", "energy_received_kwh"):
        energy = _meter_config(ha, key)
        assert energy is not None
        assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
            "energy", "total_increasing", "kWh")
    bill = _meter_config(ha, "projected_bill")
    assert bill is not None and (bill["device_class"], bill["state_class"], bill["unit_of_measurement"]) == (
        "monetary", "total", "USD")
    price = _meter_config(ha, "price")
    assert price is not None and price["unit_of_measurement"] == "USD/kWh"
    assert {"topic": f"{BASE}/status"} in demand["availability"]
    assert demand["state_topic"] == f"{BASE}/{METER}/demand_kw"


async def test_the_state_is_published_and_follows_the_meter_and_the_event(home: Any) -> None:
    appliance, _broker, ha = home
    await ha.wait_for(lambda w: w.latest.get(f"{BASE}/status") == b"online", "the site online")
    await ha.wait_for(lambda w: f"{BASE}/{METER}/demand_kw" in w.latest, "demand published")
    meter = appliance.hub.state.meters[METER]
    await ha.wait_for(lambda w: float(w.latest[f"{BASE}/{METER}/demand_kw"]) == pytest.approx(
        meter.value("demand_kw"), abs=1e-3), "the demand the appliance holds")
    assert float(ha.latest[f"{BASE}/{METER}/energy_delivered_kwh"]) > 0
    price = appliance.hub.state.active_price(METER, appliance.hub.clock())
    assert price is not None
    await ha.wait_for(lambda w: w.latest.get(f"{BASE}/{METER}/price") == number(price.price_per_kwh, 5).encode(),
                      "the meter's price")
    assert ha.latest[f"{BASE}/{METER}/tier"] == str(price.tier).encode()
    await ha.wait_for(lambda w: w.latest.get(f"{BASE}/{METER}/dr_event") == b"active", "the event running")
    attributes = ha.json(f"{BASE}/{METER}/dr_event/attributes")
    assert attributes["event_id"] == 5101 and attributes["opted_out"] is False
    pump = f"{BASE}/device/{HOME_IEEE['pump'].replace(':', '_')}"
    await ha.wait_for(lambda w: w.latest.get(f"{pump}/state") == b"off", "the pump shed, as published")
    assert ha.latest[f"{pump}/availability"] == b"online"
    await ha.wait_for(lambda w: f"{BASE}/{METER}/cycle_cost" in w.latest, "the cycle's cost")
    assert float(ha.latest[f"{BASE}/{METER}/cycle_cost"]) >= 0


async def _token(appliance: Appliance, scopes: list[Scope]) -> str:
    accounts = Accounts(appliance.hub.store)
    owner = await accounts.user(OWNER)
    assert owner is not None
    return (await accounts.create_token(owner, "Home Assistant", scopes)).secret


async def test_a_command_takes_the_pump_out_and_it_runs_again(home: Any) -> None:
    appliance, _broker, ha = home
    pump = appliance.simulator.home.device("Pool pump")
    await appliance.wait_until(lambda: not pump.on, timeout_s=15, what="the pump shed")
    topic = f"{BASE}/{METER}/command/take_out"
    await ha.publish(topic, {"token": await _token(appliance, [Scope.OVERRIDE_EVENTS]),
                             "device_id": HOME_IEEE["pump"], "id": "ha-1"})
    result = await ha.wait_for(lambda w: w.latest.get(f"{topic}/result"), "the answer")
    assert json.loads(result) == {"ok": True, "event_id": 5101, "device_id": HOME_IEEE["pump"], "id": "ha-1"}
    await appliance.wait_until(lambda: pump.on, timeout_s=10, what="the pump back on")
    assert appliance.simulator.home.device("Spa heater").shedding  # the others stay in the event
    view = appliance.hub.control.event(METER, 5101)
    assert view.excluded_devices == {HOME_IEEE["pump"]}  # the dashboard's own record of it

    async def pump_put_back() -> bool:  # recorded once the pump's report has confirmed the command
        actions = await appliance.get("/api/v1/events/main/5101/actions")
        return any(a["device_id"] == HOME_IEEE["pump"] and a["action"] == "on" for a in actions["actions"])

    await appliance.wait_until(pump_put_back, what="the pump's put-back in the event's actions")


async def test_a_token_without_the_scope_is_refused_and_nothing_changes(home: Any) -> None:
    appliance, _broker, ha = home
    topic = f"{BASE}/{METER}/command/opt_out"
    await ha.publish(topic, {"token": await _token(appliance, [Scope.READ]), "event_id": 5101})
    result = json.loads(await ha.wait_for(lambda w: w.latest.get(f"{topic}/result"), "the answer"))
    assert result["ok"] is False and "override_events" in result["error"]
    ha.latest.pop(f"{topic}/result")
    await ha.publish(topic, {"token": "ems_not-a-token", "event_id": 5101})
    result = json.loads(await ha.wait_for(lambda w: w.latest.get(f"{topic}/result"), "the answer"))
    assert result["ok"] is False and "not valid" in result["error"]
    assert appliance.hub.control.event(METER, 5101).opted_out is False
    uses = await Accounts(appliance.hub.store).token_uses()
    assert [(u.method, u.path, u.status) for u in uses if u.method == "MQTT"] == [("MQTT", topic, 403)]


async def test_opt_out_over_mqtt_is_the_dashboards_opt_out(home: Any) -> None:
    appliance, _broker, ha = home
    topic = f"{BASE}/{METER}/command/opt_out"
    await ha.publish(topic, {"token": await _token(appliance, [Scope.OVERRIDE_EVENTS])})  # the event now
    result = json.loads(await ha.wait_for(lambda w: w.latest.get(f"{topic}/result"), "the answer"))
    assert result == {"ok": True, "event_id": 5101}
    assert appliance.hub.control.event(METER, 5101).opted_out is True
    await ha.wait_for(lambda w: w.latest.get(f"{BASE}/{METER}/dr_event") == b"opted_out", "published")


async def test_after_a_broker_restart_it_reconnects_and_publishes_the_discovery_again(home: Any) -> None:
    appliance, broker, ha = home
    await ha.wait_for(lambda w: _meter_config(w, "demand_kw"), "discovered")
    bridge = appliance.hub.integrations["mqtt"]
    connections = bridge.connections
    await broker.restart()  # no persistence: every retained message is gone
    async with Watcher(broker.port) as fresh:
        await fresh.wait_for(lambda w: _meter_config(w, "demand_kw") and _meter_config(w, "energy_delivered_kwh")
                             and w.latest.get(f"{BASE}/status") == b"online", "discovery again after the restart")
        await fresh.wait_for(lambda w: f"{BASE}/{METER}/demand_kw" in w.latest, "the state again")
    assert bridge.connections == connections + 1


async def test_home_assistants_birth_message_brings_the_discovery_again(home: Any) -> None:
    _appliance, _broker, ha = home
    config_topic = f"homeassistant/sensor/ems_{SITE}_{METER}/demand_kw/config"
    await ha.wait_for(lambda w: config_topic in w.latest, "discovered")
    before = sum(1 for t, *_ in ha.seen if t == config_topic)
    await ha.publish("homeassistant/status", "online")
    await ha.wait_for(lambda w: sum(1 for t, *_ in w.seen if t == config_topic) > before, "the config again")
    again = [retain for t, _p, retain, _at in ha.seen if t == config_topic][-1]
    assert again is False  # delivered live to a subscriber (the broker keeps it retained as well)


async def test_a_clean_stop_says_offline(tmp_path: Path) -> None:
    require_tool(MOSQUITTO, "the MQTT tests run a real broker")
    async with running_broker(tmp_path / "broker") as broker, Watcher(broker.port) as ha:
        async with running_appliance(tmp_path, HOME_SCENARIO, config_text=_config(broker.port),
                                     rules_text=HOME_RULES, clock=local_clock("20:00")) as appliance:
            await appliance.online()
            await ha.wait_for(lambda w: w.latest.get(f"{BASE}/status") == b"online", "online")
        await ha.wait_for(lambda w: w.latest.get(f"{BASE}/status") == b"offline", "offline after the stop")


async def test_confirm_over_mqtt_confirms_the_message_as_the_dashboard_does(tmp_path: Path) -> None:
    async with _home(tmp_path, {**HOME_SCENARIO, "messages": FAST_SCENARIO["messages"]}) as (appliance, _b, ha):
        state = await appliance.wait_until(
            lambda: next((m for m in appliance.hub.state.messages.values() if m.message.confirmation_required), None),
            what="the alert that asks to be confirmed")
        topic = f"{BASE}/{METER}/command/confirm"
        await ha.publish(topic, {"token": await _token(appliance, [Scope.CONFIRM_MESSAGES]),
                                 "message_id": state.message.message_id})
        result = json.loads(await ha.wait_for(lambda w: w.latest.get(f"{topic}/result"), "the answer"))
        assert result == {"ok": True, "message_id": state.message.message_id}
        assert state.confirmed_at is not None
        # The meter hears of it through the outbox, as from the dashboard.
        frame = await appliance.simulator.node.wait_for("message_confirmation", timeout_s=10)
        assert frame.fields["message_id"] == state.message.message_id


async def test_what_the_customer_switched_off_is_not_delivered_and_comes_back_when_switched_on(home: Any) -> None:
    """C6 3.1 step 4: the program preferences say what is delivered, over MQTT as on the pages."""
    from ems import preferences

    appliance, _broker, ha = home
    hub = appliance.hub
    await ha.wait_for(lambda w: w.latest.get(f"{BASE}/{METER}/dr_event") == b"active", "the event published")
    await ha.wait_for(lambda w: _meter_config(w, "price") is not None, "the price sensor discovered")
    # The owner switches the price and DR events off on the Settings page (what it saves).
    hub.preferences = await preferences.save(hub.store, hub.preferences.with_changes(
        current_price=False, dr_events=False), hub.clock(), OWNER)
    gone = (f"{BASE}/{METER}/price", f"{BASE}/{METER}/dr_event", f"{BASE}/{METER}/dr_event/attributes")
    await ha.wait_for(lambda w: _meter_config(w, "price") is None and _meter_config(w, "dr_event") is None
                      and all(w.latest.get(t) == b"" for t in gone), "the price and the event taken back")
    assert _meter_config(ha, "demand_kw") is not None and _meter_config(ha, "tier") is not None  # the rest stays
    async with Watcher(_broker.port, (f"{BASE}/#", "homeassistant/#")) as late:  # nothing retained for later
        await late.wait_for(lambda w: f"{BASE}/{METER}/demand_kw" in w.latest, "the retained state")
        assert not any(late.latest.get(t) for t in gone)
        assert not [t for t in late.latest if t.endswith("/price/config") or t.endswith("/dr_event/config")]
    hub.preferences = await preferences.save(hub.store, hub.preferences.with_changes(
        current_price=True, dr_events=True), hub.clock(), OWNER)
    await ha.wait_for(lambda w: _meter_config(w, "price") is not None and w.latest.get(
        f"{BASE}/{METER}/dr_event") == b"active" and bool(w.latest.get(f"{BASE}/{METER}/price")), "back again")


async def test_the_ems_notices_are_delivered_in_the_programs_language(home: Any) -> None:
    """The language the customer chose for the program (Settings) is the one its notices are delivered in."""
    from ems import preferences

    appliance, _broker, ha = home
    hub = appliance.hub
    topic = f"{BASE}/{METER}/message"
    await ha.wait_for(lambda w: w.latest.get(topic, b"").startswith(b"Energy event 5101 has started"),
                      "the event's notice, in English")
    hub.preferences = await preferences.save(hub.store, hub.preferences.with_changes(language="es"),
                                             hub.clock(), OWNER)
    await ha.wait_for(lambda w: w.latest.get(topic, b"").startswith(
        "Ha comenzado el evento energético 5101".encode()), "the notice in Spanish")
