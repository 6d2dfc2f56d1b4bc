"""Carries the outbox's upstream reports to the meter: ReportEventStatus, MessageConfirmation.

The outbox retries a report with backoff while the link is down, so a status change or a
confirmation made during an outage reaches the utility once the meter is back.
"""

from __future__ import annotations

from typing import Any

from ems.errors import NotReady
from ems.model import EventStatusReport, MessageConfirmed


class UpstreamSender:
    """Registers with the outbox as the carrier of DR status reports and confirmations."""

    def __init__(self, hub: Any, link: Any) -> None:
        self._hub = hub
        self._link = link
        self._unregister: list[Any] = []

    def register(self) -> None:
        outbox = self._hub.outbox
        self._unregister = [
            outbox.register_sender(EventStatusReport, self._send_status),
            outbox.register_sender(MessageConfirmed, self._send_confirmation),
        ]

    def unregister(self) -> None:
        for unregister in self._unregister:
            unregister()
        self._unregister = []

    def _session(self, meter_id: str) -> Any:
        session = self._link.session
        if session is None or session.meter_id != meter_id:
            raise NotReady(f"meter {meter_id} is not linked; the report waits in the outbox")
        return session

    async def _send_status(self, report: EventStatusReport) -> None:
        await self._session(report.meter_id).report_event_status(report)

    async def _send_confirmation(self, item: MessageConfirmed) -> None:
        await self._session(item.meter_id).confirm_message(item.message_id, item.confirmed_at, item.answer)
