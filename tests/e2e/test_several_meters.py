"""Several meters on one appliance (a commercial account, C6 4.1): each meter is registered and
commissioned on its own, with its own number and its own stages, and the Commissioning page and its
API show each one's state. Meter "b"'s utility has not registered the appliance yet: b waits and
says why while "a" is online; once b registers it, b joins too, and each meter's data is its own."""

from __future__ import annotations

from ems.model import CommissioningStep, LinkState
from integrations.simulator import SimulatedHan, scenario_from_dict
from integrations.zigbee.trust_center import REFUSAL_TEXT, JoinRefusal
from tests.e2e.conftest import CONFIG, FAST_SCENARIO, assert_conformant, running_appliance

METER_B = {**FAST_SCENARIO, "messages": [], "events": [], "meter": {
    **FAST_SCENARIO["meter"], "ieee": "00:0d:6f:00:0a:90:69:e8", "number": "55567890",
    "register_appliance": False, "initial_delivered_kwh": 48_000.0}}


def config(port_b: int) -> str:
    return CONFIG.replace("zigbee_se:\n", f"""zigbee_se:
  join_retry_s: 0.5
  meters:
    - {{meter_id: a, meter_number: "55512345"}}
    - {{meter_id: b, meter_number: "55567890", radio: {{path: "virtual://127.0.0.1:{port_b}"}}}}
""")


def stages(appliance, meter_id: str) -> list[CommissioningStep]:  # type: ignore[no-untyped-def]
    return [stage.stage for stage in appliance.hub.state.commissioning.get(meter_id, [])]


def online(appliance, meter_id: str) -> bool:  # type: ignore[no-untyped-def]
    meter = appliance.hub.state.meters.get(meter_id)
    return meter is not None and meter.link is LinkState.ONLINE and meter.value("demand_kw") is not None


async def test_each_meter_is_commissioned_on_its_own_with_its_own_state(tmp_path) -> None:
    from tests.e2e.conftest import _TEST_CLOCK

    meter_b = SimulatedHan(scenario_from_dict(METER_B), clock=_TEST_CLOCK[0])
    await meter_b.start()
    try:
        async with running_appliance(tmp_path, config_text=config(meter_b.port)) as appliance:
            await appliance.wait_until(lambda: online(appliance, "a") and CommissioningStep.WAITING in stages(
                appliance, "b"), what="a online while b waits for its registration")
            assert CommissioningStep.METER_CHECKED in stages(appliance, "a")
            assert CommissioningStep.JOINED not in stages(appliance, "b")
            shown = {m["meter_id"]: m["latest"] for m in (await appliance.get("/api/v1/commissioning"))["meters"]}
            assert set(shown) == {"a", "b"}
            assert shown["b"]["stage"] == "waiting" and shown["b"]["detail"] == REFUSAL_TEXT[JoinRefusal.NOT_REGISTERED]
            assert shown["a"]["stage"] != "waiting"
            assert meter_b.trust_center.log[-1].outcome == "refused"  # logged on b's side too

            # b's utility registers the appliance (what the customer gave it); b's next try joins.
            identity = appliance.hub.identity
            meter_b.register_appliance(identity.ieee, identity.install_code)
            await appliance.wait_until(lambda: online(appliance, "b"), what="b online")
            checked = [s for s in appliance.hub.state.commissioning["b"] if s.stage is CommissioningStep.METER_CHECKED]
            assert checked[-1].detail == "the meter's number is 55567890, the one you gave"
            links = appliance.hub.integrations["zigbee_se"].links
            assert {m: str(link.session.device.ieee) for m, link in links.items()} == {
                "a": appliance.simulator.scenario.meter["ieee"], "b": "00:0d:6f:00:0a:90:69:e8"}
            state = appliance.hub.state
            await appliance.wait_until(lambda: state.meters["b"].value("summation_delivered_kwh") is not None and
                                       state.meters["a"].value("summation_delivered_kwh") is not None, what="registers")
            assert state.meters["b"].value("summation_delivered_kwh") > 40_000 > state.meters["a"].value(
                "summation_delivered_kwh")  # each meter's own register, not mixed
            page = await (await appliance.http.get(appliance.url + "/commissioning")).text()
            assert 'data-meter="a"' in page and 'data-meter="b"' in page  # each with its own stage
        await assert_conformant(meter_b)
    finally:
        await meter_b.stop()
