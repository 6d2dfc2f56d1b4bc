"""openleadr's own VTN (``OpenADRServer``) on a free loopback port, recording what the VEN sends.

openleadr's VTN mounts no EiOpt service (its ``OptService`` exists but is neither mounted nor
implemented), so this one mounts a small one that acknowledges ``oadrCreateOpt`` and keeps it: the
VEN's EiOpt messages are then checked as a VTN that supports them would see them.
"""

from __future__ import annotations

import logging
import socket
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from openleadr import OpenADRServer
from openleadr.service import handler
from openleadr.service.opt_service import OptService

VEN_ID = "ven-home"
REGISTRATION_ID = "reg-home"
PREFIX = "/OpenADR2/Simple/2.0b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Seen:
    opt_types: list[tuple[str, str]] = field(default_factory=list)  # (event id, optIn|optOut) in order
    opts: list[dict[str, Any]] = field(default_factory=list)  # oadrCreateOpt payloads
    reports: list[dict[str, Any]] = field(default_factory=list)  # every oadrReport received (repeats too)
    refuse_reports: bool = False

    def report_values(self, r_id: str) -> list[tuple[Any, float]]:
        """(dtstart, value) of ``r_id`` over the distinct reports (by eiReportID), in arrival order."""
        out, seen = [], set()
        for report in self.reports:
            if report.get("report_id") in seen:
                continue
            seen.add(report.get("report_id"))
            for interval in report.get("intervals") or []:
                payload = interval["report_payload"]
                if payload["r_id"] == r_id:
                    out.append((interval["dtstart"], float(payload["value"])))
        return out


class Vtn:
    def __init__(self, poll_s: float = 1.0, sampling: timedelta = timedelta(seconds=1),
                 report_back: timedelta | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{PREFIX}"
        self.seen = Seen()
        self._sampling = sampling
        self._report_back = report_back or sampling
        logging.getLogger("openleadr").setLevel(logging.WARNING)
        with warnings.catch_warnings():  # openleadr keeps itself in its aiohttp app under a str key
            warnings.simplefilter("ignore", NotAppKeyWarning)
            self.server = OpenADRServer(vtn_id="TEST_VTN", http_port=self.port, http_host="127.0.0.1",
                                        requested_poll_freq=timedelta(seconds=poll_s), show_fingerprint=False,
                                        ven_lookup=self._ven_lookup)
        self.server.add_handler("on_create_party_registration", self._register)
        self.server.add_handler("on_register_report", self._register_report)
        self._wrap("event_service", "oadrCreatedEvent", lambda payload: self._created_event(payload))
        self._wrap("report_service", "oadrUpdateReport", lambda payload: self._update_report(payload))
        seen = self.seen

        class _Opt(OptService):  # type: ignore[misc]
            @handler("oadrCreateOpt")
            async def create_opt(self, payload: dict[str, Any]) -> Any:
                seen.opts.append(payload)
                return "oadrCreatedOpt", {"opt_id": payload["opt_id"]}

        self._opt = _Opt("TEST_VTN")
        self.server.app.add_routes([web.post(f"{PREFIX}/EiOpt", self._opt.handler)])

    def _wrap(self, service: str, message_type: str, record: Any) -> None:
        handlers = self.server.services[service].handlers
        original = handlers[message_type]

        async def wrapped(payload: dict[str, Any]) -> Any:
            record(payload)
            return await original(payload)

        handlers[message_type] = wrapped

    @staticmethod
    def _ven_lookup(ven_id: str) -> dict[str, Any] | None:
        if ven_id != VEN_ID:
            return None
        return {"ven_id": VEN_ID, "ven_name": "home", "fingerprint": None, "registration_id": REGISTRATION_ID}

    @staticmethod
    async def _register(registration_info: dict[str, Any]) -> tuple[str, str] | bool:
        return (VEN_ID, REGISTRATION_ID) if registration_info["ven_name"] == "home" else False

    async def _register_report(self, ven_id: str, resource_id: str, measurement: str, unit: Any, scale: Any,
                               min_sampling_interval: timedelta, max_sampling_interval: timedelta) -> Any:
        async def values(data: Any) -> None:
            return None
        return values, self._sampling, self._report_back

    def _created_event(self, payload: dict[str, Any]) -> None:
        for response in payload.get("event_responses") or []:
            self.seen.opt_types.append((response["event_id"], response["opt_type"]))

    def _update_report(self, payload: dict[str, Any]) -> None:
        if self.seen.refuse_reports:
            raise web.HTTPServiceUnavailable()
        self.seen.reports.extend(payload.get("reports") or [])

    async def start(self) -> None:
        await self.server.run()

    async def stop(self) -> None:
        await self.server.stop()
