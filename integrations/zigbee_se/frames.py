"""One session with one meter: frames in -> domain events out, answered as SE requires.

Each frame from the meter is parsed once, by the SE library's cluster classes inside zigpy
(``Cluster.deserialize`` is ``integrations.zigbee.se.inbound.decode``), and handed to this
session as an ``InboundFrame``: the same struct zigpy matches to a pending request. The session
looks the frame's ``FrameKey`` (cluster, direction, command) up in ``HANDLERS``, a table of
typed parser (the command's schema struct), translator (``translate.py``, typed fields) and
reply policy:

* ``Reply.DEFAULT``: one Default Response with the real status, echoing the command's TSN
  (ZCL 2.5.12.2: SUCCESS only when DDR=0, an error always; never for a broadcast);
* ``Reply.CLUSTER``: a cluster response instead where the command asks for one
  (PriceAcknowledgement §3.4, CPPEventResponse), echoing the TSN;
* ``Reply.NONE``: the DR core's ReportEventStatus answers (it authors every status; the TSN of
  the frame the first report answers is kept here, keyed by issuer event id, and echoed).

zigpy sends no automatic Default Response for these clusters. A malformed frame is answered
0x80, an unknown command 0x81 (0x82 for a global one), a manufacturer-specific one 0x83, each
even with DDR=1; each is counted (FrameRejected "malformed" or "unknown") and logged once per
kind, and none ever stops the link. Session setup follows SE §6.5 steps 7-10: bind, read the
meter's formatting and clock (the ESI is the time master, §7.2: the hub's clock follows it),
configure reporting, then ask for the current price, scheduled events and the last message.
Nothing that needs the meter's multiplier and divisor is published before this session has read
them: a report heard earlier (the meter still reports from an earlier session) is held until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from zigpy.zcl import foundation

from ems.clock import FollowingClock
from ems.model import (
    CommissioningStage,
    CommissioningStep,
    Criticality,
    DeviceClass,
    EventRejected,
    EventStatus,
    EventStatusReport,
    FrameRejected,
    IntervalReading,
    MeterInfo,
    MeterRate,
    MeterReading,
    ScheduleListed,
    StorageChanged,
    UtilityConfiguration,
)
from ems.outbox import current_delivery
from ems.state import is_repeat
from ems.tasks import TaskSet
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc, Messaging, Metering, Price, install
from integrations.zigbee.se.clusters.drlc import event_control
from integrations.zigbee.se.commands import (
    CancelAllLoadControlEvents,
    CancelLoadControlEvent,
    CancelMessage,
    DisplayMessage,
    DisplayProtectedMessage,
    LoadControlEvent,
    PublishBillingPeriod,
    PublishBlockPeriod,
    PublishCppEvent,
    PublishPrice,
    PublishTierLabels,
    ReportAttributes,
)
from integrations.zigbee.se.inbound import FrameKey, InboundFrame, Problem
from integrations.zigbee_se import translate
from integrations.zigbee_se.translate import Formatting, Ignored, OutOfRange

_LOGGER = logging.getLogger(__name__)

UINT8_TYPE = 0x20
WriteAttributes = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Write_Attributes].schema
# The client attributes the utility configures through the meter (SE 1.x D.2.2.2, D.4.2.2; C6 3.1 step 15).
CONFIGURABLE = {
    int(Drlc.cluster_id): {0x0000: "enrollment_group", 0x0001: "start_randomization_min",
                           0x0002: "duration_randomization_min"},
    int(Price.cluster_id): {0x0000: "price_increase_randomize_min", 0x0001: "price_decrease_randomize_min"},
}

TIME_CLUSTER = 0x000A
REQUEST_TIMEOUT_S = 8.0
PROFILE_PERIODS_S = {0: 86400, 1: 3600, 2: 1800, 3: 900, 4: 600, 5: 450, 6: 300, 7: 150, 8: 60}
FORMAT_ATTRIBUTES = ("unit_of_measure", "multiplier", "divisor", "summation_formatting",
                     "demand_formatting", "metering_device_type", "profile_interval_period")
UNITS = {0: "kWh", 1: "m3", 2: "ft3", 3: "ccf", 4: "US gal", 5: "IMP gal", 6: "BTU", 7: "l"}
DEVICE_TYPES = {0: "electric", 1: "gas", 2: "water", 3: "thermal"}
BACKFILL = timedelta(days=1)  # interval history read at link-up
SCHEDULE_SETTLE_S = 5.0  # after GetScheduledEvents' Default Response, the events it lists have come
SCHEDULE_ASKS = 2  # the schedule is asked this many times at link-up, the lists joined
SCHEDULE_RETRY_FIRST_S = 15.0  # a schedule not answered is asked again after this (hub clock), doubling
SCHEDULE_RETRY_MAX_S = 300.0
MAX_PERIODS_PER_REQUEST = 24  # MaxNumberOfPeriodsDelivered default (§5.1 0x0500)
CLOCK_TOLERANCE = timedelta(seconds=2)  # UTCTime has 1 s steps; within this the clocks agree
MAX_HELD_REPORTS = 16  # reports heard before the formatting is known, kept until it is (the oldest go first)
_READING_FIELDS = {
    0x0000: "summation_delivered_kwh",
    0x0001: "summation_received_kwh",
    0x0400: "demand_kw",
    0x0401: "current_day_delivered_kwh",
    0x0402: "current_day_received_kwh",
}
_SUMMATIONS = frozenset({"summation_delivered_kwh", "summation_received_kwh"})
SE_CLUSTER_IDS = tuple(int(c.cluster_id) for c in (Metering, Price, Messaging, Drlc))
# The statuses that answer a LoadControlEvent (§2.12 items 3, 5) and a cancel (item 11).
_ANSWERS_EVENT = frozenset({EventStatus.RECEIVED, EventStatus.REJECTED, EventStatus.REJECTED_EXPIRED})
_ANSWERS_CANCEL = frozenset({EventStatus.REJECTED_INVALID_CANCEL, EventStatus.REJECTED_INVALID_CANCEL_TIME,
                             EventStatus.REJECTED_UNDEFINED_EVENT})


class Reply(enum.Enum):
    """How a command is answered (ZCL 2.5.12.2, SE §2.12, §3.4)."""

    NONE = "none"  # the DR core's ReportEventStatus answers it (or nothing does)
    DEFAULT = "default"  # a Default Response with the real status
    CLUSTER = "cluster"  # a cluster response where the command asks for one, else a Default Response


# What a translator returns: the status of the Default Response, or None when it was answered
# otherwise (a cluster response, a ReportEventStatus) or must not be answered.
Outcome = foundation.Status | None


@dataclass(frozen=True, slots=True)
class Handler:
    """One row of the table: the command's typed payload, its translator and its reply policy."""

    parser: type  # the zigpy schema struct ``inbound.decode`` builds (``se.commands``)
    translate: Callable[[MeterSession, Any, InboundFrame, datetime], Outcome]
    reply: Reply


