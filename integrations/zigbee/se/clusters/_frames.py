"""What the SE cluster classes add to zigpy's ``Cluster``: one parse, and frames handed to a sink.

zigpy's device calls ``cluster.deserialize(data)`` once per frame, matches the result to a
pending request, and hands an unsolicited frame to ``cluster.handle_message``, whose
``handle_cluster_request`` would answer a DDR=0 command with its own Default Response SUCCESS.
With a ``FrameSink`` attached (the meter session), these classes instead:

* parse in ``deserialize`` with ``inbound.decode`` (the one parse: the struct zigpy matches to a
  request and the struct the sink translates are the same object);
* hand every unsolicited frame, and every frame that could not be decoded (malformed, unknown or
  manufacturer-specific command), to the sink as an ``InboundFrame``;
* send no automatic Default Response: answering is the sink's (it knows the real status).

Without a sink the classes behave as zigpy's (home devices, the simulator).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from zigpy.zcl import foundation

from ..inbound import InboundFrame, Problem, decode

_LOGGER = logging.getLogger(__name__)


class FrameSink(Protocol):
    """Who takes the frames of an SE cluster (the meter session)."""

    def frame_received(self, frame: InboundFrame) -> None:
        """One frame from the peer, decoded once; must not raise."""
        ...


class FrameCodecError(ValueError):
    """A frame ``deserialize`` could not decode; zigpy drops it (the sink has been told)."""


class SeFrames:
    """Mixin for the SE cluster classes (put it before zigpy's ``Cluster`` in the bases)."""

    frame_sink: FrameSink | None = None
    _last_frame: InboundFrame | None = None

    def attach(self, sink: FrameSink | None) -> None:
        """Send this cluster's frames to ``sink`` (None: back to zigpy's own handling)."""
        self.frame_sink = sink

    def deserialize(self, data: bytes) -> tuple[foundation.ZCLHeader, Any]:
        device = getattr(getattr(self, "_endpoint", None), "device", None)
        known = getattr(device, "last_header", None)  # the header zigpy just read to route the frame
        frame = decode(type(self), data, broadcast=_broadcast(device),  # type: ignore[arg-type]
                       parsed_header=known[1:] if known is not None and known[0] == data else None)
        self._last_frame = frame
        if frame.header is None or frame.problem is Problem.MALFORMED:
            sink = self.frame_sink
            if sink is not None:
                sink.frame_received(frame)
            raise FrameCodecError(frame.reason)
        if frame.problem is not None:
            # zigpy's own way with an unknown command: the raw payload goes to handle_message.
            return frame.header, _payload_bytes(data, frame.header)
        return frame.header, frame.payload

    def _frame_for(self, hdr: foundation.ZCLHeader, args: Any) -> InboundFrame | None:
        """The frame ``deserialize`` just decoded, if ``args`` is what it returned (zigpy passes its
        own parse of the header, so the payload is what ties the two together)."""
        frame = self._last_frame
        if frame is None or frame.header is None:
            return None
        if frame.payload is not None and frame.payload is args:
            return frame
        if frame.problem is not None and frame.header.tsn == hdr.tsn and frame.header.command_id == hdr.command_id:
            return frame
        return None

    def handle_cluster_request(self, hdr: foundation.ZCLHeader, args: Any, **kwargs: Any) -> Any:
        sink = self.frame_sink
        frame = self._frame_for(hdr, args)
        if sink is None or frame is None:
            return super().handle_cluster_request(hdr, args, **kwargs)  # type: ignore[misc]
        sink.frame_received(frame)  # the sink answers (or not); no automatic Default Response
        return None

    def handle_cluster_general_request(self, hdr: foundation.ZCLHeader, args: Any, **kwargs: Any) -> Any:
        sink = self.frame_sink
        frame = self._frame_for(hdr, args)
        if sink is None or frame is None:
            return super().handle_cluster_general_request(hdr, args, **kwargs)  # type: ignore[misc]
        if frame.problem is None and hdr.command_id == foundation.GeneralCommand.Read_Attributes:
            # zigpy answers a Read of our attributes; the Default Response is the sink's. A Report goes to
            # the sink alone: nothing reads zigpy's attribute cache of a cluster with a sink, and walking
            # the records a second time for it was a third of zigpy's share of each report.
            if not hdr.frame_control.disable_default_response:  # (a header copy is dear: only then)
                hdr = hdr.replace(frame_control=hdr.frame_control.replace(disable_default_response=True))
            super().handle_cluster_general_request(hdr, args, **kwargs)  # type: ignore[misc]
        sink.frame_received(frame)
        return None


def _payload_bytes(data: bytes, header: foundation.ZCLHeader) -> bytes:
    return bytes(data)[len(header.serialize()):]


def _broadcast(device: Any) -> bool:
    """Whether the frame being parsed was broadcast (the SE device class notes each packet)."""
    packet = getattr(device, "last_packet", None)
    dst = getattr(packet, "dst", None)
    mode = getattr(dst, "addr_mode", None)
    return mode is not None and mode.name in ("Broadcast", "Group")


__all__ = ["FrameCodecError", "FrameSink", "SeFrames"]
