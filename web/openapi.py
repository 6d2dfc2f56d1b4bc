"""The OpenAPI 3.0 description of /api/v1, served at /api/v1/openapi.json.

Written as data next to the handlers' JSON shapes (``web.present``, ``web.costs_api``,
``web.actions_api``); tests/web/test_openapi.py runs schemathesis against a live appliance so
the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ems.model import CommissioningStep

JSON = "application/json"

# -- building blocks ---------------------------------------------------------------------------


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object whose listed properties are all present (unless ``required`` says which)."""
    return {"type": "object", "properties": props, "required": sorted(props) if required is None else required}


def _n(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}  # ISO 8601 UTC, "Z"
DATE = {"type": "string", "format": "date"}
HHMM = {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


AUTH_ERRORS = {
    "401": _error("No credentials, or an unknown or revoked token"),
    "403": _error("The token or the user lacks the scope (or a cookie write lacks its CSRF token)"),
}
# web.errors maps ems.errors.NotReady to 503: the demand-response component is not running yet.
DR_NOT_READY = {"503": _error("Demand response is not running yet; try again in a moment")}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": STR, "status": INT}),
    "Health": _obj({
        "status": {"type": "string", "enum": ["starting", "ok", "degraded"]},
        "uptime_s": NUM,
        "meter_links": {"type": "object", "additionalProperties": STR},
        "frames": _obj({"received": INT, "malformed": INT, "unknown": INT, "rejected": INT}),
    }),
    "Meter": _obj({
        "meter_id": STR,
        "link": {"type": "string", "enum": ["connecting", "online", "stale", "offline"]},
        "link_since": _n(TIME),
        "link_detail": STR,
        "stale": BOOL,
        "demand_kw": _n(NUM),
        "summation_delivered_kwh": _n(NUM),
        "summation_received_kwh": _n(NUM),
        "current_day_delivered_kwh": _n(NUM),
        "current_day_received_kwh": _n(NUM),
        "last_reading_at": _n(TIME),
        "meter_time": _n(TIME),
        "last_interval": _n(_obj({"start": TIME, "duration_s": INT, "consumed_kwh": _n(NUM),
                                  "generated_kwh": _n(NUM)})),
        "unit": _n(STR),
        "device_type": _n(STR),
    }),
    "Price": _obj({
        "provider_id": INT,
        "issuer_event_id": INT,
        "rate_label": _n(STR),
        "currency": _n(STR),
        "price_per_kwh": _n(NUM),
        "tier": _n(INT),
        "number_of_tiers": _n(INT),
        "register_tier": _n(INT),
        "generation_price_per_kwh": _n(NUM),
        "price_ratio": _n(NUM),
        "start": TIME,
        "end": _n(TIME),
    }),
    "MeterPrices": _obj({"meter_id": STR, "current": _n(_ref("Price")), "upcoming": _list(_ref("Price"))}),
    "Message": _obj({
        "meter_id": STR,
        "message_id": INT,
        "text": STR,  # as sent; a message the appliance wrote: its English text
        "display_text": {**STR, "description": "The text in the reader's language (a message the appliance "
                         "wrote is translated; a utility's message is shown as sent)"},
        "importance": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "origin": {"type": "string", "enum": ["utility", "public", "local"]},
        "start": TIME,
        "end": _n(TIME),
        "received_at": TIME,
        "confirmation_required": BOOL,
        "enhanced_confirmation": BOOL,
        "confirmed_at": _n(TIME),
        "cancelled_at": _n(TIME),
        "read": BOOL,
        "active": BOOL,
    }),
    "Event": _obj({
        "meter_id": STR,
        "issuer_event_id": INT,
        "status": {"type": "string", "enum": ["scheduled", "active", "completed", "cancelled", "superseded"]},
        "start": TIME,
        "end": TIME,
        "scheduled_start": TIME,
        "duration_min": INT,
        "criticality": STR,
        "criticality_level": INT,
        "device_classes": _list(STR),
        "enrollment_group": _n(INT),
        "cooling_offset_c": _n(NUM),
        "heating_offset_c": _n(NUM),
        "cooling_setpoint_c": _n(NUM),
        "heating_setpoint_c": _n(NUM),
        "average_load_adjustment_pct": _n(INT),
        "duty_cycle_pct": _n(INT),
        "randomize_start": BOOL,
        "randomize_end": BOOL,
        "received_at": TIME,
        "cancelled_at": _n(TIME),
        "participation": {"type": "string", "enum": ["opted_in", "opted_out"],
                          "description": "The customer's choice; opted_in unless they opted out"},
        "excluded_devices": _list(_obj({"device_id": STR, "name": STR})),
        "outcome": _n(STR),
        "addresses_devices_here": BOOL,
        "took_part": {**BOOL, "description": "The home took part: the EMS set at least one device for it "
                                             "(a completed event with false only ended)"},
        "shed_kw": {**_n(NUM), "description": "The load the EMS sheds for the event (expected kW)"},
        "achieved_pct": {**_n(INT), "description": "That as a share of the home's load (negative: less)"},
    }),
    "MeterRate": _obj({
        "meter_id": STR,
        "rate_label": _n(STR),
        "provider_id": _n(INT),
        "currency": _n(STR),
        "current_price_per_kwh": _n(NUM),
        "current_tier": _n(INT),
        "number_of_tiers": _n(INT),
        "tier_labels": {"type": "object", "additionalProperties": STR},
        "block_thresholds_kwh": _list(NUM),
        "block_period": _obj({"start": _n(TIME), "end": _n(TIME)}),
        "billing_period": _obj({"start": _n(TIME), "end": _n(TIME)}),
        "critical_peak_events": _list(_obj({"issuer_event_id": INT, "start": TIME, "end": TIME,
                                            "cpp_tier": _n(INT), "authorization": _n(STR)})),
    }),
    "Tariff": _obj(
        {
            "plan": _n(STR),
            "meter": _list(_ref("MeterRate")),
            "label": STR,
            "utility_id": INT,
            "utility_name": STR,
            "currency": STR,
            "kinds": _list(STR),
            "timezone": STR,
            "effective_from": {"type": "string", "description": "local date and time the plan version took effect"},
            "season": STR,
            "energy_price_per_kwh": NUM,
            "number_of_tiers": INT,
            "tiers": _list(_obj({"tier": INT, "price_per_kwh": NUM, "allowance_kwh": _n(NUM)})),
            "periods": {
                "type": "object",
                "description": "season -> day type -> time-of-use periods",
                "additionalProperties": {"type": "object", "additionalProperties": _list(
                    _obj({"period": STR, "start": HHMM, "end": HHMM, "price_per_kwh": NUM}))},
            },
            "critical_peak_adder_per_kwh": NUM,
            "generation_credit_per_kwh": {"nullable": True,
                                          "description": 'a price per kWh, or "same_as_import"'},
            "basic_charge_per_day": NUM,
            "minimum_bill_per_day": NUM,
            "demand_charges": _n(_obj({
                "window_minutes": INT,
                "charges": _list(_obj({"label": STR, "price_per_kw": NUM, "months": _list(INT),
                                       "seasons": _list(STR), "periods": _list(STR),
                                       "hours": {"nullable": True, "type": "object",
                                                 "description": "day type -> [{start, end}] local hours; null: any time",
                                                 "additionalProperties": _list(_obj({"start": HHMM, "end": HHMM}))}})),
            })),
            "billing_cycle": _obj({"start": DATE, "end": DATE}),
            "now": {**_obj({"season": STR, "day_type": STR, "period": _n(STR), "critical_peak": BOOL,
                            "price_per_kwh": NUM, "tier_prices_per_kwh": _list(NUM), "until": TIME}),
                    "description": "the sheet's energy price now (before the cycle's tier adder): what the costs "
                                   "use; until: when it may change next (ask again then)"},
            "uses_meter_prices": {**BOOL, "description": "a price the meter publishes replaces the sheet's"},
        },
        # Without a configured plan only what the meter published: {"plan": null, "meter": [...]}.
        required=["plan", "meter"],
    ),
    "CostBreakdown": _obj({
        "start": TIME,
        "end": TIME,
        "currency": STR,
        "energy_kwh": NUM,
        "generated_kwh": NUM,
        "energy_cost": NUM,
        "generation_credit": NUM,
        "peak_time_rebate": NUM,
        "fixed_charges": NUM,
        "total_cost": NUM,
        "current_tier": _n(INT),
        "tiers": _list(_obj({"tier": INT, "energy_kwh": NUM, "cost": NUM, "price_per_kwh": NUM,
                             "allowance_kwh": _n(NUM)})),
        "periods": _list(_obj({"season": STR, "period": STR, "energy_kwh": NUM, "cost": NUM})),
        "intervals_read": INT,
        "missing_intervals": INT,
        "estimated": {**BOOL, "description": "part of the energy is a daily or monthly reading's flat share"},
        "estimated_kwh": NUM,
        "gaps": _list(_obj({"start": TIME, "end": TIME, "missing_intervals": INT})),
        "demand_charges": {**NUM, "description": "the billing cycle's demand charges so far (in total_cost); "
                                                 "0 for the last interval and today"},
        "demand": {**_list(_ref("DemandPeak")), "description": "each demand charge's highest demand so far"},
    }),
    "DemandPeak": _obj({
        "label": STR,
        "price_per_kw": NUM,
        "window_minutes": INT,
        "peak_kw": NUM,
        "at": {**_n(TIME), "description": "when the peak demand window began (null: none read yet)"},
        "charge": NUM,
        "estimated": {**BOOL, "description": "the peak was spread from a reading longer than the demand window"},
    }),
    "Projection": _obj({
        "cycle_start": DATE,
        "cycle_end": DATE,
        "basis": STR,
        "energy_kwh": NUM,
        "generated_kwh": NUM,
        "energy_cost": NUM,
        "generation_credit": NUM,
        "fixed_charges": NUM,
        "minimum_bill": NUM,
        "total_cost": NUM,
        "next_tier": _n(INT),
        "next_tier_date": _n(DATE),
        "demand_charges": {**NUM, "description": "at the cycle's peak so far (in total_cost)"},
    }),
    "Cost": _obj({
        "meter_id": STR,
        "plan": STR,
        "label": STR,
        "period": {"type": "string", "enum": ["interval", "today", "cycle"]},
        "at": TIME,
        "billing_cycle": _obj({"start": DATE, "end": DATE}),
        "cost": _n(_ref("CostBreakdown")),
        "projection": _n(_ref("Projection")),
        "next_tier": _n(INT),
        "next_tier_date": _n(DATE),
        "warning_threshold_cost": _n(NUM),
    }),
    "WhatIf": _obj({
        "meter_id": STR,
        "start": TIME,
        "end": TIME,
        "active_plan": _n(STR),
        "cheapest": _n(STR),
        "savings_vs_active": _n(NUM),
        "savings_vs_next": _n(NUM),
        "intervals_read": INT,
        "missing_intervals": INT,
        "bills": _list(_obj({
            "plan": STR, "label": STR, "currency": STR, "cycles": INT, "energy_kwh": NUM,
            "generated_kwh": NUM, "energy_cost": NUM, "generation_credit": NUM, "peak_time_rebate": NUM,
            "fixed_charges": NUM, "minimum_bill_topup": NUM, "total_cost": NUM, "demand_charges": NUM,
            "estimated": BOOL, "estimated_kwh": NUM,
            # each cycle's bill, every line to the cent; a cycle cut by the 12 months: its days in them
            "cycle_bills": _list(_obj({
                "start": DATE, "end": DATE, "days": INT, "energy_kwh": NUM, "generated_kwh": NUM,
                "energy_cost": NUM, "generation_credit": NUM, "peak_time_rebate": NUM, "fixed_charges": NUM,
                "minimum_bill_topup": NUM, "total_cost": NUM, "demand_charges": NUM, "estimated": BOOL,
            })),
        })),
        "unpriced": _list(_obj({"plan": STR, "reason": STR})),
    }),
    "Confirmation": {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
        "description": "Only for a message that asks for an enhanced (yes/no) confirmation",
    },
}