@dataclass(frozen=True, slots=True)
class _Answered:
    """The TSN of a frame that a coming ReportEventStatus answers (SE: it echoes the TSN)."""

    tsn: int
    statuses: frozenset[EventStatus]
    payload: bytes = b""  # the command's payload, Start Time zeroed: the same again is a repeat
    start: int | None = None  # the Start Time it carried (0: "now"), None for a command without one


AwaitingReports = dict[tuple[str, int], _Answered]  # (event|cancel, issuer id) -> the answer owed


def _command_identity(payload: Any) -> tuple[bytes, int | None]:
    """A command's bytes with its Start Time zeroed, and that Start Time (None if it has none)."""
    if payload is None:
        return b"", None
    start = getattr(payload, "start_time", None)
    if start is None:
        return payload.serialize(), None
    return payload.replace(start_time=0).serialize(), int(start)


class RetryTsns:
    """The TSN an upstream report was first sent with, by the report's key, for its retries.

    The meter link keeps one across its sessions (a retry after a reconnect keeps its TSN too);
    it remembers the last ``size`` reports only (a retry follows its first try within minutes).
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._tsns: dict[tuple[Any, ...], int] = {}

    def get(self, key: tuple[Any, ...]) -> int | None:
        return self._tsns.get(key)

    def remember(self, key: tuple[Any, ...], tsn: int) -> int:
        self._tsns[key] = tsn
        while len(self._tsns) > self._size:
            del self._tsns[next(iter(self._tsns))]
        return tsn


class MeterSession:
    """Frames from one meter endpoint -> bus; owns the replies and the profile poll."""

    def __init__(self, hub: Any, app: Any, device: Any, endpoint_id: int, meter_id: str,
                 retry_tsns: RetryTsns | None = None, awaiting_reports: AwaitingReports | None = None) -> None:
        self._hub = hub
        # The TSN each upstream report went out with the first time (kept by the link across sessions).
        self.retry_tsns = retry_tsns if retry_tsns is not None else RetryTsns()
        self._app = app
        self.device = device
        self.endpoint = device.endpoints[endpoint_id]
        self.meter_id = meter_id
        # None until this session has read the meter's multiplier and divisor: nothing that needs
        # them is published before (a report in that gap is held, see ``_on_metering_values``).
        # Each session reads them again, so a meter that came back never gets a stale formatting.
        self.formatting: Formatting | None = None
        self._held_reports: list[tuple[ReportAttributes, datetime]] = []
        self._configured_said = False
        self._test_message_due = False  # a configuration was applied: the next message asking for a confirmation is the test
        self.dropped_reports = 0  # held reports dropped because too many waited for the formatting
        self.late_reports = 0  # reports dropped as older than one already heard (summations went back)
        self._last_summations: dict[str, float] = {}  # this session's: a new meter may start anew
        self.last_frame_at: datetime | None = None
        self.heard = asyncio.Event()  # set by every frame from the meter (the link's stale watch)
        self.profile_period_s = 900
        self._known_prices: set[int] = set()
        self._logged_problems: set[str] = set()
        self._tasks = TaskSet(_LOGGER, meter_id)
        self._last_interval_end: datetime | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # The TSNs the first reports owe, kept by the link across its sessions: a report whose
        # first delivery failed when the link dropped still echoes the command it answers.
        self._awaiting_report: AwaitingReports = {} if awaiting_reports is None else awaiting_reports
        self._clusters: list[Any] = []
        self._events_heard: set[int] = set()  # LoadControlEvent ids heard since the schedule was asked
        self._schedule_heard = asyncio.Event()  # the first GetScheduledEvents answer has settled (or failed)
        self.started_at = hub.clock()  # from when this session hears the meter: events before are the store's

    # -- lifecycle -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The appliance's one time: the hub's clock (which follows the meter's, §7.2)."""
        return self._hub.clock()

    @property
    def clock_offset(self) -> timedelta:
        """How far the meter's clock is from the local one (what the hub's clock follows)."""
        clock = self._hub.clock
        return clock.offset if isinstance(clock, FollowingClock) else timedelta(0)

    def cluster(self, cluster_cls: Any) -> Any:
        return self.endpoint.in_clusters[cluster_cls.cluster_id]

    async def start(self, report_interval_s: float) -> None:
        self._app.add_listener(self)
        stop_storage = self._hub.bus.listen(StorageChanged, self._on_storage_changed)

        def unsubscribe() -> None:
            self._app.remove_listener(self)
            stop_storage()

        self._unsubscribe = unsubscribe
        install(self.device)  # the SE library's clusters on the meter's device (quirks v2 style)
        for cluster_id in SE_CLUSTER_IDS:
            cluster = self.endpoint.in_clusters.get(cluster_id)
            if cluster is not None:
                cluster.attach(self)  # the one parse comes here; zigpy answers nothing itself
                self._clusters.append(cluster)
        for cluster_cls in (Metering, Price, Messaging, Drlc):
            if cluster_cls.cluster_id in self.endpoint.in_clusters:
                # The meter may refuse a binding; SE says carry on (§6.5 step 7).
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.cluster(cluster_cls).bind(), REQUEST_TIMEOUT_S)
        await self._read_formatting()
        await self._sync_clock()
        await self._read_rate()
        await self._configure_reporting(report_interval_s)
        await self._initial_sync()
        self._spawn(self._poll_profile(), "meter-profile-poll")

    async def stop(self) -> None:
        for cluster in self._clusters:
            cluster.attach(None)
        self._clusters.clear()
        if self._unsubscribe is not None:
            with contextlib.suppress(Exception):
                self._unsubscribe()
            self._unsubscribe = None
        await self._tasks.cancel_all()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.spawn(coro, name)

    # -- setup steps -----------------------------------------------------------------------

    async def _read(self, cluster_cls: Any, names: tuple[str, ...]) -> dict[str, Any]:
        cluster = self.endpoint.in_clusters[cluster_cls if isinstance(cluster_cls, int) else cluster_cls.cluster_id]
        success, _failure = await asyncio.wait_for(
            cluster.read_attributes(list(names), allow_cache=False), REQUEST_TIMEOUT_S
        )
        by_name = {}
        for key, value in success.items():
            name = key if isinstance(key, str) else cluster.find_attribute(key).name
            by_name[name] = value
        return by_name

    async def _read_formatting(self) -> None:
        values = await self._read(Metering, FORMAT_ATTRIBUTES)
        multiplier = int(values.get("multiplier") or 1)
        divisor = int(values.get("divisor") or 1)
        formatting = Formatting(multiplier, divisor)
        period = values.get("profile_interval_period")
        if period is not None and int(period) in PROFILE_PERIODS_S:
            self.profile_period_s = PROFILE_PERIODS_S[int(period)]
        summation = codec.decode_formatting(int(values.get("summation_formatting") or 0))
        demand = codec.decode_formatting(int(values.get("demand_formatting") or 0))
        self._hub.bus.publish(
            MeterInfo(
                meter_id=self.meter_id,
                ieee=str(self.device.ieee),
                endpoint=self.endpoint.endpoint_id,
                unit=UNITS.get(int(values.get("unit_of_measure") or 0) & 0x7F, "unknown"),
                multiplier=multiplier,
                divisor=divisor,
                summation_decimals=summation.right_digits,
                demand_decimals=demand.right_digits,
                device_type=DEVICE_TYPES.get(int(values.get("metering_device_type") or 0), "other"),
                discovered_at=self._hub.clock(),
            )
        )
        self.formatting = formatting
        held, self._held_reports = self._held_reports, []
        for fields, read_at in held:  # what the meter reported while the formatting was unknown
            self._publish_reading(fields, read_at, formatting)

    async def _sync_clock(self) -> None:
        """Take the meter's Time as the network time (SE §7.2: the ESI is the time master)."""
        if TIME_CLUSTER not in self.endpoint.in_clusters:
            return
        values = await self._read(TIME_CLUSTER, ("time", "time_status"))
        meter_time = codec.utc_time_to_datetime(int(values.get("time", 0xFFFFFFFF)))
        if meter_time is None:
            _LOGGER.warning("[%s] The meter's clock is not set; using the local clock", self.meter_id)
            return
        clock = self._hub.clock
        if not isinstance(clock, FollowingClock):
            # A clock the caller owns (a test's, the demo's simulated time) is not moved.
            difference = meter_time - clock().replace(microsecond=0)
            if abs(difference) > CLOCK_TOLERANCE:
                _LOGGER.info("[%s] Meter clock differs from ours by %s; the appliance's clock is fixed by its owner",
                             self.meter_id, difference)
            return
        offset = clock.follow(meter_time, CLOCK_TOLERANCE)
        if offset:
            _LOGGER.info("[%s] Meter clock differs from ours by %s; following the meter", self.meter_id, offset)

    async def _read_rate(self) -> None:
        """The rate as the meter's Price attributes describe it (§3.7); whatever it lacks is left out."""
        if Price.cluster_id not in self.endpoint.in_clusters:
            return
        names = tuple(f"tier{n}_price_label" for n in range(1, 16)) + tuple(
            f"block{n}_threshold" for n in range(1, 16)) + (
            "start_of_block_period", "block_period_duration", "threshold_multiplier", "threshold_divisor",
            "current_billing_period_start", "current_billing_period_duration")
        values: dict[str, Any] = {}
        for chunk in range(0, len(names), 8):  # keep each response within one frame
            with contextlib.suppress(Exception):
                values.update(await self._read(Price, names[chunk:chunk + 8]))
        labels = tuple(
            (n, bytes(values[f"tier{n}_price_label"]).decode("utf-8", "replace").strip("\x00 "))
            for n in range(1, 16) if values.get(f"tier{n}_price_label")
        )
        known = self.formatting or Formatting()
        scale = translate.Formatting(int(values.get("threshold_multiplier") or known.multiplier),
                                     int(values.get("threshold_divisor") or known.divisor))
        thresholds = tuple(scale.energy(int(values[f"block{n}_threshold"])) for n in range(1, 16)
                           if values.get(f"block{n}_threshold") is not None)

        def period(start_name: str, minutes_name: str) -> tuple[datetime | None, datetime | None]:
            start = codec.utc_time_to_datetime(int(values.get(start_name, 0xFFFFFFFF)))
            minutes = values.get(minutes_name)
            if start is None or minutes is None:
                return start, None
            return start, start + timedelta(minutes=int(minutes))

        block = period("start_of_block_period", "block_period_duration")
        billing = period("current_billing_period_start", "current_billing_period_duration")
        self._hub.bus.publish(MeterRate(self.meter_id, self._hub.clock(), labels, thresholds, *block, *billing))

    def _rate(self, now: datetime) -> MeterRate:
        return self._hub.state.meter_rates.get(self.meter_id) or MeterRate(self.meter_id, now)

    async def _configure_reporting(self, interval_s: float) -> None:
        metering = self.cluster(Metering)
        max_s = max(1, round(interval_s))
        for name in ("instantaneous_demand", "current_summ_delivered", "current_summ_received"):
            # Reporting may be refused (SE §6.5 step 10: "can be tried"); the profile poll
            # and the stale watchdog still work without it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(metering.configure_reporting(name, 0, max_s, 1), REQUEST_TIMEOUT_S)

    async def _initial_sync(self) -> None:
        await self._send(Price, "get_current_price", command_options=0x01)
        self._spawn(self._ask_schedule(), "meter-schedule")
        await self._send(Messaging, "get_last_message")

    async def _ask_schedule(self) -> None:
        """GetScheduledEvents (all of them): the meter sends each event again, or NOT_FOUND. Once its
        answer has settled (SCHEDULE_SETTLE_S of the hub's clock after the Default Response), say
        which it listed (ScheduleListed), so an event withdrawn while the link was down ends here too.
        It is asked twice and the lists joined: one lost resend must not end an event the meter still
        schedules. A meter that does not answer (frozen, or the frame lost) is asked again later, on
        the hub's clock with a growing pause: until it answers, an event it cancelled while nobody
        listened would hold the home's devices to its end. A meter that refuses the command says
        nothing of its schedule."""
        if Drlc.cluster_id not in self.endpoint.in_clusters:
            return
        listening_since = self.started_at
        pause_s = SCHEDULE_RETRY_FIRST_S
        try:
            while True:
                self._events_heard.clear()
                answered = True
                for _ in range(SCHEDULE_ASKS):
                    answered = await self._get_scheduled_events()
                    if answered is not True:
                        break
                    await self._hub.clock.sleep(SCHEDULE_SETTLE_S)
                    self._schedule_heard.set()
                if answered is True:
                    break
                self._schedule_heard.set()  # a status owed from before does not wait for it any longer
                if answered is None:
                    return  # refused: this meter keeps its schedule to itself
                _LOGGER.info("[%s] The meter did not answer GetScheduledEvents; asking again in %.0f s",
                             self.meter_id, pause_s)
                await self._hub.clock.sleep(pause_s)
                pause_s = min(pause_s * 2, SCHEDULE_RETRY_MAX_S)
        finally:
            self._schedule_heard.set()
        self._hub.bus.publish(ScheduleListed(self.meter_id, frozenset(self._events_heard), listening_since))

    async def _get_scheduled_events(self) -> bool | None:
        """Ask once: True when the meter answered SUCCESS or NOT_FOUND (its events follow as commands),
        False when no answer came, None when it refused the command."""
        command_id = Drlc.ServerCommandDefs.get_scheduled_events.id
        try:
            answer = await asyncio.wait_for(self.cluster(Drlc).command(
                command_id, start_time=0, number_of_events=0, expect_reply=True,
                disable_default_response=False), REQUEST_TIMEOUT_S)
        except Exception as err:  # noqa: BLE001 - no answer: nothing is concluded yet
            _LOGGER.debug("[%s] GetScheduledEvents not answered (%s)", self.meter_id, err)
            return False
        status = getattr(answer, "status", None)
        if status not in (foundation.Status.SUCCESS, foundation.Status.NOT_FOUND):
            _LOGGER.debug("[%s] GetScheduledEvents answered %s: the schedule is not compared", self.meter_id, status)
            return None
        return True

    async def _send(self, cluster_cls: Any, command: str, tsn: int | None = None, **fields: Any) -> None:
        """Send a client -> server command (frame control 0x01: DDR=0, digest §1.2); ``tsn`` echoes
        the command this one answers (None: a new sequence number)."""
        if cluster_cls.cluster_id not in self.endpoint.in_clusters:
            return
        cluster = self.cluster(cluster_cls)
        command_id = getattr(cluster_cls.ServerCommandDefs, command).id
        await asyncio.wait_for(
            cluster.command(command_id, expect_reply=False, disable_default_response=False, tsn=tsn, **fields),
            REQUEST_TIMEOUT_S,
        )

    # -- profile (interval data, "as read") -----------------------------------------------

    async def _poll_profile(self) -> None:
        try:
            await self.backfill_intervals()
        except Exception as err:  # noqa: BLE001 - logged; the poll below still runs
            self._log_once("profile", f"Reading the meter's interval history failed: {err}")
        while True:
            try:
                await self.fetch_intervals(4)
            except Exception as err:  # noqa: BLE001 - logged, retried
                self._log_once("profile", f"GetProfile failed: {err}")
            # A minute of the hub's clock, waited in real time: on a demo running N times faster the
            # profile is polled N times as often, so no interval closes unread (a real wait otherwise).
            await asyncio.sleep(self._hub.clock.real_seconds(min(self.profile_period_s, 60)))

    def _on_storage_changed(self, change: StorageChanged) -> None:
        """The database takes writes again after an outage: intervals dropped meanwhile (beyond
        what the writer could hold) are read again from the meter's profile now, not at the next
        reconnect; the store ignores those it already holds."""
        if change.problem is None and self.formatting is not None:
            self._spawn(self._reread_after_outage(), "meter-profile-reread")

    async def _reread_after_outage(self) -> None:
        try:
            count = await self.backfill_intervals(again=True)
        except Exception as err:  # noqa: BLE001 - logged; the regular poll goes on
            self._log_once("profile", f"Reading the meter's interval history again failed: {err}")
            return
        _LOGGER.info("[%s] Read %d intervals of the meter's history again after the storage outage",
                     self.meter_id, count)

    async def backfill_intervals(self, horizon: timedelta = BACKFILL, again: bool = False) -> int:
        """Page back through the meter's profile (§5.7: EndTime - n periods) up to ``horizon``;
        ``again``: publish the newest page too, though this session published it already."""
        newest = await self.fetch_intervals(MAX_PERIODS_PER_REQUEST, publish_older=again)
        if not newest:
            return 0
        count, oldest = len(newest), newest[0].start
        stop_at = self._hub.clock() - horizon
        while oldest > stop_at:
            page = await self.fetch_intervals(MAX_PERIODS_PER_REQUEST, end=oldest, publish_older=True)
            if not page:
                break
            count += len(page)
            oldest = page[0].start
        return count

    async def fetch_intervals(self, periods: int, end: datetime | None = None,
                              publish_older: bool = False) -> list[IntervalReading]:
        """Read up to ``periods`` completed intervals ending at ``end`` (None: the newest)."""
        formatting = self.formatting
        if formatting is None:  # the raw values cannot be scaled yet: publish nothing
            _LOGGER.debug("[%s] Profile not read: the meter's formatting is not known yet", self.meter_id)
            return []
        end_raw = 0 if end is None else codec.datetime_to_utc_time(end)
        delivered = await self._get_profile(0, periods, end_raw)
        received = await self._get_profile(1, periods, end_raw)
        if delivered is None:
            return []
        end, period_s, consumed = delivered
        generated = received[2] if received is not None and received[0] == end else []
        readings = []
        for i, raw in enumerate(consumed):  # most recent first (§5.7)
            if int(raw) == 0xFFFFFF:
                continue  # an invalid interval stays a gap
            start = end - timedelta(seconds=period_s * (i + 1))
            gen_raw = int(generated[i]) if i < len(generated) and int(generated[i]) != 0xFFFFFF else 0
            readings.append(
                IntervalReading(self.meter_id, start, period_s, formatting.energy(int(raw)),
                                formatting.energy(gen_raw))
            )
        readings.sort(key=lambda r: r.start)
        if publish_older:
            new = readings  # an older page: the store ignores intervals it already holds
        else:
            new = [r for r in readings if self._last_interval_end is None or r.end > self._last_interval_end]
            if new:
                self._last_interval_end = new[-1].end
        for reading in new:
            self._hub.bus.publish(reading)
        return new

    async def _get_profile(self, channel: int, periods: int, end_raw: int = 0) -> tuple[datetime, int, list[int]] | None:
        metering = self.cluster(Metering)
        command_id = Metering.ServerCommandDefs.get_profile.id
        response = await asyncio.wait_for(
            metering.command(command_id, interval_channel=channel, end_time=end_raw, number_of_periods=periods),
            REQUEST_TIMEOUT_S,
        )
        if int(response.status) != 0:
            return None
        end = codec.utc_time_to_datetime(int(response.end_time))
        if end is None:
            return None
        period_s = PROFILE_PERIODS_S.get(int(response.profile_interval_period), self.profile_period_s)
        return end, period_s, list(response.intervals)

    # -- frames from the meter ---------------------------------------------------------------

    def handle_message(self, device: Any, profile: int, cluster_id: int, src_ep: int, dst_ep: int,
                       message: bytes) -> None:
        """zigpy's raw-frame hook, for every frame before zigpy parses it: counts it (no parse here)."""
        if device is not self.device or dst_ep == 0 or src_ep == 0:
            return
        self.last_frame_at = self._hub.clock()
        self.heard.set()
        self._hub.outbox.peer_heard(self.meter_id)  # a delivery that failed meanwhile goes out now
        self._hub.state.counters["frames_received"] += 1

    def frame_received(self, frame: InboundFrame) -> None:
        """An SE frame from the meter, parsed once by its cluster (``FrameSink``); never raises."""
        try:
            self._on_frame(frame, self.now())
        except Exception:  # noqa: BLE001 - a bug in one handler must not reach zigpy or stop the link
            _LOGGER.exception("[%s] Handling %s failed", self.meter_id, frame.name or frame.reason)

    def _on_frame(self, frame: InboundFrame, now: datetime) -> None:
        if frame.problem is not None:
            self._reject("malformed" if frame.problem is Problem.MALFORMED else "unknown", frame.reason)
            self._answer(frame, frame.problem_status)  # even with DDR=1 (an error status)
            return
        handler = HANDLERS.get(frame.key) if frame.key is not None else None
        if handler is None:
            if not frame.is_general:
                self._answer(frame, foundation.Status.SUCCESS)  # a known command the EMS has no use for
            return  # a response, or a global command zigpy answered (Read Attributes)
        try:
            outcome = handler.translate(self, frame.payload, frame, now)
        except Ignored as err:
            _LOGGER.debug("[%s] Ignored: %s", self.meter_id, err)
            return
        except OutOfRange as err:
            self._reject("rejected", f"{type(self.endpoint.in_clusters.get(frame.cluster_id)).__name__}"
                                     f" {frame.name}: {err.reason}")
            outcome = self._refuse(handler, frame, err, now)
        if outcome is not None:
            self._answer(frame, outcome)

    def _refuse(self, handler: Handler, frame: InboundFrame, err: OutOfRange, now: datetime) -> Outcome:
        """A refused command: a DRLC one gets the DR core's ReportEventStatus, any other FAILURE."""
        fields = frame.payload
        if handler.reply is not Reply.NONE or err.status is None:
            return foundation.Status.FAILURE
        event_id = int(fields.issuer_event_id)
        status = EventStatus(int(err.status))
        criticality, randomize_start, randomize_end = None, False, False
        # Whom the frame addresses: the DR core answers a refusal only if it is for this client.
        device_class = DeviceClass(int(fields.device_class) & 0x0FFF) if hasattr(fields, "device_class") else None
        enrollment_group = int(fields.utility_enrollment_group) if hasattr(fields, "utility_enrollment_group") else None
        if isinstance(fields, LoadControlEvent):
            self._expect_report("event", event_id, frame)
            level = int(fields.criticality_level)
            criticality = Criticality(level) if 0 < level <= 0x0F else None
            control = int(fields.event_control)
            randomize_start, randomize_end = bool(control & 0x01), bool(control & 0x02)
        else:
            self._expect_report("cancel", event_id, frame)
        # The DR core authors the ReportEventStatus (so it is in the event's history too).
        self._hub.bus.publish(EventRejected(self.meter_id, event_id, status, err.reason, now,
                                            criticality, randomize_start, randomize_end,
                                            device_class, enrollment_group))
        return None

    # -- the utility's configuration (C6 3.1 steps 14-17) -------------------------------------

    def _on_configuration(self, fields: Any, frame: InboundFrame, now: datetime) -> Outcome:
        """Write Attributes to our DRLC or Price client: apply what we know, answer each record (ZCL 2.5.4)."""
        known = CONFIGURABLE[frame.cluster_id]
        values: dict[str, int] = {}
        failed: list[foundation.WriteAttributesStatusRecord] = []
        for record in fields.attributes:
            name = known.get(int(record.attrid))
            value = getattr(record.value, "value", None)
            if name is None:
                failed.append(foundation.WriteAttributesStatusRecord(foundation.Status.UNSUPPORTED_ATTRIBUTE,
                                                                     record.attrid))
                continue
            if int(record.value.type) != UINT8_TYPE or not isinstance(value, int):  # each is a uint8 (ZCL 2.5.3.3)
                failed.append(foundation.WriteAttributesStatusRecord(foundation.Status.INVALID_DATA_TYPE,
                                                                     record.attrid))
                continue
            if name.endswith("_min") and int(value) > 60:  # SE: randomisation of at most 60 minutes
                failed.append(foundation.WriteAttributesStatusRecord(foundation.Status.INVALID_VALUE, record.attrid))
                continue
            values[name] = int(value)
        if not failed:  # ZCL 2.5.4.1: one SUCCESS record when every attribute was written
            failed = [foundation.WriteAttributesStatusRecord(foundation.Status.SUCCESS)]
        if values:
            self._hub.bus.publish(UtilityConfiguration(self.meter_id, now, **values))
            self._test_message_due = True  # the utility's test message comes next (step 15)
            _LOGGER.info("[%s] The utility's configuration applied: %s", self.meter_id,
                         ", ".join(f"{k}={v}" for k, v in sorted(values.items())))
            if not self._configured_said:  # the DRLC and the Price settings come in one write each
                self._configured_said = True
                self._hub.bus.publish(CommissioningStage(
                    self.meter_id, CommissioningStep.CONFIGURED, now, "the utility's program settings arrived and were applied"))
        if frame.header is not None and not frame.broadcast:
            cluster = self.endpoint.in_clusters.get(frame.cluster_id)
            if cluster is not None:
                self._spawn(self._write_response(cluster, frame.header, failed), "write-attributes-response")
        return None

    async def _write_response(self, cluster: Any, header: foundation.ZCLHeader,
                              records: list[foundation.WriteAttributesStatusRecord]) -> None:
        await asyncio.wait_for(cluster.general_command(
            foundation.GeneralCommand.Write_Attributes_rsp, records, tsn=header.tsn,
            disable_default_response=True), REQUEST_TIMEOUT_S)

    async def _confirm_test_message(self, message_id: int) -> None:
        """Step 16: the EMS confirms receipt of the utility's test message itself; then it is configured."""
        from ems import messages

        await messages.confirm(self._hub, self.meter_id, message_id)
        self._hub.bus.publish(CommissioningStage(
            self.meter_id, CommissioningStep.CONFIGURED, self._hub.clock(),
            "the utility's test message arrived; its receipt was confirmed to the utility"))

    # -- translators (the table's rows; typed payloads) ---------------------------------------

    def _on_price(self, fields: PublishPrice, frame: InboundFrame, now: datetime) -> Outcome:
        signal = translate.price_signal(fields, self.meter_id, now)
        duplicate = signal.issuer_event_id in self._known_prices
        self._known_prices.add(signal.issuer_event_id)
        if not duplicate:
            self._hub.bus.publish(signal)
        if translate.price_ack_required(fields):  # PriceAcknowledgement instead of a Default Response
            self._spawn(self._ack_price(fields, frame, now), "price-ack")
            return None
        return foundation.Status.DUPLICATE_EXISTS if duplicate else foundation.Status.SUCCESS  # §3.10 item 3

    def _on_billing_period(self, fields: PublishBillingPeriod, frame: InboundFrame, now: datetime) -> Outcome:
        self._hub.bus.publish(translate.billing_period(fields, self._rate(now), now))
        return foundation.Status.SUCCESS

    def _on_block_period(self, fields: PublishBlockPeriod, frame: InboundFrame, now: datetime) -> Outcome:
        self._hub.bus.publish(translate.block_period(fields, self._rate(now), now))
        return foundation.Status.SUCCESS

    def _on_tier_labels(self, fields: PublishTierLabels, frame: InboundFrame, now: datetime) -> Outcome:
        self._hub.bus.publish(translate.tier_labels(fields, self._rate(now), now))
        return foundation.Status.SUCCESS

    def _on_cpp_event(self, fields: PublishCppEvent, frame: InboundFrame, now: datetime) -> Outcome:
        event = translate.critical_peak(fields, self.meter_id, now)
        self._hub.bus.publish(event)
        if event.authorization != "pending":
            return foundation.Status.SUCCESS
        # The EMS takes part: accept (SE 1.2 CPPEventResponse, which answers it, echoing the TSN).
        self._spawn(self._send(Price, "cpp_event_response", tsn=frame.tsn, issuer_event_id=event.issuer_event_id,
                               cpp_auth=1), "cpp-response")
        return None

    def _on_message(self, fields: DisplayMessage | DisplayProtectedMessage, frame: InboundFrame,
                    now: datetime) -> Outcome:
        message = translate.utility_message(fields, self.meter_id, now)
        known = self._hub.state.messages.get((message.meter_id, message.message_id))
        if known is not None and is_repeat(known.message, message):
            # The meter sent it again (GetLastMessage's answer at each reconnect): nothing new to show
            # or ask; the customer's confirmation and read mark stay.
            _LOGGER.debug("[%s] Message %d heard again", self.meter_id, message.message_id)
            return foundation.Status.SUCCESS
        self._hub.bus.publish(message)
        if self._test_message_due and message.confirmation_required:
            self._test_message_due = False
            self._spawn(self._confirm_test_message(message.message_id), "test-message-confirmation")
        return foundation.Status.SUCCESS

    def _on_message_cancelled(self, fields: CancelMessage, frame: InboundFrame, now: datetime) -> Outcome:
        self._hub.bus.publish(translate.message_cancelled(fields, self.meter_id, now))
        return foundation.Status.SUCCESS

    def _on_event(self, fields: LoadControlEvent, frame: InboundFrame, now: datetime) -> Outcome:
        # The DR core keeps the events: it drops one heard again (§2.12 item 4) and reports RECEIVED,
        # which answers this frame (item 5: echoing its TSN).
        event = translate.load_control_event(fields, self.meter_id, now)
        self._events_heard.add(event.issuer_event_id)
        self._expect_report("event", event.issuer_event_id, frame)
        self._hub.bus.publish(event)
        return None

    def _on_event_cancelled(self, fields: CancelLoadControlEvent, frame: InboundFrame, now: datetime) -> Outcome:
        # Whether the event is known and the time fits it is the DR core's to judge (and report).
        self._expect_report("cancel", int(fields.issuer_event_id), frame)
        self._hub.bus.publish(translate.event_cancellation(fields, self.meter_id, now))
        return None

    def _on_cancel_all(self, fields: CancelAllLoadControlEvents, frame: InboundFrame, now: datetime) -> Outcome:
        self._hub.bus.publish(translate.cancel_all(fields, self.meter_id, now))
        # One status report per live event follows (§2.12 item 12), but they answer the events, not this
        # frame (there may be none): the command itself gets its Default Response.
        return foundation.Status.SUCCESS

    def _on_metering_values(self, fields: ReportAttributes, frame: InboundFrame, now: datetime) -> Outcome:
        for record in fields.attribute_reports:  # a reading must be a number before it is held or scaled
            raw = getattr(record.value, "value", None)
            if int(record.attrid) in _READING_FIELDS and raw is not None and (
                    not isinstance(raw, int) or isinstance(raw, bool)):
                raise OutOfRange(f"attribute 0x{int(record.attrid):04X} reported as {type(raw).__name__},"
                                 " expected an integer")
        if self.formatting is None:
            # Heard before this session read the multiplier and divisor (a meter that still reports
            # from an earlier session, right after the bind): held, published once they are read.
            self._held_reports.append((fields, now))
            if len(self._held_reports) > MAX_HELD_REPORTS:
                del self._held_reports[0]
                self.dropped_reports += 1
                _LOGGER.debug("[%s] A report held for the formatting was dropped (%d so far)",
                              self.meter_id, self.dropped_reports)
            return foundation.Status.SUCCESS
        self._publish_reading(fields, now, self.formatting)
        return foundation.Status.SUCCESS

    def _publish_reading(self, fields: ReportAttributes, read_at: datetime, formatting: Formatting) -> None:
        values: dict[str, float] = {}
        for record in fields.attribute_reports:
            name = _READING_FIELDS.get(int(record.attrid))
            raw = getattr(record.value, "value", None)
            if name is None or raw is None:
                continue
            values[name] = formatting.energy(int(raw))
        registers = {k: v for k, v in values.items() if k in _SUMMATIONS}
        if any(v < self._last_summations.get(k, v) for k, v in registers.items()):
            # A summation only grows: a report below the last one heard is an older report that came
            # late (a frame the air delayed or repeated), not news; its demand is as old.
            self.late_reports += 1
            _LOGGER.debug("[%s] A report older than the last one heard came late: dropped (%s)", self.meter_id, values)
            return
        self._last_summations.update(registers)
        if values:
            self._hub.bus.publish(MeterReading(self.meter_id, read_at=read_at, **values))

    # -- answers ---------------------------------------------------------------------------

    def _reject(self, kind: str, reason: str) -> None:
        self._hub.bus.publish(FrameRejected(self.meter_id, reason, kind, self._hub.clock()))
        self._log_once(reason.split(":")[0] + kind, f"{kind.capitalize()} frame from the meter: {reason}")

    def _log_once(self, key: str, text: str) -> None:
        if key in self._logged_problems:
            _LOGGER.debug("[%s] %s", self.meter_id, text)
            return
        self._logged_problems.add(key)
        _LOGGER.warning("[%s] %s (further ones are logged at debug level)", self.meter_id, text)

    def _answer(self, frame: InboundFrame, status: foundation.Status | None) -> None:
        """The one Default Response a command gets, if ZCL 2.5.12.2 asks for one."""
        header = frame.header
        if status is None or header is None or frame.broadcast:
            return
        if frame.is_general and header.command_id == foundation.GeneralCommand.Default_Response:
            return  # a Default Response is never answered
        if status == foundation.Status.SUCCESS and frame.default_response_disabled:
            return
        cluster = self.endpoint.in_clusters.get(frame.cluster_id)
        if cluster is None:
            return
        self._spawn(self._default_response(cluster, header, status), "default-response")

    async def _default_response(self, cluster: Any, header: foundation.ZCLHeader, status: foundation.Status) -> None:
        await asyncio.wait_for(cluster.general_command(
            foundation.GeneralCommand.Default_Response, header.command_id, status, tsn=header.tsn,
            disable_default_response=True), REQUEST_TIMEOUT_S)

    async def _ack_price(self, fields: PublishPrice, frame: InboundFrame, now: datetime) -> None:
        """PriceAcknowledgement instead of a Default Response, echoing the TSN (§3.4)."""
        await self._send(
            Price,
            "price_acknowledgement",
            tsn=frame.tsn,
            provider_id=int(fields.provider_id),
            issuer_event_id=int(fields.issuer_event_id),
            price_ack_time=codec.datetime_to_utc_time(now),
            control=int(fields.price_control),
        )

    def _expect_report(self, kind: str, event_id: int, frame: InboundFrame) -> None:
        """Remember the TSN the first report answering ``frame`` echoes. The same command again before
        that report went out (a GetScheduledEvents answer, a resend) is a repeat the DR core ignores:
        the first frame's TSN stays. A resend of an event sent to start "now" (Start Time 0) carries
        the start the meter resolved it to, and is the same command. Other bytes under the id are a
        new command (a reused id)."""
        if frame.tsn is None:
            return
        payload, start = _command_identity(frame.payload)
        waiting = self._awaiting_report.get((kind, event_id))
        if waiting is not None and waiting.payload == payload and (
                waiting.start == start or 0 in (waiting.start, start)):
            return
        self._awaiting_report[(kind, event_id)] = _Answered(
            frame.tsn, _ANSWERS_EVENT if kind == "event" else _ANSWERS_CANCEL, payload, start)

    def _answered(self, event_id: int, status: EventStatus) -> tuple[str, int] | None:
        """The (kind, issuer id) of the frame this report is the first answer to (None: it answers none)."""
        for kind in ("event", "cancel"):
            awaiting = self._awaiting_report.get((kind, event_id))
            if awaiting is not None and status in awaiting.statuses:
                return kind, event_id
        return None

    # -- upstream ----------------------------------------------------------------------------

    async def report_event_status(self, report: EventStatusReport) -> None:
        def centi(value: float | None) -> int:
            return -0x8000 if value is None else round(value * 100)

        # The echoed TSN is forgotten only once the answer went out: a failed delivery that the
        # outbox retries (in this session or the next) still answers the same command.
        answered = self._answered(report.issuer_event_id, report.status)
        if answered is None and report.status in _ANSWERS_EVENT and not self._schedule_heard.is_set():
            # A first answer owed from before a restart: the meter's schedule, asked at link-up, sends
            # the event again; the answer echoes that resend (waiting a little for it).
            deadline = asyncio.get_running_loop().time() + REQUEST_TIMEOUT_S
            while answered is None and not self._schedule_heard.is_set() \
                    and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)  # until the resend is heard, or the schedule has settled
                answered = self._answered(report.issuer_event_id, report.status)
        tsn = await self._retry_tsn(None if answered is None else self._awaiting_report[answered].tsn)
        await self._send(
            Drlc,
            "report_event_status",
            tsn=tsn,
            issuer_event_id=report.issuer_event_id,
            event_status=int(report.status),
            event_status_time=codec.datetime_to_utc_time(report.at),
            criticality_level_applied=report.criticality_applied,
            cooling_temperature_set_point_applied=centi(report.cooling_setpoint_applied_c),
            heating_temperature_set_point_applied=centi(report.heating_setpoint_applied_c),
            average_load_adjustment_percentage_applied=-128
            if report.average_load_adjustment_applied_pct is None
            else report.average_load_adjustment_applied_pct,
            duty_cycle_applied=0xFF if report.duty_cycle_applied_pct is None else report.duty_cycle_applied_pct,
            event_control=event_control(report.randomize_start, report.randomize_end),
            signature_type=0,
            signature=[0xFF] * 42,
        )
        if answered is not None:
            self._awaiting_report.pop(answered, None)

    async def confirm_message(self, message_id: int, at: datetime, answer: str | None) -> None:
        fields: dict[str, Any] = {
            "message_id": message_id,
            "confirmation_time": codec.datetime_to_utc_time(at.astimezone(UTC)),
        }
        if answer is not None:
            fields["message_confirmation_control"] = 0x02 if answer == "yes" else 0x01
        # A retry (the outbox's, after a send that timed out but may have arrived) keeps the first
        # try's TSN, so the meter can tell it from a second confirmation (finding 3b).
        key = ("message_confirmation", message_id, fields["confirmation_time"])
        tsn = self.retry_tsns.get(key)
        if tsn is None:
            tsn = self.retry_tsns.remember(key, await self._retry_tsn(None))
        await self._send(Messaging, "message_confirmation", tsn=tsn, **fields)

    async def _retry_tsn(self, first: int | None) -> int:
        """The TSN an upstream report goes out under: its first attempt's, kept by the outbox (so a
        retry, also after a power loss, is one the meter can recognise), else ``first`` (an echo) or
        a new one, made durable before the frame leaves."""
        delivery = current_delivery()
        if first is None and delivery is not None and delivery.wire_id is not None:
            return delivery.wire_id
        tsn = first if first is not None else self.device.get_sequence()  # an echo owed comes first
        if delivery is not None and delivery.wire_id != tsn:
            await delivery.remember(tsn)
        return tsn


