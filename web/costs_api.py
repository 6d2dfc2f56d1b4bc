"""REST API for rates and cost: the active tariff, the cost so far and the what-if comparison.

A thin adapter over ``ems.billing`` (the one cost pipeline, which reads the store and runs the
numpy engine in an executor): handlers pick the meter and the period and turn the pipeline's
dataclasses into JSON. Energy is kWh, money the plan's currency, times ISO 8601 UTC.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ems import billing
from ems.billing import PERIODS
from ems.errors import NotFound
from ems.hub import Hub
from ems.tariff import DAY_TYPES, RatePlan
from web import params, present
from web.keys import HUB

if TYPE_CHECKING:
    from ems.costs import CostBreakdown, Projection
    from ems.whatif import CycleBill, PlanBill

# ems.billing imports ems.costs and ems.whatif (numpy) on the first cost request, not at
# start-up: the dashboard answers sooner, and an appliance without a rate plan never loads them.

MAX_GAPS_SHOWN = 20


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _money(value: float) -> float:
    """To the cent, never -0.0."""
    return round(value, 2) + 0.0


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def tariff_json(plan: RatePlan, timezone: str, now: datetime, climate_zone: str | None) -> dict[str, Any]:
    """The active rate as C6 3.2 step 2 lists it: tiers, periods, billing cycle."""
    tz = ZoneInfo(timezone)
    version = plan.version_at(now, tz)
    today = now.astimezone(tz).date()
    cycle_start, cycle_end = plan.billing_cycle.cycle_of(today)
    allowances = plan.cycle_allowances_kwh((cycle_start, cycle_end), tz, climate_zone) if plan.number_of_tiers > 1 else []
    return {
        "plan": plan.name,
        "label": plan.label,
        "utility_id": plan.utility_id,
        "utility_name": plan.utility_name,
        "currency": plan.currency,
        "kinds": list(plan.kinds),
        "timezone": timezone,
        "effective_from": version.effective_from.isoformat(),
        "season": version.season_of(today),
        "energy_price_per_kwh": version.energy_price_per_kwh,
        "number_of_tiers": len(version.tiers),
        "tiers": [
            {
                "tier": t.number,
                "price_per_kwh": t.price_per_kwh,
                "allowance_kwh": round(allowances[t.number - 1], 3) if t.number <= len(allowances) else None,
            }
            for t in version.tiers
        ],
        "periods": {
            season: {
                day_type: [
                    {"period": p.name, "start": _hhmm(p.start_min), "end": _hhmm(p.end_min), "price_per_kwh": p.price_per_kwh}
                    for p in tou.periods(day_type)
                ]
                for day_type in DAY_TYPES
            }
            for season, tou in version.time_of_use.items()
        },
        "critical_peak_adder_per_kwh": version.critical_peak_adder_per_kwh,
        "generation_credit_per_kwh": "same_as_import" if version.generation_same_as_import else version.generation_credit_per_kwh,
        "basic_charge_per_day": version.basic_charge_per_day,
        "minimum_bill_per_day": version.minimum_bill_per_day,
        "demand_charges": None if version.demand is None else {
            "window_minutes": version.demand.window_minutes,
            "charges": [
                {"label": c.label, "price_per_kw": c.price_per_kw, "months": sorted(c.months),
                 "seasons": sorted(c.seasons), "periods": sorted(c.periods),
                 "hours": None if c.hours is None else {
                     day_type: [{"start": _hhmm(a), "end": _hhmm(b)} for a, b in spans]
                     for day_type, spans in c.hours.items()}}
                for c in version.demand.charges
            ],
        },
        "billing_cycle": {"start": cycle_start.isoformat(), "end": cycle_end.isoformat()},
    }


def breakdown_json(b: CostBreakdown) -> dict[str, Any]:
    return {
        "start": _iso(b.start),
        "end": _iso(b.end),
        "currency": b.currency,
        "energy_kwh": round(b.energy_kwh, 3),
        "generated_kwh": round(b.generated_kwh, 3),
        "energy_cost": _money(b.energy_cost),
        "generation_credit": _money(b.generation_credit),
        "peak_time_rebate": _money(b.peak_time_rebate),
        "fixed_charges": _money(b.fixed_charges),
        "total_cost": _money(b.total_cost),
        "current_tier": b.current_tier,
        "tiers": [
            {"tier": t.tier, "energy_kwh": round(t.energy_kwh, 3), "cost": _money(t.cost),
             "price_per_kwh": t.price_per_kwh,
             "allowance_kwh": None if t.allowance_kwh is None else round(t.allowance_kwh, 3)}
            for t in b.tiers
        ],
        "periods": [
            {"season": p.season, "period": p.period, "energy_kwh": round(p.energy_kwh, 3), "cost": _money(p.cost)}
            for p in b.periods
        ],
        "intervals_read": b.intervals_read,
        "missing_intervals": b.missing_intervals,
        # part of the energy is a daily or monthly reading's flat share over its span
        "estimated": b.estimated,
        "estimated_kwh": round(b.estimated_kwh, 3),
        "gaps": [
            {"start": _iso(g.start), "end": _iso(g.end), "missing_intervals": g.missing_intervals}
            for g in b.gaps[:MAX_GAPS_SHOWN]
        ],
        "demand_charges": _money(b.demand_charges),
        "demand": [
            {"label": d.label, "price_per_kw": d.price_per_kw, "window_minutes": d.window_minutes,
             "peak_kw": round(d.peak_kw, 3), "at": _iso(d.at), "charge": _money(d.charge), "estimated": d.estimated}
            for d in b.demand
        ],
    }


_BILL_MONEY = ("energy_cost", "generation_credit", "peak_time_rebate", "fixed_charges", "minimum_bill_topup",
               "total_cost", "demand_charges")


def _cycle_bill_json(c: CycleBill) -> dict[str, Any]:
    return {
        "start": c.start.isoformat(), "end": c.end.isoformat(), "days": c.days,
        "energy_kwh": round(c.energy_kwh, 3), "generated_kwh": round(c.generated_kwh, 3),
        **{name: _money(getattr(c, name)) for name in _BILL_MONEY},
        "estimated": c.estimated_kwh > 0,
    }


def plan_bill_json(b: PlanBill) -> dict[str, Any]:
    """One plan's what-if bill: the year's lines and each cycle's bill, money to the cent."""
    return {
        "plan": b.plan, "label": b.label, "currency": b.currency, "cycles": b.cycles,
        "energy_kwh": round(b.energy_kwh, 3), "generated_kwh": round(b.generated_kwh, 3),
        **{name: _money(getattr(b, name)) for name in _BILL_MONEY},
        "estimated": b.estimated_kwh > 0, "estimated_kwh": round(b.estimated_kwh, 3),
        "cycle_bills": [_cycle_bill_json(c) for c in b.cycle_bills],
    }


