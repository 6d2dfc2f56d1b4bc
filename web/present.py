"""What the API and the WebSocket show: the current state as JSON-ready dicts.

One function per topic, shared by the REST handlers and the WebSocket push so both always
say the same thing. Times are ISO 8601 UTC; energy kWh, power kW, money in the currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ems.hub import Hub
from ems.model import DeviceClass, EventPhase, EventStatus, EventView, LinkState
from ems.state import MessageState, MeterState

if TYPE_CHECKING:
    from ems.tariff import RatePlan


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def meter(state: MeterState, now: datetime) -> dict[str, Any]:
    info = state.info
    return {
        "meter_id": state.meter_id,
        "link": state.link.value,
        "link_since": iso(state.link_since),
        "link_detail": state.link_detail,
        "stale": state.link is not LinkState.ONLINE,
        "demand_kw": _round(state.value("demand_kw")),
        "summation_delivered_kwh": _round(state.value("summation_delivered_kwh")),
        "summation_received_kwh": _round(state.value("summation_received_kwh")),
        "current_day_delivered_kwh": _round(state.value("current_day_delivered_kwh")),
        "current_day_received_kwh": _round(state.value("current_day_received_kwh")),
        "last_reading_at": iso(state.last_reading_at),
        "meter_time": iso(state.meter_time),
        "last_interval": None
        if state.last_interval is None
        else {
            "start": iso(state.last_interval.start),
            "duration_s": state.last_interval.duration_s,
            "consumed_kwh": _round(state.last_interval.consumed_kwh, 4),
            "generated_kwh": _round(state.last_interval.generated_kwh, 4),
        },
        "unit": info.unit if info else None,
        "device_type": info.device_type if info else None,
    }


def meters(hub: Hub, now: datetime) -> list[dict[str, Any]]:
    return [meter(m, now) for m in sorted(hub.state.meters.values(), key=lambda m: m.meter_id)]


def prices(hub: Hub, now: datetime) -> list[dict[str, Any]]:
    result = []
    for meter_id in sorted(hub.state.prices):
        current = hub.state.active_price(meter_id, now)
        result.append(
            {
                "meter_id": meter_id,
                "current": None if current is None else _price(current),
                "upcoming": [_price(p) for p in hub.state.upcoming_prices(meter_id, now)],
            }
        )
    return result


def _price(price: Any) -> dict[str, Any]:
    return {
        "provider_id": price.provider_id,
        "issuer_event_id": price.issuer_event_id,
        "rate_label": price.rate_label,
        "currency": price.currency,
        "price_per_kwh": price.price_per_kwh,
        "tier": price.tier,
        "number_of_tiers": price.number_of_tiers,
        "register_tier": price.register_tier,
        "generation_price_per_kwh": price.generation_price_per_kwh,
        "price_ratio": price.price_ratio,
        "start": iso(price.start),
        "end": iso(price.end),
    }


def rate_now(plan: RatePlan, timezone: str, now: datetime) -> dict[str, Any]:
    """The rate sheet's energy price at ``now``, the one the chart and the costs use: the time-of-use
    period's (or the hour's, or the flat) price and any critical-peak adder, before the tier's adder
    (the tier is the billing cycle's, which the cost report knows). The price card shows this, and the
    meter's published price beside it, named, when the two differ."""
    tz = ZoneInfo(timezone)
    version = plan.version_at(now, tz)
    local = now.astimezone(tz)
    day, minute = local.date(), local.hour * 60 + local.minute
    season = version.season_of(day)
    holiday = day in plan.holidays.dates(range(day.year, day.year + 1))
    day_type = "holiday" if holiday else "weekend" if day.weekday() >= 5 else "weekday"
    period, price = None, version.energy_price_per_kwh
    hourly = version.hourly_prices.get(day)
    tou = version.time_of_use.get(season)
    if hourly is not None:
        price = hourly[min(local.hour, len(hourly) - 1)]
    elif tou is not None:
        found = next((p for p in tou.periods(day_type) if p.covers(minute)), None)
        if found is not None:
            period, price = found.name, found.price_per_kwh
    windows = [w for w in plan.critical_peak_events if w.day == day]
    critical = any(w.start_min <= minute < w.end_min for w in windows)
    if critical:
        price += version.critical_peak_adder_per_kwh
    # The next minute of the day at which the price may change (a period's edge, a critical-peak
    # window's, the next hour on an hourly sheet, else midnight): a page asks again then, so a card
    # left open shows the on-peak price from 16:00, not the off-peak price it loaded at 15:00.
    edges = {24 * 60} | {e for w in windows for e in (w.start_min, w.end_min)}
    if hourly is not None:
        edges.add((local.hour + 1) * 60)
    elif tou is not None:
        edges |= {e for p in tou.periods(day_type) for e in (p.start_min, p.end_min)}
    edge = min(e for e in edges if e > minute)
    until = datetime.combine(day, time(), tz) + timedelta(minutes=edge)
    return {
        "season": season,
        "day_type": day_type,
        "period": period,
        "critical_peak": critical,
        "price_per_kwh": round(price, 6),
        "tier_prices_per_kwh": [t.price_per_kwh for t in version.tiers],
        "until": iso(until.astimezone(ZoneInfo("UTC"))),
    }


def message(state: MessageState, now: datetime) -> dict[str, Any]:
    msg = state.message
    active = (
        state.cancelled_at is None and msg.start <= now and (msg.end is None or now < msg.end)
    )
    return {
        "meter_id": msg.meter_id,
        "message_id": msg.message_id,
        "text": msg.text,
        "importance": msg.importance.name.lower(),
        "origin": msg.origin.value,
        "start": iso(msg.start),
        "end": iso(msg.end),
        "received_at": iso(msg.received_at),
        "confirmation_required": msg.confirmation_required,
        "enhanced_confirmation": msg.enhanced_confirmation,
        "confirmed_at": iso(state.confirmed_at),
        "cancelled_at": iso(state.cancelled_at),
        "read": state.read,
        "active": active,
    }


def messages(hub: Hub, now: datetime) -> list[dict[str, Any]]:
    return [message(m, now) for m in hub.state.recent_messages(now)]


def event(view: EventView, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An event as shown: what the utility asked, and how it really runs (ems.dr's one event model)."""
    ev = view.event
    if view.outcome is None:
        status = "completed" if view.phase is EventPhase.ENDED else str(view.phase)
    else:
        status = {EventStatus.CANCELLED: "cancelled", EventStatus.SUPERSEDED: "superseded"}.get(
            view.outcome, "completed")
    names = names or {}
    classes = [c.name.lower() for c in DeviceClass if c in ev.device_class]
    return {
        "meter_id": ev.meter_id,
        "issuer_event_id": ev.issuer_event_id,
        "status": status,
        "start": iso(view.effective_start),
        "end": iso(view.effective_end),
        "scheduled_start": iso(ev.start),
        "duration_min": ev.duration_min,
        "criticality": ev.criticality.name.lower(),
        "criticality_level": int(ev.criticality),
        "device_classes": classes,
        "enrollment_group": ev.enrollment_group,
        "cooling_offset_c": ev.cooling_offset_c,
        "heating_offset_c": ev.heating_offset_c,
        "cooling_setpoint_c": ev.cooling_setpoint_c,
        "heating_setpoint_c": ev.heating_setpoint_c,
        "average_load_adjustment_pct": ev.average_load_adjustment_pct,
        "duty_cycle_pct": ev.duty_cycle_pct,
        "randomize_start": ev.randomize_start,
        "randomize_end": ev.randomize_end,
        "received_at": iso(ev.received_at),
        "cancelled_at": iso(view.cancelled_at),
        "participation": "opted_out" if view.opted_out else "opted_in",
        "excluded_devices": [{"device_id": d, "name": names.get(d, d)} for d in sorted(view.excluded_devices)],
        "outcome": view.outcome.name.lower() if view.outcome is not None else None,
        "addresses_devices_here": view.addressed,
        # The home really took part (the EMS set a device for it): "completed" with False only ended.
        "took_part": view.took_part and view.acted,
        "shed_kw": round(view.shed_kw, 3) if view.took_part else None,
        "achieved_pct": view.achieved_pct if view.took_part else None,
    }


def events(hub: Hub) -> list[dict[str, Any]]:
    """Every DR event the appliance heard (none before demand response runs)."""
    control = hub.control
    if control is None:
        return []
    names = control.device_names()
    return [event(view, names) for view in control.events()]


# What a homeowner reads when the data cannot be saved (health's "reason"; the pages translate it).
STORAGE_REASONS = {
    "disk_full": "The appliance's data disk is full: new readings are not being saved. Devices are "
                 "still controlled. Free some space; saving resumes by itself.",
    "unwritable": "The appliance cannot save data to its database: new readings are not being saved. "
                  "Devices are still controlled; saving resumes by itself once the database works.",
}


def health(hub: Hub, now: datetime) -> dict[str, Any]:
    """Public health: no customer data, only whether the appliance and its links work."""
    links = {m.meter_id: m.link.value for m in hub.state.meters.values()}
    counters = hub.state.counters
    outage = hub.store.outage
    if not hub.running:
        status = "starting"
    elif links and all(v == LinkState.ONLINE.value for v in links.values()) and outage is None:
        status = "ok"
    else:
        status = "degraded"
    problems = []
    if outage is not None:
        problems.append({
            "condition": "storage",
            "problem": outage.problem,
            "since": iso(outage.since),
            "reason": STORAGE_REASONS.get(outage.problem, STORAGE_REASONS["unwritable"]),
        })
    return {
        "status": status,
        "problems": problems,
        "uptime_s": round((now - hub.started_at).total_seconds(), 1),
        "meter_links": links,
        "frames": {
            "received": counters["frames_received"],
            "malformed": counters["frames_malformed"],
            "unknown": counters["frames_unknown"],
            "rejected": counters["frames_rejected"],
        },
    }
