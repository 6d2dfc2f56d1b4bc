"""The event bus delivers by type, isolates failing listeners and owns coroutine listeners."""

from __future__ import annotations

from dataclasses import dataclass

from ems.bus import EventBus


@dataclass(frozen=True)
class Ping:
    n: int


@dataclass(frozen=True)
class Pong:
    n: int


async def test_listener_gets_only_its_event_type():
    bus, seen = EventBus(), []
    bus.listen(Ping, seen.append)
    bus.publish(Ping(1))
    bus.publish(Pong(2))
    assert seen == [Ping(1)]


async def test_unsubscribe_stops_delivery():
    bus, seen = EventBus(), []
    unsubscribe = bus.listen(Ping, seen.append)
    unsubscribe()
    bus.publish(Ping(1))
    assert seen == []


async def test_failing_listener_does_not_stop_others(caplog):
    bus, seen = EventBus(), []

    def broken(event):
        raise RuntimeError("boom")

    bus.listen(Ping, broken)
    bus.listen(Ping, seen.append)
    bus.publish(Ping(1))
    assert seen == [Ping(1)]
    assert "boom" in caplog.text


async def test_coroutine_listener_runs_and_is_drained():
    bus, seen = EventBus(), []

    async def slow(event):
        seen.append(event)

    bus.listen(Ping, slow)
    bus.publish(Ping(3))
    await bus.drain()
    assert seen == [Ping(3)]


async def test_listen_all_sees_every_event():
    bus, seen = EventBus(), []
    bus.listen_all(seen.append)
    bus.publish(Ping(1))
    bus.publish(Pong(2))
    assert seen == [Ping(1), Pong(2)]