def projection_json(p: Projection | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "cycle_start": p.cycle_start.isoformat(),
        "cycle_end": p.cycle_end.isoformat(),
        "basis": p.basis,
        "energy_kwh": round(p.energy_kwh, 3),
        "generated_kwh": round(p.generated_kwh, 3),
        "energy_cost": _money(p.energy_cost),
        "generation_credit": _money(p.generation_credit),
        "fixed_charges": _money(p.fixed_charges),
        "minimum_bill": _money(p.minimum_bill),
        "total_cost": _money(p.total_cost),
        "next_tier": p.next_tier,
        "next_tier_date": p.next_tier_date.isoformat() if p.next_tier_date else None,
        "demand_charges": _money(p.demand_charges),
    }


def cost_json(result: billing.MeterCost, period: str) -> dict[str, Any]:
    """GET /api/v1/cost: one period's cost, the billing cycle and the projected bill."""
    report = result.report
    chosen = result.breakdown(period)
    projection = report.projection
    return {
        "meter_id": result.meter_id,
        "plan": report.plan,
        "label": report.label,
        "period": period,
        "at": _iso(result.at),
        "billing_cycle": {"start": report.cycle_start.isoformat(), "end": report.cycle_end.isoformat()},
        "cost": breakdown_json(chosen) if chosen is not None else None,
        "projection": projection_json(projection),
        "next_tier": projection.next_tier if projection else None,
        "next_tier_date": projection.next_tier_date.isoformat() if projection and projection.next_tier_date else None,
        "warning_threshold_cost": result.warning_threshold_cost,
    }


