"""The simulated home's devices: loads a test can rely on, and the meter sees them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ems.clock import FixedClock
from integrations.simulator import scenario_from_dict
from integrations.simulator.home import SimulatedHome
from integrations.simulator.meter import SimulatedMeter

NOON = datetime(2026, 7, 1, 19, 0, tzinfo=UTC)  # 12:00 in Los Angeles
EVENING = datetime(2026, 7, 2, 2, 0, tzinfo=UTC)  # 19:00 in Los Angeles


def build(devices: list[dict], *, at: datetime = NOON, **home) -> tuple[SimulatedHome, SimulatedMeter, FixedClock]:
    scenario = scenario_from_dict({"meter": {"profile_interval_min": 15}, "home": {"devices": devices, **home}})
    clock = FixedClock(at)
    meter = SimulatedMeter(scenario, clock)
    sim_home = SimulatedHome(scenario.home, meter.household, clock)
    sim_home.tick(at)
    return sim_home, meter, clock


def battery(**spec) -> dict:
    return {"kind": "battery", "name": "Home battery", "capacity_kwh": 13.5, "max_kw": 5.0, **spec}


def test_soc_rises_while_the_battery_charges():
    sim_home, _meter, clock = build([battery(soc_pct=50)])
    device = sim_home.device("Home battery")
    device.set_mode_by_hand("charge")
    sim_home.tick(NOON + timedelta(hours=1))
    assert device.soc_pct == pytest.approx(50 + 5.0 / 13.5 * 100)
    assert device.node.get_attribute(1, 0x0001, "battery_percentage_remaining") == round(device.soc_pct * 2)


def test_charging_stops_at_100_percent():
    sim_home, _meter, _clock = build([battery(soc_pct=90)])
    device = sim_home.device("Home battery")
    device.set_mode_by_hand("charge")
    sim_home.tick(NOON + timedelta(hours=3))
    assert device.soc_pct == 100.0
    assert device.load_kw == 0.0


def test_discharging_stops_at_the_reserve():
    sim_home, _meter, _clock = build([battery(soc_pct=20, reserve_pct=10)])
    device = sim_home.device("Home battery")
    device.set_mode_by_hand("discharge")
    assert device.load_kw == -5.0
    sim_home.tick(NOON + timedelta(hours=2))
    assert device.soc_pct == 10.0
    assert device.load_kw == 0.0


def test_the_battery_follows_its_charge_and_discharge_windows():
    spec = battery(charge=[{"start": "10:00", "end": "15:00"}], discharge=[{"start": "16:00", "end": "21:00"}])
    sim_home, _meter, _clock = build([spec])
    device = sim_home.device("Home battery")
    assert device.load_kw == 5.0
    at = NOON
    while at < NOON + timedelta(hours=4, minutes=30):  # to 16:30, ten minutes at a time
        at += timedelta(minutes=10)
        sim_home.tick(at)
    assert device.load_kw == -5.0


def test_time_scale_moves_the_battery_faster():
    sim_home, _meter, _clock = build([battery(soc_pct=50)], time_scale=60)
    device = sim_home.device("Home battery")
    device.set_mode_by_hand("charge")
    sim_home.tick(NOON + timedelta(minutes=1))  # an hour of simulated time
    assert device.soc_pct == pytest.approx(50 + 5.0 / 13.5 * 100)


def test_a_plug_draws_its_nominal_load_only_while_on():
    sim_home, _meter, _clock = build([{"kind": "plug", "name": "Pool pump", "nominal_kw": 1.5}])
    pump = sim_home.device("Pool pump")
    assert pump.load_kw == 1.5
    assert pump.node.get_attribute(1, 0x0B04, "active_power") == 1500
    pump.switch_by_hand(False)
    assert pump.load_kw == 0.0
    assert pump.node.get_attribute(1, 0x0B04, "active_power") == 0


def test_a_plug_draws_nothing_outside_its_appliances_schedule():
    plug = {"kind": "plug", "name": "Pool pump", "nominal_kw": 1.5,
            "schedule": [{"start": "09:00", "end": "17:00"}]}
    sim_home, _meter, _clock = build([plug])
    assert sim_home.load_kw == 1.5
    sim_home.tick(EVENING)
    assert sim_home.load_kw == 0.0


def test_the_thermostat_holds_the_house_near_its_cooling_setpoint():
    thermostat = {"kind": "thermostat", "name": "Living room", "cooling_setpoint_c": 24.0, "system_mode": "cool"}
    sim_home, _meter, _clock = build([thermostat], house={"indoor_c": 28.0})
    device = sim_home.device("Living room")
    assert device.load_kw == 3.5  # too warm: the compressor runs
    sim_home.tick(NOON + timedelta(hours=4))
    assert device.indoor_c == pytest.approx(24.0, abs=0.6)


def test_a_setpoint_changed_by_hand_is_what_the_thermostat_reports():
    thermostat = {"kind": "thermostat", "name": "Living room"}
    sim_home, _meter, _clock = build([thermostat])
    device = sim_home.device("Living room")
    device.set_by_hand(cooling_c=26.0, system_mode="auto")
    assert device.node.get_attribute(1, 0x0201, "occupied_cooling_setpoint") == 2600
    assert device.node.get_attribute(1, 0x0201, "system_mode") == 1  # Auto


def test_the_home_load_is_part_of_the_meters_demand():
    scenario = scenario_from_dict({"meter": {"profile_interval_min": 15},
                                   "home": {"devices": [{"kind": "plug", "name": "EV charger", "nominal_kw": 7.2}]}})
    with_home = SimulatedMeter(scenario)
    without = SimulatedMeter(scenario_from_dict({"meter": {"profile_interval_min": 15}}))
    with_home.extra_kw = 7.2
    with_home.tick(NOON)
    without.tick(NOON)
    assert with_home.demand_kw == pytest.approx(without.demand_kw + 7.2)


def test_with_a_thermostat_the_households_own_hvac_is_not_counted_twice():
    from integrations.simulator.runner import SimulatedHan

    scenario = scenario_from_dict({"household": {"hvac": {"cooling_above_c": 0.0}},
                                   "home": {"devices": [{"kind": "thermostat", "name": "Living room",
                                                         "system_mode": "off"}]}})
    sim = SimulatedHan(scenario, clock=FixedClock(NOON))
    sim.tick(NOON)
    household = sim.meter.household
    assert not sim.meter.household_hvac
    assert sim.meter.demand_kw == pytest.approx(
        household.net_kw(NOON, include_hvac=False))  # thermostat off: no HVAC at all


def test_a_benchmark_home_hosts_200_extra_plugs():
    sim_home, _meter, _clock = build([], extra_plugs={"count": 200, "nominal_kw": 1.0})
    nodes = [d.node for d in sim_home.devices]
    assert len(nodes) == 200
    assert len({n.ieee for n in nodes}) == len({n.nwk for n in nodes}) == 200
    assert sim_home.device("Plug 200").load_kw == 1.0
    assert sim_home.load_kw == pytest.approx(200.0)


async def test_the_simulator_ticks_on_its_clock_only():
    from integrations.simulator.meter import ENDPOINT, TIME
    from integrations.simulator.runner import SimulatedHan
    from integrations.zigbee.se.codec import utc_time_to_datetime

    clock = FixedClock(NOON)
    sim = SimulatedHan(scenario_from_dict({"meter": {"report_interval": "1m", "profile_interval_min": 15}}),
                       clock=clock)

    def meter_time() -> datetime | None:
        return utc_time_to_datetime(int(sim.meter.node.get_attribute(ENDPOINT, TIME, "time")))

    await sim.start()
    try:
        assert meter_time() == NOON
        for _ in range(20):
            await asyncio.sleep(0)
        assert meter_time() == NOON  # the clock stands still: no tick, however long real time runs
        clock.advance(minutes=1)
        for _ in range(20):
            if meter_time() != NOON:
                break
            await asyncio.sleep(0)
        assert meter_time() == NOON + timedelta(minutes=1)  # one report interval of the clock: one tick
    finally:
        await sim.stop()
