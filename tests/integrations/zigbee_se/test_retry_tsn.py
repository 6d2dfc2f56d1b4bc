"""Finding 3b: a MessageConfirmation retried by the outbox keeps the TSN of its first try (also from a
new session after a reconnect), so the meter can tell a retry from a second confirmation."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from integrations.zigbee.se.clusters import Messaging
from integrations.zigbee_se.frames import MeterSession, RetryTsns

AT = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)


class _Cluster:
    def __init__(self) -> None:
        self.sent: list[tuple[int, int | None, dict[str, Any]]] = []

    async def command(self, command_id: int, *, tsn: int | None = None, **fields: Any) -> None:
        self.sent.append((command_id, tsn, fields))


class _Device:
    def __init__(self, cluster: _Cluster, first_tsn: int) -> None:
        self.endpoints = {1: SimpleNamespace(in_clusters={Messaging.cluster_id: cluster})}
        self._tsn = first_tsn

    def get_sequence(self) -> int:
        self._tsn = (self._tsn + 1) % 256
        return self._tsn


def _session(cluster: _Cluster, tsns: RetryTsns, first_tsn: int) -> MeterSession:
    hub = SimpleNamespace(clock=lambda: AT)
    return MeterSession(hub, SimpleNamespace(), _Device(cluster, first_tsn), 1, "main", tsns)


async def test_a_retried_confirmation_keeps_its_first_tsn_across_sessions():
    cluster, tsns = _Cluster(), RetryTsns()
    first = _session(cluster, tsns, first_tsn=10)
    await first.confirm_message(7, AT, None)
    await first.confirm_message(7, AT, None)  # the outbox's retry
    await _session(cluster, tsns, first_tsn=0).confirm_message(7, AT, None)  # after a reconnect
    await first.confirm_message(8, AT, "yes")  # another message: a new TSN
    assert [tsn for _, tsn, _ in cluster.sent] == [11, 11, 11, 12]


def test_retry_tsns_remember_the_last_reports_only():
    tsns = RetryTsns(size=2)
    for key in range(3):
        tsns.remember(("k", key), key)
    assert tsns.get(("k", 0)) is None and tsns.get(("k", 2)) == 2
