"""The one parse of an SE frame: header and payload decoded once, into a typed ``InboundFrame``.

Protocol only (zigpy and the standard library, no ``ems`` import). ``decode`` never raises: a
frame that cannot be decoded comes back with its ``problem`` (malformed, an unknown command, a
manufacturer-specific command we do not know) and the ZCL status that answers it (ZCL
2.5.12.2: 0x80 MALFORMED_COMMAND, 0x81 UNSUP_CLUSTER_COMMAND, 0x82 UNSUP_GENERAL_COMMAND,
0x83 UNSUP_MANUF_CLUSTER_COMMAND, 0x84 UNSUP_MANUF_GENERAL_COMMAND). The SE cluster classes call it from zigpy's
``Cluster.deserialize``, so the struct zigpy matches to a pending request and the frame the
adapter translates are the same object: nothing parses the payload a second time.

Frames are keyed by ``FrameKey`` (cluster, direction, command id, general or cluster-specific),
the key of the adapter's handler table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import Cluster, foundation

_DECODE_ERRORS: Final = (ValueError, TypeError, KeyError, IndexError, OverflowError)


def _bounded_collection(cls: type[foundation.TypedCollection], data: bytes) -> tuple[Any, bytes]:
    """zigpy's ``TypedCollection.deserialize`` (ZCL Array, Set, Bag), refusing elements of no size.

    An array of NoData (0x00) or Unknown (0xFF) elements takes no bytes per element, so five bytes
    (type, element type, a count of 65535) make zigpy build 65535 objects, and nested in an array or
    a structure a single 80-byte Report Attributes frame made millions (seconds on the event loop,
    found by bench/fuzz). ZCL gives such elements no meaning; every other element takes at least a
    byte, so the work of a parse is bounded by the frame's length again.
    """
    data_type, rest = t.uint8_t.deserialize(data)
    python_type = foundation.DataType.from_type_id(foundation.DataTypeId(data_type)).python_type
    if isinstance(python_type, type) and issubclass(python_type, t.NoData):
        count, _ = t.uint16_t.deserialize(rest)
        if count:
            raise ValueError(f"a ZCL collection of {count} elements of type 0x{int(data_type):02X}, which has no size")
    lv_list: Any = t.LVList  # parametrised at run time by the element type the frame names
    values, rest = lv_list[python_type, t.uint16_t].deserialize(rest)
    return cls(type=data_type, value=values), rest


# Installed on zigpy's class once, for every cluster (the SE classes and zigpy's own: Time, Basic, the
# home's HA clusters), since zigpy's header-then-payload parse of those does not pass through ``decode``.
foundation.TypedCollection.deserialize = classmethod(_bounded_collection)  # type: ignore[method-assign,assignment]


class Problem(enum.Enum):
    """Why a frame could not be turned into a command (the kinds the appliance counts apart)."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"  # a standard command id this cluster does not define
    MANUFACTURER_SPECIFIC = "manufacturer-specific"  # a manufacturer's command we do not know


@dataclass(frozen=True, slots=True)
class FrameKey:
    """What a frame is: cluster, direction, command id and whether it is a global (ZCL) command."""

    cluster_id: int
    direction: foundation.Direction
    command_id: int
    general: bool = False


@dataclass(frozen=True, slots=True)
class InboundFrame:
    """One frame as received: its header, the command it is and its fields (decoded once).

    ``payload`` is zigpy's command schema struct (fields by name, optional ones None when
    absent); it is None when ``problem`` says why the frame could not be decoded. ``header`` is
    None only when the ZCL header itself was cut short (nothing can answer such a frame).
    """

    cluster_id: int
    header: foundation.ZCLHeader | None
    name: str
    payload: Any = None  # the command's schema struct (zigpy builds one class per command)
    problem: Problem | None = None
    reason: str = ""
    broadcast: bool = False

    @property
    def key(self) -> FrameKey | None:
        if self.header is None:
            return None
        control = self.header.frame_control
        return FrameKey(self.cluster_id, control.direction, int(self.header.command_id),
                        control.frame_type == foundation.FrameType.GLOBAL_COMMAND)

    @property
    def is_general(self) -> bool:
        return self.header is not None and self.header.frame_control.frame_type == foundation.FrameType.GLOBAL_COMMAND

    @property
    def tsn(self) -> int | None:
        return None if self.header is None else int(self.header.tsn)

    @property
    def default_response_disabled(self) -> bool:
        return self.header is not None and bool(self.header.frame_control.disable_default_response)

    @property
    def problem_status(self) -> foundation.Status | None:
        """The status a Default Response answers the problem with (None: no problem)."""
        if self.problem is None:
            return None
        if self.problem is Problem.MALFORMED:
            return foundation.Status.MALFORMED_COMMAND
        if self.problem is Problem.MANUFACTURER_SPECIFIC:
            return (foundation.Status.UNSUP_MANUF_GENERAL_COMMAND if self.is_general
                    else foundation.Status.UNSUP_MANUF_CLUSTER_COMMAND)
        if self.is_general:
            return foundation.Status.UNSUP_GENERAL_COMMAND
        return foundation.Status.UNSUP_CLUSTER_COMMAND


