"""C6 3.1 steps 5-13 end to end: the appliance joins the meter's network with its own install code,
only once the utility registered it, and shows each stage with its time (C6 1.4: only its meter)."""

from __future__ import annotations

from ems.model import CommissioningStep
from integrations.zigbee import security
from integrations.zigbee.trust_center import REFUSAL_TEXT, JoinRefusal
from integrations.zigbee.virtual_node import COORDINATOR_NWK
from tests.e2e.conftest import CONFIG, FAST_SCENARIO, running_appliance
from tests.integrations.zigbee.pcap_reader import read_pcap

RETRY_CONFIG = CONFIG.replace("zigbee_se:\n", "zigbee_se:\n  join_retry_s: 0.5\n")
UNREGISTERED = {**FAST_SCENARIO, "meter": {**FAST_SCENARIO["meter"], "register_appliance": False}}
CONFIGURES = {**FAST_SCENARIO, "meter": {**FAST_SCENARIO["meter"], "configuration": {"enrollment_group": 0}}}


def stages(appliance) -> list[CommissioningStep]:
    return [stage.stage for stage in appliance.hub.state.commissioning.get("main", [])]


async def test_the_appliance_joins_with_its_own_install_code_and_shows_each_stage(tmp_path) -> None:
    async with running_appliance(tmp_path, scenario=CONFIGURES, pcap=tmp_path / "se.pcap") as appliance:
        await appliance.online()
        await appliance.wait_until(lambda: CommissioningStep.CONFIGURED in stages(appliance), what="configured")
        identity = appliance.hub.identity
        assert identity is not None  # made at the first start, and registered by the simulator (the utility)
        assert stages(appliance)[:6] == [
            CommissioningStep.JOINING, CommissioningStep.JOINED, CommissioningStep.AUTHENTICATED,
            CommissioningStep.KEYS_ESTABLISHED, CommissioningStep.METER_CHECKED, CommissioningStep.CONFIGURED]
        timeline = appliance.hub.state.commissioning["main"]
        assert all(a.at <= b.at for a, b in zip(timeline, timeline[1:], strict=False))
        log = appliance.simulator.trust_center.log
        assert [(str(r.ieee), r.outcome) for r in log] == [(identity.ieee, "admitted"), (identity.ieee, "authenticated")]
        assert appliance.simulator.node.nwk == COORDINATOR_NWK  # the meter is the coordinator
        assert appliance.hub.integrations["zigbee_se"].app.state.node_info.nwk != COORDINATOR_NWK
    _, records = read_pcap(tmp_path / "se.pcap")
    assert len(records) > 10 and all(security.is_nwk_secured(data) for *_, data in records[1:])


async def test_an_unregistered_appliance_waits_says_why_and_joins_once_registered(tmp_path) -> None:
    async with running_appliance(tmp_path, scenario=UNREGISTERED, config_text=RETRY_CONFIG) as appliance:
        await appliance.wait_until(lambda: CommissioningStep.WAITING in stages(appliance), what="refused")
        waiting = next(s for s in appliance.hub.state.commissioning["main"] if s.stage is CommissioningStep.WAITING)
        assert waiting.detail == REFUSAL_TEXT[JoinRefusal.NOT_REGISTERED]
        assert "Commissioning page" in waiting.detail
        assert appliance.simulator.trust_center.log[-1].outcome == "refused"  # logged on both sides
        # The customer gives the utility the install code; the meter is told; the next retry joins.
        identity = appliance.hub.identity
        appliance.simulator.register_appliance(identity.ieee, identity.install_code)
        await appliance.online()
        await appliance.wait_until(lambda: CommissioningStep.KEYS_ESTABLISHED in stages(appliance), what="keys")


async def test_a_meter_other_than_the_customers_is_left(tmp_path) -> None:
    config = CONFIG.replace("zigbee_se:\n", "zigbee_se:\n  join_retry_s: 30\n  meter_ieee: 00:0d:6f:00:00:00:00:01\n")
    async with running_appliance(tmp_path, config_text=config) as appliance:
        await appliance.wait_until(lambda: CommissioningStep.WRONG_METER in stages(appliance), what="left")
        refused = [s for s in appliance.hub.state.commissioning["main"] if s.stage is CommissioningStep.WRONG_METER]
        assert "is not yours" in refused[0].detail
        assert CommissioningStep.CONFIGURED not in stages(appliance)
        assert appliance.hub.integrations["zigbee_se"].session is None