METER_QUERY = {"name": "meter", "in": "query", "required": False, "schema": STR,
               "description": "Which meter (default: the first one known)"}
METER_PATH = {"name": "meter_id", "in": "path", "required": True, "schema": STR}
UINT32 = {"type": "integer", "minimum": 0, "maximum": 0xFFFFFFFF}


def _get(summary: str, schema: dict[str, Any], scope: str | None = "read", **extra: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _ok(schema)}
    if scope is not None:
        responses.update(AUTH_ERRORS)
    responses.update(extra)
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if scope is None:
        op["security"] = []
    else:
        op["description"] = f"Scope: {scope}."
    return {"get": op}


def _action(summary: str, scope: str, what: str, id_name: str, schema: str, conflict: str,
            body: bool = False, dr: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Scope: {scope}. With a session cookie, send the X-CSRF-Token header.",
        "parameters": [METER_PATH, {"name": id_name, "in": "path", "required": True, "schema": UINT32}],
        "responses": {
            "200": _ok(_ref(schema), f"The {what}, as it now stands"),
            "400": _error("A bad body (for example an answer other than yes or no)"),
            **AUTH_ERRORS,
            "404": _error(f"No such {what}"),
        },
    }
    if conflict:
        op["responses"]["409"] = _error(conflict)
    if dr:
        op["responses"].update(DR_NOT_READY)
    if body:
        op["requestBody"] = {"required": False, "content": {JSON: {"schema": _ref("Confirmation")}}}
    return {"post": op}


