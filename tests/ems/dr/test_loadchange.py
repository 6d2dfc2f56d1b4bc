"""Measured load change of a DR event against a real SQLite store: kW reduced, energy, money, rebate, live."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ems.config import load_config
from ems.dr.events import save_cancel
from ems.dr.loadchange import LoadChangeStatus, UnknownEvent, measure_event
from ems.hub import Hub
from ems.model import (
    Criticality,
    DeviceClass,
    IntervalReading,
    LoadControlEvent,
    MeterReading,
    english,
)

TZ = "America/Los_Angeles"
LA = ZoneInfo(TZ)
EVENT_DAY = date(2024, 8, 15)  # a Thursday
EARLIER_EVENT_DAY = date(2024, 8, 13)
RATES = """\
plans:
  FLAT:
    currency: USD
    billing_cycle: {start_day: 1}
    versions:
      - {effective_from: 2024-01-01, energy_price_per_kwh: 0.30}
  PTR:
    currency: USD
    billing_cycle: {start_day: 1}
    versions:
      - effective_from: 2024-01-01
        energy_price_per_kwh: 0.33
        peak_time_rebate: {credit_per_kwh: 1.25, baseline_days: 5}
"""


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LA).astimezone(UTC)


def dr_event(issuer_event_id: int = 7, day: date = EVENT_DAY, received: datetime | None = None) -> LoadControlEvent:
    return LoadControlEvent(
        meter_id="m1", issuer_event_id=issuer_event_id, device_class=DeviceClass.HVAC, enrollment_group=0,
        start=local(day, 16), duration_min=300, criticality=Criticality.LEVEL_1,
        received_at=received or local(day, 9),
    )


def load_kw(at: datetime) -> float:
    """3 kW all the time, but 1 kW during the events (16:00-21:00) and 4 kW the hour after ours."""
    t = at.astimezone(LA)
    if t.date() in (EVENT_DAY, EARLIER_EVENT_DAY) and 16 <= t.hour < 21:
        return 1.0 if t.date() == EVENT_DAY else 0.0
    if t.date() == EVENT_DAY and t.hour == 21:
        return 4.0
    return 3.0


def intervals(first: date, until: datetime, kw: Callable[[datetime], float] = load_kw) -> list[IntervalReading]:
    t, rows = local(first, 0), []
    while t < until:
        rows.append(IntervalReading("m1", t, 900, kw(t) * 0.25))
        t += timedelta(minutes=15)
    return rows


async def open_hub(tmp_path: Path, plan: str) -> Hub:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "rates.yaml").write_text(RATES)
    (folder / "ems.yaml").write_text(f"site: {{timezone: {TZ}}}\ntariff: {{plan: {plan}}}\n")
    hub = Hub(load_config(folder), tmp_path / "data")
    await hub.store.open()
    hub.store.attach(hub.bus)
    return hub


async def publish(hub: Hub, *events: object) -> None:
    for event in events:
        hub.bus.publish(event)
    await hub.bus.drain()
    await hub.store.flush()


@pytest.fixture
def plan() -> str:
    return "FLAT"


@pytest.fixture
async def hub(tmp_path: Path, plan: str) -> AsyncIterator[Hub]:
    hub = await open_hub(tmp_path, plan)
    await hub.store.add_intervals(intervals(date(2024, 6, 25), local(EVENT_DAY, 23)))
    # An earlier event (the home at 0 kW): its day must not count as a similar day.
    await publish(hub, dr_event(6, EARLIER_EVENT_DAY), dr_event(7))
    yield hub
    await hub.store.close()


async def test_a_2_kw_drop_is_measured_as_2_kw_reduced(hub: Hub) -> None:
    change = await measure_event(hub, "m1", 7, local(EVENT_DAY, 23, 30))

    assert change.status is LoadChangeStatus.FINAL
    assert change.start == local(EVENT_DAY, 16) and change.end == local(EVENT_DAY, 21)
    assert change.kw_reduced == pytest.approx(2.0) and change.peak_kw_reduced == pytest.approx(2.0)
    assert change.baseline_kwh == pytest.approx(15.0) and change.actual_kwh == pytest.approx(5.0)
    assert change.reduced_kwh == pytest.approx(10.0)
    assert EARLIER_EVENT_DAY not in change.baseline_days and len(change.baseline_days) == 10
    assert change.adjustment_factor == pytest.approx(1.0)


async def test_energy_shifted_is_the_reduction_less_the_rebound_after_the_event(hub: Hub) -> None:
    change = await measure_event(hub, "m1", 7, local(EVENT_DAY, 23, 30))

    assert change.rebound_kwh == pytest.approx(1.0)  # 4 kW instead of 3 kW for the hour after
    assert change.energy_shifted_kwh == pytest.approx(9.0)
    assert len([i for i in change.intervals if i.part == "after"]) == 8  # 2 h of 15 min


async def test_money_saved_is_the_avoided_energy_at_the_plans_price(hub: Hub) -> None:
    change = await measure_event(hub, "m1", 7, local(EVENT_DAY, 23, 30))

    assert change.currency == "USD"
    assert change.money_saved == pytest.approx(9.0 * 0.30)
    assert change.rebate_earned is None  # a flat plan has no peak time rebate


async def test_the_intervals_give_baseline_and_actual_for_a_chart(hub: Hub) -> None:
    change = await measure_event(hub, "m1", 7, local(EVENT_DAY, 23, 30))

    event = [i for i in change.intervals if i.part == "event"]
    assert len(event) == 20
    assert {round(i.baseline_kw or 0, 9) for i in event} == {3.0}
    assert {round(i.actual_kw or 0, 9) for i in event} == {1.0}


@pytest.mark.parametrize("plan", ["PTR"])
async def test_on_a_ptr_plan_the_rebate_is_the_credit_for_the_reduction_below_the_engines_baseline(hub: Hub) -> None:
    change = await measure_event(hub, "m1", 7, local(EVENT_DAY, 23, 30))

    assert change.rebate_baseline_kwh == pytest.approx(15.0)  # 5 weekdays without an event at 3 kW
    assert change.rebate_earned == pytest.approx((15.0 - 5.0) * 1.25)
    assert change.money_saved == pytest.approx(9.0 * 0.33)


async def test_live_the_elapsed_part_uses_intervals_and_demand_samples(tmp_path: Path) -> None:
    hub = await open_hub(tmp_path, "PTR")
    try:
        now = local(EVENT_DAY, 18, 7)
        await hub.store.add_intervals(intervals(date(2024, 6, 25), local(EVENT_DAY, 18)))
        samples = [MeterReading("m1", local(EVENT_DAY, 17, 58) + timedelta(minutes=m), demand_kw=1.0) for m in range(0, 9, 2)]
        await publish(hub, dr_event(6, EARLIER_EVENT_DAY), dr_event(7), *samples)

        change = await measure_event(hub, "m1", 7, now)
    finally:
        await hub.store.close()

    assert change.status is LoadChangeStatus.LIVE and change.as_of == now
    last = change.intervals[-1]
    assert last.start == local(EVENT_DAY, 18) and last.end == now and last.from_demand
    assert last.actual_kwh == pytest.approx(1.0 * 7 / 60)
    hours = 2 + 7 / 60
    assert change.kw_reduced == pytest.approx(2.0)
    assert change.reduced_kwh == pytest.approx(2.0 * hours)
    assert change.rebate_earned == pytest.approx(2.0 * 2 * 1.25)  # so far: the whole intervals to 18:00
    assert "live demand samples" in english(change.note)


async def test_before_the_event_starts_nothing_is_measured(hub: Hub) -> None:
    change = await measure_event(hub, "m1", 7, local(EVENT_DAY, 15))

    assert change.status is LoadChangeStatus.SCHEDULED and change.kw_reduced is None and change.intervals == ()


async def test_too_little_history_is_said_plainly(tmp_path: Path) -> None:
    hub = await open_hub(tmp_path, "FLAT")
    try:
        await hub.store.add_intervals(intervals(date(2024, 8, 13), local(EVENT_DAY, 23)))
        await publish(hub, dr_event(7))

        change = await measure_event(hub, "m1", 7, local(EVENT_DAY, 23, 30))
    finally:
        await hub.store.close()

    assert change.status is LoadChangeStatus.INSUFFICIENT
    assert change.kw_reduced is None and change.money_saved is None and change.baseline_kwh is None
    assert change.actual_kwh == pytest.approx(5.0)
    assert "too little history" in english(change.note) and "at least 3 needed" in english(change.note)


async def test_a_cancelled_event_is_measured_to_its_cancellation(hub: Hub) -> None:
    hub.state.attach(hub.bus)
    await publish(hub, dr_event(7))
    # What the DR core writes when it cancels the event (the store no longer derives it from the frame).
    await hub.store.write("cancel", partial(save_cancel, meter_id="m1", event_id=7, at=local(EVENT_DAY, 18)))
    hub.state.detach()

    change = await measure_event(hub, "m1", 7, local(EVENT_DAY, 23, 30))

    assert change.end == local(EVENT_DAY, 18)
    assert change.reduced_kwh == pytest.approx(4.0)


async def test_an_unknown_event_is_an_error(hub: Hub) -> None:
    with pytest.raises(UnknownEvent):
        await measure_event(hub, "m1", 99, local(EVENT_DAY, 23))


async def test_the_measurement_is_computed_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """However short the history (a fresh appliance, as under the API fuzzer): the baseline and the
    pricing, whose first use builds holiday calendars, held the loop for up to 170 ms (issue 12)."""
    import threading

    from ems.dr import loadchange

    threads: list[threading.Thread] = []
    compute = loadchange.compute_load_change

    def watched(**work: object) -> loadchange.LoadChange:
        threads.append(threading.current_thread())
        return compute(**work)  # type: ignore[arg-type]

    monkeypatch.setattr(loadchange, "compute_load_change", watched)
    hub = await open_hub(tmp_path, "FLAT")
    try:
        await hub.store.add_intervals(intervals(date(2024, 8, 13), local(EVENT_DAY, 23)))
        await publish(hub, dr_event(7))
        change = await measure_event(hub, "m1", 7, local(EVENT_DAY, 23, 30))
    finally:
        await hub.store.close()

    assert change.actual_kwh == pytest.approx(5.0)
    assert threads and all(thread is not threading.main_thread() for thread in threads)