def with_meter_number(number: str, section: str = "commissioning") -> str:
    if section == "commissioning":
        return CONFIG + f'commissioning:\n  meter_number: "{number}"\n'
    return CONFIG.replace("zigbee_se:\n", f'zigbee_se:\n  join_retry_s: 30\n  meter_number: "{number}"\n')


async def test_the_meter_number_the_customer_gave_is_checked_against_the_meters(tmp_path) -> None:
    """C6 1.4: the number printed on the meter (as the customer writes it) is the one the meter serves."""
    scenario = {**FAST_SCENARIO, "meter": {**FAST_SCENARIO["meter"], "number": "55512345"}}
    async with running_appliance(tmp_path, scenario=scenario, config_text=with_meter_number("0055 5123-45")) as appliance:
        await appliance.online()
        checked = [s for s in appliance.hub.state.commissioning["main"] if s.stage is CommissioningStep.METER_CHECKED]
        assert checked and checked[-1].detail == "the meter's number is 55512345, the one you gave"
        assert appliance.hub.integrations["zigbee_se"].meter_number == "55512345"


async def test_a_meter_with_another_number_is_left_before_any_of_its_data_is_taken(tmp_path) -> None:
    """A neighbour's meter (it admitted this appliance, but its number is not the customer's) gives nothing."""
    config = with_meter_number("55599999", section="zigbee_se")
    # A meter that sends nothing on its own: what it owes no answer to is not this test's (the strict
    # meter would count an event it sent in the moment before the appliance left as unanswered).
    quiet = {**FAST_SCENARIO, "messages": [], "events": []}
    async with running_appliance(tmp_path, scenario=quiet, config_text=config) as appliance:
        await appliance.wait_until(lambda: CommissioningStep.WRONG_METER in stages(appliance), what="left")
        left = next(s for s in appliance.hub.state.commissioning["main"] if s.stage is CommissioningStep.WRONG_METER)
        assert "has number 55512345, not 55599999" in left.detail
        assert "Check the number printed on your meter" in left.detail
        assert CommissioningStep.METER_CHECKED not in stages(appliance)
        assert appliance.hub.integrations["zigbee_se"].session is None
        meter = appliance.hub.state.meter("main")
        assert (meter.info, meter.values, meter.last_reading_at) == (None, {}, None)  # nothing taken
        assert appliance.hub.state.prices.get("main") is None


CONFIGURING = {**FAST_SCENARIO, "messages": [], "meter": {**FAST_SCENARIO["meter"], "configuration": {
    "enrollment_group": 7, "start_randomization_min": 12, "duration_randomization_min": 4,
    "test_message": "Test message from your utility: all is well."}}}


async def test_the_utilitys_configuration_is_applied_and_its_test_message_confirmed(tmp_path) -> None:
    """C6 3.1 steps 14-17: program group and randomisation, pricing configuration, test message, confirmation."""
    async with running_appliance(tmp_path, scenario=CONFIGURING) as appliance:
        meter = appliance.simulator.meter
        await appliance.wait_until(lambda: meter.test_message_id is not None and any(
            a.command == "message_confirmation" and int(a.fields["message_id"]) == meter.test_message_id
            for a in meter.answers), what="the test message's confirmation")
        settings = appliance.hub.control.load_control.settings
        assert (settings.enrollment_group, settings.start_randomization_min,
                settings.duration_randomization_min) == (7, 12, 4)
        state = appliance.hub.state.messages[("main", meter.test_message_id)]
        assert state.confirmed_at is not None  # the appliance confirmed it, not the customer
        assert [text for _at, text in meter.configuration_log][-1] == \
            "the appliance confirmed receipt of the test message"
        configured = [s for s in appliance.hub.state.commissioning["main"] if s.stage is CommissioningStep.CONFIGURED]
        assert "test message" in configured[-1].detail
