"""The simulated meter: registers that add up, a rate it can explain, and SE answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ems.errors import ConfigError
from integrations.simulator import scenario_from_dict
from integrations.simulator.meter import SimulatedMeter
from integrations.simulator.scenario import load_scenario
from integrations.zigbee.se.clusters import Metering, Price

NOON = datetime(2026, 7, 1, 19, 0, tzinfo=UTC)  # 12:00 in Los Angeles


def meter(**overrides) -> SimulatedMeter:
    return SimulatedMeter(scenario_from_dict({"meter": {"profile_interval_min": 15}, **overrides}))


def test_solar_at_noon_makes_the_meter_run_backwards():
    sim = meter()
    sim.tick(NOON)
    received = sim.received_kwh
    sim.tick(NOON + timedelta(minutes=10))
    assert sim.received_kwh > received
    assert sim.node.get_attribute(1, Metering, "instantaneous_demand") < 0


def test_a_long_step_closes_every_interval_it_spans_each_with_its_share():
    """The meter process stopped for 40 minutes (SIGSTOP, a clock jump): after it, three intervals
    closed, each with the energy of its own minutes, and the registers agree with them."""
    sim = meter()
    sim.tick(NOON + timedelta(minutes=5))
    delivered, received = sim.delivered_kwh, sim.received_kwh
    sim.tick(NOON + timedelta(minutes=45))
    closed = [i for i in sim.intervals if i.start >= NOON]
    assert [i.start for i in closed] == [NOON, NOON + timedelta(minutes=15), NOON + timedelta(minutes=30)]
    energy = [i.consumed_kwh + i.generated_kwh for i in closed]
    # 15 and 15 minutes of the same demand in the last two (the first had 5 minutes before the stop).
    assert energy[1] == pytest.approx(energy[2]) and energy[0] > 0
    assert sum(i.consumed_kwh for i in closed) == pytest.approx(sim.delivered_kwh - delivered, abs=1e-9)
    assert sum(i.generated_kwh for i in closed) == pytest.approx(sim.received_kwh - received, abs=1e-9)
    assert sim.current.start == NOON + timedelta(minutes=45)


def test_summation_registers_and_intervals_agree():
    sim = meter()
    sim.tick(NOON)
    delivered, received = sim.delivered_kwh, sim.received_kwh
    for minute in range(1, 61):
        sim.tick(NOON + timedelta(minutes=minute))
    closed = [i for i in sim.intervals if i.start >= NOON]
    assert len(closed) == 4
    assert sum(i.consumed_kwh for i in closed) == pytest.approx(sim.delivered_kwh - delivered, abs=1e-9)
    assert sum(i.generated_kwh for i in closed) == pytest.approx(sim.received_kwh - received, abs=1e-9)


def test_a_day_of_history_is_there_from_the_start():
    sim = meter()
    sim.tick(NOON)
    assert len(sim.intervals) == 96  # 24 h of 15-minute intervals


def test_rate_attributes_describe_blocks_and_billing_period():
    sim = meter(rate={"block_thresholds_kwh": [300, 600], "block_prices": [0.1, 0.2, 0.3]})
    sim.tick(NOON)
    assert sim.node.get_attribute(1, Price, "block1_threshold") == 300_000
    assert sim.node.get_attribute(1, Price, "block2_threshold") == 600_000
    assert sim.node.get_attribute(1, Price, "current_billing_period_duration") == 30 * 1440
    assert bytes(sim.node.get_attribute(1, Price, "tier2_price_label")) == b"Block 2"


def test_crossing_a_block_threshold_publishes_a_new_price():
    sim = meter(rate={"block_thresholds_kwh": [1.0], "block_prices": [0.1, 0.2],
                      "billing_period_start_days_ago": 0})
    sim.tick(NOON - timedelta(hours=6))
    assert sim.price_changed(NOON - timedelta(hours=6))
    first = sim.price
    sim.block_period_kwh = 5.0
    assert sim.price_changed(NOON - timedelta(hours=6))
    assert (first.tier, sim.price.tier) == (1, 2)
    assert sim.price.price == 0.2


def test_scenario_errors_name_file_line_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("meter:\n  report_interval: fast\nevents:\n  - {at: 1m, id: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    text = "\n".join(err.value.problems)
    assert f"{path}:2: meter.report_interval: expected a duration" in text
    assert f"{path}:4: events.0.duration_min: required key not provided" in text


def test_the_demo_scenario_is_valid_and_sends_every_kind_of_message():
    from ems.config import default_config_dir

    scenario = load_scenario(default_config_dir() / "scenarios" / "demo.yaml")
    texts = " ".join(m["text"].lower() for m in scenario.messages)
    for kind in ("outage", "energy usage warning", "rate change", "day-ahead", "new billing period",
                 "grid reliability"):
        assert kind in texts, kind


def test_a_published_tier_is_always_one_of_the_tiers_counted():
    """A CPP price at tier 4 on a rate of three tiers counts four: never "tier 4 of 3" (§3.2.1.2.1.9)."""
    from integrations.simulator.rate import PricePoint

    sim = meter(rate={"tou": [{"name": "off-peak", "start": "00:00", "end": "16:00", "price": 0.29, "tier": 1},
                              {"name": "on-peak", "start": "16:00", "end": "24:00", "price": 0.51, "tier": 3}]})
    now = datetime(2026, 7, 1, 19, 0, tzinfo=UTC)
    cpp = sim.price_fields(PricePoint(0.95, 4, "CPP", 0, "event", now + timedelta(minutes=30)), now)
    assert divmod(cpp["number_of_price_tiers_and_register_tier"], 16) == (4, 4)
    usual = sim.price_fields(sim.rate.price_at(now, 0.0), now)
    assert divmod(usual["number_of_price_tiers_and_register_tier"], 16) == (3, 1)
