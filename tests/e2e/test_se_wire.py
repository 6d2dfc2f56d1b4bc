"""The SE adapter on the wire: what the EMS answers each frame of the simulated meter, byte for byte.

Each test sends frames from the simulated meter (``appliance.simulator.node``) and reads what the
EMS sent back in the node's frame log: one Default Response per unicast command with the real
status and the command's TSN (ZCL 2.5.12.2), none where a cluster response answers (SE §3.4,
§2.12), errors even with Disable Default Response set; and what reached the domain.

A later frame's answer is the barrier that says an earlier frame has had all its answers: the
EMS handles frames in order, so once it answered a later one, a second answer to an earlier one
would already be in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from zigpy.zcl import foundation

from ems.cli import compose, read_config
from ems.clock import Clock, FollowingClock
from ems.model import Criticality, EventRejected, EventStatus
from integrations.simulator import SimulatedHan, scenario_from_dict
from integrations.simulator.meter import event_fields
from integrations.zigbee.air import AirFrame
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc, Messaging, Price
from tests.e2e.conftest import FAST_SCENARIO, local_clock, running_appliance, write_config
from tests.integrations.zigbee.pcap_reader import plain_frames, read_pcap

Status = foundation.Status
_ids = itertools.count(70_001)
_tsns = itertools.count(0x40)


def new_id() -> int:
    return next(_ids)


def new_tsn() -> int:
    return next(_tsns) & 0xFF


def price(appliance, **overrides: Any) -> dict[str, Any]:
    sim = appliance.simulator.meter
    fields = sim.price_fields(sim.current_price(sim.clock()), sim.clock())
    fields.update(issuer_event_id=new_id(), price_control=0x00)
    fields.update(overrides)
    return fields


def event(appliance, **overrides: Any) -> dict[str, Any]:
    spec = {"id": new_id(), "device_class": 1, "enrollment_group": 0, "duration_min": 30, "criticality": 3,
            "randomize_start": False, "randomize_end": False}
    fields = event_fields(spec, appliance.simulator.meter.clock() + timedelta(minutes=5))
    fields.update(overrides)
    return fields


def answers(node, tsn: int, cluster_id: int, command: str = "Default_Response") -> list[Any]:
    return [f for f in node.received(command, cluster_id=cluster_id) if f.tsn == tsn]


async def barrier(appliance) -> None:
    """Wait until the EMS has answered a frame sent now (so every earlier frame's answers are in)."""
    node, tsn = appliance.simulator.node, new_tsn()
    since = len(node.log)
    await node.send_command(1, Messaging, "cancel_message", tsn=tsn, disable_default_response=False,
                            message_id=new_id(), message_control=0)
    while True:
        frame = await node.wait_for("Default_Response", cluster_id=Messaging.cluster_id, since=since, timeout_s=30)
        if frame.tsn == tsn:
            return
        since = node.log.index(frame) + 1


async def send_price(appliance, tsn: int, ddr: bool, **fields: Any) -> None:
    await appliance.simulator.node.send_command(1, Price, "publish_price", tsn=tsn, disable_default_response=ddr,
                                                **fields)


def prices(appliance) -> dict[int, Any]:
    return {p.issuer_event_id: p for p in appliance.hub.state.prices.get("main", ())}


# --- Defect 1: a PublishPrice with DDR=0 and no acknowledgement bit is applied, answered once ---------


async def test_a_price_with_default_response_enabled_and_no_ack_bit_is_applied_and_answered_once(appliance):
    fields, tsn = price(appliance), new_tsn()
    await send_price(appliance, tsn, False, **fields)
    await appliance.wait_until(lambda: fields["issuer_event_id"] in prices(appliance), what="the price applied")
    await barrier(appliance)
    (answer,) = answers(appliance.simulator.node, tsn, Price.cluster_id)
    assert answer.fields["status"] == Status.SUCCESS and answer.fields["command_id"] == 0x00


# --- Defect 2: exactly one Default Response with the real status; none beside a cluster response -----


async def test_a_repeated_price_gets_one_duplicate_exists_and_nothing_else(appliance):
    fields = price(appliance)
    await send_price(appliance, new_tsn(), True, **fields)
    await appliance.wait_until(lambda: fields["issuer_event_id"] in prices(appliance), what="the price applied")
    tsn = new_tsn()
    await send_price(appliance, tsn, False, **fields)
    await barrier(appliance)
    assert [f.fields["status"] for f in answers(appliance.simulator.node, tsn, Price.cluster_id)] == [
        Status.DUPLICATE_EXISTS]


async def test_an_expired_price_gets_one_failure_and_nothing_else(appliance):
    start = codec.datetime_to_utc_time(appliance.simulator.meter.clock() - timedelta(hours=3))
    fields, tsn = price(appliance, start_time=start, duration_in_minutes=30), new_tsn()
    await send_price(appliance, tsn, False, **fields)
    await barrier(appliance)
    assert [f.fields["status"] for f in answers(appliance.simulator.node, tsn, Price.cluster_id)] == [Status.FAILURE]
    assert fields["issuer_event_id"] not in prices(appliance)


async def test_a_price_asking_for_acknowledgement_gets_the_acknowledgement_with_its_tsn_and_no_default_response(
        appliance):
    fields, tsn = price(appliance, price_control=0x01), new_tsn()
    await send_price(appliance, tsn, False, **fields)
    node = appliance.simulator.node
    await appliance.wait_until(lambda: answers(node, tsn, Price.cluster_id, "price_acknowledgement"),
                               what="the acknowledgement")
    await barrier(appliance)
    (ack,) = answers(node, tsn, Price.cluster_id, "price_acknowledgement")  # defect 12: the TSN is echoed
    assert ack.fields["issuer_event_id"] == fields["issuer_event_id"] and ack.fields["control"] == 0x01
    assert answers(node, tsn, Price.cluster_id) == []


async def test_a_message_gets_one_default_response(appliance):
    node, tsn = appliance.simulator.node, new_tsn()
    await node.send_command(1, Messaging, "display_message", tsn=tsn, disable_default_response=False,
                            message_id=new_id(), message_control=0x00, start_time=0, duration_in_minutes=10,
                            message="Hello")
    await barrier(appliance)
    assert [f.fields["status"] for f in answers(node, tsn, Messaging.cluster_id)] == [Status.SUCCESS]


# --- Defect 3: malformed, unknown and manufacturer-specific commands are answered, counted apart -------


@pytest.mark.parametrize(("cluster", "frame", "status", "kind"), [
    (Price, "19 {tsn} 00 01 00", Status.MALFORMED_COMMAND, "malformed"),  # PublishPrice cut short, DDR=1
    (Drlc, "19 {tsn} 7F", Status.UNSUP_CLUSTER_COMMAND, "unknown"),  # no such DRLC command, DDR=1
    (Drlc, "09 {tsn} 7F", Status.UNSUP_CLUSTER_COMMAND, "unknown"),  # ... with DDR=0: not SUCCESS
    (Price, "1D 34 12 {tsn} 00 00", Status.UNSUP_MANUF_CLUSTER_COMMAND, "unknown"),  # manufacturer 0x1234, DDR=1
])
async def test_a_frame_the_ems_cannot_use_is_answered_with_why_even_with_default_response_disabled(
        appliance, cluster, frame, status, kind):
    node, tsn = appliance.simulator.node, new_tsn()
    counters = appliance.hub.state.counters
    before = counters[f"frames_{kind}"]
    node.send_raw(1, cluster.cluster_id, bytes.fromhex(frame.format(tsn=f"{tsn:02x}")))
    await appliance.wait_until(lambda: answers(node, tsn, cluster.cluster_id), what="the answer")
    await barrier(appliance)
    assert [f.fields["status"] for f in answers(node, tsn, cluster.cluster_id)] == [status]
    assert counters[f"frames_{kind}"] == before + 1
    health = await appliance.get("/api/v1/health")
    assert health["frames"][kind] == counters[f"frames_{kind}"]
    assert health["meter_links"]["main"] == "online"


# --- Defect 10 (the adapter's part): a refused event says what it asked, for the report to echo --------


async def test_a_refused_event_carries_its_criticality_and_randomisation(appliance):
    refused: list[EventRejected] = []
    unsubscribe = appliance.hub.bus.listen(EventRejected, refused.append)
    try:
        fields = event(appliance, duration_in_minutes=0, criticality_level=5, event_control=0x03)
        await appliance.simulator.meter.send_raw(Drlc, "load_control_event", **fields)
        await appliance.wait_until(lambda: refused, what="the refusal")
    finally:
        unsubscribe()
    (rejection,) = refused
    assert rejection.issuer_event_id == fields["issuer_event_id"] and rejection.status is EventStatus.REJECTED
    assert rejection.criticality is Criticality(5)
    assert (rejection.randomize_start, rejection.randomize_end) == (True, True)


# --- Defect 12: the ReportEventStatus that answers a frame echoes its TSN; later ones take new TSNs ----


async def reports(appliance, event_id: int, count: int = 1) -> list[Any]:
    node = appliance.simulator.node

    def found() -> list[Any]:
        frames = [f for f in node.received("report_event_status") if f.fields["issuer_event_id"] == event_id]
        return frames if len(frames) >= count else []

    return await appliance.wait_until(found, what=f"{count} status report(s) for event {event_id}")


async def test_the_received_report_echoes_the_events_tsn_and_the_start_takes_a_new_one(appliance):
    fields, tsn = event(appliance, start_time=0, duration_in_minutes=1), new_tsn()
    await appliance.simulator.node.send_command(1, Drlc, "load_control_event", tsn=tsn, **fields)
    received, started = (await reports(appliance, fields["issuer_event_id"], 2))[:2]
    assert (received.fields["event_status"], received.tsn) == (EventStatus.RECEIVED, tsn)
    assert started.fields["event_status"] == EventStatus.STARTED and started.tsn != tsn


async def test_a_rejection_echoes_the_tsn_of_the_refused_event(appliance):
    fields, tsn = event(appliance, duration_in_minutes=0), new_tsn()
    await appliance.simulator.node.send_command(1, Drlc, "load_control_event", tsn=tsn, **fields)
    (report,) = await reports(appliance, fields["issuer_event_id"])
    assert (report.fields["event_status"], report.tsn) == (EventStatus.REJECTED, tsn)


async def test_a_refused_cancel_is_answered_with_the_cancels_tsn(appliance):
    event_id, tsn = new_id(), new_tsn()
    await appliance.simulator.node.send_command(1, Drlc, "cancel_load_control_event", tsn=tsn,
                                                issuer_event_id=event_id, device_class=1, utility_enrollment_group=0,
                                                cancel_control=0, effective_time=0)
    (report,) = await reports(appliance, event_id)
    assert (report.fields["event_status"], report.tsn) == (EventStatus.REJECTED_UNDEFINED_EVENT, tsn)


# --- Defect 13: a trailing-digit nibble of 11 (any of 0-15) is a price, kept exact ----------------------


async def test_a_price_with_eleven_trailing_digits_is_applied_exactly(appliance):
    fields, tsn = price(appliance, price_trailing_digit_and_price_tier=0xB2, price=12_345_678_901,
                        generation_price=0xFFFFFFFF), new_tsn()
    fields["price"] = 4_294_967_295  # the largest uint32: 0.04294967295 with 11 digits
    await send_price(appliance, tsn, False, **fields)
    await appliance.wait_until(lambda: fields["issuer_event_id"] in prices(appliance), what="the price applied")
    await barrier(appliance)
    assert [f.fields["status"] for f in answers(appliance.simulator.node, tsn, Price.cluster_id)] == [Status.SUCCESS]
    applied = prices(appliance)[fields["issuer_event_id"]]
    assert applied.price_per_kwh_exact == Decimal("0.04294967295")  # exact to the domain
    assert applied.price_per_kwh == float(Decimal("0.04294967295"))


# --- Defect 7: one clock, the meter's, for what is received and for what is scheduled and reported -----


class AheadClock:
    """The simulated meter's clock: ``ahead`` in front of the appliance's base clock."""

    def __init__(self, base: Clock, ahead: timedelta) -> None:
        self._base, self._ahead = base, ahead

    def now(self) -> datetime:
        return self._base.now() + self._ahead

    __call__ = now

    def real_seconds(self, seconds: float) -> float:
        return self._base.real_seconds(seconds)

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)