PATHS: dict[str, Any] = {
    "/api/v1/health": _get("Whether the appliance and its meter links work (public, no customer data)",
                           _ref("Health"), scope=None),
    "/api/v1/openapi.json": _get("This description (public)", {"type": "object"}, scope=None),
    "/api/v1/meter": _get("Every meter's latest values and link state",
                          _obj({"meters": _list(_ref("Meter"))})),
    "/api/v1/price": _get("The current and upcoming prices per meter",
                          _obj({"prices": _list(_ref("MeterPrices"))})),
    "/api/v1/messages": _get("Recent messages, newest first", _obj({"messages": _list(_ref("Message"))})),
    "/api/v1/events": _get("Demand-response events, by start", _obj({"events": _list(_ref("Event"))})),
    "/api/v1/tariff": _get("The configured rate plan and what the meters published", _ref("Tariff"),
                           **{"404": _error("No rate plan configured and none published")}),
    "/api/v1/cost": {"get": {
        **_get("Cost of the last interval, today or the billing cycle so far", _ref("Cost"),
               **{"400": _error("Unknown period"), "404": _error("No rate plan, or no such meter")})["get"],
        "parameters": [
            {"name": "period", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["interval", "today", "cycle"], "default": "cycle"}},
            METER_QUERY,
        ],
    }},
    "/api/v1/cost/whatif": {"get": {
        **_get("The last 12 months' bill under every plan in the rates file", _ref("WhatIf"),
               **{"404": _error("No rates file, or no such meter")})["get"],
        "parameters": [METER_QUERY],
    }},
    "/api/v1/ws": _get(
        "The live WebSocket: a snapshot, then one JSON message per change",
        {"type": "object"},
        **{
            "101": {"description": 'Switching protocols. Frames are {"topic": "snapshot"|"meter"|"prices"|'
                                   '"messages"|"events", "data": ...}; send "snapshot" for a fresh one. '
                                   "A browser may pass the token as ?token=."},
            "400": _error("Not a WebSocket upgrade request"),
        },
    ),
    "/api/v1/messages/{meter_id}/{message_id}/confirm": _action(
        "Confirm a message; the MessageConfirmation reaches the meter through the outbox",
        "confirm_messages", "message", "message_id", "Message",
        "The message asks for no confirmation, or was already confirmed", body=True),
    "/api/v1/messages/read-all": {"post": {
        "summary": "Mark every unread message read (a message that asks for a confirmation still asks)",
        "description": "Scope: confirm_messages. With a session cookie, send the X-CSRF-Token header.",
        "responses": {
            "200": _ok(_obj({"marked": INT, "messages": _list(_ref("Message"))}),
                       "How many were marked, and the messages as they now stand"),
            **AUTH_ERRORS,
        },
    }},
    "/api/v1/messages/{meter_id}/{message_id}/read": _action(
        "Mark a message read", "confirm_messages", "message", "message_id", "Message", ""),
    "/api/v1/events/{meter_id}/{issuer_event_id}/opt-out": _action(
        "Opt out of a scheduled or active DR event (ReportEventStatus 0x04 to the meter)",
        "override_events", "event", "issuer_event_id", "Event",
        "The event is completed or cancelled, or the customer already opted out", dr=True),
    "/api/v1/events/{meter_id}/{issuer_event_id}/opt-in": _action(
        "Take part again in an event after opting out (ReportEventStatus 0x05 to the meter)",
        "override_events", "event", "issuer_event_id", "Event",
        "The event is completed or cancelled, or the customer already takes part", dr=True),
}
# Links let a stateful run act on the event the list shows (schemathesis follows them).
# /api/v1/usage (web/usage_api.py)
USAGE_RANGES = ("day", "week", "cycle", "year")
_NUM_OR_NULL = _list(_n(NUM))
PATHS["/api/v1/usage"] = {"get": {
    **_get("Interval energy as read per bucket, with the price behind it (generation positive; gaps null)",
           _obj({
               "meter_id": STR, "range": {"type": "string", "enum": list(USAGE_RANGES)}, "start": TIME, "end": TIME,
               "bucket_s": INT, "timezone": STR, "plan": _n(STR), "currency": _n(STR), "t": _list(INT),
               "consumed_kwh": _NUM_OR_NULL, "generated_kwh": _NUM_OR_NULL, "price_per_kwh": _NUM_OR_NULL,
               "coverage": _list(NUM), "intervals_read": INT, "empty_buckets": INT,
               # a bucket holding a flat share of a daily or monthly reading (not read in that bucket)
               "estimated": _list(BOOL),
           }), **{"400": _error("Unknown range"), "404": _error("No such meter, or none has reported yet")})["get"],
    "parameters": [
        {"name": "range", "in": "query", "required": False,
         "schema": {"type": "string", "enum": list(USAGE_RANGES), "default": "day"}},
        METER_QUERY,
    ],
}}

