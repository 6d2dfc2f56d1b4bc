"""One session with one meter: frames in -> domain events out, answered as SE requires.

Every frame the meter sends is counted and parsed here with our own codec (zigpy's parse of
the same frame only feeds its attribute cache); a malformed one is counted and logged once
per kind of problem, a refused one gets the SE answer (Default Response, ReportEventStatus
"rejected"), and neither ever stops the link. Session setup follows SE §6.5 steps 7-10: bind,
read the meter's formatting and clock, configure reporting, then ask for the current price,
scheduled events and the last message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from zigpy.zcl import foundation

from ems.model import (
    EventRejected,
    EventStatus,
    EventStatusReport,
    FrameRejected,
    IntervalReading,
    MeterInfo,
    MeterRate,
    MeterReading,
)
from ems.tasks import TaskSet
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc, Messaging, Metering, Price
from integrations.zigbee.se.clusters.drlc import event_control
from integrations.zigbee_se import translate
from integrations.zigbee_se.translate import Formatting, Ignored, OutOfRange

_LOGGER = logging.getLogger(__name__)

TIME_CLUSTER = 0x000A
REQUEST_TIMEOUT_S = 8.0
PROFILE_PERIODS_S = {0: 86400, 1: 3600, 2: 1800, 3: 900, 4: 600, 5: 450, 6: 300, 7: 150, 8: 60}
FORMAT_ATTRIBUTES = ("unit_of_measure", "multiplier", "divisor", "summation_formatting",
                     "demand_formatting", "metering_device_type", "profile_interval_period")
UNITS = {0: "kWh", 1: "m3", 2: "ft3", 3: "ccf", 4: "US gal", 5: "IMP gal", 6: "BTU", 7: "l"}
DEVICE_TYPES = {0: "electric", 1: "gas", 2: "water", 3: "thermal"}
BACKFILL = timedelta(days=1)  # interval history read at link-up
MAX_PERIODS_PER_REQUEST = 24  # MaxNumberOfPeriodsDelivered default (§5.1 0x0500)
_READING_FIELDS = {
    0x0000: "summation_delivered_kwh",
    0x0001: "summation_received_kwh",
    0x0400: "demand_kw",
    0x0401: "current_day_delivered_kwh",
    0x0402: "current_day_received_kwh",
}


SE_CLUSTERS: dict[int, Any] = {c.cluster_id: c for c in (Metering, Price, Messaging, Drlc)}


@dataclass(frozen=True, slots=True)
class Frame:
    """A parsed frame from the meter: header, command name, fields by attribute access."""

    header: foundation.ZCLHeader
    command: str
    fields: SimpleNamespace
    is_general: bool

    @classmethod
    def parse(cls, cluster_cls: Any, data: bytes) -> Frame:
        header, name, fields = codec.parse_frame(cluster_cls, data)
        is_general = header.frame_control.frame_type == foundation.FrameType.GLOBAL_COMMAND
        return cls(header, name, SimpleNamespace(**fields), is_general)

    @property
    def attributes(self) -> dict[int, Any]:
        """Attribute id -> value of a Report Attributes / Read Attributes response."""
        records = getattr(self.fields, "attribute_reports", None) or getattr(self.fields, "status_records", None) or []
        values = {}
        for record in records:
            value = getattr(record, "value", None)
            if getattr(record, "status", foundation.Status.SUCCESS) != foundation.Status.SUCCESS:
                continue
            values[int(record.attrid)] = getattr(value, "value", value)
        return values


class MeterSession:
    """Frames from one meter endpoint -> bus; owns the replies and the profile poll."""

    def __init__(self, hub: Any, app: Any, device: Any, endpoint_id: int, meter_id: str) -> None:
        self._hub = hub
        self._app = app
        self.device = device
        self.endpoint = device.endpoints[endpoint_id]
        self.meter_id = meter_id
        self.formatting = Formatting()
        self.clock_offset = timedelta(0)
        self.last_frame_at: datetime | None = None
        self.failed: BaseException | None = None
        self.profile_period_s = 900
        self._known_prices: set[int] = set()
        self._logged_problems: set[str] = set()
        self._tasks = TaskSet(_LOGGER, meter_id)
        self._last_interval_end: datetime | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The meter's notion of now: the local clock corrected by the offset read at start."""
        return self._hub.clock() + self.clock_offset

    def cluster(self, cluster_cls: Any) -> Any:
        return self.endpoint.in_clusters[cluster_cls.cluster_id]

    async def start(self, report_interval_s: float) -> None:
        self._app.add_listener(self)
        self._unsubscribe = lambda: self._app.remove_listener(self)
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
        self.formatting = Formatting(multiplier, divisor)
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

    async def _sync_clock(self) -> None:
        """Take the meter's Time as the network time (SE §7.2: the ESI is the time master)."""
        if TIME_CLUSTER not in self.endpoint.in_clusters:
            return
        values = await self._read(TIME_CLUSTER, ("time", "time_status"))
        meter_time = codec.utc_time_to_datetime(int(values.get("time", 0xFFFFFFFF)))
        if meter_time is None:
            _LOGGER.warning("[%s] The meter's clock is not set; using the local clock", self.meter_id)
            return
        local = self._hub.clock()
        self.clock_offset = meter_time - local.replace(microsecond=0)
        if abs(self.clock_offset) > timedelta(seconds=2):
            _LOGGER.info("[%s] Meter clock differs from ours by %s; following the meter",
                         self.meter_id, self.clock_offset)
        else:
            self.clock_offset = timedelta(0)

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
        scale = translate.Formatting(int(values.get("threshold_multiplier") or self.formatting.multiplier),
                                     int(values.get("threshold_divisor") or self.formatting.divisor))
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
        now_raw = 0
        await self._send(Price, "get_current_price", command_options=0x01)
        await self._send(Drlc, "get_scheduled_events", start_time=now_raw, number_of_events=0)
        await self._send(Messaging, "get_last_message")

    async def _send(self, cluster_cls: Any, command: str, **fields: Any) -> None:
        if cluster_cls.cluster_id not in self.endpoint.in_clusters:
            return
        cluster = self.cluster(cluster_cls)
        command_id = getattr(cluster_cls.ServerCommandDefs, command).id
        await asyncio.wait_for(
            cluster.command(command_id, expect_reply=False, **fields), REQUEST_TIMEOUT_S
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
            await asyncio.sleep(min(self.profile_period_s, 60))

    async def backfill_intervals(self, horizon: timedelta = BACKFILL) -> int:
        """Page back through the meter's profile (§5.7: EndTime - n periods) up to ``horizon``."""
        newest = await self.fetch_intervals(MAX_PERIODS_PER_REQUEST)
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
                IntervalReading(self.meter_id, start, period_s, self.formatting.energy(int(raw)),
                                self.formatting.energy(gen_raw))
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
        """zigpy's raw-frame hook: called for every frame, before zigpy parses it."""
        if device is not self.device or dst_ep == 0 or src_ep == 0:
            return
        now = self.now()
        self.last_frame_at = self._hub.clock()
        counters = self._hub.state.counters
        counters["frames_received"] += 1
        cluster_cls = SE_CLUSTERS.get(cluster_id)
        if cluster_cls is None:
            return  # Basic, Time: zigpy's own request/response handling covers them
        try:
            frame = Frame.parse(cluster_cls, bytes(message))
        except codec.MalformedFrame as err:
            self._reject("malformed", str(err))
            return
        try:
            self._dispatch(cluster_cls, frame, now)
        except Ignored as err:
            _LOGGER.debug("[%s] Ignored: %s", self.meter_id, err)
        except OutOfRange as err:
            self._reject("rejected", f"{cluster_cls.__name__} {frame.command}: {err.reason}")
            self._answer_refusal(cluster_cls, frame, err)

    def _dispatch(self, cluster_cls: Any, frame: Frame, now: datetime) -> None:
        fields = frame.fields
        publish = self._hub.bus.publish
        if frame.is_general:
            if cluster_cls is Metering and frame.command == "Report_Attributes":
                self._on_metering_values(frame, now)
            return
        command = frame.command
        if cluster_cls is Price and command == "publish_price":
            signal = translate.price_signal(fields, self.meter_id, now)
            duplicate = signal.issuer_event_id in self._known_prices
            self._known_prices.add(signal.issuer_event_id)
            if translate.price_ack_required(fields):
                self._spawn(self._ack_price(fields, now), "price-ack")
            elif duplicate:
                self._default_response(cluster_cls, frame, foundation.Status.DUPLICATE_EXISTS)
                return
            else:
                self._default_response(cluster_cls, frame, foundation.Status.SUCCESS)
            if not duplicate:
                publish(signal)
        elif cluster_cls is Price and command == "publish_billing_period":
            publish(translate.billing_period(fields, self._rate(now), now))
            self._default_response(cluster_cls, frame, foundation.Status.SUCCESS)
        elif cluster_cls is Price and command == "publish_block_period":
            publish(translate.block_period(fields, self._rate(now), now))
            self._default_response(cluster_cls, frame, foundation.Status.SUCCESS)
        elif cluster_cls is Price and command == "publish_tier_labels":
            publish(translate.tier_labels(fields, self._rate(now), now))
            self._default_response(cluster_cls, frame, foundation.Status.SUCCESS)
        elif cluster_cls is Price and command == "publish_cpp_event":
            event = translate.critical_peak(fields, self.meter_id, now)
            publish(event)
            if event.authorization == "pending":  # the EMS takes part: accept (SE 1.2 CPPEventResponse)
                self._spawn(self._send(Price, "cpp_event_response", issuer_event_id=event.issuer_event_id,
                                       cpp_auth=1), "cpp-response")
        elif cluster_cls is Messaging and command in ("display_message", "display_protected_message"):
            publish(translate.utility_message(fields, self.meter_id, now))
            self._default_response(cluster_cls, frame, foundation.Status.SUCCESS)
        elif cluster_cls is Messaging and command == "cancel_message":
            publish(translate.message_cancelled(fields, self.meter_id, now))
            self._default_response(cluster_cls, frame, foundation.Status.SUCCESS)
        elif cluster_cls is Drlc and command == "load_control_event":
            # The DR core keeps the events: it drops one heard again (§2.12 item 4) and reports RECEIVED.
            publish(translate.load_control_event(fields, self.meter_id, now))
        elif cluster_cls is Drlc and command == "cancel_load_control_event":
            # Whether the event is known and the time fits it is the DR core's to judge (and report).
            publish(translate.event_cancellation(fields, self.meter_id, now))
        elif cluster_cls is Drlc and command == "cancel_all_load_control_events":
            publish(translate.cancel_all(fields, self.meter_id, now))
        else:
            self._default_response(cluster_cls, frame, foundation.Status.SUCCESS)

    def _on_metering_values(self, frame: Frame, now: datetime) -> None:
        values: dict[str, float] = {}
        for attrid, raw in frame.attributes.items():
            name = _READING_FIELDS.get(attrid)
            if name is None or raw is None:
                continue
            values[name] = self.formatting.energy(int(raw))
        if values:
            self._hub.bus.publish(MeterReading(self.meter_id, read_at=self._hub.clock(), **values))

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

    def _answer_refusal(self, cluster_cls: Any, frame: Frame, err: OutOfRange) -> None:
        if cluster_cls is Drlc and err.status is not None and hasattr(frame.fields, "issuer_event_id"):
            # The DR core authors the ReportEventStatus (so it is in the event's history too).
            self._hub.bus.publish(EventRejected(self.meter_id, int(frame.fields.issuer_event_id),
                                                EventStatus(int(err.status)),
                                                err.reason, self.now()))
        else:
            self._default_response(cluster_cls, frame, foundation.Status.FAILURE)

    def _default_response(self, cluster_cls: Any, frame: Frame, status: foundation.Status) -> None:
        if frame.header.frame_control.disable_default_response and status == foundation.Status.SUCCESS:
            return
        cluster = self.endpoint.in_clusters.get(cluster_cls.cluster_id)
        if cluster is None:
            return
        self._spawn(
            cluster.send_default_rsp(frame.header, status=status), "default-response"
        )

    async def _ack_price(self, fields: Any, now: datetime) -> None:
        """PriceAcknowledgement instead of a Default Response (§3.4)."""
        await self._send(
            Price,
            "price_acknowledgement",
            provider_id=int(fields.provider_id),
            issuer_event_id=int(fields.issuer_event_id),
            price_ack_time=codec.datetime_to_utc_time(now),
            control=int(fields.price_control),
        )

    # -- upstream ----------------------------------------------------------------------------

    async def report_event_status(self, report: EventStatusReport) -> None:
        def centi(value: float | None) -> int:
            return -0x8000 if value is None else round(value * 100)

        await self._send(
            Drlc,
            "report_event_status",
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

    async def confirm_message(self, message_id: int, at: datetime, answer: str | None) -> None:
        fields: dict[str, Any] = {
            "message_id": message_id,
            "confirmation_time": codec.datetime_to_utc_time(at.astimezone(UTC)),
        }
        if answer is not None:
            fields["message_confirmation_control"] = 0x02 if answer == "yes" else 0x01
        await self._send(Messaging, "message_confirmation", **fields)
