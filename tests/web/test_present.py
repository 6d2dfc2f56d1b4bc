"""What the pages are told: the rate sheet's price now (one price truth) and whether the home took part."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ems.model import Criticality, DeviceClass, EventPhase, EventStatus, EventView, LoadControlEvent
from ems.tariff import load_rates
from web import present

RATES = Path(__file__).resolve().parents[2] / "config" / "rates.yaml"
LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture(scope="module")
def plans():
    return load_rates(RATES, "10").plans


@pytest.mark.parametrize(("local", "period", "price"), [
    ((10, 0), "off-peak", 0.29),
    ((17, 30), "on-peak", 0.51),
    ((21, 0), "off-peak", 0.29),
])
def test_the_sheets_price_now_is_the_periods_price_the_costs_use(plans, local, period, price):
    now = present.rate_now(plans["TOU-D-T"], "America/Los_Angeles", datetime(2026, 7, 15, *local, tzinfo=LA))
    assert (now["period"], now["price_per_kwh"]) == (period, price)
    assert now["tier_prices_per_kwh"] == [0.0, 0.07]  # the card adds the cycle's tier: $0.36 off-peak in tier 2
    assert not now["critical_peak"]


@pytest.mark.parametrize(("local", "until"), [
    ((10, 0), "2026-07-15T23:00:00Z"),  # off-peak until 16:00 local (PDT, UTC-7)
    ((17, 30), "2026-07-16T04:00:00Z"),  # on-peak until 21:00
    ((21, 0), "2026-07-16T07:00:00Z"),  # off-peak to midnight, when the day is looked at again
])
def test_the_price_now_says_until_when_so_an_open_page_asks_again_at_the_change(plans, local, until):
    now = present.rate_now(plans["TOU-D-T"], "America/Los_Angeles", datetime(2026, 7, 15, *local, tzinfo=LA))
    assert now["until"] == until


def test_a_critical_peak_day_adds_its_adder_and_a_season_and_day_type_are_named(plans):
    at = datetime(2024, 8, 15, 17, 0, tzinfo=LA)  # a Thursday the plan lists as a critical peak event
    now = present.rate_now(plans["TOU-D-CPP"], "America/Los_Angeles", at)
    assert now["critical_peak"] and now["price_per_kwh"] == pytest.approx(0.44 + 0.80)
    assert (now["season"], now["day_type"]) == ("summer", "weekday")
    flat = present.rate_now(plans["D-PTR"], "America/Los_Angeles", at)
    assert flat["period"] is None and flat["price_per_kwh"] == 0.33


def _view(**fields) -> EventView:
    start = datetime(2026, 7, 15, 17, 0, tzinfo=LA)
    event = LoadControlEvent(meter_id="main", issuer_event_id=7, device_class=DeviceClass.HVAC, enrollment_group=0,
                             start=start, duration_min=60, criticality=Criticality.LEVEL_2, received_at=start)
    return EventView(event, EventPhase.ENDED, start, start + timedelta(hours=1), outcome=EventStatus.COMPLETED,
                     **fields)


def test_an_event_shows_the_home_took_part_only_when_a_device_was_set_for_it():
    assert present.event(_view(took_part=True, acted=True))["took_part"] is True
    # every device taken out (not opted out): the event only ended, no "completed, thank you"
    shown = present.event(_view(took_part=True, acted=False, excluded_devices=frozenset({"00:01"})))
    assert shown["status"] == "completed" and shown["took_part"] is False
    assert present.event(_view(opted_out=True))["took_part"] is False
