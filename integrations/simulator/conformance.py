"""The strict meter's conformance checker: every frame the EMS sends the ESI, judged against SE.

A real ESI (and a certification test house) holds the HAN client to the Smart Energy rules; the
simulated meter does the same, so a test of the appliance fails when the appliance breaks one.
The checker watches the meter's VirtualNode from the outside (``VirtualNode.observe``): it sees
the bytes the meter sent (so it knows which answers are owed, under which TSN) and the bytes the
EMS sent back, and records each broken rule as a frozen ``Violation`` naming the rule, saying it
in words, and carrying the offending frame (cluster, command, TSN, hex, time).

Rules, by family (ids in ``RULES``):

* layout: exact payload lengths and field ranges per command (digest §2.8, §2.11, §3.1, §4.5),
  the frame control of a client -> server frame (§1.2: direction 0, no manufacturer bit for SE
  commands, reserved bits 0);
* answers (ZCL §2.5.12.2): a Default Response where one is owed and exactly one, none where a
  cluster command answers (PublishPrice with the ack bit -> PriceAcknowledgement), with DDR = 1
  only for an error, never two for one TSN, the answered command's id, 0x80/0x81/0x83 for a
  malformed/unknown/manufacturer-specific frame whatever DDR says; an answer echoes the TSN of
  the command it answers (Default Response, PriceAcknowledgement, the ReportEventStatus that
  first answers a LoadControlEvent or a cancel);
* the life of an event (§2.12): statuses in an order the life allows, a terminal status once and
  nothing after it, nothing for an event never sent or not addressed to the client, times never
  before the frame that caused them and never decreasing, rejections echoing the event;
* Price and Messaging (§3.4, §4.5): acknowledgements echo the price, confirmations only for a
  message that asked for one.

Answers take a moment to come back: an owed answer becomes a violation only once ``grace_s``
(event-loop seconds, real time even on a simulated clock: the radio is real) has passed, or when
a test calls ``settled()`` / ``finish()``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from zigpy.zcl import foundation

from ems.clock import Clock, as_clock
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc, Messaging, Metering, Price
from integrations.zigbee.virtual_node import WireFrame

_LOGGER = logging.getLogger(__name__)

SE_CLUSTERS: Final = {c.cluster_id: c for c in (Price, Drlc, Metering, Messaging)}
CLUSTER_NAMES: Final = {0x0000: "Basic", 0x000A: "Time", **{k: v.__name__ for k, v in SE_CLUSTERS.items()}}
DEFAULT_RESPONSE: Final = foundation.GeneralCommand.Default_Response
INVALID_TIME: Final = 0xFFFFFFFF
NOT_USED_SET_POINT: Final = -0x8000
NOT_USED_AVERAGE: Final = -128
# Identical bytes within this many (real) seconds are one frame retransmitted: a client's stack drops
# the copies (zigpy's PACKET_DEBOUNCE_WINDOW, an APS duplicate table) and owes them nothing.
RETRANSMISSION_S: Final = 10.0

# §2.9 statuses a DRLC client may send, and their roles in an event's life (§2.12).
RECEIVED, STARTED, COMPLETED, OPT_OUT, OPT_IN, CANCELLED, SUPERSEDED = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
PARTIAL_OPT_OUT, PARTIAL_OPT_IN, NO_PARTICIPATION = 0x08, 0x09, 0x0A
CANCEL_REJECTED, CANCEL_BAD_TIME, EXPIRED, CANCEL_UNDEFINED, REJECTED = 0xF8, 0xF9, 0xFB, 0xFD, 0xFE
EVENT_STATUSES: Final = frozenset(range(0x01, 0x0B)) | {0xF8, 0xF9, 0xFB, 0xFD, 0xFE}
TERMINAL: Final = frozenset({COMPLETED, CANCELLED, SUPERSEDED, PARTIAL_OPT_OUT, PARTIAL_OPT_IN, NO_PARTICIPATION,
                             EXPIRED, REJECTED})
CANCEL_REJECTIONS: Final = frozenset({CANCEL_REJECTED, CANCEL_BAD_TIME, CANCEL_UNDEFINED})
EVENT_REJECTIONS: Final = frozenset({EXPIRED, REJECTED})

RULES: Final[dict[str, str]] = {
    "SE-ZCL-1.2-frame-control": "a frame from the client to the ESI is client -> server (direction bit 0), "
    "carries no manufacturer code for an SE or ZCL standard command, and has the reserved bits 5-7 at 0",
    "SE-ZCL-1.2-frame-type": "the frame type is 0 (global) or 1 (cluster-specific); 2 and 3 are reserved",
    "SE-ZCL-layout": "the command decodes with its schema and has no bytes beyond it",
    "SE-ZCL-2.5.12-default-response-length": "a Default Response is exactly 2 bytes: command id and a defined status",
    "SE-ZCL-2.5.12-missing": "a command sent with Disable Default Response = 0 that no cluster command answers "
    "gets exactly one Default Response",
    "SE-ZCL-2.5.12-duplicate": "never two Default Responses for one command (one TSN)",
    "SE-ZCL-2.5.12-unrequested-success": "with Disable Default Response = 1, a Default Response only for an error",
    "SE-ZCL-2.5.12-redundant": "no Default Response SUCCESS where a cluster command answers "
    "(PublishPrice with the ack bit is answered by PriceAcknowledgement alone, an event by ReportEventStatus)",
    "SE-ZCL-2.5.12-response-to-default-response": "a Default Response is never answered by a Default Response",
    "SE-ZCL-2.5.12-command-id": "a Default Response carries the id of the command it answers",
    "SE-ZCL-2.5.12-unsolicited": "a Default Response answers a command the ESI sent (its TSN)",
    "SE-ZCL-2.5.12-error-status": "an unknown command gets UNSUP_CLUSTER_COMMAND (0x81), a manufacturer-specific "
    "one UNSUP_MANUF_CLUSTER_COMMAND (0x83), a malformed one MALFORMED_COMMAND (0x80), even with DDR = 1",
    "SE-ZCL-tsn-echo": "an answer (Default Response, PriceAcknowledgement, the first ReportEventStatus for an event "
    "or a cancel) echoes the TSN of the command it answers",
    "SE-DRLC-2.8-length": "ReportEventStatus is 60 bytes: 18, SignatureType and a 42-byte signature",
    "SE-DRLC-2.8-status": "EventStatus is a value §2.9 defines for DRLC",
    "SE-DRLC-2.8-time": "EventStatusTime is neither 0 nor 0xFFFFFFFF",
    "SE-DRLC-2.8-fields": "the applied fields are in range (criticality 0x01-0x0F, duty cycle 0-100 or 0xFF, "
    "average load -100..100 or -128, event control bits 2-7 and SignatureType 0x00/0x01)",
    "SE-DRLC-2.8-applied-not-requested": "an applied field stays 'not used' when the event did not ask for it",
    "SE-DRLC-2.8-applied-set-point": "a set point reported applied is the one the device runs with "
    "(what the simulated thermostat keeps), not the one the event asked for",
    "SE-DRLC-2.11-length": "GetScheduledEvents is 5 bytes (9 with the SE 1.2b IssuerEventID)",
    "SE-DRLC-2.12-unknown-event": "a status only for an event the ESI sent",
    "SE-DRLC-2.12.1-not-addressed": "no status for an event (or a cancel) not addressed to the client "
    "(device class without a bit in common with DeviceClassValue, or another enrollment group)",
    "SE-DRLC-2.12.2-reserved-criticality": "an event with a reserved criticality (0x00, 0x10-0xFF) is ignored",
    "SE-DRLC-2.12.3-first-status": "the first status for an event answers it: 0x01 received, 0xFB if it had "
    "expired on arrival, 0xFE if it is invalid (duration > 1440, start 0xFFFFFFFF) or refused",
    "SE-DRLC-2.12.5-unanswered": "an event addressed to the client is answered by a ReportEventStatus "
    "(0x01, 0xFB or 0xFE)",
    "SE-DRLC-2.12-order": "statuses follow the event's life: 0x01 first and once, 0x02 once, then opt-outs and "
    "opt-ins, a terminal status (0x03, 0x06-0x0A, 0xFB, 0xFE) once and nothing after it",
    "SE-DRLC-2.12-time-order": "an event's status times never go back",
    "SE-DRLC-2.12-time-before-cause": "a status time is never before the frame that caused it arrived "
    "(nor 'started' before the event's start)",
    "SE-DRLC-2.12-echo": "a report echoes the event: 0x01's CriticalityLevelApplied is the event's, a rejection "
    "carries the event's criticality and event control",
    "SE-DRLC-2.12-status-owed": "an accepted event reports its start (0x02, or 0x04 if opted out), its end "
    "(0x03, 0x08-0x0A) and a cancel (0x06) when they happen, within the grace window (randomized times "
    "are not timed)",
    "SE-DRLC-2.12.11-cancel": "a cancel addressed to the client is answered: 0xFD for an event it does not hold "
    "(never sent, superseded, over), 0xF9 for an invalid effective time (0xFFFFFFFF, after the event's end)",
    "SE-DRLC-2.12.11-cancelled-without-cancel": "0x06 only after a cancel addressed to the client for that event",
    "SE-DRLC-2.12.11-unsolicited-rejection": "a cancel rejection (0xF8, 0xF9, 0xFD) only answers a cancel",
    "SE-PRICE-3.1-length": "Price client commands have their exact lengths (GetCurrentPrice 1, GetScheduledPrices 5, "
    "PriceAcknowledgement 13, CPPEventResponse 5) and no reserved bit set",
    "SE-PRICE-3.4-ack-missing": "a PublishPrice with PriceControl bit 0 is answered by a PriceAcknowledgement",
    "SE-PRICE-3.4-ack-echo": "a PriceAcknowledgement echoes ProviderID, IssuerEventID and the PriceControl, at a "
    "time not before the price arrived",
    "SE-PRICE-3.4-unsolicited-ack": "a PriceAcknowledgement only for a price that asked for one, once",
    "SE-PRICE-3.10-refused": "a client refuses a well-formed price only as §3.10 allows: expired (FAILURE), "
    "a repeated IssuerEventID (DUPLICATE_EXISTS) or older than one it holds; every field value the layout "
    "allows is valid (a PriceTrailingDigit nibble of 0-15)",
    "SE-PRICE-3.6-cpp-response": "CPPEventResponse answers a PublishCPPEvent whose CPPAuth was pending, "
    "with CPPAuth 0x01 or 0x02",
    "SE-MSG-4.5-length": "MessageConfirmation is 8 bytes, or 9+ with a defined control (0x00-0x02) and a "
    "response of at most 20 bytes that fills the rest",
    "SE-MSG-4.5-confirmation": "a MessageConfirmation only for a message that asked for confirmation, with its "
    "id, at a time not before it arrived",
    "SE-UP-duplicate-status": "a status is reported once per event: never the same status again right behind "
    "itself (issue 11: idempotent per meter, issuer event id and status)",
    "SE-UP-duplicate-confirmation": "a message is confirmed once: a retry keeps the first try's TSN, so a second "
    "MessageConfirmation under another TSN is a second confirmation (issue 11 finding 3b)",
}


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """The frame a violation is about: cluster, command, TSN, its bytes and when the meter saw it."""

    cluster_id: int
    command: str
    tsn: int | None
    hex: str
    at: datetime
    outgoing: bool = False  # True: a frame the meter sent (an answer owed to it never came)

    def __str__(self) -> str:
        who = "meter sent" if self.outgoing else "EMS sent"
        cluster = CLUSTER_NAMES.get(self.cluster_id, f"0x{self.cluster_id:04X}")
        tsn = "?" if self.tsn is None else f"0x{self.tsn:02X}"
        return f"{who} {cluster}.{self.command} TSN {tsn} at {self.at.isoformat()}: {self.hex}"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: its id, the rule in words, what was wrong here, and the frame."""

    rule: str
    text: str
    detail: str
    frame: FrameRecord | None

    def __str__(self) -> str:
        where = f"\n    frame: {self.frame}" if self.frame is not None else ""
        return f"{self.rule}: {self.detail}\n    rule: {self.text}{where}"