PATHS["/api/v1/events"]["get"]["responses"]["200"]["links"] = {
    f"OptOf{i}{kind}": {
        "operationId": f"event_{kind}",
        "parameters": {"meter_id": f"$response.body#/events/{i}/meter_id",
                       "issuer_event_id": f"$response.body#/events/{i}/issuer_event_id"},
    }
    for i in (0,) for kind in ("opt_out", "opt_in")
}
PATHS["/api/v1/events/{meter_id}/{issuer_event_id}/opt-out"]["post"]["operationId"] = "event_opt_out"
PATHS["/api/v1/events/{meter_id}/{issuer_event_id}/opt-in"]["post"]["operationId"] = "event_opt_in"
# -- demand response (web/control_api.py) ---------------------------------------------------
SCHEMAS["Proposal"] = _obj({
    "action": STR, "source": STR, "rule": _n(STR), "reason": STR, "reason_text": STR, "issuer_event_id": _n(INT),
    "value": _n(NUM), "cooling_setpoint_c": _n(NUM), "heating_setpoint_c": _n(NUM)})
SCHEMAS["DeviceReading"] = _obj({
    "at": TIME, "power_kw": _n(NUM), "on": _n(BOOL), "indoor_c": _n(NUM), "outdoor_c": _n(NUM),
    "cooling_setpoint_c": _n(NUM), "heating_setpoint_c": _n(NUM), "system_mode": _n(STR), "soc_pct": _n(NUM)})