def meter_rates_json(hub: Hub, now: datetime) -> list[dict[str, Any]]:
    """What each meter's Price cluster published: tier labels, blocks, billing period, CPP."""
    result = []
    for meter_id, rate in sorted(hub.state.meter_rates.items()):
        current = hub.state.active_price(meter_id, now)
        peaks = [e for (m, _), e in hub.state.critical_peaks.items() if m == meter_id and e.end > now]
        result.append({
            "meter_id": meter_id,
            "rate_label": current.rate_label if current else None,
            "provider_id": current.provider_id if current else None,
            "currency": current.currency if current else None,
            "current_price_per_kwh": current.price_per_kwh if current else None,
            "current_tier": current.tier if current else None,
            "number_of_tiers": current.number_of_tiers if current else None,
            "tier_labels": {str(tier): label for tier, label in rate.tier_labels},
            "block_thresholds_kwh": list(rate.block_thresholds_kwh),
            "block_period": {"start": _iso(rate.block_period_start), "end": _iso(rate.block_period_end)},
            "billing_period": {"start": _iso(rate.billing_period_start), "end": _iso(rate.billing_period_end)},
            "critical_peak_events": [
                {"issuer_event_id": e.issuer_event_id, "start": _iso(e.start), "end": _iso(e.end),
                 "cpp_tier": e.cpp_tier, "authorization": e.authorization}
                for e in sorted(peaks, key=lambda e: e.start)
            ],
        })
    return result


def add_cost_routes(app: web.Application, hub_key: Any = None) -> None:
    """Register /api/v1/tariff, /api/v1/cost and /api/v1/cost/whatif on the app."""
    key = hub_key or HUB

    async def tariff(request: web.Request) -> web.Response:
        hub: Hub = request.app[key]
        now = hub.clock()
        published = meter_rates_json(hub, now)
        try:
            plan, config = billing.active_plan(hub)
        except NotFound:
            if not published:
                raise
            return web.json_response({"plan": None, "meter": published}, headers={"Cache-Control": "no-store"})
        body = tariff_json(plan, hub.config.site.timezone, now, config.climate_zone)
        body["meter"] = published
        # The price card's one truth: the sheet's price now (what the costs use), and whether a price
        # the meter publishes replaces it (tariff.use_meter_prices).
        body["now"] = present.rate_now(plan, hub.config.site.timezone, now)
        body["uses_meter_prices"] = config.use_meter_prices
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def cost(request: web.Request) -> web.Response:
        period = request.query.get("period", "cycle")
        if period not in PERIODS:
            raise web.HTTPBadRequest(reason=f"period must be one of {', '.join(PERIODS)}, not {period!r}")
        hub: Hub = request.app[key]
        billing.active_plan(hub)  # NotFound (404) without a plan, whichever meter is asked for
        meter_id = await params.meter_id(hub, request)
        result = await billing.meter_cost(hub, meter_id)
        return web.json_response(cost_json(result, period), headers={"Cache-Control": "no-store"})

    async def whatif(request: web.Request) -> web.Response:
        hub: Hub = request.app[key]
        config = hub.config.tariff
        if config is None or config.rates is None:
            raise NotFound(billing.NO_RATES)
        meter_id = await params.meter_id(hub, request)
        result = await billing.plan_comparison(hub, meter_id)
        body = {
            "meter_id": meter_id,
            "start": _iso(result.start),
            "end": _iso(result.end),
            "active_plan": result.active_plan,
            "cheapest": result.cheapest,
            "savings_vs_active": None if result.savings_vs_active is None else _money(result.savings_vs_active),
            "savings_vs_next": None if result.savings_vs_next is None else _money(result.savings_vs_next),
            "intervals_read": result.intervals_read,
            "missing_intervals": result.missing_intervals,
            "bills": [plan_bill_json(b) for b in result.bills],
            "unpriced": [asdict(u) for u in result.unpriced],
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    app.router.add_get("/api/v1/tariff", tariff)
    app.router.add_get("/api/v1/cost", cost)
    app.router.add_get("/api/v1/cost/whatif", whatif)