@dataclass(slots=True)
class _Expectation:
    """What one frame the meter sent is owed (mutable while its answers come in)."""

    cluster_id: int
    tsn: int
    command_id: int
    general: bool
    ddr: bool
    frame: FrameRecord
    sent_loop: float
    answer: str | None = None  # cluster command that must answer it, echoing the TSN
    dr_required: bool = False
    success_dr_allowed: bool = True
    error_status: int | None = None  # a Default Response with exactly this status is owed
    answered: bool = False
    default_responses: list[int] = field(default_factory=list)
    closed: bool = False
    lenient: bool = False  # any answer (or none) is acceptable; only a second one is not
    extra: dict[str, Any] = field(default_factory=dict)

    def satisfied(self) -> bool:
        if self.error_status is not None:
            return bool(self.default_responses)
        if self.answer is not None:
            # An error Default Response is an acceptable answer instead (e.g. an expired price).
            return self.answered or any(s != foundation.Status.SUCCESS for s in self.default_responses)
        if self.dr_required:
            return bool(self.default_responses)
        return True


@dataclass(slots=True)
class _Event:
    """The checker's picture of one LoadControlEvent (one instance of an issuer event id)."""

    issuer_event_id: int
    fields: dict[str, Any]
    tsn: int
    arrived: int  # UTCTime seconds
    start: int
    duration_min: int
    addressed: bool
    ignored: str | None  # why the client must not answer at all (reserved criticality...)
    expected_first: frozenset[int]
    expectation: _Expectation | None
    statuses: list[int] = field(default_factory=list)
    last_time: int | None = None
    cancelled_at: int | None = None  # arrival of an addressed cancel (or cancel-all) for it
    cancel_effective: int | None = None  # when a valid cancel takes effect (no randomization asked)
    superseded: bool = False
    due_since: dict[str, float] = field(default_factory=dict)  # owed status -> loop time first due
    owed_flagged: set[str] = field(default_factory=set)
    # TSNs of resends heard before the first answer (GetScheduledEvents): that answer may echo any
    # (a client restarted since the first send cannot know that frame's TSN; it answers the resend).
    resend_tsns: set[int] = field(default_factory=set)

    @property
    def end(self) -> int:
        return self.start + self.duration_min * 60

    @property
    def terminal(self) -> bool:
        return any(s in TERMINAL for s in self.statuses)

    def over(self, now: int) -> bool:
        return self.terminal or self.superseded or now >= self.end or self.ignored is not None


