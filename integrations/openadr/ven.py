"""The VEN: openleadr's ``OpenADRClient`` wired to the hub's bus, DR core and outbox.

Events in. Each interval of an OpenADR event that asks something (``signals.asks``) is published as
a ``LoadControlEvent`` of the program (``meter_id`` is the program id), so the DR core keeps its
life, the customer's rules follow it and the arbiter and dispatcher carry it out as they do the
meter's. A modified event (new modification number) cancels the intervals of its earlier version;
a cancelled event cancels them all.

Overlap with the meter's events: both run. The DR core supersedes overlapping events only within one
source (a meter, a program: SE §2.12 item 6), and the rules follow the active events strongest
first (highest criticality, then the later start), so per device the stronger ask wins in the
arbiter and the other loses with its reason shown on the Devices page.

Opt state out. The answer to an event (``oadrCreatedEvent``) is optIn when the DR core keeps the
event (it addresses a device here) and the customer has not opted out of it, else optOut. When the
customer opts out or back in later (the dashboard, MQTT, a device changed by hand while the event
runs), the DR core reports OPTED_OUT / OPTED_IN; that report reaches the VTN through the outbox as a
new ``oadrCreatedEvent`` with the new optType (2.0b lets a VEN change its answer at any time) and an
``oadrCreateOpt`` (EiOpt) for the event with reason ``overrideStatus`` and the override's time
(openLEADR issue 128). A device taken out of (or put back in) the event goes as an oadrCreateOpt
for that device's resource only (the event's own answer stays). openleadr's VEN can send
oadrCreateOpt; its VTN mounts no EiOpt service, so a VTN that does not acknowledge the whole
event's opt is logged once and the oadrCreatedEvent stands alone (a device's EiOpt waits in the
outbox until a VTN takes it).

Reports out. The VEN offers TELEMETRY_USAGE (the meter's demand in kW and energy delivered in kWh)
and TELEMETRY_STATUS (per device: power, on/off, state of charge, indoor temperature, and the
customer's override: 1 from the override's time while an opt-out holds, else 0). openleadr samples
them at the granularity and sends them at the report-back duration the VTN asks; each report, once
complete, is put in the durable outbox and delivered from there with an ``eiReportID`` and request
id fixed by its outbox row, so a report sent again after a crash is the same report to the VTN, and
a report not yet sent survives a restart.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from openleadr import OpenADRClient, enums

from ems.errors import NotReady
from ems.model import (
    Criticality,
    DeviceClass,
    DeviceInfo,
    EventCancellation,
    EventParticipationChanged,
    EventPhase,
    EventStatus,
    EventStatusReport,
    LoadControlEvent,
)
from ems.outbox import current_delivery
from ems.tasks import TaskSet
from integrations.openadr import signals

_LOGGER = logging.getLogger(__name__)

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 300.0
REREGISTER_DEBOUNCE_S = 1.0
SAMPLING_MIN = timedelta(seconds=1)
SAMPLING_MAX = timedelta(hours=1)
STATUS_FIELDS = ("power_kw", "on", "soc_pct", "indoor_c")


@dataclass(frozen=True, slots=True)
class ReportSample:
    r_id: str
    at: datetime
    value: float
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class OpenAdrReport:
    """One complete oadrReport waiting in the outbox for the VTN (the program's route)."""

    meter_id: str  # the program id: the outbox route of this program's channel
    report_request_id: str
    report_specifier_id: str
    report_name: str
    created_at: datetime
    samples: tuple[ReportSample, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceOpt:
    """The customer took one device out of a program's event (or put it back): an EiOpt for that resource."""

    meter_id: str  # the program id
    issuer_event_id: int
    device_id: str
    opted_out: bool
    at: datetime


@dataclass(slots=True)
class _Known:
    modification_number: int
    issuer_ids: tuple[int, ...]


class _Client(OpenADRClient):  # type: ignore[misc]
    """openleadr's VEN with its report queue drained into the outbox, and the poll interval ours."""

    def __init__(self, *, on_report: Callable[[Any], Any], poll_interval_s: float | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_report_ready = on_report
        self._poll_interval_s = poll_interval_s
        self._samplings: dict[str, int] = {}  # report request id -> samplings in the report being built

    async def create_party_registration(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().create_party_registration(*args, **kwargs)
        if self.registration_id and self._poll_interval_s is not None:
            self.poll_frequency = timedelta(seconds=self._poll_interval_s)
        return result

    async def _report_queue_worker(self) -> None:
        while True:
            report = await self.pending_reports.get()
            try:
                await self._on_report_ready(report)
            except Exception:
                _LOGGER.exception("A report of the VTN's request %s could not be queued", report.report_request_id)

    async def update_report(self, report_request_id: str) -> None:
        """openleadr holds a report until it has one value per r_id per sampling; a value that is not
        known (a device that does not report a state of charge, no demand heard yet) would hold it
        for ever. Here it goes once the report-back duration's samplings are done, with what they found."""
        await super().update_report(report_request_id)
        if report_request_id not in self.incomplete_reports:
            self._samplings.pop(report_request_id, None)
            return
        request = next((r for r in self.report_requests if r["report_request_id"] == report_request_id), None)
        granularity = request.get("granularity") if request else None
        back = request.get("report_back_duration") if request else None
        if not granularity or not back or granularity.total_seconds() <= 0:
            return
        done = self._samplings[report_request_id] = self._samplings.get(report_request_id, 0) + 1
        if done >= int(back.total_seconds() / granularity.total_seconds()):
            self._samplings.pop(report_request_id, None)
            await self.pending_reports.put(self.incomplete_reports.pop(report_request_id))

    async def create_report(self, response_payload: Any) -> None:
        await super().create_report(response_payload)
        # openleadr (0.5.x) gathers the r_ids of every request of one oadrCreateReport/oadrRegisteredReport
        # into one list shared by all of them: each request keeps only its own report's r_ids.
        for request in self.report_requests:
            request["r_ids"] = [r for r in dict.fromkeys(request["r_ids"])
                                if (request["report_specifier_id"], r) in self.report_callbacks]

    async def forget_report_requests(self) -> None:
        """Drop the VTN's earlier report requests (their sampling jobs) before registering again."""
        for request in self.report_requests or []:
            job = request.get("job")
            if job is not None:
                try:
                    job.remove()
                except Exception:  # already gone
                    pass
        self.report_requests = []
        self.incomplete_reports = {}
        self._samplings = {}


class Ven:
    """One VEN registered with one VTN for one program."""

    def __init__(self, hub: Any, settings: Any) -> None:
        self._hub = hub
        self.settings = settings
        self.program_id: str = settings.program_id
        self.client: _Client | None = None
        self.registered = asyncio.Event()
        self._known: dict[str, _Known] = {}  # OpenADR event id -> its current version's intervals
        self._by_issuer: dict[int, tuple[str, int]] = {}  # issuer id -> (event id, modification number)
        self._unregister: list[Callable[[], None]] = []
        self._tasks = TaskSet(_LOGGER, "openadr")
        self._status_rids: set[str] = set()
        self._reregister = asyncio.Event()
        self._opt_unacknowledged_logged = False
        self._opted_out_at: dict[int, datetime] = {}  # the customer's opt-out of a program event: when
        self.malformed = 0  # events that were not events (answered optOut, the first logged)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        outbox = self._hub.outbox
        self._unregister = [
            outbox.register_sender(EventStatusReport, self._send_status, meter_id=self.program_id),
            outbox.register_sender(OpenAdrReport, self._send_report, meter_id=self.program_id),
            outbox.register_sender(DeviceOpt, self._send_device_opt, meter_id=self.program_id),
            self._hub.bus.listen(DeviceInfo, self._on_device_info),
            self._hub.bus.listen(EventParticipationChanged, self._on_participation),
        ]
        self._tasks.spawn(self._run_forever(), "openadr-ven")

    async def close(self) -> None:
        for unregister in self._unregister:
            unregister()
        self._unregister = []
        await self._tasks.cancel_all()
        await self._stop_client()

    async def _stop_client(self) -> None:
        client, self.client = self.client, None
        self.registered.clear()
        if client is None:
            return
        if client.scheduler.running:
            client.scheduler.shutdown(wait=False)
        task = client.report_queue_task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if client.client_session is not None:
            await client.client_session.close()

    def _new_client(self) -> _Client:
        s = self.settings
        client = _Client(
            on_report=self._queue_report, poll_interval_s=s.poll_interval_s,
            ven_name=s.ven_name, vtn_url=s.vtn_url, cert=s.cert, key=s.key, passphrase=s.passphrase,
            vtn_fingerprint=s.vtn_fingerprint, ca_file=s.ca_file, ven_id=s.ven_id, show_fingerprint=False,
            disable_signature=not (s.cert and s.key), check_hostname=s.check_hostname)
        client.add_handler("on_event", self._on_event)
        client.add_handler("on_update_event", self._on_event)
        self._add_reports(client)
        return client

    async def _run_forever(self) -> None:
        """Register (again after a failure, with backoff), then re-register reports when devices change."""
        attempt = 0
        while True:
            client = self._new_client()
            self.client = client
            try:
                await client.run()
            except Exception as err:  # openleadr logs its own failures; anything else is ours to see
                _LOGGER.warning("OpenADR registration with %s failed: %s", self.settings.vtn_url, err)
            if client.registration_id:
                break
            await self._stop_client()
            attempt += 1
            delay = min(RETRY_FIRST_S * 2 ** (attempt - 1), RETRY_MAX_S)
            if attempt == 1:
                _LOGGER.warning("The OpenADR server %s did not register this VEN; retrying", self.settings.vtn_url)
            await asyncio.sleep(delay)
        if attempt:
            _LOGGER.info("The OpenADR server %s registered this VEN", self.settings.vtn_url)
        self.registered.set()
        self._hub.outbox.resume(self.program_id)
        while True:
            await self._reregister.wait()
            await asyncio.sleep(REREGISTER_DEBOUNCE_S)
            self._reregister.clear()
            if self._add_status_rids(client):
                await client.forget_report_requests()
                await client.register_reports(client.reports)

    # -- events in -------------------------------------------------------------------------

    def _demand_kw(self) -> float | None:
        value = self._hub.state.meter(self.settings.meter_id).value("demand_kw")
        return float(value) if value is not None else None

    async def _on_event(self, event: dict[str, Any]) -> str:
        now = self._hub.clock()
        try:
            eid = signals.event_id(event)
            mod = signals.modification_number(event)
            cancelled = signals.is_cancelled(event)
            asks = [] if cancelled else signals.asks(
                event, price_threshold_per_kwh=self.settings.price_threshold_per_kwh, demand_kw=self._demand_kw())
        except signals.Malformed as err:
            self.malformed += 1
            if self.malformed == 1:
                _LOGGER.warning("[%s] Ignored a malformed OpenADR event (%s), answered optOut; further ones "
                                "are counted, not logged", self.program_id, err)
            return "optOut"
        known = self._known.get(eid)
        if cancelled:
            if known is not None:
                self._cancel(known.issuer_ids, now)
                del self._known[eid]
            return "optIn"
        if known is not None and known.modification_number != mod:
            self._cancel(known.issuer_ids, now)  # its earlier version's intervals
        ids = tuple(a.issuer_event_id for a in asks)
        self._known[eid] = _Known(mod, ids)
        for ask in asks:
            self._by_issuer[ask.issuer_event_id] = (eid, mod)
            self._hub.bus.publish(self._load_control_event(ask, now))
        runs = [self._hub.control.load_control.run(self.program_id, i) for i in ids]
        kept = [r for r in runs if r is not None]
        opt = "optIn" if kept and not any(r.opted_out for r in kept) else "optOut"
        _LOGGER.info("[%s] OpenADR event %s (modification %d): %d interval(s) for the DR core, %s",
                     self.program_id, eid, mod, len(asks), opt)
        return opt

    def _load_control_event(self, ask: signals.Ask, now: datetime) -> LoadControlEvent:
        return LoadControlEvent(
            meter_id=self.program_id, issuer_event_id=ask.issuer_event_id,
            device_class=DeviceClass(ask.device_class & signals.ALL_CLASSES), enrollment_group=0,
            start=ask.start.astimezone(UTC), duration_min=max(1, math.ceil(ask.duration.total_seconds() / 60)),
            criticality=Criticality(ask.criticality), received_at=now,
            cooling_setpoint_c=ask.setpoint_c, average_load_adjustment_pct=ask.average_load_adjustment_pct,
            duty_cycle_pct=ask.duty_cycle_pct)

    def _cancel(self, issuer_ids: tuple[int, ...], now: datetime) -> None:
        for issuer_id in issuer_ids:
            self._hub.bus.publish(EventCancellation(
                meter_id=self.program_id, issuer_event_id=issuer_id, device_class=DeviceClass(signals.ALL_CLASSES),
                enrollment_group=0, effective_at=now, randomize_end=False, received_at=now))

    # -- opt state out ---------------------------------------------------------------------

    def _registered_client(self) -> _Client:
        client = self.client
        if client is None or not self.registered.is_set() or not client.registration_id:
            raise NotReady(f"the OpenADR server {self.settings.vtn_url} has not registered this VEN yet")
        return client

    async def _send_status(self, report: EventStatusReport) -> None:
        """OPTED_OUT / OPTED_IN go to the VTN; OpenADR 2.0b has no VEN message for the other statuses."""
        if report.status not in (EventStatus.OPTED_OUT, EventStatus.OPTED_IN):
            return
        ref = self._by_issuer.get(report.issuer_event_id)
        if ref is None:
            raise NotReady(f"event {report.issuer_event_id} has not been heard from the VTN since the start")
        client = self._registered_client()
        event_id, mod = ref
        opt = "optOut" if report.status is EventStatus.OPTED_OUT else "optIn"
        delivery = current_delivery()
        tag = f"{self.program_id}-{delivery.record_id}" if delivery is not None else f"{self.program_id}-{event_id}"
        message = client._create_message(
            "oadrCreatedEvent", ven_id=client.ven_id,
            response={"response_code": 200, "response_description": "OK", "request_id": tag},
            event_responses=[{"response_code": 200, "response_description": "OK", "request_id": tag,
                              "event_id": event_id, "modification_number": mod, "opt_type": opt}])
        response_type, _payload = await client._perform_request("EiEvent", message)
        if response_type is None:
            raise NotReady(f"the OpenADR server did not take the {opt} of event {event_id}")
        await self._create_opt(client, event_id, mod, opt, report.at, tag)
        _LOGGER.info("[%s] Sent %s of OpenADR event %s (the customer's choice at %s)", self.program_id, opt,
                     event_id, report.at.isoformat())

    async def _send_device_opt(self, item: DeviceOpt) -> None:
        """A device taken out of (or put back in) a program's event: EiOpt for that resource only."""
        ref = self._by_issuer.get(item.issuer_event_id)
        if ref is None:
            raise NotReady(f"event {item.issuer_event_id} has not been heard from the VTN since the start")
        client = self._registered_client()
        delivery = current_delivery()
        tag = f"{self.program_id}-{delivery.record_id}" if delivery is not None else f"{self.program_id}-{item.device_id}"
        opt = "optOut" if item.opted_out else "optIn"
        if not await self._create_opt(client, ref[0], ref[1], opt, item.at, tag, resource_id=item.device_id):
            raise NotReady("the OpenADR server did not take the EiOpt")
        _LOGGER.info("[%s] Sent %s of device %s for OpenADR event %s", self.program_id, opt, item.device_id, ref[0])

    async def _create_opt(self, client: _Client, event_id: str, mod: int, opt: str, at: datetime, tag: str,
                          resource_id: str | None = None) -> bool:
        """oadrCreateOpt for the event (the whole VEN, or one resource); whether the VTN acknowledged it.

        A VTN without EiOpt (openleadr's own) answers with an error or nothing: logged once."""
        reason = enums.OPT_REASON.OVERRIDE_STATUS if opt == "optOut" else enums.OPT_REASON.PARTICIPATING
        target = {"resource_id": resource_id} if resource_id is not None else {"ven_id": client.ven_id}
        message = client._create_message(
            "oadrCreateOpt", request_id=tag, ven_id=client.ven_id, opt_id=f"opt-{tag}", opt_type=opt,
            opt_reason=reason, event_id=event_id, modification_number=mod, created_date_time=at,
            targets=[target], vavailability=None, market_context=None,
            signal_target_mrid=None)
        response_type, payload = await client._perform_request("EiOpt", message)
        if response_type == "oadrCreatedOpt":
            return True
        if not self._opt_unacknowledged_logged:
            self._opt_unacknowledged_logged = True
            _LOGGER.info("[%s] The OpenADR server does not acknowledge EiOpt (oadrCreateOpt); the opt state "
                         "goes in oadrCreatedEvent only", self.program_id)
        return False

    # -- reports out -----------------------------------------------------------------------

    def _add_reports(self, client: _Client) -> None:
        meter = self.settings.meter_id
        rate = {"min_period": SAMPLING_MIN, "max_period": SAMPLING_MAX, "on_change": False}
        from openleadr import objects

        sampling = objects.SamplingRate(**rate)
        client.add_report(self._demand_sample, resource_id=meter, measurement="real_power", unit="W", scale="k",
                          r_id="demand_kw", report_duration=timedelta(hours=1),
                          sampling_rate=sampling, report_name=enums.REPORT_NAME.TELEMETRY_USAGE)
        client.add_report(self._energy_sample, resource_id=meter, measurement="energy_real", unit="Wh", scale="k",
                          r_id="energy_kwh", report_duration=timedelta(hours=1),
                          sampling_rate=sampling, report_name=enums.REPORT_NAME.TELEMETRY_USAGE)
        client.add_report(self._override_sample, resource_id="premise",
                          r_id="override", report_duration=timedelta(hours=1), sampling_rate=sampling,
                          report_name=enums.REPORT_NAME.TELEMETRY_STATUS, report_type=enums.REPORT_TYPE.READING)
        self._status_rids = {"override"}
        self._add_status_rids(client)

    def _add_status_rids(self, client: _Client) -> bool:
        """Offer a status value for every device field not yet offered; True when something was added."""
        from openleadr import objects

        sampling = objects.SamplingRate(min_period=SAMPLING_MIN, max_period=SAMPLING_MAX, on_change=False)
        added = False
        for device_id in sorted(self._hub.control.registry.devices):
            for name in STATUS_FIELDS:
                r_id = f"{device_id}/{name}"
                if r_id in self._status_rids:
                    continue
                self._status_rids.add(r_id)
                client.add_report(self._device_sample(device_id, name), resource_id=device_id,
                                   r_id=r_id, report_duration=timedelta(hours=1),
                                  sampling_rate=sampling, report_name=enums.REPORT_NAME.TELEMETRY_STATUS,
                                  report_type=enums.REPORT_TYPE.READING)
                added = True
        return added

    def _on_device_info(self, info: DeviceInfo) -> None:
        if any(f"{info.device_id}/{name}" not in self._status_rids for name in STATUS_FIELDS):
            self._reregister.set()

    def _on_participation(self, change: EventParticipationChanged) -> None:
        if change.meter_id != self.program_id:
            return
        if change.device_id is not None:
            # The DR core wrote the choice down before publishing it; the EiOpt for the device is
            # queued durably from here (a crash in between loses that EiOpt, not the choice).
            self._tasks.spawn(self._hub.outbox.enqueue(DeviceOpt(
                self.program_id, change.issuer_event_id, change.device_id, change.opted_out, change.at)),
                "openadr-device-opt")
            return
        if change.opted_out:
            self._opted_out_at[change.issuer_event_id] = change.at
        else:
            self._opted_out_at.pop(change.issuer_event_id, None)

    def _now(self) -> datetime:
        return self._hub.clock().astimezone(UTC)

    def _demand_sample(self) -> list[tuple[datetime, float]]:
        value = self._demand_kw()
        return [] if value is None else [(self._now(), value)]

    def _energy_sample(self) -> list[tuple[datetime, float]]:
        value = self._hub.state.meter(self.settings.meter_id).value("summation_delivered_kwh")
        return [] if value is None else [(self._now(), float(value))]

    def _override_sample(self) -> list[tuple[datetime, float]]:
        """1 from the time of the customer's opt-out while one of this program's running events holds it."""
        since = [self._opted_out_at[v.event.issuer_event_id] for v in self._hub.control.load_control.views()
                 if v.event.meter_id == self.program_id and v.opted_out and v.phase is EventPhase.ACTIVE
                 and v.event.issuer_event_id in self._opted_out_at]
        return [(min(since), 1.0)] if since else [(self._now(), 0.0)]

    def _device_sample(self, device_id: str, name: str) -> Callable[[], list[tuple[datetime, float]]]:
        def sample() -> list[tuple[datetime, float]]:
            state = self._hub.control.registry.devices.get(device_id)
            reading = state.reading if state is not None else None
            value = getattr(reading, name, None) if reading is not None else None
            if value is None:
                return []
            return [(self._now(), float(value))]
        return sample

    async def _queue_report(self, report: Any) -> None:
        samples = tuple(
            ReportSample(i.report_payload.r_id, i.dtstart.astimezone(UTC), float(i.report_payload.value),
                         i.duration.total_seconds() if getattr(i, "duration", None) is not None else None)
            for i in report.intervals or [])
        if not samples:
            return
        await self._hub.outbox.enqueue(OpenAdrReport(
            self.program_id, str(report.report_request_id), str(report.report_specifier_id), str(report.report_name),
            self._now(), samples))

    async def _send_report(self, item: OpenAdrReport) -> None:
        client = self._registered_client()
        delivery = current_delivery()
        report_id = f"{self.settings.ven_name}-{delivery.record_id if delivery is not None else 0}"
        intervals = [{"dtstart": s.at, "duration": timedelta(seconds=s.duration_s) if s.duration_s is not None else None,
                      "report_payload": {"r_id": s.r_id, "value": s.value}} for s in item.samples]
        report = {"report_id": report_id, "report_request_id": item.report_request_id,
                  "report_specifier_id": item.report_specifier_id, "report_name": item.report_name,
                  "created_date_time": item.created_at, "dtstart": min(s.at for s in item.samples),
                  "intervals": intervals, "report_descriptions": []}
        message = client._create_message("oadrUpdateReport", ven_id=client.ven_id, request_id=report_id,
                                         reports=[report])
        response_type, _payload = await client._perform_request("EiReport", message)
        if response_type != "oadrUpdatedReport":
            raise NotReady(f"the OpenADR server did not take report {report_id}")
