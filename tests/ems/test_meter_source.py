"""What every meter source shares (ems.meter_source): intervals from a summation, the link's
state, and the pinned meter a different one cannot replace without the owner."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ems.clock import FixedClock
from ems.meter_source import IntervalsFromSummation, LinkStateTracker
from ems.model import LinkState, MeterLinkChanged
from tests.hubs import started_hub

T0 = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- Intervals from a summation -------------------------------------------------------------


def test_a_steady_load_read_every_few_seconds_gives_each_minute_its_share() -> None:
    intervals = IntervalsFromSummation("main", interval_s=60)
    out = []
    for step in range(0, 185, 7):  # 1.2 kW: 0.02 kWh a minute, samples off the boundaries
        out += intervals.add(at(step + 3), 100 + 1.2 * (step + 3) / 3600).intervals
    assert [r.start for r in out] == [at(60), at(120)]  # the minute before the first boundary is not known
    assert all(r.duration_s == 60 for r in out)
    assert [round(r.consumed_kwh, 9) for r in out] == [0.02, 0.02]


def test_the_first_boundary_passed_by_a_sample_is_where_the_first_interval_starts() -> None:
    intervals = IntervalsFromSummation("main", interval_s=60)
    assert intervals.add(at(50), 10.0).intervals == ()
    assert intervals.add(at(70), 10.2).intervals == ()  # boundary 60 passed: its summation interpolated
    result = intervals.add(at(130), 10.8)
    assert [(r.start, r.duration_s, round(r.consumed_kwh, 9)) for r in result.intervals] == [(at(60), 60, 0.6)]


def test_after_a_silence_the_whole_delta_is_one_reading_never_a_spike() -> None:
    intervals = IntervalsFromSummation("main", interval_s=60, gap_s=300)
    for step in range(0, 125, 5):
        intervals.add(at(step), 50 + step / 3600)  # 1 kW
    result = intervals.add(at(3 * 3600 + 30), 53.5)  # 3 hours of silence (a bridge stalled)
    assert result.gap is not None
    (reading,) = result.intervals
    assert reading.start == at(120) and reading.end == at(3 * 3600)
    assert reading.consumed_kwh == pytest.approx((53.5 - 50 - 120 / 3600) * (10800 - 120) / (10830 - 120), rel=1e-9)
    # Afterwards minutes follow again from the boundary the gap ended at.
    follow = intervals.add(at(3 * 3600 + 65), 53.51)
    assert [r.start for r in follow.intervals] == [at(3 * 3600)]


def test_a_summation_that_goes_backwards_restarts_without_inventing_energy() -> None:
    intervals = IntervalsFromSummation("main", interval_s=60)
    intervals.add(at(0), 1000.0)
    intervals.add(at(65), 1000.1)
    result = intervals.add(at(130), 3.0)  # a new meter
    assert result.reset and result.intervals == ()
    assert intervals.add(at(200), 3.1).intervals == ()  # the first boundary after the reset: 180
    assert [r.start for r in intervals.add(at(250), 3.2).intervals] == [at(180)]


def test_a_repeated_or_older_report_adds_nothing() -> None:
    intervals = IntervalsFromSummation("main", interval_s=60)
    intervals.add(at(10), 1.0)
    assert intervals.add(at(10), 1.0) == intervals.add(at(5), 0.9)
    assert intervals.last_at == at(10)


def test_seeded_from_the_store_the_time_off_is_filled_like_a_silence() -> None:
    intervals = IntervalsFromSummation("main", interval_s=900, gap_s=900)
    intervals.seed(at(0), 200.0, 5.0)
    result = intervals.add(at(7200 + 60), 204.0, 5.5)
    assert result.gap is not None and result.gap.start == at(0) and result.gap.end == at(7200)
    assert result.intervals[0].generated_kwh == pytest.approx(0.5 * 7200 / 7260)


def test_a_non_finite_summation_is_refused() -> None:
    with pytest.raises(ValueError):
        IntervalsFromSummation("main").add(at(0), float("nan"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.5, 900), st.floats(0, 2)), min_size=2, max_size=60))
def test_energy_is_conserved_between_the_first_boundary_and_the_last(steps: list[tuple[float, float]]) -> None:
    intervals = IntervalsFromSummation("main", interval_s=60, gap_s=300)
    t, total, out = 0.0, 10.0, []
    samples = [(t, total)]
    out += intervals.add(at(t), total).intervals
    for dt, kwh in steps:
        t, total = t + dt, total + kwh
        samples.append(((at(t) - T0).total_seconds(), total))  # as the datetime holds it (to the microsecond)
        out += intervals.add(at(t), total).intervals
    if not out:
        return
    for a, b in zip(out, out[1:], strict=False):
        assert a.end == b.start  # contiguous: nothing counted twice, nothing dropped
        assert (a.start - T0).total_seconds() % 60 == 0 or a is out[0]

    def value(seconds: float) -> float:
        for (t0, v0), (t1, v1) in zip(samples, samples[1:], strict=False):
            if t0 <= seconds <= t1:
                return v0 + (v1 - v0) * (seconds - t0) / (t1 - t0)
        raise AssertionError(seconds)

    start_s = (out[0].start - T0).total_seconds()
    end_s = (out[-1].end - T0).total_seconds()
    assert sum(r.consumed_kwh for r in out) == pytest.approx(value(end_s) - value(start_s), abs=1e-6)


# --- The link's state -----------------------------------------------------------------------


class Bus:
    def __init__(self) -> None:
        self.events: list[MeterLinkChanged] = []

    def publish(self, event: MeterLinkChanged) -> None:
        self.events.append(event)


async def test_the_link_goes_stale_after_a_silence_and_back_online_when_heard() -> None:
    clock, bus = FixedClock(T0), Bus()
    link = LinkStateTracker(bus, clock, "main", stale_after_s=30)  # type: ignore[arg-type]
    link.set(LinkState.CONNECTING, "opening the port")
    link.set(LinkState.CONNECTING, "still")  # not a change: not published
    link.heard()
    watch = asyncio.create_task(link.watch(period_s=5))
    try:
        for _ in range(8):
            clock.advance(seconds=5)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        assert link.state is LinkState.STALE
        link.heard()
    finally:
        watch.cancel()
    assert [e.state for e in bus.events] == [LinkState.CONNECTING, LinkState.ONLINE, LinkState.STALE,
                                             LinkState.ONLINE]
    assert bus.events[-1].detail == "reports resumed"


# --- The meter's pin ------------------------------------------------------------------------


async def test_the_first_meter_is_pinned_and_a_different_one_waits_for_the_owner(tmp_path) -> None:
    clock = FixedClock(T0)
    async with started_hub(tmp_path, clock=clock) as hub:
        pins = hub.meter_pins
        assert await pins.admit("main", "emu2", "0x00135003007A1B2C")
        assert await pins.admit("main", "emu2", "0x00135003007a1b2c")  # the same, spelt otherwise
        assert not await pins.admit("main", "emu2", "0x0013500300FFFFFF")  # after a move
        pin = await pins.get("main")
        assert pin is not None and pin.pending_hardware_id == "0x0013500300ffffff"
        with pytest.raises(LookupError):
            await pins.confirm("main", "0x0000000000000001", by="owner")
        await pins.confirm("main", "0x0013500300FFFFFF", by="owner")
        assert await pins.admit("main", "emu2", "0x0013500300ffffff")
        assert not await pins.admit("main", "emu2", "0x00135003007a1b2c")
    # Kept in the store: a restart remembers which meter is the customer's.
    from ems.config import load_config
    from ems.hub import Hub

    hub = Hub(load_config(tmp_path / "config"), tmp_path / "data", clock)
    await hub.start()
    try:
        pin = await hub.meter_pins.get("main")
        assert pin is not None and pin.hardware_id == "0x0013500300ffffff"
        assert pin.pending_hardware_id == "0x00135003007a1b2c"
    finally:
        await hub.stop()


# --- The sources set up on the Commissioning page --------------------------------------------


class Running:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    async def close(self) -> None:
        self.log.append(f"closed {self.name}")


class Starter:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def validate(self, section: dict) -> dict:
        if not str(section.get("port", "")).startswith("/dev/"):
            raise ValueError("port: expected a serial port such as /dev/ttyACM0")
        return {"meter_id": "main", **section}

    async def start(self, section: dict) -> Running:
        self.log.append(f"started {section['port']}")
        return Running(self.log, section["port"])


async def test_a_saved_source_replaces_what_read_the_meter_and_starts_again_at_every_start(tmp_path) -> None:
    clock, log = FixedClock(T0), []
    from ems.config import load_config
    from ems.hub import Hub

    async def run(body) -> None:
        hub = Hub(load_config(tmp_path / "config"), tmp_path / "data", clock)
        hub.meter_sources.starters["emu2"] = Starter(log)
        await hub.start()
        try:
            await body(hub)
        finally:
            await hub.meter_sources.close()
            await hub.stop()

    async def first(hub) -> None:
        hub.meter_sources.adopt("main", "zigbee", Running(log, "zigbee link"))
        with pytest.raises(ValueError, match="port: expected a serial port"):
            await hub.meter_sources.save("emu2", {"port": "COM3"}, by="owner")
        assert log == []  # nothing saved, nothing stopped
        saved = await hub.meter_sources.save("emu2", {"port": "/dev/ttyACM0"}, by="owner")
        assert saved.meter_id == "main" and saved.saved_by == "owner"
        assert log == ["closed zigbee link", "started /dev/ttyACM0"]

    from tests.hubs import new_hub

    new_hub(tmp_path, clock=clock)  # writes the configuration folder
    await run(first)

    async def again(hub) -> None:
        await hub.meter_sources.start_saved()
        assert hub.meter_sources.running["main"][0] == "emu2"

    await run(again)
    assert log[2:] == ["closed /dev/ttyACM0", "started /dev/ttyACM0", "closed /dev/ttyACM0"]
