"""``inbound.decode`` and the SE clusters' one parse: what zigpy matches and what the sink gets."""

from __future__ import annotations

from unittest import mock

import pytest
from zigpy.zcl import foundation

from integrations.zigbee.se.clusters import Drlc, FrameCodecError, Price
from integrations.zigbee.se.inbound import FrameKey, InboundFrame, Problem, decode

from ._hex import h

LCE = h("09 2A 00 | 78 56 34 12 05 00 00 00 00 00 00 3C 00 02 14 FF 00 80 00 80 80 FF 03")


class Sink:
    def __init__(self) -> None:
        self.frames: list[InboundFrame] = []

    def frame_received(self, frame: InboundFrame) -> None:
        self.frames.append(frame)


def test_a_command_decodes_to_its_key_and_typed_payload() -> None:
    frame = decode(Drlc, LCE)
    assert frame.problem is None and frame.name == "load_control_event" and frame.tsn == 0x2A
    assert frame.key == FrameKey(0x0701, foundation.Direction.Server_to_Client, 0x00)
    assert isinstance(frame.payload, Drlc.ClientCommandDefs.load_control_event.schema)
    assert frame.payload.issuer_event_id == 0x12345678 and not frame.default_response_disabled


@pytest.mark.parametrize(("data", "problem", "status"), [
    (h("19 01 00 01 00"), Problem.MALFORMED, foundation.Status.MALFORMED_COMMAND),
    (h("19 01 7F"), Problem.UNKNOWN, foundation.Status.UNSUP_CLUSTER_COMMAND),
    (h("18 01 FE"), Problem.UNKNOWN, foundation.Status.UNSUP_GENERAL_COMMAND),
    (h("1D 34 12 01 00"), Problem.MANUFACTURER_SPECIFIC, foundation.Status.UNSUP_MANUF_CLUSTER_COMMAND),
    (h("0A 01 00"), Problem.MALFORMED, foundation.Status.MALFORMED_COMMAND),
])
def test_a_frame_that_is_no_command_says_why_and_how_to_answer(data, problem, status) -> None:
    frame = decode(Price, data)
    assert (frame.problem, frame.problem_status) == (problem, status)
    assert frame.reason.startswith("Price: ") and frame.tsn == 0x01


def test_a_header_cut_short_cannot_be_answered() -> None:
    frame = decode(Price, h("09 01"))
    assert frame.problem is Problem.MALFORMED and frame.header is None and frame.key is None


def test_the_cluster_parses_once_and_the_sink_gets_what_zigpy_matches() -> None:
    cluster, sink = Drlc(mock.MagicMock(), is_server=True), Sink()
    cluster.send_default_rsp = mock.Mock()
    cluster.attach(sink)
    header, payload = cluster.deserialize(LCE)
    cluster.handle_message(header, payload)  # as zigpy's device does for an unsolicited frame
    (frame,) = sink.frames
    assert frame.payload is payload  # the same object: no second parse
    cluster.send_default_rsp.assert_not_called()  # and no automatic Default Response (DDR=0 here)


def test_without_a_sink_the_cluster_answers_as_zigpys_does() -> None:
    cluster = Drlc(mock.MagicMock(), is_server=True)
    cluster.send_default_rsp = mock.Mock()
    header, payload = cluster.deserialize(LCE)
    cluster.handle_message(header, payload)
    cluster.send_default_rsp.assert_called_once()


def test_a_malformed_frame_reaches_the_sink_and_zigpy_drops_it() -> None:
    cluster, sink = Price(mock.MagicMock(), is_server=True), Sink()
    cluster.attach(sink)
    with pytest.raises(FrameCodecError, match="publish_price"):
        cluster.deserialize(h("09 07 00 01 00"))
    assert [f.problem for f in sink.frames] == [Problem.MALFORMED]


def test_an_unknown_command_goes_to_zigpy_as_raw_bytes_and_then_to_the_sink() -> None:
    cluster, sink = Drlc(mock.MagicMock(), is_server=True), Sink()
    cluster.attach(sink)
    header, payload = cluster.deserialize(h("09 03 7F AA"))
    assert payload == b"\xaa"
    cluster.handle_message(header, payload)
    assert [f.problem for f in sink.frames] == [Problem.UNKNOWN]