def _server_to_client(cluster: Any, command: str) -> FrameKey:
    return FrameKey(int(cluster.cluster_id), foundation.Direction.Server_to_Client,
                    int(getattr(cluster.ClientCommandDefs, command).id))


_S = MeterSession
HANDLERS: Mapping[FrameKey, Handler] = {
    _server_to_client(Price, "publish_price"): Handler(PublishPrice, _S._on_price, Reply.CLUSTER),
    _server_to_client(Price, "publish_block_period"): Handler(PublishBlockPeriod, _S._on_block_period, Reply.DEFAULT),
    _server_to_client(Price, "publish_tier_labels"): Handler(PublishTierLabels, _S._on_tier_labels, Reply.DEFAULT),
    _server_to_client(Price, "publish_billing_period"): Handler(PublishBillingPeriod, _S._on_billing_period,
                                                                Reply.DEFAULT),
    _server_to_client(Price, "publish_cpp_event"): Handler(PublishCppEvent, _S._on_cpp_event, Reply.CLUSTER),
    _server_to_client(Messaging, "display_message"): Handler(DisplayMessage, _S._on_message, Reply.DEFAULT),
    _server_to_client(Messaging, "display_protected_message"): Handler(DisplayProtectedMessage, _S._on_message,
                                                                       Reply.DEFAULT),
    _server_to_client(Messaging, "cancel_message"): Handler(CancelMessage, _S._on_message_cancelled, Reply.DEFAULT),
    _server_to_client(Drlc, "load_control_event"): Handler(LoadControlEvent, _S._on_event, Reply.NONE),
    _server_to_client(Drlc, "cancel_load_control_event"): Handler(CancelLoadControlEvent, _S._on_event_cancelled,
                                                                  Reply.NONE),
    _server_to_client(Drlc, "cancel_all_load_control_events"): Handler(CancelAllLoadControlEvents,
                                                                       _S._on_cancel_all, Reply.DEFAULT),
    FrameKey(int(Metering.cluster_id), foundation.Direction.Server_to_Client,
             int(foundation.GeneralCommand.Report_Attributes), general=True):
        Handler(ReportAttributes, _S._on_metering_values, Reply.DEFAULT),
    **{FrameKey(cluster_id, foundation.Direction.Server_to_Client, int(foundation.GeneralCommand.Write_Attributes),
                general=True): Handler(WriteAttributes, _S._on_configuration, Reply.NONE)
       for cluster_id in CONFIGURABLE},
}
