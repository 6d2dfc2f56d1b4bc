"""The strict ESI's answers and the expressive scenario, checked on the bytes the meter sends.

The meter's node is attached to a fake network that keeps what it transmits; frames from the
"EMS" are fed to the node as the HAN would deliver them. Time is a ``FixedClock``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from ems.clock import FixedClock
from ems.errors import ConfigError
from integrations.simulator import SimulatedHan, scenario_from_dict
from integrations.simulator.meter import SimulatedMeter
from integrations.simulator.scenario import load_scenario
from integrations.zigbee.air import AirFrame
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc, Messaging, Price

T0 = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)
NOW = codec.datetime_to_utc_time(T0)
GENERAL = foundation.GeneralCommand
EMS_IEEE = t.EUI64.convert("02:50:52:45:4d:00:00:01")


class FakeNetwork:
    """Keeps what the meter transmits, in place of a VirtualHan."""

    pan_id = 0x1A62
    extended_pan_id = t.ExtendedPanId.convert("50:52:45:4d:49:53:45:31")
    coordinator_ieee = EMS_IEEE
    radio_nwk = 0x2A01  # the EMS, joined to the meter's network (the meter is 0x0000)

    def __init__(self) -> None:
        self.sent: list[AirFrame] = []

    def transmit(self, frame: AirFrame) -> bool:
        self.sent.append(frame)
        return True

    def nwk_of(self, ieee: t.EUI64) -> int | None:
        return self.radio_nwk


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def attach(meter: SimulatedMeter) -> FakeNetwork:
    network = FakeNetwork()
    meter.node.attach(network)
    meter.node.join()
    network.sent.clear()
    return network


@pytest.fixture
def sim(clock: FixedClock) -> tuple[SimulatedHan, FakeNetwork]:
    han = SimulatedHan(scenario_from_dict({"conformance": {"grace": 60}}), clock=clock)
    han.tick(T0)
    return han, attach(han.meter)


def from_ems(meter: SimulatedMeter, cluster_id: int, payload: bytes) -> None:
    meter.node.receive(AirFrame.single_hop(
        pan_id=0x1A62, nwk_src=0x0000, nwk_dst=meter.node.nwk, seq=1, src_endpoint=1, dst_endpoint=1,
        cluster_id=cluster_id, profile_id=0x0109, payload=payload))


def sent(network: FakeNetwork) -> list[codec.ParsedFrame]:
    classes = {c.cluster_id: c for c in (Price, Drlc, Messaging)}
    frames = [codec.parse_frame(classes[f.cluster_id], f.payload) for f in network.sent if f.cluster_id in classes]
    network.sent.clear()
    return frames


def report(tsn: int, *, ddr: bool) -> bytes:
    return codec.build_frame(
        Drlc, "report_event_status", tsn=tsn, disable_default_response=ddr, issuer_event_id=7, event_status=1,
        event_status_time=NOW, criticality_level_applied=3, cooling_temperature_set_point_applied=-0x8000,
        heating_temperature_set_point_applied=-0x8000, average_load_adjustment_percentage_applied=-128,
        duty_cycle_applied=0xFF, event_control=0, signature_type=0, signature=b"\xff" * 42)


ANSWERS: list[tuple[Any, bytes]] = [
    (Price, codec.build_frame(Price, "price_acknowledgement", tsn=3, provider_id=1, issuer_event_id=1,
                              price_ack_time=NOW, control=1)),
    (Price, codec.build_frame(Price, "cpp_event_response", tsn=3, issuer_event_id=1, cpp_auth=1)),
    (Messaging, codec.build_frame(Messaging, "message_confirmation", tsn=3, message_id=1, confirmation_time=NOW)),
    (Drlc, report(3, ddr=False)),
]


# --- answers as a real ESI ----------------------------------------------------------------


@pytest.mark.parametrize(("cluster", "frame"), ANSWERS)
def test_what_the_ems_reports_is_recorded_and_answered_success_only_when_asked(
    sim: tuple[SimulatedHan, FakeNetwork], cluster: Any, frame: bytes
) -> None:
    han, network = sim
    from_ems(han.meter, cluster.cluster_id, frame)  # DDR = 0
    (answer,) = han.meter.answers
    assert (answer.tsn, answer.disable_default_response) == (3, False)
    (reply,) = network.sent
    header, body = foundation.ZCLHeader.deserialize(reply.payload)
    assert (header.command_id, header.tsn, body) == (GENERAL.Default_Response, 3, bytes([frame[2], 0x00]))
    network.sent.clear()
    quiet = bytes([frame[0] | 0x10]) + frame[1:]  # DDR = 1: SUCCESS is not sent
    from_ems(han.meter, cluster.cluster_id, quiet)
    assert len(han.meter.answers) == 2 and network.sent == []


def test_the_time_attribute_is_current_when_read(sim: tuple[SimulatedHan, FakeNetwork], clock: FixedClock) -> None:
    han, network = sim
    clock.advance(seconds=37)  # no tick since
    read = foundation.ZCLHeader.general(tsn=5, command_id=GENERAL.Read_Attributes,
                                        direction=foundation.Direction.Client_to_Server)
    from_ems(han.meter, 0x000A, read.serialize() + b"\x00\x00")
    (reply,) = network.sent
    _, body = foundation.ZCLHeader.deserialize(reply.payload)
    (records,), _ = foundation.GENERAL_COMMANDS[GENERAL.Read_Attributes_rsp].schema.deserialize(body)
    assert records[0].value.value == NOW + 37


def test_a_get_is_still_answered_with_the_publish_command(sim: tuple[SimulatedHan, FakeNetwork]) -> None:
    han, network = sim
    from_ems(han.meter, Price.cluster_id, codec.build_frame(Price, "get_current_price", tsn=8, command_options=1))
    (frame,) = sent(network)
    assert (frame.command_name, int(frame.header.tsn)) == ("publish_price", 8)


def test_the_checker_watches_the_meter(sim: tuple[SimulatedHan, FakeNetwork]) -> None:
    han, _ = sim
    from_ems(han.meter, Drlc.cluster_id, report(9, ddr=False))  # a status for an event never sent
    assert [v.rule for v in han.meter.checker.violations] == ["SE-DRLC-2.12-unknown-event"]


# --- the scenario's new keys --------------------------------------------------------------


def event(**spec: Any) -> dict[str, Any]:
    return scenario_from_dict({"events": [{"at": 0, "id": 7, "duration_min": 30, **spec}]}).events[0]


async def test_event_start_now_in_the_past_and_invalid(sim: tuple[SimulatedHan, FakeNetwork]) -> None:
    han, network = sim
    await han.send_event(event(start="now"))
    await han.send_event(event(starts_in="-5m"))
    await han.send_event(event(started_ago="10m"))
    await han.send_event(event(start="invalid"))
    await han.send_event(event(starts_in="2m"))
    starts = [int(f.fields["start_time"]) for f in sent(network)]
    assert starts == [0, NOW - 300, NOW - 600, 0xFFFFFFFF, NOW + 120]


async def test_event_ddr_group_class_and_criticality(sim: tuple[SimulatedHan, FakeNetwork]) -> None:
    han, network = sim
    await han.send_event(event(disable_default_response=False, device_class=0x0004, enrollment_group=9,
                               criticality=0x10))
    await han.send_event(event())  # the same id again, as the scenario may
    first, again = sent(network)
    assert not first.header.frame_control.disable_default_response
    assert again.header.frame_control.disable_default_response  # the default for what the meter sends
    assert (int(first.fields["device_class"]), int(first.fields["utility_enrollment_group"]),
            int(first.fields["criticality_level"])) == (0x0004, 9, 0x10)
    assert first.fields["issuer_event_id"] == again.fields["issuer_event_id"]


def cancellation(**spec: Any) -> dict[str, Any]:
    return scenario_from_dict({"cancellations": [{"at": 0, **spec}]}).cancellations[0]


async def test_cancel_effective_time_group_control_and_ddr(sim: tuple[SimulatedHan, FakeNetwork]) -> None:
    han, network = sim
    await han.send_cancellation(cancellation(id=7))
    await han.send_cancellation(cancellation(id=7, effective_in="5m", enrollment_group=3, device_class=0x0004,
                                             cancel_control=0x01, disable_default_response=False))
    await han.send_cancellation(cancellation(id=7, effective_in="invalid"))
    await han.send_cancellation(cancellation(cancel_control=0x01))
    now_, later, invalid, every = sent(network)
    assert int(now_.fields["effective_time"]) == 0
    assert (int(later.fields["effective_time"]), int(later.fields["utility_enrollment_group"]),
            int(later.fields["device_class"]), int(later.fields["cancel_control"])) == (NOW + 300, 3, 0x0004, 1)
    assert not later.header.frame_control.disable_default_response
    assert int(invalid.fields["effective_time"]) == 0xFFFFFFFF
    assert (every.command_name, int(every.fields["cancel_control"])) == ("cancel_all_load_control_events", 1)


def price_change(**spec: Any) -> dict[str, Any]:
    return scenario_from_dict({"price_changes": [{"at": 0, **spec}]}).price_changes[0]


@pytest.mark.parametrize(("written", "raw", "digits"), [
    ("0.1234567", 1234567, 7), (0.95, 95, 2), ("0.50", 50, 2), ("12", 12, 0), (0.000000000000001, 1, 15)])
async def test_a_price_is_sent_exactly_as_written(sim: tuple[SimulatedHan, FakeNetwork], written: Any,
                                                  raw: int, digits: int) -> None:
    han, network = sim
    await han.send_price_change(price_change(price=written))
    (frame,) = sent(network)
    assert (int(frame.fields["price"]), int(frame.fields["price_trailing_digit_and_price_tier"]) >> 4) == (raw, digits)
    assert codec.price_to_decimal(raw, digits) == Decimal(str(written))


async def test_every_optional_price_field_and_its_start(sim: tuple[SimulatedHan, FakeNetwork]) -> None:
    han, network = sim
    await han.send_price_change(price_change(
        price="0.25", trailing_digits=4, tier=2, provider_id=77, issuer_event_id=5000, starts_in="10m",
        price_ratio=12, generation_price="0.08", generation_price_ratio=4, alternate_cost_delivered=321,
        alternate_cost_unit=2, alternate_cost_trailing_digit=0x30, number_of_block_thresholds=3,
        price_control=0x01, disable_default_response=False))
    await han.send_price_change(price_change(price="0.30", issuer_event_id=5000))  # the same id again
    first, again = sent(network)
    fields = first.fields
    assert {k: int(fields[k]) for k in (
        "price", "provider_id", "issuer_event_id", "start_time", "price_ratio", "generation_price",
        "generation_price_ratio", "alternate_cost_delivered", "alternate_cost_unit",
        "alternate_cost_trailing_digit", "number_of_block_thresholds", "price_control")} == {
        "price": 2500, "provider_id": 77, "issuer_event_id": 5000, "start_time": NOW + 600, "price_ratio": 12,
        "generation_price": 800, "generation_price_ratio": 4, "alternate_cost_delivered": 321,
        "alternate_cost_unit": 2, "alternate_cost_trailing_digit": 0x30, "number_of_block_thresholds": 3,
        "price_control": 1}
    assert int(fields["price_trailing_digit_and_price_tier"]) == 0x42
    assert not first.header.frame_control.disable_default_response
    assert (int(again.fields["issuer_event_id"]), int(again.fields["start_time"])) == (5000, 0)


async def test_the_price_in_force_is_answered_exactly_as_sent(sim: tuple[SimulatedHan, FakeNetwork]) -> None:
    han, network = sim
    await han.send_price_change(price_change(price="0.1234567", duration_min=30))
    (published,) = sent(network)
    from_ems(han.meter, Price.cluster_id, codec.build_frame(Price, "get_current_price", tsn=4, command_options=1))
    (answered,) = sent(network)
    assert answered.fields["price"] == published.fields["price"] == 1234567
    assert answered.fields["issuer_event_id"] == published.fields["issuer_event_id"]


async def test_message_start_and_ddr(sim: tuple[SimulatedHan, FakeNetwork]) -> None:
    han, network = sim
    base = {"at": 0, "text": "Hi"}
    specs = scenario_from_dict({"messages": [
        {**base, "start": "now"}, {**base, "starts_in": "15m", "disable_default_response": False}, base]}).messages
    for spec in specs:
        await han.send_message(spec)
    now_, later, default = sent(network)
    assert int(now_.fields["start_time"]) == 0
    assert int(later.fields["start_time"]) == NOW + 900
    assert not later.header.frame_control.disable_default_response
    assert int(default.fields["start_time"]) == NOW and default.header.frame_control.disable_default_response


async def test_raw_frames_are_sent_as_written(sim: tuple[SimulatedHan, FakeNetwork]) -> None:
    han, network = sim
    frames = scenario_from_dict({"raw_frames": [
        {"at": 0, "cluster": "drlc", "hex": "19 05 7f"},
        {"at": 0, "cluster": 0x0700, "hex": "1d 34 12 06 00 01", "disable_default_response": False},
        {"at": 0, "cluster": "Messaging", "hex": "09 07 00 01", "disable_default_response": True},
    ]}).raw_frames
    for spec in frames:
        await han.send_raw_frame(spec)
    assert [(f.cluster_id, f.payload.hex(" ")) for f in network.sent] == [
        (0x0701, "19 05 7f"), (0x0700, "0d 34 12 06 00 01"), (0x0703, "19 07 00 01")]
    # What each is owed: 0x81, 0x83 and 0x80, whatever DDR says (ZCL 2.5.12.2).
    assert han.meter.checker.pending() == 3


def test_scenario_mistakes_name_file_line_and_key(tmp_path: Any) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "events:\n"
        "  - {at: 1m, id: 1, duration_min: 5, start: later}\n"
        "price_changes:\n"
        "  - {at: 1m, price: 0.12345, trailing_digits: 2}\n"
        "raw_frames:\n"
        "  - {at: 1m, cluster: gas, hex: zz}\n"
        "cancellations:\n"
        "  - {at: 1m, id: 1, effective_in: soon}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    text = "\n".join(err.value.problems)
    assert f"{path}:2: events.0.start: expected now or invalid" in text
    assert f"{path}:6: raw_frames.0.cluster: expected a cluster id" in text
    assert f"{path}:6: raw_frames.0.hex: expected hex bytes" in text
    assert f"{path}:8: cancellations.0.effective_in" in text


def test_a_price_the_wire_cannot_carry_exactly_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("price_changes:\n  - {at: 1m, price: 0.12345, trailing_digits: 2}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert f"{path}:2: price_changes.0.price: 0.12345 cannot be written exactly with 2 trailing digits" in "\n".join(
        err.value.problems)


def test_old_scenario_keys_still_work() -> None:
    scenario = scenario_from_dict({
        "events": [{"at": 1, "id": 1, "starts_in": "2m", "duration_min": 30}],
        "cancellations": [{"at": 2, "id": 1, "randomize_end": True}],
        "price_changes": [{"at": 3, "price": 0.95, "tier": 4, "label": "CPP", "duration_min": 30}],
    })
    assert scenario.events[0]["disable_default_response"] is True
    assert scenario.cancellations[0]["effective_in"] == timedelta(0)
    assert scenario.conformance["grace"] == timedelta(seconds=5)


def test_the_strict_example_scenario_is_valid() -> None:
    from ems.config import default_config_dir

    scenario = load_scenario(default_config_dir() / "scenarios" / "strict.yaml")
    assert scenario.conformance["device_class_value"] == 0x0FFF
    assert len(scenario.raw_frames) == 4
    assert [e["id"] for e in scenario.events].count(9001) == 2
    assert scenario.price_changes[0]["price"] == Decimal("0.1234567")