SCHEMAS["Device"] = _obj({
    "device_id": STR, "name": STR,
    "kind": {"type": "string", "enum": ["thermostat", "switch", "load_controller", "battery"]},
    "device_class": _list(STR), "enrollment_group": INT, "nominal_kw": _n(NUM),
    "setpoint_limits_c": _n(_list(_n(NUM))), "capacity_kwh": _n(NUM), "model": STR, "available": BOOL,
    "detail": STR, "last_seen": _n(TIME), "reading": _n(_ref("DeviceReading")), "controlled": BOOL,
    "controlled_since": _n(TIME), "held_by": _n(_ref("Proposal")), "note": _n(STR),
    # *_text: the English reason, note or why in the reader's language (Settings, or ?lang=)
    "note_text": _n(STR),
    "not_chosen": _list(_obj({"reason": STR, "reason_text": STR, "why": STR, "why_text": STR})),
    "taken_in_hand_by_customer": BOOL})
SCHEMAS["Rules"] = _obj({"path": STR, "text": STR, "rules": INT, "warnings": _list(STR), "problems": _list(STR)})
_RULES_INVALID = {"description": "The rules are not valid: each problem names the line and the key path",
                  "content": {JSON: {"schema": _obj({"error": STR, "status": INT, "problems": _list(STR)})}}}
# The bounded YAML reader (ems.config) refuses a document before reading it: ``problems`` says why.
_RULES_REFUSED = _error("Empty, not UTF-8 text, a bad JSON body, or a document over the YAML limits (nested "
                        "over 64 levels, or aliases expanding past 100,000 values; `problems` names the line)")
_RULES_BODY = {"required": True, "content": {
    # A rules file is a YAML mapping (seasons, devices, rules); as plain text it is that document's text.
    "text/yaml": {"schema": {"type": "object"}}, "application/yaml": {"schema": {"type": "object"}},
    "text/plain": {"schema": {**STR, "minLength": 1}}, JSON: {"schema": _obj({"text": STR})}}}
DEVICE_PATH = {"name": "device_id", "in": "path", "required": True, "schema": STR}
PATHS["/api/v1/devices"] = _get("The home's devices: what each says, and what holds it and why",
                                _obj({"devices": _list(_ref("Device"))}))
PATHS["/api/v1/devices/{device_id}/readings"] = {"get": {
    **_get("A device's readings (telemetry) over the last hours",
           _obj({"device_id": STR, "readings": _list(_obj({"at": TIME}, ["at"]))}),
           **{"400": _error("hours is not a number in (0, 744]"), "404": _error("No such device"),
              **DR_NOT_READY})["get"],
    "parameters": [DEVICE_PATH, {"name": "hours", "in": "query", "required": False,
                                 "schema": {"type": "number", "default": 24}}],
}}
PATHS["/api/v1/rules"] = {
    **_get("The customer's rules file, with its warnings (conflicts) and problems", _ref("Rules"), **DR_NOT_READY),
    "put": {"summary": "Replace the rules (validated first, written atomically)",
            "description": "Scope: admin. With a session cookie, send the X-CSRF-Token header.",
            "requestBody": _RULES_BODY,
            "responses": {"200": _ok(_ref("Rules")), "400": _RULES_REFUSED,
                          **AUTH_ERRORS, "413": _error("Over 256 KiB"), "415": _error("Not YAML, text or JSON"),
                          "422": _RULES_INVALID, **DR_NOT_READY}},
}
PATHS["/api/v1/rules/validate"] = {"post": {
    "summary": "Check a rules text without putting it in force",
    "description": "Scope: admin. With a session cookie, send the X-CSRF-Token header.",
    "requestBody": _RULES_BODY,
    "responses": {"200": _ok(_obj({"valid": BOOL, "rules": INT, "warnings": _list(STR)})),
                  "400": _RULES_REFUSED, **AUTH_ERRORS,
                  "413": _error("Over 256 KiB"), "415": _error("Not YAML, text or JSON"), "422": _RULES_INVALID,
                  **DR_NOT_READY},
}}
for _kind, _what in (("opt-out", "Take one device out of an event (restored at once)"),
                     ("opt-in", "Put a device back into an event")):
    _op = _action(_what, "override_events", "event", "issuer_event_id", "Event",
                  "The event is over, or the device is already so", dr=True)
    _op["post"]["parameters"] = [*_op["post"]["parameters"], DEVICE_PATH]
    _op["post"]["responses"]["404"] = _error("No such event or device")
    PATHS[f"/api/v1/events/{{meter_id}}/{{issuer_event_id}}/devices/{{device_id}}/{_kind}"] = _op
