"""Carries the outbox's upstream reports to the meter: ReportEventStatus, MessageConfirmation.

Each meter link registers its senders for its own meter id, so the outbox sends a meter's
reports over that meter's link only, and one meter's outage holds none of another's. While the
link is down the outbox retries with backoff; when the link comes back online the backoff is cut
short, so a status change or a confirmation made during an outage reaches the utility at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ems.errors import NotReady
from ems.model import EventStatusReport, LinkState, MessageConfirmed, MeterLinkChanged


class UpstreamSender:
    """Registers with the outbox as the carrier of one meter's DR status reports and confirmations."""

    def __init__(self, hub: Any, link: Any) -> None:
        self._hub = hub
        self._link = link
        self._unregister: list[Callable[[], None]] = []

    @property
    def meter_id(self) -> str:
        return str(self._link.meter_id)

    def register(self) -> None:
        outbox = self._hub.outbox
        meter_id = self.meter_id
        self._unregister = [
            outbox.register_sender(EventStatusReport, self._send_status, meter_id=meter_id),
            outbox.register_sender(MessageConfirmed, self._send_confirmation, meter_id=meter_id),
            self._hub.bus.listen(MeterLinkChanged, self._on_link_changed),
        ]

    def unregister(self) -> None:
        for unregister in self._unregister:
            unregister()
        self._unregister = []

    def _on_link_changed(self, change: MeterLinkChanged) -> None:
        if change.meter_id == self.meter_id and change.state is LinkState.ONLINE:
            self._hub.outbox.resume(self.meter_id)

    def _session(self, meter_id: str) -> Any:
        session = self._link.session
        if session is None or session.meter_id != meter_id:
            raise NotReady(f"meter {meter_id} is not linked; the report waits in the outbox")
        return session

    async def _send_status(self, report: EventStatusReport) -> None:
        await self._session(report.meter_id).report_event_status(report)

    async def _send_confirmation(self, item: MessageConfirmed) -> None:
        await self._session(item.meter_id).confirm_message(item.message_id, item.confirmed_at, item.answer)
