"""The program preferences govern the notices too (C6 3.1 step 4): the EMS makes no notice about
information the customer switched off (a DR event's notices are DR information, a tier warning
the current tier's, a bill warning usage's), and the customer's own rules' notices are always made."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import rules
from ems import local_text
from ems.bill_watch import BillWatch
from ems.clock import FixedClock
from ems.config import default_config_dir
from ems.dr.component import DemandResponse
from ems.dr.rulebook import RuleBook
from ems.model import (
    Criticality,
    DeviceClass,
    EventPhase,
    IntervalReading,
    LoadControlEvent,
    MessageOrigin,
)
from ems.preferences import INFORMATION, NOTICE_ABOUT, ProgramPreferences
from tests.hubs import started_hub

NOW = datetime(2026, 7, 15, 23, 0, tzinfo=UTC)
RULES = "rules:\n  - name: Follow every event\n    triggers: [{event: active}]\n    action: follow_event\n"


def test_every_notice_the_ems_makes_about_program_information_is_tied_to_it() -> None:
    made = set(local_text.TEMPLATES)
    assert set(NOTICE_ABOUT) == made  # a new kind of notice must say what it is about
    assert set(NOTICE_ABOUT.values()) <= set(INFORMATION)
    off = ProgramPreferences(dr_events=False)
    assert not off.wants_notice(local_text.EVENT_STARTED) and off.wants_notice(local_text.TIER_WARNING)
    assert off.wants_notice("")  # a rule's own notice (no template) is the customer's: always made
    with pytest.raises(ValueError, match="no such information"):
        off.wants("weather")


def local_notices(hub) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.message.template for s in hub.state.messages.values() if s.message.origin is MessageOrigin.LOCAL]


def started(hub) -> bool:  # type: ignore[no-untyped-def]
    view = hub.control.load_control.view("main", 31)
    return view is not None and view.phase is EventPhase.ACTIVE


@pytest.mark.parametrize("dr_events", [True, False])
async def test_an_events_notices_follow_the_dr_events_preference(tmp_path, dr_events: bool) -> None:
    clock = FixedClock(NOW)
    async with started_hub(tmp_path, files={"rules.yaml": RULES}, clock=clock) as hub:
        hub.preferences = hub.preferences.with_changes(dr_events=dr_events)
        book = RuleBook(hub.config.config_dir / "rules.yaml", rules.parse_rules, rules.evaluate,
                        rules.check_conflicts)
        hub.control = DemandResponse(hub, book, {"start_randomization_min": 0, "cycle_tick_s": 0.2})
        await hub.control.start()
        try:
            hub.bus.publish(LoadControlEvent("main", 31, DeviceClass.HVAC, 0, NOW - timedelta(minutes=1), 60,
                                             Criticality.LEVEL_2, NOW))
            async with asyncio.timeout(10):  # its notices are made as the event's life changes
                while not started(hub):  # noqa: ASYNC110 - the component's own tasks move it
                    await asyncio.sleep(0.01)
            notices = local_notices(hub)
        finally:
            await hub.control.stop()
    if dr_events:
        assert notices == [local_text.EVENT_STARTED]  # the announcement's notice, updated
    else:
        assert notices == []


CYCLE_START = datetime(2026, 5, 10, 7, tzinfo=UTC)
BILL_CONFIG = ("site: {name: Test home, timezone: America/Los_Angeles}\n"
               "tariff: {plan: TOU-D-T, climate_zone: '10', warning_threshold_cost: 120.0}\n")
RATES = {"rates.yaml": (default_config_dir() / "rates.yaml").read_text()}


@pytest.mark.parametrize(("switched_off", "kept"), [
    ("current_tier", local_text.BILL_WARNING), ("usage_and_demand", local_text.TIER_WARNING)])
async def test_usage_warnings_follow_the_preferences(tmp_path, switched_off: str, kept: str) -> None:
    clock = FixedClock(CYCLE_START)
    async with started_hub(tmp_path, BILL_CONFIG, RATES, clock=clock) as hub:
        hub.preferences = hub.preferences.with_changes(**{switched_off: False})
        # 30 kWh an hour from the cycle's start: past the 350 kWh block and the 120 $ projection at once.
        await hub.store.add_intervals([IntervalReading("m1", CYCLE_START + timedelta(hours=h), 3600, 30.0, 0.0)
                                       for h in range(30)])
        clock.set(CYCLE_START + timedelta(hours=30, seconds=20))
        raised = await BillWatch(hub).check("m1")
    assert {w.template for w in raised} == {kept}