PATHS["/api/v1/events/{meter_id}/{issuer_event_id}/actions"] = {"get": {
    **_get("What the EMS did for an event: every device command and restore, in order",
           _obj({"actions": _list(_obj({
               "at": TIME, "device_id": STR, "device": STR, "action": STR, "detail": {"type": "object"},
               "source": STR, "reason": STR, "reason_text": STR, "ok": BOOL, "error": _n(STR)}))}),
           **{"404": _error("No such event")})["get"],
    "parameters": [METER_PATH, {"name": "issuer_event_id", "in": "path", "required": True, "schema": UINT32}],
}}
# /api/v1/events/.../load-change (web/loadchange_api.py)
SCHEMAS["LoadChange"] = _obj({
    "meter_id": STR, "issuer_event_id": INT,
    "status": {"type": "string", "enum": ["scheduled", "live", "final", "insufficient history"]},
    "as_of": TIME, "start": TIME, "end": TIME, "rebound_end": TIME, "currency": _n(STR),
    **{k: _n(NUM) for k in ("baseline_kwh", "actual_kwh", "reduced_kwh", "kw_reduced", "peak_kw_reduced",
                            "rebound_kwh", "energy_shifted_kwh", "money_saved", "rebate_earned",
                            "rebate_baseline_kwh")},
    "baseline": _obj({"days": _list(DATE), "day_kind": STR, "adjustment_factor": _n(NUM), "adjustment": STR}),
    "missing_intervals": INT, "note": STR, "note_text": STR,
    "intervals": _list(_obj({"start": TIME, "end": TIME, "part": {"type": "string", "enum": ["event", "after"]},
                             "baseline_kwh": _n(NUM), "actual_kwh": _n(NUM), "baseline_kw": _n(NUM),
                             "actual_kw": _n(NUM), "from_demand": BOOL})),
})
PATHS["/api/v1/events/{meter_id}/{issuer_event_id}/load-change"] = {"get": {
    **_get("An event's measured load change against the customer's baseline: kW reduced, energy shifted, "
           "money saved, rebate (live during the event, final after its rebound hours)", _ref("LoadChange"),
           **{"404": _error("No such event")})["get"],
    "parameters": [METER_PATH, {"name": "issuer_event_id", "in": "path", "required": True, "schema": UINT32}],
    "operationId": "event_load_change",
}}
PATHS["/api/v1/events"]["get"]["responses"]["200"]["links"]["LoadChangeOf0"] = {
    "operationId": "event_load_change",
    "parameters": {"meter_id": "$response.body#/events/0/meter_id",
                   "issuer_event_id": "$response.body#/events/0/issuer_event_id"},
}

# Provisioning the home's devices (UC134): what the Add devices page and `ems han` use.
_PROVISION_SCOPE = "Scope: commission (owner, installer). With a session cookie, send the X-CSRF-Token header."
_FOUND = _obj({"device_id": STR, "address": STR, "manufacturer": STR, "model": STR, "capabilities": _list(STR),
               "credentials": {"type": "string", "enum": ["install_code", "network_key"]},
               "joined_at": _n(STR), "device_time": _n(STR), "answering": BOOL, "name": STR, "location": STR,
               "programs": _list(STR), "possible_programs": _list(STR), "enrollment_group": _n(INT),
               "device_class": _n(INT), "acknowledged_at": _n(STR), "readiness": STR})
_JOIN = _obj({"open": BOOL, "until": _n(STR), "seconds_left": INT})
_COUNTS = _obj({"sent": INT, "received": INT, "retries": INT, "failures": INT})


def _provision_post(summary: str, body: dict[str, Any], schema: dict[str, Any], **errors: Any) -> dict[str, Any]:
    return {"post": {"summary": summary, "description": _PROVISION_SCOPE,
                     "requestBody": {"required": False, "content": {JSON: {"schema": body}}},
                     "responses": {"200": _ok(schema), "400": _error("A bad body"), **AUTH_ERRORS,
                                   "503": _error("The home network is not running"), **errors}}}