@contextlib.asynccontextmanager
async def meter_ahead(tmp_path: Path, ahead: timedelta) -> AsyncIterator[tuple[Any, SimulatedHan]]:
    base = local_clock("20:00")
    simulator = SimulatedHan(scenario_from_dict({**FAST_SCENARIO, "events": [], "messages": []}),
                             clock=AheadClock(base, ahead))
    config = read_config(write_config(tmp_path / "config"))
    hub, _web = compose(config, tmp_path / "data", simulator=simulator, clock=FollowingClock(base))
    await hub.start()
    try:
        yield hub, simulator
    finally:
        await hub.stop()


async def test_what_is_received_and_what_is_reported_share_the_meters_time(tmp_path):
    ahead = timedelta(seconds=30)
    async with meter_ahead(tmp_path, ahead) as (hub, simulator):
        node = simulator.node
        spec = {"id": 71_001, "device_class": 1, "enrollment_group": 0, "duration_min": 1, "criticality": 3,
                "randomize_start": False, "randomize_end": False}
        async with asyncio.timeout(60):  # guards a hang only
            while hub.integrations.get("zigbee_se") is None or hub.integrations["zigbee_se"].session is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            fields = event_fields(spec, simulator.meter.clock())
            fields["start_time"] = 0  # starts now: by the meter's clock
            await simulator.meter.send_raw(Drlc, "load_control_event", **fields)
            frames: list[Any] = []
            while len(frames) < 2:
                frames = [f for f in node.received("report_event_status") if f.fields["issuer_event_id"] == 71_001]
                await asyncio.sleep(0.05)  # noqa: ASYNC110
        view = next(v for v in hub.control.events() if v.event.issuer_event_id == 71_001)
        received, started = (codec.utc_time_to_datetime(int(f.fields["event_status_time"])) for f in frames[:2])
        assert abs(hub.clock() - simulator.meter.clock()) <= timedelta(seconds=2)  # the hub follows the meter
        assert abs(received - view.event.received_at) <= timedelta(seconds=2)  # one time base ...
        assert abs(started - view.event.start) <= timedelta(seconds=2)  # ... for the start too
        assert view.event.received_at.tzinfo is UTC or view.event.received_at.utcoffset() == timedelta(0)


