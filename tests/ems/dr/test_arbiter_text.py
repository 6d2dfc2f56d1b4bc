"""The arbiter's notes and each loser's why are msgids and values (ems.model.Text), rendered in
English for the log and in each reader's own language (web.control_api renders them)."""

from __future__ import annotations

from datetime import timedelta

from ems.dr.arbiter import Decision, LoadHistory, decide
from ems.model import (
    ComfortLimits,
    DevicePreference,
    Proposal,
    ProposalAction,
    ProposalSource,
    Text,
    english,
)
from tests.rules.home import LIVING_ROOM, METER, NOW, POOL_PUMP, event, home
from web.control_api import dr_parts_text, dr_text

SITE = "America/Los_Angeles"


def _decide(*proposals: Proposal, opted_out: bool = False, **kwargs: object) -> dict[str, Decision]:
    return decide(proposals, home(), (event(opted_out=opted_out),), kwargs.get("preferences", {}),  # type: ignore[arg-type]
                  kwargs.get("history", {}), {}, NOW)  # type: ignore[arg-type]


def _offset(value: float, source: ProposalSource = ProposalSource.EVENT, rule: str = "Sigue") -> Proposal:
    return Proposal(LIVING_ROOM, ProposalAction.OFFSET, source, Text("why"), rule=rule, value=value,
                    meter_id=METER, issuer_event_id=1234)


def test_an_offset_held_to_the_comfort_limit_is_noted_in_spanish() -> None:
    prefs = {LIVING_ROOM: DevicePreference(LIVING_ROOM, comfort=ComfortLimits(max_offset_c=3.0))}
    decision = _decide(_offset(5.0), preferences=prefs)[LIVING_ROOM]

    assert english(decision.note) == "offset held to +3.0 °C (comfort limit)"
    assert dr_parts_text(decision.note, "es", SITE) == "desplazamiento limitado a +3,0 °C (límite de confort)"


def test_a_proposal_for_an_event_the_customer_opted_out_of_loses_in_spanish() -> None:
    decision = _decide(_offset(2.0), opted_out=True)[LIVING_ROOM]

    ((_p, why),) = decision.losers
    assert str(why) == "the customer opted out of event 1234"
    assert dr_text(why, "es", SITE) == "usted dejó de participar en el evento 1234"


def test_a_proposal_that_lost_to_a_rule_names_the_rule_as_written() -> None:
    winner = _offset(2.0, rule="Mi regla")
    loser = _offset(1.0, ProposalSource.RULE, rule="Otra")
    decision = _decide(winner, loser)[LIVING_ROOM]

    assert str(decision.losers[0][1]) == "lost to 'Mi regla'"
    assert dr_text(decision.losers[0][1], "es", SITE) == "se eligió «Mi regla» en su lugar"


def test_a_load_kept_off_its_longest_allowed_is_put_back_on_in_spanish() -> None:
    off = Proposal(POOL_PUMP, ProposalAction.OFF, ProposalSource.EVENT, Text("why"), meter_id=METER, issuer_event_id=1234)
    history = {POOL_PUMP: LoadHistory(off_since=NOW - timedelta(minutes=121))}
    decision = _decide(off, history=history)[POOL_PUMP]

    assert english(decision.note) == "kept off for its longest allowed 120 min: back on"
    assert dr_parts_text(decision.note, "es", SITE) == (
        "apagado durante el máximo permitido de 120 min: se vuelve a encender")


def test_an_action_the_device_cannot_do_says_so_in_spanish() -> None:
    duty = Proposal(LIVING_ROOM, ProposalAction.DUTY_CYCLE, ProposalSource.RULE, Text("why"), value=50.0)
    decision = _decide(duty)[LIVING_ROOM]

    assert str(decision.losers[0][1]) == "a thermostat cannot duty cycle"
    assert dr_text(decision.losers[0][1], "es", SITE) == (
        "un dispositivo de tipo termostato no admite la acción «ciclo de trabajo»")


def test_every_loser_has_its_why_as_a_msgid() -> None:
    decision = _decide(_offset(2.0), _offset(1.0, ProposalSource.RULE), _offset(0.5, ProposalSource.DEFAULT))[LIVING_ROOM]

    assert [str(why) for _p, why in decision.losers] == ["lost to 'Sigue'"] * 2