PATHS["/api/v1/provision/devices"] = _get(
    "The home devices found, with what each can do, the customer's choices and its acknowledgement",
    _obj({"join": _JOIN, "devices": _list(_FOUND), "network": _COUNTS}), scope="commission")
PATHS["/api/v1/provision/permit"] = _provision_post(
    "Open joining for a while (0 closes it), admitting devices with their install codes",
    _obj({"seconds": {"type": "integer", "minimum": 0, "maximum": 254, "default": 120},
          "install_codes": {"type": "object", "additionalProperties": STR}}, []), _obj({"join": _JOIN}))
PATHS["/api/v1/provision/devices/{device_id}"] = _provision_post(
    "Name a device, say where it is, choose its programs; with send, send its program settings",
    _obj({"name": STR, "location": STR, "programs": _list({"type": "string", "enum": ["load_control", "pricing"]}),
          "send": BOOL}, []), _FOUND, **{"404": _error("No such device has joined")})
PATHS["/api/v1/provision/devices/{device_id}"]["post"]["parameters"] = [DEVICE_PATH]
PATHS["/api/v1/provision/test"] = _provision_post(
    "Test one device's link (or every device's): round trip, link quality, packet counters, guidance",
    _obj({"device_id": STR}, []),
    _obj({"results": _list(_obj({"device_id": STR, "ok": BOOL, "lqi": _n(INT), "rssi_dbm": _n(INT),
                                 "round_trip_ms": _n({"type": "number"}), "sent": INT, "received": INT,
                                 "retries": INT, "failures": INT, "problem": _n(STR), "guidance": STR})),
          "network": _COUNTS}))
PATHS["/api/v1/provision/scan"] = _get(
    "The home network's channel, network ID and devices (and channel energy where the radio measures it)",
    _obj({"channel": _n(INT), "pan_id": STR, "extended_pan_id": STR, "permit_joining": BOOL, "devices": INT,
          "energy_by_channel": {"type": "object", "additionalProperties": {"type": "number"}}, "note": STR}),
    scope="commission", **{"503": _error("The home network is not running")})
PATHS["/api/v1/provision/log"] = {"get": {
    **_get("The provisioning log, oldest first: every device interaction, stage, message and result",
           _obj({"entries": _list(_obj({"at": STR, "device_id": STR, "stage": STR, "message": STR, "result": STR,
                                        "detail": STR}))}),
           scope="commission", **{"400": _error("An unknown stage or result")})["get"],
    "parameters": [
        {"name": "device", "in": "query", "required": False, "schema": STR},
        {"name": "stage", "in": "query", "required": False, "schema": {"type": "string", "enum": [
            "joining", "joined", "discovered", "chosen", "provisioning", "acknowledged", "test", "scan", "clock"]}},
        {"name": "result", "in": "query", "required": False,
         "schema": {"type": "string", "enum": ["ok", "failed", "waiting", "info"]}},
        {"name": "format", "in": "query", "required": False,
         "schema": {"type": "string", "enum": ["csv", "json"]}, "description": "A download (CSV or JSON)"}],
}}
PATHS["/api/v1/provision/log"]["get"]["responses"]["200"]["content"]["text/csv"] = {"schema": STR}
PATHS["/api/v1/provision/ws"] = _get(
    "The provisioning log and the devices' changes, live", {"type": "object"}, scope="commission",
    **{"101": {"description": 'Switching protocols. Frames are {"topic": "log"|"device", "data": ...}.'},
       "400": _error("Not a WebSocket upgrade request")})
del PATHS["/api/v1/provision/ws"]["get"]["responses"]["200"]


# /api/v1/commissioning and /api/v1/selftest (web/commissioning_page.py): owner and installer.
SCHEMAS["SelfTest"] = _obj({
    "at": _n(TIME),
    "passed": _n({**BOOL, "description": "false when a critical check failed; null before the first run"}),
    "checks": _list(_obj({
        "name": {"type": "string", "enum": ["store", "radio", "meter_link", "clock", "disk"]},
        "label": STR,
        "outcome": {"type": "string", "enum": ["passed", "warning", "failed"]},
        "outcome_words": STR,
        "critical": {**BOOL, "description": "failed, and the appliance cannot do its job without it"},
        "summary": {**STR, "description": "what the check found and what to do, in the reader's language"},
    })),
})
SCHEMAS["Commissioning"] = _obj({
    "identity": _n(_obj({
        "device_type": STR, "device_id": {**STR, "description": "the SE device ID it joins as, 0x0502"},
        "ieee": {**STR, "description": "the device ID (EUI-64) the utility registers"},
        "install_code": {**STR, "description": "the install code and its CRC, in groups of 4 hex digits"},
    })),
    "meters": _list(_obj({"meter_id": STR, "latest": _n(_obj({
        "meter_id": STR,
        "stage": {"type": "string", "enum": [step.value for step in CommissioningStep]},
        "at": TIME, "words": STR, "detail": STR,
    }))})),
})
PATHS["/api/v1/selftest"] = _get("The latest self-test: the store, the radios, the meter link, the clock and "
                                 "free disk (run at every start and by ems selftest)", _ref("SelfTest"),
                                 scope="commission")