# --- Defect 15 and frame control: the capture shows frames in the order they went on the air ----------


def zcl_frames(pcap: Path, keys: list[tuple[bytes, str]]) -> list[tuple[AirFrame, foundation.ZCLHeader]]:
    """The capture's ZCL frames (ZDO left out), in file order, with their headers (secured: ``keys`` open them)."""
    _linktype, records = read_pcap(pcap)
    frames = []
    for data in plain_frames(records, keys):
        frame = AirFrame.decode(data)
        if frame.dst_endpoint != 0 and frame.src_endpoint != 0:
            frames.append((frame, foundation.ZCLHeader.deserialize(frame.payload)[0]))
    return frames


def is_response(header: foundation.ZCLHeader) -> bool:
    if not header.frame_control.is_general:
        return False
    general = foundation.GeneralCommand(header.command_id)
    return general == foundation.GeneralCommand.Default_Response or general.name.endswith("_rsp")


async def test_the_capture_has_each_response_after_its_request_and_the_ems_frame_control_is_right(tmp_path):
    pcap = tmp_path / "han.pcap"
    async with running_appliance(tmp_path, pcap=pcap, clock=local_clock("20:00")) as app:
        await app.online()
        fields, tsn = price(app), new_tsn()
        await send_price(app, tsn, False, **fields)
        await barrier(app)
        await app.simulator.node.wait_for("report_event_status", timeout_s=30)
        ems = int(app.hub.integrations["zigbee_se"].app.state.node_info.nwk)  # its address on the meter's network
    frames = zcl_frames(pcap, app.simulator.capture_keys())
    responses = 0
    for index, (frame, header) in enumerate(frames):
        if is_response(header):
            # The request it answers (the other side, same cluster, same TSN) went on the air first.
            responses += 1
            assert any(f.nwk_src != frame.nwk_src and f.cluster_id == frame.cluster_id and h.tsn == header.tsn
                       and not is_response(h) for f, h in frames[:index]), (
                f"{header} from 0x{frame.nwk_src:04X} is in the capture before its request")
        if frame.nwk_src != ems or frame.cluster_id not in (0x0700, 0x0701, 0x0703):
            continue
        control = header.frame_control
        assert control.direction == foundation.Direction.Client_to_Server and not control.is_manufacturer_specific
        if control.is_general and header.command_id == foundation.GeneralCommand.Default_Response:
            assert control.disable_default_response  # 0x10: a response is never answered
        elif not control.is_general:
            assert not control.disable_default_response  # 0x01 (digest §1.2)
            if frame.cluster_id == Drlc.cluster_id and header.command_id == 0x00:
                # ReportEventStatus: 17 bytes of status in SE order, SignatureType 0, 42 bytes of 0xFF (§2.8).
                assert len(frame.payload) == 3 + 60
                assert frame.payload[3 + 17] == 0x00 and frame.payload[3 + 18:] == b"\xff" * 42
    assert responses > 10