def decode(cluster_cls: type[Cluster], data: bytes, direction: foundation.Direction | None = None,
           *, broadcast: bool = False,
           parsed_header: tuple[foundation.ZCLHeader, bytes] | None = None) -> InboundFrame:
    """Decode a ZCL frame (header + command) of ``cluster_cls``; never raises.

    Cluster-specific commands are looked up by the header's direction bit (server -> client
    frames in ``ClientCommandDefs``, digest §8 item 3); global commands by zigpy's foundation
    table. With ``direction``, a frame whose direction bit differs is malformed. Absent optional
    fields are None; trailing bytes are ignored (§1.6). A 17-byte Price PublishBlockPeriod is
    decoded in its SE 1.1 layout (§3.5). ``parsed_header`` is the header (and the payload after
    it) already read from ``data`` by whoever routed the frame, so it is not read twice.
    """
    name = cluster_cls.__name__
    cluster_id = int(cluster_cls.cluster_id)
    data = bytes(data)
    try:
        header, payload = parsed_header or foundation.ZCLHeader.deserialize(data)
    except _DECODE_ERRORS:
        return InboundFrame(cluster_id, None, "", problem=Problem.MALFORMED, broadcast=broadcast,
                            reason=f"{name}: truncated ZCL header ({len(data)} bytes: {data.hex(' ')})")

    def refused(problem: Problem, reason: str, command: str = "") -> InboundFrame:
        return InboundFrame(cluster_id, header, command, problem=problem, reason=f"{name}: {reason}",
                            broadcast=broadcast)

    control = header.frame_control
    if direction is not None and control.direction != direction:
        return refused(Problem.MALFORMED, f"frame direction is {control.direction.name},"
                                          f" expected {foundation.Direction(direction).name}")
    if control.frame_type == foundation.FrameType.CLUSTER_COMMAND:
        if control.is_manufacturer_specific:
            return refused(Problem.MANUFACTURER_SPECIFIC,
                           f"unknown manufacturer-specific command 0x{header.command_id:02X}"
                           f" (manufacturer 0x{header.manufacturer:04X})")
        commands = (cluster_cls.client_commands if control.direction == foundation.Direction.Server_to_Client
                    else cluster_cls.server_commands)
        command = commands.get(header.command_id)
        if command is None:
            return refused(Problem.UNKNOWN,
                           f"unknown {control.direction.name} command 0x{header.command_id:02X}")
        command_name, schema = command.name, command.schema
    elif control.frame_type == foundation.FrameType.GLOBAL_COMMAND:
        if control.is_manufacturer_specific:  # no manufacturer's extension of the global commands is known
            return refused(Problem.MANUFACTURER_SPECIFIC,
                           f"unknown manufacturer-specific global command 0x{header.command_id:02X}"
                           f" (manufacturer 0x{header.manufacturer:04X})")
        try:
            general = foundation.GeneralCommand(header.command_id)
            schema = foundation.GENERAL_COMMANDS[general].schema
        except _DECODE_ERRORS:
            return refused(Problem.UNKNOWN, f"unknown global command 0x{header.command_id:02X}")
        command_name = general.name
    else:
        return refused(Problem.MALFORMED, f"reserved frame type {int(control.frame_type)}")
    try:
        special = getattr(cluster_cls, "decode_payload", None)  # a layout told apart by length (Price)
        if special is not None:
            value, _trailing = special(control.direction, command_name, schema, payload)
        else:
            value, _trailing = schema.deserialize(payload)
    except _DECODE_ERRORS as err:
        return refused(Problem.MALFORMED, f"{command_name}: cannot decode {len(payload)}-byte payload"
                                          f" ({payload.hex(' ')}): {err}", command_name)
    return InboundFrame(cluster_id, header, command_name, value, broadcast=broadcast)


__all__ = ["FrameKey", "InboundFrame", "Problem", "decode"]