PATHS["/api/v1/commissioning"] = _get("The appliance's identity as the utility registers it (never its link key) "
                                      "and each meter's latest commissioning stage", _ref("Commissioning"),
                                      scope="commission")

# The meter setup (web.meter_setup): how each meter is read; another source found, tested, saved.
_SOURCE_SCOPE = "Scope: commission. With a session cookie, send the X-CSRF-Token header."
_KIND_PATH = {"name": "kind", "in": "path", "required": True, "schema": STR}
_SECTION = {"type": "object", "additionalProperties": True}
_PROBE = _obj({"ok": BOOL, "reason": _n(STR), "hardware_id": _n(STR), "demand_kw": _n(NUM),
               "summation_delivered_kwh": _n(NUM), "summation_received_kwh": _n(NUM), "price_per_kwh": _n(NUM),
               "currency": _n(STR), "details": _list(_obj({"label": STR, "value": STR}))})


def _source_post(summary: str, schema: dict[str, Any], status: str, **errors: Any) -> dict[str, Any]:
    return {"post": {"summary": summary, "description": _SOURCE_SCOPE, "parameters": [_KIND_PATH],
                     "requestBody": {"required": True, "content": {JSON: {"schema": _SECTION}}},
                     "responses": {status: _ok(schema), "400": _error("A bad body or a setting the kind refuses"),
                                   "404": _error("No meter source of that kind"), **AUTH_ERRORS, **errors}}}


PATHS["/api/v1/commissioning/meter-sources"] = _get(
    "The kinds of meter source this appliance can set up (with their settings) and how each meter is read",
    _obj({"kinds": _list(_obj({"kind": STR, "title": STR, "fields": _list(_obj({
        "name": STR, "label": STR, "kind": STR, "required": BOOL, "hint": STR, "default": STR}))})),
          "meters": _list(_obj({"meter_id": STR, "source": STR, "link": STR, "hardware_id": _n(STR),
                                "pending_hardware_id": _n(STR)}))}), scope="commission")
PATHS["/api/v1/commissioning/meter-sources/{kind}/candidates"] = {"get": {
    **_get("The sources of that kind found now (serial ports, bridges and meters on the LAN)",
           _obj({"candidates": _list(_obj({"address": STR, "label": STR, "hardware_id": _n(STR)}))}),
           scope="commission", **{"404": _error("No meter source of that kind")})["get"],
    "parameters": [_KIND_PATH]}}
PATHS["/api/v1/commissioning/meter-sources/{kind}/probe"] = _source_post(
    "Read the meter once with these settings, saving nothing", _PROBE, "200")
PATHS["/api/v1/commissioning/meter-sources/{kind}"] = _source_post(
    "Test these settings, then save them and read the meter this way from now on",
    _obj({"meter_id": STR, "kind": STR, "probe": _PROBE}), "201",
    **{"422": _error("The test did not read the meter: nothing saved")})
PATHS["/api/v1/commissioning/meters/{meter_id}/confirm"] = {"post": {
    "summary": "Confirm that the different meter that answered is the customer's (after a move)",
    "description": _SOURCE_SCOPE, "parameters": [METER_PATH],
    "requestBody": {"required": True, "content": {JSON: {"schema": _obj({"hardware_id": STR})}}},
    "responses": {"200": _ok(_obj({"meter_id": STR, "hardware_id": STR})), "400": _error("A bad body"),
                  **AUTH_ERRORS, "409": _error("No such meter is waiting to be confirmed")}}}

# The WebSocket answers 200 to nothing; its success is the 101 upgrade.
del PATHS["/api/v1/ws"]["get"]["responses"]["200"]

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Premise EMS API",
        "version": "1",
        "description": "Meter data, prices, messages, demand-response events and cost of one premise. "
                       "Times are ISO 8601 UTC, energy kWh, power kW, money in the plan's currency. "
                       "Send Authorization: Bearer TOKEN (tokens are made under Account > API tokens).",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": SCHEMAS,
    },
}


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT, headers={"Cache-Control": "no-cache"})


def add_openapi_route(app: web.Application) -> None:
    """Serve the description at /api/v1/openapi.json."""
    app.router.add_get("/api/v1/openapi.json", openapi_json)