# --- The other Price commands: each has its reply policy -----------------------------------------------


async def test_a_pending_critical_peak_is_accepted_with_the_events_tsn_and_no_default_response(appliance):
    node, tsn, event_id = appliance.simulator.node, new_tsn(), new_id()
    await node.send_command(1, Price, "publish_cpp_event", tsn=tsn, disable_default_response=False, provider_id=1,
                            issuer_event_id=event_id, start_time=0, duration_in_minutes=30, tariff_type=0,
                            cpp_price_tier=0, cpp_auth=0)
    (response,) = await appliance.wait_until(lambda: answers(node, tsn, Price.cluster_id, "cpp_event_response"),
                                             what="the CPP event response")
    await barrier(appliance)
    assert response.fields["issuer_event_id"] == event_id and response.fields["cpp_auth"] == 1  # accepted
    assert answers(node, tsn, Price.cluster_id) == []


async def test_an_se_1_1_block_period_sets_the_rate_and_gets_one_default_response(appliance):
    node, tsn, event_id = appliance.simulator.node, new_tsn(), new_id()
    start = codec.datetime_to_utc_time(appliance.simulator.meter.clock().replace(microsecond=0))
    payload = (event_id.to_bytes(4, "little") * 2 + start.to_bytes(4, "little") + (90).to_bytes(3, "little")
               + bytes([0x32, 0x00]))  # 17 bytes: the SE 1.1 layout, 90 minutes (§3.5)
    node.send_raw(1, Price.cluster_id, bytes([0x09, tsn, 0x01]) + payload)
    await barrier(appliance)
    assert [f.fields["status"] for f in answers(node, tsn, Price.cluster_id)] == [Status.SUCCESS]
    rate = appliance.hub.state.meter_rates["main"]
    assert rate.block_period_end - rate.block_period_start == timedelta(minutes=90)
