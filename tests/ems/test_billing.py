"""The one cost pipeline (ems.billing) over a real hub and SQLite store: the meter's prices only
when configured, the usage chart's price per interval, the meter chosen, the what-if's year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ems import billing
from ems.clock import FixedClock
from ems.config import default_config_dir
from ems.costs import ReadingArrays, cost_report
from ems.errors import NotFound, RejectedCommand
from ems.model import IntervalReading, PriceSignal
from tests.hubs import SITE, started_hub

LA = "America/Los_Angeles"
# A Tuesday, noon in Los Angeles (TOU-D-T: off-peak 0.29 until 16:00); the cycle began on 10 May.
NOW = datetime(2026, 5, 12, 19, 0, tzinfo=UTC)
RATES = {"rates.yaml": (default_config_dir() / "rates.yaml").read_text()}
HOURS = [IntervalReading("m1", NOW - timedelta(hours=h), 3600, 1.0, 0.1) for h in range(1, 24 * 20)]
# The meter's own price since 06:00 local, "until changed".
METER_PRICE = PriceSignal("m1", 1, 7, "METER", "USD", 0.95, NOW - timedelta(hours=6), None,
                          received_at=NOW - timedelta(hours=6))


def tou_config(use_meter_prices: bool) -> str:
    flag = "true" if use_meter_prices else "false"
    return SITE + f"tariff: {{plan: TOU-D-T, climate_zone: '10', use_meter_prices: {flag}}}\n"


@pytest.mark.parametrize("use_meter_prices", [True, False])
async def test_meter_cost_takes_the_meters_prices_only_when_configured(tmp_path, use_meter_prices):
    async with started_hub(tmp_path, tou_config(use_meter_prices), RATES, clock=FixedClock(NOW)) as hub:
        await hub.store.add_intervals(HOURS)
        hub.bus.publish(METER_PRICE)
        cost = await billing.meter_cost(hub, "m1")
        plan = hub.config.tariff.active_plan
    signals = [METER_PRICE] if use_meter_prices else []
    expected = cost_report(plan, ReadingArrays.from_readings(HOURS), now=NOW, timezone=LA, climate_zone="10",
                           price_signals=signals)
    assert cost.at == NOW and cost.meter_id == "m1" and cost.meter_prices_used == len(signals)
    assert cost.report == expected
    # The last hour (11:00 local, tier 1): the meter's 0.95, or the sheet's off-peak 0.29.
    last = cost.breakdown("interval")
    assert last is not None and last.energy_cost == pytest.approx(0.95 if use_meter_prices else 0.29)
    assert cost.breakdown("cycle") is cost.report.cycle and cost.projection is cost.report.projection
    with pytest.raises(RejectedCommand, match="period must be one of interval, today, cycle"):
        cost.breakdown("week")


async def test_without_a_rate_plan_there_is_no_cost(tmp_path):
    async with started_hub(tmp_path, clock=FixedClock(NOW)) as hub:
        await hub.store.add_intervals(HOURS[:3])
        with pytest.raises(NotFound, match="no rate plan configured"):
            await billing.meter_cost(hub, "m1")
        usage = await billing.priced_usage(hub, "m1", NOW - timedelta(hours=12), NOW)
    assert len(usage.readings) == 3 and usage.price_per_kwh is None and usage.plan is None


async def test_usage_price_per_interval_is_the_one_charged(tmp_path):
    async with started_hub(tmp_path, tou_config(True), RATES, clock=FixedClock(NOW)) as hub:
        await hub.store.add_intervals(HOURS)
        hub.bus.publish(METER_PRICE)
        usage = await billing.priced_usage(hub, "m1", NOW - timedelta(hours=12), NOW)
    starts = [datetime.fromtimestamp(int(s), UTC) for s in usage.readings.start_s]
    assert starts == [NOW - timedelta(hours=h) for h in range(12, 0, -1)]  # [start, end) only
    # 00:00-06:00 local at the sheet's off-peak price, from 06:00 at the meter's.
    assert usage.price_per_kwh.round(4).tolist() == [0.29] * 6 + [0.95] * 6


async def test_usage_tiers_count_from_the_cycle_start_not_the_window(tmp_path):
    cycle_start = datetime(2026, 5, 10, 7, tzinfo=UTC)  # 10 May, midnight in Los Angeles
    hours = int((NOW - cycle_start).total_seconds() // 3600)
    heavy = [IntervalReading("m1", cycle_start + timedelta(hours=h), 3600, 10.0, 0.0) for h in range(hours)]
    async with started_hub(tmp_path, tou_config(False), RATES, clock=FixedClock(NOW)) as hub:
        await hub.store.add_intervals(heavy)
        usage = await billing.priced_usage(hub, "m1", NOW - timedelta(hours=12), NOW)
    # 600 kWh since the cycle began: the last 12 hours are all past the 350 kWh block (0.29 + 0.07).
    assert usage.price_per_kwh.round(4).tolist() == [0.36] * 12


async def test_the_meter_asked_for_or_the_first_known(tmp_path):
    async with started_hub(tmp_path, clock=FixedClock(NOW)) as hub:
        with pytest.raises(NotFound, match="no meter has reported yet"):
            await billing.choose_meter(hub, None)
        assert await billing.latest_interval(hub, "m1", NOW) is None
        await hub.store.add_intervals([IntervalReading("m2", NOW - timedelta(hours=2), 3600, 1.0, 0.0),
                                       IntervalReading("m1", NOW - timedelta(hours=3), 900, 1.0, 0.0)])
        assert await billing.meter_ids(hub) == ["m1", "m2"]
        assert await billing.choose_meter(hub, None) == "m1"
        assert await billing.choose_meter(hub, "m2") == "m2"
        with pytest.raises(NotFound, match="no meter 'm3'"):
            await billing.choose_meter(hub, "m3")
        # No live meter: the latest interval stored in the day before now.
        latest = await billing.latest_interval(hub, "m1", NOW)
        assert latest is not None and latest.duration_s == 900
        assert await billing.latest_interval(hub, "m1", NOW + timedelta(days=2)) is None


async def test_plan_comparison_bills_the_year_before_today(tmp_path):
    async with started_hub(tmp_path, tou_config(False), RATES, clock=FixedClock(NOW)) as hub:
        await hub.store.add_intervals(HOURS)
        result = await billing.plan_comparison(hub, "m1")
    # To today's local midnight (07:00 UTC): the hours read before it, never today's.
    assert result.start == datetime(2025, 5, 12, 7, tzinfo=UTC) and result.end == datetime(2026, 5, 12, 7, tzinfo=UTC)
    assert result.intervals_read == len([r for r in HOURS if r.start < result.end])
    assert result.active_plan == "TOU-D-T" and result.cheapest == result.bills[0].plan


async def test_no_rates_file_no_comparison(tmp_path):
    async with started_hub(tmp_path, clock=FixedClock(NOW)) as hub:
        with pytest.raises(NotFound, match="no rates file"):
            await billing.plan_comparison(hub, "m1")


async def test_the_cost_so_far_keeps_what_was_read_when_the_meters_time_steps_back(tmp_path):
    """Inside the off-peak period the meter's time steps back an hour (the hub's clock follows it):
    the hour already read stays in today's and the cycle's cost instead of vanishing until the clock
    catches up again; a leap forwards changes nothing that was read."""
    clock = FixedClock(NOW)
    async with started_hub(tmp_path, tou_config(False), RATES, clock=clock) as hub:
        for reading in HOURS[:30]:
            hub.bus.publish(reading)  # as the meter reports them: the state knows the latest
        before = await billing.meter_cost(hub, "m1")
        clock.set(NOW - timedelta(hours=1))
        back = await billing.meter_cost(hub, "m1")
        clock.set(NOW + timedelta(hours=2))
        ahead = await billing.meter_cost(hub, "m1")
    for cost in (back, ahead):
        assert cost.report.today.energy_kwh == pytest.approx(before.report.today.energy_kwh)
        assert cost.report.cycle.energy_cost == pytest.approx(before.report.cycle.energy_cost)
        assert cost.report.last_interval == before.report.last_interval
    assert back.at == NOW


async def test_the_window_reads_again_only_what_the_store_gained(tmp_path):
    """Costing on every new interval reads only the intervals after the last costing; a late page
    of history inside what was held reads the whole window again. The figures always equal those
    of the whole window read from the store."""
    clock = FixedClock(NOW)
    late = IntervalReading("m1", NOW - timedelta(days=1, minutes=30), 900, 4.0, 0.0)  # inside the held hours
    async with started_hub(tmp_path, tou_config(False), RATES, clock=clock) as hub:
        await hub.store.add_intervals([r for r in HOURS if r.start < NOW - timedelta(hours=2)])
        window = billing.IntervalWindow.of(hub.store)
        assert billing.IntervalWindow.of(hub.store) is window
        first = await billing.meter_cost(hub, "m1")
        assert window.full_reads == 1
        await hub.store.add_intervals([r for r in HOURS if r.start >= NOW - timedelta(hours=2)])
        clock.advance(minutes=5)
        second = await billing.meter_cost(hub, "m1")
        assert window.full_reads == 1  # only the two new hours were read
        await hub.store.add_intervals([late])
        third = await billing.meter_cost(hub, "m1")
        assert window.full_reads == 2
        plan = hub.config.tariff.active_plan
        since = datetime(2026, 4, 10, 7, tzinfo=UTC)
        whole = await hub.store.interval_columns("m1", since, clock.now())
    assert second.report.cycle.intervals_read == first.report.cycle.intervals_read + 2
    assert third.report.cycle.energy_kwh == pytest.approx(second.report.cycle.energy_kwh + 4.0)
    assert third.report == cost_report(plan, whole, now=clock.now(), timezone=LA, climate_zone="10")
    assert third.report == cost_report(plan, ReadingArrays.from_readings([*HOURS, late]), now=clock.now(),
                                       timezone=LA, climate_zone="10")


async def test_interval_columns_are_the_intervals_as_read(tmp_path):
    readings = [IntervalReading("m1", NOW - timedelta(minutes=m), 60, 0.1 + m / 7, m / 13) for m in range(1, 3000)]
    async with started_hub(tmp_path, clock=FixedClock(NOW)) as hub:
        await hub.store.add_intervals(readings)
        await hub.store.add_intervals([IntervalReading("m2", NOW - timedelta(minutes=5), 60, 9.0, 0.0)])
        start, end = NOW - timedelta(minutes=2500), NOW - timedelta(minutes=10)
        columns = await hub.store.interval_columns("m1", start, end)
        objects = await hub.store.intervals("m1", start, end)
        assert await hub.store.interval_count("m1", start, end) == len(objects) == 2490
        empty = await hub.store.interval_columns("m3", start, end)
    expected = ReadingArrays.from_readings(objects)
    for name in ("start_s", "duration_s", "consumed_kwh", "generated_kwh"):
        assert getattr(columns, name).tolist() == getattr(expected, name).tolist()
        assert getattr(columns, name).dtype == getattr(expected, name).dtype
    assert len(empty) == 0


async def test_usage_over_several_cycles_is_priced_as_the_whole_window_at_once(tmp_path):
    """The chart's window is read 30 days at a time and priced cycle by cycle: the same price per
    interval, to the bit, as pricing everything from the first cycle's start at once."""
    import numpy as np

    from ems.costs import price_intervals

    hours = [IntervalReading("m1", NOW - timedelta(hours=h), 3600, 0.4 + (h % 7) / 3, 0.1 * (h % 5))
             for h in range(1, 24 * 80) if h % 50]
    start, end = NOW - timedelta(days=70), NOW - timedelta(hours=3)
    async with started_hub(tmp_path, tou_config(True), RATES, clock=FixedClock(NOW)) as hub:
        await hub.store.add_intervals(hours)
        hub.bus.publish(METER_PRICE)
        usage = await billing.priced_usage(hub, "m1", start, end)
        plan = hub.config.tariff.active_plan
    since = datetime(2026, 2, 10, 8, tzinfo=UTC)  # the start of the cycle holding `start` (3 March)
    arrays = ReadingArrays.from_readings([r for r in hours if since <= r.start < end])
    priced = price_intervals(plan, arrays, timezone=LA, climate_zone="10", price_signals=[METER_PRICE])
    with np.errstate(divide="ignore", invalid="ignore"):
        price = np.where(arrays.consumed_kwh > 1e-9, priced.energy_cost / arrays.consumed_kwh, priced.unit_price_per_kwh)
    shown = arrays.start_s >= int(start.timestamp())
    assert len(priced.cycles) == 4 and usage.plan is plan
    assert usage.readings.start_s.tolist() == arrays.start_s[shown].tolist()
    assert usage.price_per_kwh.tolist() == price[shown].tolist()
    assert usage.price_per_kwh.max() > 0.36  # tiers reached
