"""The rules' reasons are a msgid and its values (ems.model.Text), rendered in English for the log
and in each reader's own language (web.control_api.dr_text), times in the site's zone and numbers
as the locale writes them; a rule's own name stays as the customer wrote it."""

from __future__ import annotations

from datetime import timedelta

from ems.model import EventPhase, machine_string
from rules import evaluate, parse_rules
from tests.rules.home import EV_CHARGER, LIVING_ROOM, NOW, POOL_PUMP, event, snapshot
from web.control_api import dr_text

SITE = "America/Los_Angeles"


def _proposals(action: str, targets: str = "", extra: str = "", name: str = "Sigue los eventos", **kwargs):
    text = f"rules:\n  - name: {name}\n    priority: 60\n"
    if targets:
        text += f"    targets: {targets}\n"
    return {p.device_id: p for p in evaluate(parse_rules(text + extra + f"    action: {action}\n"), snapshot(**kwargs))}


def _spanish(p) -> str:
    return dr_text(p.reason, "es", SITE)


FOLLOW = "    triggers:\n      - event: active\n"


def test_an_events_offset_reads_in_spanish_with_the_sites_time_and_a_decimal_comma():
    p = _proposals("follow_event", extra=FOLLOW, events=(event(cooling_offset_c=2.0),))[LIVING_ROOM]

    assert str(p.reason) == "Event 1234 (urgency 3 of 5, until 18:20): 2.0 °C warmer than comfort — rule 'Sigue los eventos'"
    assert _spanish(p) == ("Evento 1234 (urgencia 3 de 5, hasta las 18:20): 2,0 °C más cálido que la temperatura de confort"
                           " — regla «Sigue los eventos»")


def test_an_events_off_and_duty_cycle_read_in_spanish():
    off = _proposals("follow_event", extra=FOLLOW, events=(event(),))[POOL_PUMP]
    duty = _proposals("follow_event", extra=FOLLOW, events=(event(duty_cycle_pct=50),))[POOL_PUMP]

    assert _spanish(off).endswith("): apagado — regla «Sigue los eventos»")
    assert ": encendido el 50 % del tiempo — " in _spanish(duty)


def test_the_english_rendering_of_the_msgid_says_what_the_reason_says():
    p = _proposals("follow_event", extra=FOLLOW, events=(event(cooling_offset_c=2.0),))[LIVING_ROOM]

    assert dr_text(p.reason, "en", SITE) == (
        "Event 1234 (urgency 3 of 5, until 6:20\u202fPM): 2.0 °C warmer than comfort — rule 'Sigue los eventos'")


def test_a_schedule_reason_says_until_when_in_spanish():
    extra = "    triggers:\n      - schedule: {from: '16:00', to: '21:00'}\n"
    p = _proposals("turn_off", "[Pool pump]", extra, name="Tarde")[POOL_PUMP]

    assert str(p.reason) == "Rule 'Tarde': off until 21:00"
    assert _spanish(p) == "Regla «Tarde»: apagado hasta las 21:00"


def test_a_shedding_reason_says_the_plan_in_spanish():
    p = _proposals("{shed_to_limit_kw: 2}", "[Pool pump]", name="Límite", demand_kw=10.0)[POOL_PUMP]

    assert _spanish(p) == ("Regla «Límite»: apagado para mantener la demanda por debajo de 2 kW "
                           "(solo puede reducir 1,5 kW de los 8,0 kW necesarios (faltan 6,5 kW))")


def test_a_rule_before_an_event_says_when_it_starts_in_spanish():
    extra = "    triggers:\n      - event: announced\n"
    scheduled = event(phase=EventPhase.SCHEDULED, start=NOW + timedelta(minutes=50))
    p = _proposals("{offset_c: -1.5}", "[Living room]", extra, name="Preenfriar", events=(scheduled,))[LIVING_ROOM]

    assert str(p.reason) == "Rule 'Preenfriar': 1.5 °C cooler than usual until event 1234 starts at 17:20"
    assert _spanish(p) == ("Regla «Preenfriar»: 1,5 °C más fresco de lo habitual hasta que empiece el evento 1234, "
                           "a las 17:20")


def test_a_notify_reason_keeps_the_rules_name():
    extra = "    triggers:\n      - event: active\n"
    text = "rules:\n  - name: Avisar\n" + extra + "    action: {notify: 'Evento {event_id}'}\n"
    (p,) = evaluate(parse_rules(text), snapshot(events=(event(),)))

    assert _spanish(p) == "Regla «Avisar»"
    assert p.text == "Evento 1234"


def test_a_missing_translation_falls_back_to_the_english_msgid():
    p = _proposals("turn_off", "[EV charger]")[EV_CHARGER]

    assert dr_text(p.reason, "fr", SITE) == "Rule 'Sigue los eventos': off"



def test_a_reason_follows_its_values_from_one_evaluation_to_the_next():
    # Reasons are kept between evaluations (the same ones come back every cycle): a changed value
    # must still change the reason, and the same one must read as it did.
    ruleset = parse_rules("rules:\n  - {name: Cap, targets: all, action: {shed_to_limit_kw: 10}}\n")
    at_14, at_16, at_14_again = (
        {p.device_id: dict(p.reason.params) for p in evaluate(ruleset, snapshot(demand_kw=kw))}
        for kw in (14.0, 16.0, 14.0))
    assert at_14 == at_14_again
    assert {v["needed_kw"] for v in at_14.values()} == {machine_string(4.0)}
    assert {v["needed_kw"] for v in at_16.values()} == {machine_string(6.0)}
