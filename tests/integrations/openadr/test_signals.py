"""OpenADR 2.0b signals as load-control asks (integrations/openadr/signals.py), named after the rule each checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.openadr import signals

T0 = datetime(2026, 7, 15, 23, 0, tzinfo=UTC)


def event(name: str, kind: str, *payloads: float, event_id: str = "ev-1", mod: int = 0,
          targets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    intervals = [{"dtstart": T0 + timedelta(minutes=10 * i), "duration": timedelta(minutes=10), "signal_payload": p,
                  "uid": i} for i, p in enumerate(payloads)]
    return {"event_descriptor": {"event_id": event_id, "modification_number": mod, "event_status": "far"},
            "active_period": {"dtstart": T0, "duration": timedelta(minutes=10 * len(payloads))},
            "event_signals": [{"signal_name": name, "signal_type": kind, "intervals": intervals}],
            "targets": targets or []}


def asks(ev: dict[str, Any], demand_kw: float | None = 4.0) -> list[signals.Ask]:
    return signals.asks(ev, price_threshold_per_kwh=0.30, demand_kw=demand_kw)


def test_simple_levels_map_to_se_criticality_and_level_0_asks_nothing() -> None:
    out = asks(event("SIMPLE", "level", 0, 1, 2, 3))
    assert [(a.uid, a.criticality) for a in out] == [(1, 2), (2, 4), (3, 7)]
    assert [a.start for a in out] == [T0 + timedelta(minutes=10 * i) for i in (1, 2, 3)]
    assert all(a.duration == timedelta(minutes=10) for a in out)


def test_one_domain_event_per_interval_with_stable_ids_that_change_with_the_modification() -> None:
    first = [a.issuer_event_id for a in asks(event("SIMPLE", "level", 1, 2))]
    again = [a.issuer_event_id for a in asks(event("SIMPLE", "level", 1, 2))]
    modified = [a.issuer_event_id for a in asks(event("SIMPLE", "level", 1, 2, mod=1))]
    assert first == again and len(set(first)) == 2
    assert not set(first) & set(modified)
    assert all(0 <= i < 2**31 for i in first + modified)


@pytest.mark.parametrize(("kind", "value", "fields"), [
    ("x-loadControlCapacity", 0.4, {"duty_cycle_pct": 40}),
    ("x-loadControlPercentOffset", 25, {"average_load_adjustment_pct": -25}),
    ("x-loadControlLevelOffset", 2, {"criticality": 3}),
    ("x-loadControlSetpoint", 26.5, {"setpoint_c": 26.5}),
])
def test_load_control_types_map_onto_the_drlc_fields(kind: str, value: float, fields: dict[str, Any]) -> None:
    [ask] = asks(event("LOAD_CONTROL", kind, value))
    assert {k: getattr(ask, k) for k in fields} == fields


def test_load_control_that_asks_nothing_is_no_event() -> None:
    assert asks(event("LOAD_CONTROL", "x-loadControlCapacity", 1.0)) == []
    assert asks(event("LOAD_CONTROL", "x-loadControlPercentOffset", 0)) == []
    assert asks(event("LOAD_CONTROL", "x-loadControlLevelOffset", 0)) == []


def test_load_dispatch_is_a_share_of_the_demand_when_it_arrives() -> None:
    [delta] = asks(event("LOAD_DISPATCH", "delta", 1.0), demand_kw=4.0)
    assert delta.average_load_adjustment_pct == -25
    [setpoint] = asks(event("LOAD_DISPATCH", "setpoint", 3.0), demand_kw=4.0)
    assert setpoint.average_load_adjustment_pct == -25
    assert asks(event("LOAD_DISPATCH", "setpoint", 5.0), demand_kw=4.0) == []  # already under it
    [unknown] = asks(event("LOAD_DISPATCH", "delta", 1.0), demand_kw=None)
    assert unknown.average_load_adjustment_pct == -50


def test_prices_at_or_above_the_threshold_become_events_by_how_far_above() -> None:
    assert [a.criticality for a in asks(event("ELECTRICITY_PRICE", "price", 0.10, 0.30, 0.65, 9.0))] == [2, 3, 7]
    assert [a.criticality for a in asks(event("ELECTRICITY_PRICE", "priceMultiplier", 0.5, 2.0))] == [3]
    assert [a.criticality for a in asks(event("ENERGY_PRICE", "priceRelative", 0.01, 0.30))] == [2]


def test_end_device_asset_targets_name_the_se_device_classes() -> None:
    ev = event("SIMPLE", "level", 1, targets=[{"end_device_asset": {"mrid": "Pool_Pump"}},
                                              {"end_device_asset": {"mrid": "Thermostat"}}])
    [ask] = asks(ev)
    assert ask.device_class == 0x0009
    [untargeted] = asks(event("SIMPLE", "level", 1))
    assert untargeted.device_class == signals.ALL_CLASSES


def test_unknown_signals_and_non_finite_payloads_are_skipped() -> None:
    assert asks(event("BID_LOAD", "setpoint", 5)) == []
    assert asks(event("SIMPLE", "level", float("nan"))) == []


@pytest.mark.parametrize("broken", [
    {}, {"event_descriptor": []}, {"event_descriptor": {"event_id": None}},
    {"event_descriptor": {"event_id": "ev", "modification_number": "2026-47-15"}},
    {"event_descriptor": {"event_id": "ev"}, "event_signals": 7},
])
def test_an_event_that_is_not_one_is_malformed(broken: dict[str, Any]) -> None:
    with pytest.raises(signals.Malformed):
        asks(broken)


def test_intervals_of_the_wrong_shape_ask_nothing_and_the_rest_still_count() -> None:
    """What the fuzzer found (bench/fuzz/targets_programs.py, openadr_event): wrong types are skipped."""
    ev = event("SIMPLE", "level", 2, 2, 2, 2, 2, 2)
    intervals = ev["event_signals"][0]["intervals"]
    intervals[0]["duration"] = "PT10M"  # not parsed into a duration
    intervals[1]["dtstart"] = T0.replace(tzinfo=None)  # naive: the active period's start is used
    intervals[2]["signal_payload"] = timedelta(minutes=1)
    intervals[3]["duration"] = timedelta(days=3650)  # far over the longest DR ask
    intervals[4]["uid"] = "x-loadControlSetpoint"
    ev["event_signals"].append("not a signal")
    out = asks(ev)
    assert [a.uid for a in out] == [1, 4, 5]
    end = event("SIMPLE", "level", 2)
    end["event_signals"][0]["intervals"][0]["dtstart"] = datetime.max.replace(tzinfo=UTC)
    assert asks(end) == []  # its end is past the end of time