class ConformanceChecker:
    """Watches one ESI's frames and records every SE rule the client breaks."""

    def __init__(
        self,
        clock: Clock | Callable[[], datetime] | None = None,
        *,
        device_class_value: int | None = None,
        utility_enrollment_group: int | None = None,
        grace_s: float = 5.0,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.clock: Clock = as_clock(clock)
        self.device_class_value = device_class_value  # None: not stated, every class addresses it
        self.utility_enrollment_group = utility_enrollment_group  # None/0: every group
        self.grace_s = grace_s
        # Real (radio) time for the grace window: the event loop's, or a test's own counter.
        self._monotonic = monotonic
        self._violations: list[Violation] = []
        self._expectations: dict[tuple[int, int], list[_Expectation]] = {}
        self._events: dict[int, _Event] = {}
        self._messages: dict[int, tuple[int, int]] = {}  # id -> (control, arrived)
        self._cpp: dict[int, int] = {}  # issuer event id -> CPPAuth sent
        self._cpp_answered: set[int] = set()
        self._reported_before: dict[int, list[int]] = {}
        self._recent_frames: dict[tuple[int, bytes], float] = {}  # (cluster, bytes) -> loop time last sent  # issuer event id -> statuses heard before a restart
        self._prices: dict[int, set[int]] = {}  # provider id -> issuer event ids sent
        # The home's thermostat, when simulated: (cooling, heating) in 0.01 degC as it keeps them.
        self.set_point_probe: Callable[[], tuple[int, int]] | None = None
        self._set_point_samples: collections.deque[tuple[float, int, int]] = collections.deque(maxlen=4096)
        self._set_point_claims: list[tuple[float, str, int, int, FrameRecord]] = []
        self.frames_checked = 0
        self.frames_lost_on_air = 0  # frames the ESI sent that a link fault lost (owed nothing)
        # Upstream reports heard more than once, as the utility sees them (the soak reads these):
        # "event_status" (the same status for the same event again), "message_confirmation" (a
        # message confirmed again under another TSN); a retry under the same TSN is "retried".
        self.duplicate_reports: collections.Counter[str] = collections.Counter()
        self.retried_reports: collections.Counter[str] = collections.Counter()
        self._confirmation_tsns: dict[int, set[int]] = {}  # message id -> TSNs its confirmations came under
        self._message_bodies: dict[int, str] = {}  # message id -> the message's fields as last sent
        self._confirmed_before: dict[int, int] = {}  # message id -> TSN, confirmed before a restart
        self._changed = asyncio.Event()  # set on every frame (settled() waits on it)

    def remember_reported(self, issuer_event_id: int, statuses: list[int]) -> None:
        """The client reported these statuses of an event to this ESI before the simulator was restarted:
        the ESI (which, on a real meter, outlives a client's restart) will send the event again and
        holds the client to the rest of its life, not to a second 0x01."""
        if not statuses:
            raise ValueError("an event remembered as reported has at least one status")
        self._reported_before[issuer_event_id] = list(statuses)

    def remember_confirmed(self, message_id: int, message_control: int, arrived: datetime, tsn: int) -> None:
        """The client confirmed this message (which first arrived at ``arrived``) to this ESI, under
        ``tsn``, before the simulator was restarted; the ESI sends it again. A confirmation under
        that TSN again is a retry; under another, a duplicate."""
        self._messages[message_id] = (message_control, arrived)
        self._confirmed_before[message_id] = tsn
        self._confirmation_tsns.setdefault(message_id, set()).add(tsn)

    # -- results ----------------------------------------------------------------------------

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(self._violations)

    def reported_statuses(self, issuer_event_id: int) -> tuple[int, ...]:
        """The statuses the client has reported for an event, in order (empty: none yet)."""
        event = self._events.get(issuer_event_id)
        return () if event is None else tuple(event.statuses)

    def pending(self) -> int:
        """How many answers the client still owes (within their grace window)."""
        self._expire(self._loop_time())
        return sum(1 for e in self._all_expectations() if not e.closed and not e.satisfied())

    async def settled(self, timeout_s: float | None = None) -> tuple[Violation, ...]:
        """Wait (at most ``timeout_s``, default the grace window) for owed answers, then ``finish()``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.grace_s if timeout_s is None else timeout_s)
        while self.pending() and (remaining := deadline - loop.time()) > 0:
            await self._frame_or_timeout(min(remaining, 0.1))
        # A second (duplicate) answer, or a status the client should not send, right behind.
        quiet_until = loop.time() + min(0.5, self.grace_s / 4)
        while (remaining := quiet_until - loop.time()) > 0:
            await self._frame_or_timeout(remaining)
        return self.finish()

    async def _frame_or_timeout(self, timeout_s: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._changed.wait()

    def finish(self) -> tuple[Violation, ...]:
        """Turn every answer still owed into a violation; returns every violation so far."""
        self.sample()
        for expectation in self._all_expectations():
            if not expectation.closed:
                self._close(expectation)
        self._judge_set_points(self._loop_time(), final=True)
        self._watch_events(self._loop_time())
        self._judge_owed_statuses(self._loop_time())
        return self.violations

    def sample(self) -> None:
        """Note what the thermostat keeps now (the runner calls this on every tick and change)."""
        if self.set_point_probe is not None:
            cooling, heating = self.set_point_probe()
            self._set_point_samples.append((self._loop_time(), cooling, heating))

    # -- the node's frames ------------------------------------------------------------------

    def observe(self, frame: WireFrame) -> None:
        """VirtualNode observer: judge one frame (never raises into the node)."""
        self._changed.set()
        try:
            self.sample()
            if frame.outgoing:
                self.meter_sent(frame.cluster_id, frame.payload)
            else:
                self.client_sent(frame.cluster_id, frame.payload)
        except Exception:  # a checker bug must not break the meter; it shows as a log line
            _LOGGER.exception("Conformance checker failed on %s", frame.payload.hex(" "))

    def meter_sent(self, cluster_id: int, payload: bytes) -> None:
        """A frame the ESI sent: note what it is owed."""
        now = self.clock()
        loop_now = self._loop_time()
        self._expire(loop_now)
        key = (cluster_id, bytes(payload))
        last = self._recent_frames.get(key)
        self._recent_frames[key] = loop_now
        if len(self._recent_frames) > 512:
            self._recent_frames = {k: t for k, t in self._recent_frames.items() if loop_now - t < RETRANSMISSION_S}
        if last is not None and loop_now - last < RETRANSMISSION_S:
            # The very bytes again within the window a stack treats as one frame retransmitted (zigpy's
            # duplicate filter, the APS duplicate table): the first copy's answer answers it too.
            return
        try:
            header, body = foundation.ZCLHeader.deserialize(bytes(payload))
        except (ValueError, KeyError, TypeError, IndexError):
            return  # no TSN to answer under: nothing is owed
        fc = header.frame_control
        general = fc.frame_type == foundation.FrameType.GLOBAL_COMMAND
        name = _command_name(cluster_id, header, general)
        record = FrameRecord(cluster_id, name, int(header.tsn), bytes(payload).hex(" "), now, outgoing=True)
        expectation = _Expectation(cluster_id, int(header.tsn), int(header.command_id), general,
                                   bool(fc.disable_default_response), record, loop_now)
        cls = SE_CLUSTERS.get(cluster_id)
        self._expectations.setdefault((cluster_id, int(header.tsn)), []).append(expectation)
        self._prune()
        if fc.frame_type not in (foundation.FrameType.GLOBAL_COMMAND, foundation.FrameType.CLUSTER_COMMAND):
            expectation.lenient = True  # a reserved frame type: whatever answers it is not judged
            return
        if general and header.command_id == DEFAULT_RESPONSE and not fc.is_manufacturer_specific:
            expectation.extra["default_response"] = True  # never answered by a Default Response
            return
        if fc.is_manufacturer_specific:
            expectation.error_status = (foundation.Status.UNSUP_MANUF_GENERAL_COMMAND if general
                                        else foundation.Status.UNSUP_MANUF_CLUSTER_COMMAND)
        elif general:
            if header.command_id not in foundation.GENERAL_COMMANDS:
                expectation.error_status = foundation.Status.UNSUP_GENERAL_COMMAND
            elif header.command_id == foundation.GeneralCommand.Report_Attributes:
                # Report Attributes has no response command of its own (ZCL §2.5.11); the other
                # requests (Read, Write, Configure Reporting, Discover ...) are answered by theirs.
                expectation.dr_required = not fc.disable_default_response
        elif fc.direction != foundation.Direction.Server_to_Client:
            expectation.lenient = True  # a client -> server frame to the client side: not judged
        elif cls is not None:
            if header.command_id not in cls.client_commands:
                expectation.error_status = foundation.Status.UNSUP_CLUSTER_COMMAND
            else:
                try:
                    parsed = codec.parse_frame(cls, bytes(payload))
                except codec.MalformedFrame:
                    expectation.error_status = foundation.Status.MALFORMED_COMMAND
                else:
                    expectation.dr_required = not fc.disable_default_response
                    self._meter_command(cls, parsed, expectation, now)
        else:
            expectation.dr_required = not fc.disable_default_response

    def _meter_command(self, cls: Any, parsed: codec.ParsedFrame, expectation: _Expectation, now: datetime) -> None:
        fields = parsed.fields
        arrived = codec.datetime_to_utc_time(now)
        command = parsed.command_name
        if cls is Price and command == "publish_price":
            self._price_sent(fields, expectation, arrived)
            if int(fields.get("price_control", 0)) & 0x01:
                expectation.answer = "price_acknowledgement"
                expectation.dr_required = False
                expectation.success_dr_allowed = False
                expectation.extra.update(provider_id=int(fields["provider_id"]),
                                         issuer_event_id=int(fields["issuer_event_id"]),
                                         price_control=int(fields["price_control"]), arrived=arrived)
        elif cls is Price and command == "publish_cpp_event":
            self._cpp[int(fields["issuer_event_id"])] = int(fields["cpp_auth"])
            if int(fields["cpp_auth"]) == 0x00:  # pending: the CPPEventResponse answers it, not a Default Response
                expectation.answer = "cpp_event_response"
                expectation.extra.update(issuer_event_id=int(fields["issuer_event_id"]))
                expectation.dr_required = False
                expectation.success_dr_allowed = False
        elif cls is Messaging and command in ("display_message", "display_protected_message"):
            message_id = int(fields["message_id"])
            body = repr(sorted(fields.items()))
            if self._message_bodies.get(message_id) != body:  # a new message under the id: confirmed anew
                self._confirmation_tsns.pop(message_id, None)
                if message_id not in self._message_bodies and message_id in self._confirmed_before:
                    self._confirmation_tsns[message_id] = {self._confirmed_before[message_id]}  # resent
                self._message_bodies[message_id] = body
            arrived_first = self._messages.get(message_id, (0, arrived))[1] if message_id in self._confirmed_before \
                else arrived
            self._messages[message_id] = (int(fields["message_control"]), arrived_first)
        elif cls is Drlc and command == "load_control_event":
            self._event_sent(fields, expectation, arrived)
        elif cls is Drlc and command == "cancel_load_control_event":
            self._cancel_sent(fields, expectation, arrived)
        elif cls is Drlc and command == "cancel_all_load_control_events":
            for event in self._events.values():
                if event.addressed and not event.over(arrived) and event.cancelled_at is None:
                    event.cancelled_at = arrived
                    if not int(fields["cancel_control"]) & 0x01:
                        event.cancel_effective = arrived

    def _price_sent(self, fields: dict[str, Any], expectation: _Expectation, arrived: int) -> None:
        """Whether a client may refuse this price (§3.10): expired, a repeated or an older id."""
        provider, issuer = int(fields["provider_id"]), int(fields["issuer_event_id"])
        start = int(fields["start_time"]) or arrived
        duration = int(fields["duration_in_minutes"])
        seen = self._prices.setdefault(provider, set())
        reasons = []
        if duration != 0xFFFF and start + duration * 60 <= arrived:
            reasons.append("expired")
        if issuer in seen:
            reasons.append("a repeated IssuerEventID")
        if seen and issuer < max(seen):
            reasons.append("older than a price already sent")
        seen.add(issuer)
        expectation.extra.update(price_refusable=reasons, issuer_event_id=issuer)

    def _addresses(self, device_class: int, group: int) -> bool:
        """§2.12 item 1: a device-class bit in common, and the groups equal or either 0."""
        if self.device_class_value is not None and not device_class & self.device_class_value:
            return False
        mine = self.utility_enrollment_group or 0
        return group == 0 or mine == 0 or group == mine

    def _event_sent(self, fields: dict[str, Any], expectation: _Expectation, arrived: int) -> None:
        issuer = int(fields["issuer_event_id"])
        addressed = self._addresses(int(fields["device_class"]), int(fields["utility_enrollment_group"]))
        criticality = int(fields["criticality_level"])
        start_raw = int(fields["start_time"])
        start = arrived if start_raw == 0 else start_raw
        duration = int(fields["duration_in_minutes"])
        known = self._events.get(issuer)
        prior = self._reported_before.pop(issuer, None)
        if known is None and prior is not None:
            # An event this client already answered before the simulator restarted (a real ESI keeps
            # its events across a client's restart): a resend, owed nothing, its history goes on.
            expectation.dr_required = False
            self._events[issuer] = _Event(issuer, dict(fields), expectation.tsn, arrived, start, duration, True,
                                          None, frozenset({prior[0]}), None, statuses=list(prior))
            return
        if known is not None and known.addressed and not known.over(arrived):
            expectation.dr_required = False
            if not known.statuses:  # still unanswered: the resend is asked anew, with its own grace
                known.resend_tsns.add(expectation.tsn)
                if known.expectation is not None and not known.expectation.answered:
                    known.expectation.closed = True
                    expectation.answer = "report_event_status"
                    expectation.success_dr_allowed = False
                    known.expectation = expectation
            return  # §2.12 item 4: the same id again is ignored (nothing or a Default Response SUCCESS)
        ignored = None
        if not addressed:
            ignored = "not addressed"
        elif not 0x01 <= criticality <= 0x0F:
            ignored = "reserved criticality"
        if known is not None and known.addressed and ignored is None:
            expected = frozenset({EXPIRED})  # a reused id of an event that is over
        elif duration > 1440 or start_raw == INVALID_TIME:
            expected = frozenset({REJECTED})
        elif arrived > start + duration * 60:
            expected = frozenset({EXPIRED})
        else:
            expected = frozenset({RECEIVED, REJECTED})
        if ignored is None:
            expectation.answer = "report_event_status"
            expectation.dr_required = False
            expectation.success_dr_allowed = False
        else:
            expectation.dr_required = False  # §2.12 item 1: nothing, or a Default Response SUCCESS
        event = _Event(issuer, dict(fields), expectation.tsn, arrived, start, duration, addressed and ignored is None,
                       ignored, expected, expectation if ignored is None else None)
        if known is not None and known.addressed and ignored is not None:
            return  # an ignored resend does not replace the event the client holds
        if event.addressed and RECEIVED in expected:  # only an event the client may accept supersedes
            for other in self._events.values():
                if (other.addressed and not other.over(arrived) and other.start < event.end
                        and event.start < other.end):
                    other.superseded = True  # §2.12 item 6
        self._events[issuer] = event

    def _cancel_sent(self, fields: dict[str, Any], expectation: _Expectation, arrived: int) -> None:
        issuer = int(fields["issuer_event_id"])
        if not self._addresses(int(fields["device_class"]), int(fields["utility_enrollment_group"])):
            expectation.extra = {"cancel_of": issuer, "addressed": False}
            expectation.dr_required = False  # §2.12 item 1, as for an event
            return  # nothing is owed; and no 0x06 may follow from it
        event = self._events.get(issuer)
        effective = int(fields["effective_time"])
        expectation.extra = {"cancel_of": issuer, "addressed": True}
        if event is None or not event.addressed or event.terminal or event.superseded or arrived >= event.end:
            expected = frozenset({CANCEL_UNDEFINED})
        elif effective == INVALID_TIME or (effective != 0 and effective > event.end):
            expected = frozenset({CANCEL_BAD_TIME})
        else:
            event.cancelled_at = arrived if event.cancelled_at is None else event.cancelled_at
            if not int(fields["cancel_control"]) & 0x01 and event.cancel_effective is None:
                event.cancel_effective = effective or arrived
            return  # valid: 0x06 at the effective time; with DDR = 0 a Default Response now
        expectation.answer = "report_event_status"
        expectation.dr_required = False
        expectation.success_dr_allowed = False
        expectation.extra["expected"] = expected

    def lost_on_air(self, cluster_id: int, payload: bytes) -> None:
        """A frame the ESI sent was lost on the air (a link fault): the client never heard it, so it
        owes it no answer, and an event it carried is not the client's (a resend is judged anew)."""
        data = bytes(payload)
        try:
            header, _body = foundation.ZCLHeader.deserialize(data)
        except (ValueError, KeyError, TypeError, IndexError):
            return
        key = (cluster_id, int(header.tsn))
        hexed = data.hex(" ")
        expectations = self._expectations.get(key, [])
        lost = [e for e in expectations if e.frame.hex == hexed and not e.closed and not e.answered]
        if not lost:
            return
        self.frames_lost_on_air += 1
        self._expectations[key] = [e for e in expectations if e not in lost]
        self._recent_frames.pop((cluster_id, data), None)
        for issuer, event in list(self._events.items()):
            if event.expectation in lost and not event.statuses:
                del self._events[issuer]

    def client_sent(self, cluster_id: int, payload: bytes) -> None:
        """A frame the EMS sent the ESI: check its layout, then what it says.

        Only the clusters an ESI serves (Basic, Time, the SE clusters) are judged: zigpy's own
        broadcasts (Green Power proxy commissioning, ...) are no business of the meter's.
        """
        if cluster_id not in CLUSTER_NAMES:
            return
        self.frames_checked += 1
        now = self.clock()
        self._expire(self._loop_time())
        data = bytes(payload)
        try:
            header, body = foundation.ZCLHeader.deserialize(data)
        except (ValueError, KeyError, TypeError, IndexError):
            self._flag("SE-ZCL-layout", "the ZCL header is cut short",
                       FrameRecord(cluster_id, "?", data[1] if len(data) > 1 else None, data.hex(" "), now))
            return
        fc = header.frame_control
        general = fc.frame_type == foundation.FrameType.GLOBAL_COMMAND
        name = _command_name(cluster_id, header, general, to_server=True)
        record = FrameRecord(cluster_id, name, int(header.tsn), data.hex(" "), now)
        if fc.frame_type not in (foundation.FrameType.GLOBAL_COMMAND, foundation.FrameType.CLUSTER_COMMAND):
            self._flag("SE-ZCL-1.2-frame-type", f"frame type {int(fc.frame_type)}", record)
            return
        if fc.direction != foundation.Direction.Client_to_Server:
            self._flag("SE-ZCL-1.2-frame-control", "direction bit is 1 (server -> client)", record)
        if fc.is_manufacturer_specific and (general or cluster_id in SE_CLUSTERS):
            self._flag("SE-ZCL-1.2-frame-control", f"manufacturer bit set (code 0x{int(header.manufacturer or 0):04X})",
                       record)
        if data[0] & 0xE0:
            self._flag("SE-ZCL-1.2-frame-control", f"reserved bits set in frame control 0x{data[0]:02X}", record)
        if general:
            if header.command_id == DEFAULT_RESPONSE:
                self._default_response(cluster_id, header, body, record)
            return
        cls = SE_CLUSTERS.get(cluster_id)
        if cls is None or fc.is_manufacturer_specific:
            return
        command = cls.server_commands.get(header.command_id)
        if command is None:
            self._flag("SE-ZCL-layout", f"{cls.__name__} has no client -> server command 0x{header.command_id:02X}",
                       record)
            return
        if not self._layout(cls, command.name, body, record):
            return
        try:
            fields, _ = command.schema.deserialize(body)
        except (ValueError, KeyError, TypeError, IndexError):
            return  # its layout is already flagged
        values = {k: v for k, v in fields.as_dict().items() if v is not None}
        if cls is Drlc and command.name == "report_event_status":
            self._report_event_status(header, values, record)
        elif cls is Price and command.name == "price_acknowledgement":
            self._price_acknowledgement(header, values, record)
        elif cls is Price and command.name == "cpp_event_response":
            self._cpp_event_response(header, values, record)
        elif cls is Messaging and command.name == "message_confirmation":
            self._message_confirmation(values, record)

    # -- layout -------------------------------------------------------------------------------

    def _layout(self, cls: Any, name: str, body: bytes, record: FrameRecord) -> bool:
        """Exact lengths and ranges; False when the frame cannot be read further."""
        size = len(body)
        if cls is Drlc and name == "report_event_status":
            if size != 60:
                self._flag("SE-DRLC-2.8-length", f"{size} bytes", record)
                if size < 18:
                    return False
            status = body[4]
            if status not in EVENT_STATUSES:
                self._flag("SE-DRLC-2.8-status", f"status 0x{status:02X}", record)
            when = int.from_bytes(body[5:9], "little")
            if when in (0, INVALID_TIME):
                self._flag("SE-DRLC-2.8-time", f"EventStatusTime 0x{when:08X}", record)
            criticality, duty, average, control = body[9], body[15], int.from_bytes(body[14:15], "little", signed=True), body[16]
            problems = []
            issuer = int.from_bytes(body[0:4], "little")
            known = self._events.get(issuer)
            # A refused cancel of an event the client never held has no criticality to echo: 0 is honest.
            unknown_cancel = status in (0xF8, 0xF9, 0xFD) and (known is None or not known.addressed)
            if not 0x01 <= criticality <= 0x0F and not (criticality == 0 and unknown_cancel):
                problems.append(f"criticality applied 0x{criticality:02X}")
            if duty > 100 and duty != 0xFF:
                problems.append(f"duty cycle applied {duty}")
            if not -100 <= average <= 100 and average != NOT_USED_AVERAGE:
                problems.append(f"average load adjustment applied {average}")
            if control & 0xFC:
                problems.append(f"event control 0x{control:02X}")
            if size > 17 and body[17] not in (0x00, 0x01):
                problems.append(f"SignatureType 0x{body[17]:02X}")
            if problems:
                self._flag("SE-DRLC-2.8-fields", ", ".join(problems), record)
            return True
        if cls is Drlc and name == "get_scheduled_events":
            if size not in (5, 9):
                self._flag("SE-DRLC-2.11-length", f"{size} bytes", record)
                return size >= 5
            return True
        if cls is Price and name in ("get_current_price", "get_scheduled_prices", "price_acknowledgement",
                                     "cpp_event_response"):
            want = {"get_current_price": 1, "get_scheduled_prices": 5, "price_acknowledgement": 13,
                    "cpp_event_response": 5}[name]
            if size != want:
                self._flag("SE-PRICE-3.1-length", f"{name} is {size} bytes, not {want}", record)
                return size >= want
            if name == "get_current_price" and body[0] & 0xFE:
                self._flag("SE-PRICE-3.1-length", f"CommandOptions 0x{body[0]:02X} sets reserved bits", record)
            if name == "price_acknowledgement" and body[12] & 0xFC:
                self._flag("SE-PRICE-3.1-length", f"Control 0x{body[12]:02X} sets reserved bits", record)
            if name == "cpp_event_response" and body[4] not in (0x01, 0x02):
                self._flag("SE-PRICE-3.6-cpp-response", f"CPPAuth 0x{body[4]:02X}", record)
            return True
        if cls is Messaging and name == "message_confirmation":
            if size < 8:
                self._flag("SE-MSG-4.5-length", f"{size} bytes", record)
                return False
            if size >= 9 and body[8] > 0x02:
                self._flag("SE-MSG-4.5-length", f"MessageConfirmationControl 0x{body[8]:02X}", record)
            if size >= 10 and (body[9] > 20 or size != 10 + body[9]):
                self._flag("SE-MSG-4.5-length", f"response length byte {body[9]} in a {size}-byte payload", record)
                return False
            return True
        if cls is Messaging and name == "get_last_message":
            if size:
                self._flag("SE-ZCL-layout", f"GetLastMessage carries {size} bytes", record)
            return True
        command = cls.server_commands[next(k for k, v in cls.server_commands.items() if v.name == name)]
        try:
            _, rest = command.schema.deserialize(body)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            self._flag("SE-ZCL-layout", f"cannot decode: {err}", record)
            return False
        if rest:
            self._flag("SE-ZCL-layout", f"{len(rest)} bytes beyond the command", record)
        return True

    # -- answers ------------------------------------------------------------------------------

    def _default_response(self, cluster_id: int, header: foundation.ZCLHeader, body: bytes,
                          record: FrameRecord) -> None:
        if len(body) != 2:
            self._flag("SE-ZCL-2.5.12-default-response-length", f"{len(body)} bytes", record)
            if len(body) < 2:
                return
        command_id, status = body[0], body[1]
        if status not in {int(s) for s in foundation.Status}:
            self._flag("SE-ZCL-2.5.12-default-response-length", f"status 0x{status:02X} is not defined", record)
        candidates = [e for e in self._expectations.get((cluster_id, int(header.tsn)), [])]
        if not candidates:
            self._flag("SE-ZCL-2.5.12-unsolicited",
                       f"Default Response (command 0x{command_id:02X}, status 0x{status:02X}) for TSN "
                       f"0x{int(header.tsn):02X}, which no frame of the meter on this cluster carried", record)
            return
        # TSNs wrap and repeat: the answer settles the oldest frame under this TSN not yet answered.
        matching = [e for e in candidates if e.command_id == command_id]
        if not matching:
            unanswered = [e for e in candidates if not e.default_responses]
            expectation = unanswered[0] if unanswered else candidates[-1]
            self._flag("SE-ZCL-2.5.12-command-id",
                       f"Default Response names command 0x{command_id:02X}; TSN 0x{expectation.tsn:02X} was "
                       f"{expectation.frame.command} (0x{expectation.command_id:02X})", record)
        else:
            # A reply to a Get reuses the EMS's TSN, which the meter's own counter may reach too:
            # an answer goes first to a frame that owes one (DDR = 0 or an error status).
            unanswered = [e for e in matching if not e.default_responses]
            owed = [e for e in unanswered if e.dr_required or e.error_status is not None or not e.ddr]
            expectation = (owed or unanswered or matching[-1:])[0]
        expectation.default_responses.append(status)
        statuses = ", ".join(f"0x{s:02X}" for s in expectation.default_responses)
        if len(expectation.default_responses) > 1:
            self._flag("SE-ZCL-2.5.12-duplicate",
                       f"Default Responses {statuses} for {expectation.frame.command} TSN 0x{expectation.tsn:02X}",
                       record)
        if expectation.extra.get("default_response"):
            self._flag("SE-ZCL-2.5.12-response-to-default-response",
                       f"Default Response (status 0x{status:02X}) to the meter's Default Response TSN "
                       f"0x{expectation.tsn:02X}", record)
            return
        if expectation.lenient:
            return
        if expectation.error_status is not None:
            if status != expectation.error_status:
                self._flag("SE-ZCL-2.5.12-error-status",
                           f"status 0x{status:02X} for {expectation.frame.command}; owed "
                           f"0x{expectation.error_status:02X}", record)
            return
        if status != foundation.Status.SUCCESS and expectation.extra.get("price_refusable") == []:
            self._flag("SE-PRICE-3.10-refused", f"status 0x{status:02X} for {expectation.frame.command} TSN "
                       f"0x{expectation.tsn:02X} (price {expectation.extra.get('issuer_event_id', '')}), which "
                       "is neither expired nor a repeated or older id", record)
        if status == foundation.Status.SUCCESS:
            if not expectation.success_dr_allowed:
                self._flag("SE-ZCL-2.5.12-redundant",
                           f"Default Response SUCCESS for {expectation.frame.command} TSN 0x{expectation.tsn:02X}, "
                           f"which {expectation.answer or 'a ReportEventStatus'} answers", record)
            elif expectation.ddr:
                self._flag("SE-ZCL-2.5.12-unrequested-success",
                           f"Default Response SUCCESS for {expectation.frame.command} sent with DDR = 1", record)

    def _answer_expectation(self, cluster_id: int, tsn: int, answer: str,
                            match: Callable[[_Expectation], bool]) -> tuple[_Expectation | None, bool]:
        """The owed expectation this answer settles: (expectation, whether it echoed the TSN)."""
        for expectation in reversed(self._expectations.get((cluster_id, tsn), [])):
            if expectation.answer == answer and match(expectation):
                return expectation, True
        for expectations in self._expectations.values():
            for expectation in expectations:
                if expectation.answer == answer and not expectation.answered and match(expectation) \
                        and expectation.cluster_id == cluster_id:
                    return expectation, False
        return None, False

    # -- DRLC ---------------------------------------------------------------------------------

    def _report_event_status(self, header: foundation.ZCLHeader, fields: dict[str, Any], record: FrameRecord) -> None:
        issuer = int(fields["issuer_event_id"])
        status = int(fields["event_status"])
        when = int(fields["event_status_time"])
        tsn = int(header.tsn)
        if status in CANCEL_REJECTIONS:
            self._cancel_rejection(issuer, status, tsn, record)
            return
        event = self._events.get(issuer)
        if event is None:
            self._flag("SE-DRLC-2.12-unknown-event", f"status 0x{status:02X} for event {issuer}, "
                       "which the meter never sent", record)
            return
        if not event.addressed:
            rule = "SE-DRLC-2.12.2-reserved-criticality" if event.ignored == "reserved criticality" \
                else "SE-DRLC-2.12.1-not-addressed"
            self._flag(rule, f"status 0x{status:02X} for event {issuer} (device class "
                       f"0x{int(event.fields['device_class']):04X}, group {int(event.fields['utility_enrollment_group'])};"
                       f" client DeviceClassValue {_hex(self.device_class_value)}, group "
                       f"{self.utility_enrollment_group})", record)
            return
        first = not event.statuses
        if first:
            if event.expectation is not None:
                event.expectation.answered = True
                if tsn != event.tsn and tsn not in event.resend_tsns:
                    self._flag("SE-ZCL-tsn-echo", f"first ReportEventStatus (0x{status:02X}) for event {issuer} has "
                               f"TSN 0x{tsn:02X}; the LoadControlEvent had 0x{event.tsn:02X}", record)
            if status not in event.expected_first:
                self._flag("SE-DRLC-2.12.3-first-status" if status in EVENT_REJECTIONS | {RECEIVED}
                           else "SE-DRLC-2.12-order",
                           f"first status for event {issuer} is 0x{status:02X}; expected "
                           f"{' or '.join(f'0x{s:02X}' for s in sorted(event.expected_first))}", record)
        elif event.terminal:
            self._flag("SE-DRLC-2.12-order", f"status 0x{status:02X} for event {issuer} after its terminal status "
                       f"(statuses so far {_hexes(event.statuses)})", record)
        elif status == RECEIVED or status in EVENT_REJECTIONS:
            self._flag("SE-DRLC-2.12-order", f"status 0x{status:02X} for event {issuer} after "
                       f"{_hexes(event.statuses)}", record)
        elif status == STARTED and STARTED in event.statuses:
            self._flag("SE-DRLC-2.12-order", f"event {issuer} started twice", record)
        elif event.statuses and status == event.statuses[-1]:
            self._flag("SE-UP-duplicate-status", f"status 0x{status:02X} for event {issuer} again, right behind "
                       f"itself (statuses so far {_hexes(event.statuses)})", record)
        if status in event.statuses and (status == event.statuses[-1] or status in TERMINAL | {RECEIVED, STARTED}):
            self.duplicate_reports["event_status"] += 1
        # Times (§2.8: when the status occurred; never before its cause arrived, never back).
        cause = event.arrived
        if status == CANCELLED:
            if event.cancelled_at is None:
                self._flag("SE-DRLC-2.12.11-cancelled-without-cancel",
                           f"0x06 for event {issuer}, for which no cancel addressed to the client was sent", record)
            else:
                cause = max(cause, event.cancelled_at)
        if status == STARTED:
            cause = max(cause, event.start)
        if when not in (0, INVALID_TIME):
            if when < cause:
                self._flag("SE-DRLC-2.12-time-before-cause",
                           f"status 0x{status:02X} for event {issuer} at {_utc(when)}, before {_utc(cause)}", record)
            if event.last_time is not None and when < event.last_time:
                self._flag("SE-DRLC-2.12-time-order", f"status 0x{status:02X} for event {issuer} at {_utc(when)}, "
                           f"after a status at {_utc(event.last_time)}", record)
            event.last_time = max(when, event.last_time or when)
        self._echo(event, status, fields, record)
        event.statuses.append(status)

    def _echo(self, event: _Event, status: int, fields: dict[str, Any], record: FrameRecord) -> None:
        wanted = int(event.fields["criticality_level"])
        control = int(event.fields["event_control"])
        applied = int(fields["criticality_level_applied"])
        if status == RECEIVED and applied != wanted:
            self._flag("SE-DRLC-2.12-echo", f"0x01 for event {event.issuer_event_id} applies criticality "
                       f"0x{applied:02X}; the event asked 0x{wanted:02X}", record)
        if status in EVENT_REJECTIONS and (applied != wanted or int(fields["event_control"]) != control):
            self._flag("SE-DRLC-2.12-echo", f"rejection 0x{status:02X} for event {event.issuer_event_id} carries "
                       f"criticality 0x{applied:02X} and event control 0x{int(fields['event_control']):02X}; the event "
                       f"had 0x{wanted:02X} and 0x{control:02X}", record)
        asked = event.fields
        problems = []
        if int(asked["average_load_adjustment_percentage"]) == NOT_USED_AVERAGE and \
                int(fields["average_load_adjustment_percentage_applied"]) != NOT_USED_AVERAGE:
            problems.append(f"average load adjustment {int(fields['average_load_adjustment_percentage_applied'])}%")
        if int(asked["duty_cycle"]) == 0xFF and int(fields["duty_cycle_applied"]) != 0xFF:
            problems.append(f"duty cycle {int(fields['duty_cycle_applied'])}%")
        for side in ("cooling", "heating"):
            if (int(asked[f"{side}_temperature_set_point"]) == NOT_USED_SET_POINT
                    and int(asked[f"{side}_temperature_offset"]) == 0xFF
                    and int(fields[f"{side}_temperature_set_point_applied"]) != NOT_USED_SET_POINT):
                problems.append(f"{side} set point {int(fields[f'{side}_temperature_set_point_applied']) / 100}")
        if self.set_point_probe is not None and status in (STARTED, OPT_IN):
            for index, side in enumerate(("cooling", "heating")):
                value = int(fields[f"{side}_temperature_set_point_applied"])
                if value != NOT_USED_SET_POINT:
                    self._set_point_claims.append((self._loop_time(), side, index, value, record))
        if problems:
            self._flag("SE-DRLC-2.8-applied-not-requested",
                       f"status 0x{status:02X} for event {event.issuer_event_id} reports applied "
                       f"{', '.join(problems)}; the event did not ask for it", record)

    def _cancel_rejection(self, issuer: int, status: int, tsn: int, record: FrameRecord) -> None:
        expectation, echoed = self._answer_expectation(
            Drlc.cluster_id, tsn, "report_event_status",
            lambda e: e.extra.get("cancel_of") == issuer and "expected" in e.extra)
        if expectation is None:
            addressed = [e for es in self._expectations.values() for e in es if e.extra.get("cancel_of") == issuer]
            if addressed and not any(e.extra.get("addressed") for e in addressed):
                self._flag("SE-DRLC-2.12.1-not-addressed", f"rejection 0x{status:02X} for a cancel of event {issuer} "
                           "not addressed to the client", record)
            elif addressed:
                self._flag("SE-DRLC-2.12.11-cancel", f"rejection 0x{status:02X} for a valid cancel of event {issuer}",
                           record)
            else:
                self._flag("SE-DRLC-2.12.11-unsolicited-rejection", f"0x{status:02X} for event {issuer}, "
                           "which the meter never cancelled", record)
            return
        if expectation.answered:
            self._flag("SE-DRLC-2.12-order", f"a second rejection 0x{status:02X} for one cancel of event {issuer}",
                       record)
        expectation.answered = True
        if not echoed:
            self._flag("SE-ZCL-tsn-echo", f"rejection 0x{status:02X} of the cancel of event {issuer} has TSN "
                       f"0x{tsn:02X}; the cancel had 0x{expectation.tsn:02X}", record)
        if status not in expectation.extra["expected"]:
            self._flag("SE-DRLC-2.12.11-cancel", f"cancel of event {issuer} rejected with 0x{status:02X}; expected "
                       f"{_hexes(sorted(expectation.extra['expected']))}", record)

    # -- Price, Messaging ---------------------------------------------------------------------

    def _price_acknowledgement(self, header: foundation.ZCLHeader, fields: dict[str, Any], record: FrameRecord) -> None:
        issuer = int(fields["issuer_event_id"])
        tsn = int(header.tsn)
        expectation, echoed = self._answer_expectation(
            Price.cluster_id, tsn, "price_acknowledgement",
            lambda e: e.extra.get("issuer_event_id") == issuer)
        if expectation is None:
            by_tsn = [e for e in self._expectations.get((Price.cluster_id, tsn), [])
                      if e.answer == "price_acknowledgement"]
            if by_tsn:
                expectation, echoed = by_tsn[-1], True
            else:
                self._flag("SE-PRICE-3.4-unsolicited-ack", f"acknowledgement of price {issuer}, which asked for none",
                           record)
                return
        if expectation.answered:
            self._flag("SE-PRICE-3.4-unsolicited-ack", f"a second acknowledgement of price {issuer} "
                       f"(TSN 0x{expectation.tsn:02X})", record)
        expectation.answered = True
        if not echoed:
            self._flag("SE-ZCL-tsn-echo", f"PriceAcknowledgement for price {issuer} has TSN 0x{tsn:02X}; the "
                       f"PublishPrice had 0x{expectation.tsn:02X}", record)
        sent = expectation.extra
        problems = []
        for key, got in (("provider_id", int(fields["provider_id"])), ("issuer_event_id", issuer),
                         ("price_control", int(fields["control"]))):
            if got != sent[key]:
                problems.append(f"{key} {got} (price: {sent[key]})")
        if int(fields["price_ack_time"]) < sent["arrived"]:
            problems.append(f"PriceAckTime {_utc(int(fields['price_ack_time']))} before the price arrived "
                            f"{_utc(sent['arrived'])}")
        if problems:
            self._flag("SE-PRICE-3.4-ack-echo", "; ".join(problems), record)

    def _cpp_event_response(self, header: foundation.ZCLHeader, fields: dict[str, Any], record: FrameRecord) -> None:
        issuer = int(fields["issuer_event_id"])
        tsn = int(header.tsn)
        expectation, echoed = self._answer_expectation(
            Price.cluster_id, tsn, "cpp_event_response", lambda e: e.extra.get("issuer_event_id") == issuer)
        if expectation is not None:
            expectation.answered = True
            if not echoed:
                self._flag("SE-ZCL-tsn-echo", f"CPPEventResponse for CPP event {issuer} has TSN 0x{tsn:02X}; the "
                           f"PublishCPPEvent had 0x{expectation.tsn:02X}", record)
        auth = self._cpp.get(issuer)
        if auth is None:
            self._flag("SE-PRICE-3.6-cpp-response", f"response to CPP event {issuer}, which the meter never sent",
                       record)
        elif auth != 0x00:
            self._flag("SE-PRICE-3.6-cpp-response", f"response to CPP event {issuer}, whose CPPAuth was "
                       f"0x{auth:02X}, not pending", record)
        elif issuer in self._cpp_answered:
            self._flag("SE-PRICE-3.6-cpp-response", f"a second response to CPP event {issuer}", record)
        self._cpp_answered.add(issuer)

    def _message_confirmation(self, fields: dict[str, Any], record: FrameRecord) -> None:
        message_id = int(fields["message_id"])
        sent = self._messages.get(message_id)
        if sent is None:
            self._flag("SE-MSG-4.5-confirmation", f"confirmation of message {message_id}, which the meter never sent",
                       record)
            return
        control, arrived = sent
        tsns = self._confirmation_tsns.setdefault(message_id, set())
        if record.tsn in tsns:
            self.retried_reports["message_confirmation"] += 1  # a retry the meter recognises
        elif tsns:
            self.duplicate_reports["message_confirmation"] += 1
            self._flag("SE-UP-duplicate-confirmation", f"message {message_id} confirmed again under TSN "
                       f"0x{record.tsn or 0:02X} (before: {_hexes(sorted(tsns))})", record)
        if record.tsn is not None:
            tsns.add(record.tsn)
        if not control & 0xA0:
            self._flag("SE-MSG-4.5-confirmation", f"confirmation of message {message_id}, whose MessageControl "
                       f"0x{control:02X} asked for none", record)
        when = int(fields["confirmation_time"])
        if when < arrived:
            self._flag("SE-MSG-4.5-confirmation", f"ConfirmationTime {_utc(when)} before message {message_id} "
                       f"arrived {_utc(arrived)}", record)

    # -- bookkeeping --------------------------------------------------------------------------

    def _flag(self, rule: str, detail: str, frame: FrameRecord | None) -> None:
        violation = Violation(rule, RULES[rule], detail, frame)
        self._violations.append(violation)
        _LOGGER.warning("SE conformance: %s", violation)

    def _all_expectations(self) -> list[_Expectation]:
        return [e for es in self._expectations.values() for e in es]

    def _expire(self, loop_now: float, *, final: bool = False) -> None:
        for expectation in self._all_expectations():
            if not expectation.closed and loop_now - expectation.sent_loop >= self.grace_s:
                self._close(expectation)
        self._judge_set_points(loop_now, final=final)
        self._watch_events(loop_now)
        self._judge_owed_statuses(loop_now)

    def _watch_events(self, loop_now: float) -> None:
        """Note when an accepted event comes to owe a status (§2.12 items 8, 10, 11): its start,
        its end, a cancel's effective time. Randomized times are the client's to choose, so an
        event or cancel that asks for randomization owes nothing the checker could time."""
        now = codec.datetime_to_utc_time(self.clock())
        for event in self._events.values():
            if not event.addressed or event.statuses[:1] != [RECEIVED] or event.terminal or event.superseded:
                continue
            randomized = int(event.fields["event_control"]) & 0x03
            if event.cancel_effective is not None and now >= event.cancel_effective:
                event.due_since.setdefault("0x06 (cancelled)", loop_now)
            ends_first = event.cancel_effective is not None and event.cancel_effective <= event.start
            if not randomized and now >= event.start and not ends_first and not {STARTED, OPT_OUT} & set(event.statuses):
                event.due_since.setdefault("0x02 (started) or 0x04 (opted out)", loop_now)
            if not randomized and now >= event.end and event.cancel_effective is None:
                event.due_since.setdefault("a completion status (0x03, 0x08, 0x09, 0x0A)", loop_now)

    def _judge_owed_statuses(self, loop_now: float) -> None:
        for event in self._events.values():
            for owed, since in list(event.due_since.items()):
                settled = (owed.startswith("0x02") and {STARTED, OPT_OUT} & set(event.statuses)) or (
                    not owed.startswith("0x02") and event.terminal) or event.superseded
                if settled:
                    del event.due_since[owed]
                elif loop_now - since >= self.grace_s and owed not in event.owed_flagged:
                    event.owed_flagged.add(owed)
                    self._flag("SE-DRLC-2.12-status-owed",
                               f"event {event.issuer_event_id} owes {owed}: statuses so far "
                               f"{_hexes(event.statuses)}",
                               event.expectation.frame if event.expectation is not None else None)

    def _judge_set_points(self, loop_now: float, *, final: bool) -> None:
        """A set point reported applied must be what the thermostat kept within the grace window."""
        kept = []
        for claim in self._set_point_claims:
            at, side, index, value, record = claim
            if not final and loop_now - at < self.grace_s:
                kept.append(claim)
                continue
            window = [s for s in self._set_point_samples if abs(s[0] - at) <= self.grace_s]
            if window and not any(s[1 + index] == value for s in window):
                held = sorted({s[1 + index] / 100 for s in window})
                self._flag("SE-DRLC-2.8-applied-set-point",
                           f"{side} set point applied {value / 100} degC; the thermostat kept "
                           f"{', '.join(map(str, held))} degC then", record)
        self._set_point_claims = kept

    def _close(self, expectation: _Expectation) -> None:
        expectation.closed = True
        if expectation.satisfied():
            return
        what = f"{expectation.frame.command} TSN 0x{expectation.tsn:02X}"
        if expectation.error_status is not None:
            self._flag("SE-ZCL-2.5.12-error-status", f"no Default Response 0x{expectation.error_status:02X} for "
                       f"{what}", expectation.frame)
        elif expectation.answer == "price_acknowledgement":
            self._flag("SE-PRICE-3.4-ack-missing", f"no PriceAcknowledgement for {what} "
                       f"(price {expectation.extra.get('issuer_event_id')})", expectation.frame)
        elif expectation.answer == "cpp_event_response":
            self._flag("SE-PRICE-3.6-cpp-response", f"no CPPEventResponse for {what} "
                       f"(CPP event {expectation.extra.get('issuer_event_id')}, pending)", expectation.frame)
        elif expectation.answer == "report_event_status" and "expected" in expectation.extra:
            self._flag("SE-DRLC-2.12.11-cancel", f"no ReportEventStatus "
                       f"{_hexes(sorted(expectation.extra['expected']))} for {what} "
                       f"(event {expectation.extra['cancel_of']})", expectation.frame)
        elif expectation.answer == "report_event_status":
            self._flag("SE-DRLC-2.12.5-unanswered", f"no ReportEventStatus for {what}", expectation.frame)
        else:
            self._flag("SE-ZCL-2.5.12-missing", f"no Default Response for {what} (sent with DDR = 0)",
                       expectation.frame)

    def _prune(self) -> None:
        """Forget settled expectations beyond the last few hundred (TSNs wrap at 256)."""
        closed = [e for e in self._all_expectations() if e.closed]
        if len(closed) <= 1024:
            return
        drop = {id(e) for e in sorted(closed, key=lambda e: e.sent_loop)[: len(closed) - 512]}
        for key in list(self._expectations):
            kept = [e for e in self._expectations[key] if id(e) not in drop]
            if kept:
                self._expectations[key] = kept
            else:
                del self._expectations[key]

    def _loop_time(self) -> float:
        if self._monotonic is not None:
            return self._monotonic()
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:  # called outside a loop (a unit test feeding frames by hand)
            return time.monotonic()


def _command_name(cluster_id: int, header: foundation.ZCLHeader, general: bool, *, to_server: bool = False) -> str:
    if general:
        try:
            return foundation.GeneralCommand(header.command_id).name
        except ValueError:
            return f"general_0x{header.command_id:02X}"
    cls = SE_CLUSTERS.get(cluster_id)
    if cls is not None and not header.frame_control.is_manufacturer_specific:
        commands = cls.server_commands if to_server else cls.client_commands
        command = commands.get(header.command_id)
        if command is not None:
            return command.name
    manufacturer = " (manufacturer-specific)" if header.frame_control.is_manufacturer_specific else ""
    return f"command_0x{header.command_id:02X}{manufacturer}"


def _utc(value: int) -> str:
    at = codec.utc_time_to_datetime(value)
    return "invalid" if at is None else at.isoformat()


def _hex(value: int | None) -> str:
    return "not stated" if value is None else f"0x{value:04X}"


def _hexes(values: list[int]) -> str:
    return ", ".join(f"0x{v:02X}" for v in values) or "none"

