"""The reconnect supervisor's rules, as a specification: backoff, logging once, surviving, closing.

The link is scripted (each attempt fails, or comes up and is then lost) and the sleep is the
test's: it records each wait and returns at once (or holds until close), so nothing here waits
in real time and no duration is asserted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from integrations.zigbee.supervisor import (
    Backoff,
    ConnectionState,
    ReconnectSupervisor,
    describe_error,
)

CONNECTING, ONLINE, OFFLINE = ConnectionState.CONNECTING, ConnectionState.ONLINE, ConnectionState.OFFLINE
LOGGER = "tests.supervisor"
HANG_GUARD_S = 10  # guards against a hang only


@dataclass(frozen=True)
class Fail:
    """This attempt's connect raises ``error``."""

    error: BaseException


@dataclass(frozen=True)
class Up:
    """This attempt's connect succeeds; its watch then raises ``lost`` (returns if None), or holds."""

    lost: BaseException | None = None
    hold: bool = False


class ScriptedLink:
    """A link that plays one script step per attempt; with the script used up, connect holds."""

    def __init__(self, *script: Fail | Up) -> None:
        self.script = deque(script)
        self.calls: list[str] = []
        self.holding = asyncio.Event()  # set once connect or watch holds (the script is played)
        self.teardown_error: BaseException | None = None
        self._step: Fail | Up | None = None

    async def connect(self) -> str:
        self.calls.append("connect")
        if not self.script:
            await self._hold()
        self._step = step = self.script.popleft()
        await asyncio.sleep(0)
        if isinstance(step, Fail):
            raise step.error
        return f"up after {self.calls.count('connect')} attempts"

    async def watch(self) -> None:
        self.calls.append("watch")
        assert isinstance(self._step, Up)
        if self._step.hold:
            await self._hold()
        await asyncio.sleep(0)
        if self._step.lost is not None:
            raise self._step.lost

    async def teardown(self) -> None:
        self.calls.append("teardown")
        if self.teardown_error is not None:
            error, self.teardown_error = self.teardown_error, None
            raise error

    async def _hold(self) -> None:
        self.holding.set()
        await asyncio.get_running_loop().create_future()  # until cancelled


class FakeSleep:
    """The supervisor's sleep: records each wait; returns at once, or holds once ``hold`` is set."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.hold = False
        self.holding = asyncio.Event()

    async def __call__(self, delay_s: float) -> None:
        self.waits.append(delay_s)
        if self.hold:
            self.holding.set()
            await asyncio.get_running_loop().create_future()  # until cancelled
        await asyncio.sleep(0)


class Harness:
    """Makes supervisors over scripted links, records their states, and closes them at the end."""

    def __init__(self) -> None:
        self.sleep = FakeSleep()
        self.states: list[tuple[ConnectionState, str]] = []
        self.supervisors: list[ReconnectSupervisor] = []

    def supervisor(self, link: ScriptedLink, backoff: Backoff | None = None,
                   on_state: Callable[[ConnectionState, str], None] | None = None,
                   **options) -> ReconnectSupervisor:
        supervisor = ReconnectSupervisor(
            link,
            name="[main] Test link",
            task_name="test-link",
            backoff=backoff or Backoff(1.0, 8.0, jitter=0.0),
            on_state=on_state or (lambda state, detail: self.states.append((state, detail))),
            logger=logging.getLogger(LOGGER),
            sleep=self.sleep,
            **options,
        )
        self.supervisors.append(supervisor)
        return supervisor

    async def run_script(self, link: ScriptedLink, **kwargs) -> ReconnectSupervisor:
        """Start supervising and wait until the whole script has been played."""
        supervisor = self.supervisor(link, **kwargs)
        supervisor.start()
        async with asyncio.timeout(HANG_GUARD_S):
            await link.holding.wait()
        return supervisor


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    for supervisor in harness.supervisors:
        await supervisor.close()


def refused() -> ConnectionError:
    return ConnectionError("refused")


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


# -- backoff -----------------------------------------------------------------------------------


async def test_the_wait_doubles_from_the_first_up_to_the_cap(harness):
    await harness.run_script(ScriptedLink(*[Fail(refused())] * 6),
                             backoff=Backoff(first_s=1.0, cap_s=8.0, jitter=0.0))
    assert harness.sleep.waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


async def test_the_wait_starts_again_from_the_first_after_a_success(harness):
    link = ScriptedLink(Fail(refused()), Fail(refused()), Fail(refused()), Up(), Fail(refused()))
    await harness.run_script(link, backoff=Backoff(first_s=1.0, cap_s=8.0, jitter=0.0))
    assert harness.sleep.waits == [1.0, 2.0, 4.0, 1.0, 2.0]


async def test_a_first_wait_above_the_cap_is_followed_by_the_cap(harness):
    await harness.run_script(ScriptedLink(*[Fail(refused())] * 3),
                             backoff=Backoff(first_s=5.0, cap_s=2.0, jitter=0.0))
    assert harness.sleep.waits == [5.0, 2.0, 2.0]


async def test_each_wait_is_jittered_within_its_bounds(harness):
    await harness.run_script(ScriptedLink(*[Fail(refused())] * 40),
                             backoff=Backoff(first_s=1.0, cap_s=4.0, jitter=0.1), rng=random.Random(7))
    unjittered = [1.0, 2.0] + [4.0] * 38
    for wait, base in zip(harness.sleep.waits, unjittered, strict=True):
        assert base * 0.9 <= wait <= base * 1.1
    assert len({round(w / b, 6) for w, b in zip(harness.sleep.waits, unjittered, strict=True)}) > 1


@pytest.mark.parametrize(("first_s", "cap_s", "jitter"), [(0, 1, 0.1), (1, 0, 0.1), (1, 2, -0.1), (1, 2, 1.0)])
def test_backoff_refuses_waits_that_are_not_positive_and_jitter_outside_0_to_1(first_s, cap_s, jitter):
    with pytest.raises(ValueError, match="expected"):
        Backoff(first_s, cap_s, jitter)


async def test_every_attempt_is_counted(harness):
    supervisor = await harness.run_script(ScriptedLink(Fail(refused()), Up(), Fail(refused())))
    assert supervisor.attempts == 4  # three played, the fourth holding in connect


# -- states and their order --------------------------------------------------------------------


async def test_states_are_reported_in_order_with_their_details(harness):
    link = ScriptedLink(Fail(refused()), Up(), Up(lost=TimeoutError()))
    supervisor = await harness.run_script(link, connecting_detail="joining the HAN")
    assert harness.states == [
        (CONNECTING, "joining the HAN"), (OFFLINE, "ConnectionError: refused"),
        (CONNECTING, "joining the HAN"), (ONLINE, "up after 2 attempts"), (OFFLINE, "radio connection lost"),
        (CONNECTING, "joining the HAN"), (ONLINE, "up after 3 attempts"), (OFFLINE, "TimeoutError"),
        (CONNECTING, "joining the HAN"),
    ]
    assert supervisor.state is CONNECTING
    assert link.calls == ["connect", "teardown", "connect", "watch", "teardown", "connect", "watch",
                          "teardown", "connect"]


async def test_the_link_describes_its_own_errors(harness):
    await harness.run_script(ScriptedLink(Fail(refused())), describe=lambda err: f"<{err}>")
    assert (OFFLINE, "<refused>") in harness.states


def test_an_error_is_described_by_its_type_and_its_message():
    assert describe_error(ConnectionError("refused")) == "ConnectionError: refused"
    assert describe_error(TimeoutError()) == "TimeoutError"


# -- logging: an outage once, the recovery once ------------------------------------------------


async def test_an_outage_is_logged_once_at_warning_then_at_debug_and_its_end_once_at_info(harness, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    link = ScriptedLink(Fail(refused()), Fail(refused()), Fail(refused()), Up(), Fail(OSError("gone")),
                        Fail(refused()))
    await harness.run_script(link)
    assert logged(caplog, logging.WARNING) == [
        "[main] Test link down: ConnectionError: refused; retrying with backoff",
        "[main] Test link down: radio connection lost; retrying with backoff",
    ]
    assert logged(caplog, logging.INFO) == ["[main] Test link restored"]
    assert logged(caplog, logging.DEBUG) == [
        "[main] Test link still down: ConnectionError: refused",
        "[main] Test link still down: ConnectionError: refused",
        "[main] Test link still down: OSError: gone",
        "[main] Test link still down: ConnectionError: refused",
    ]
    assert all(r.exc_info is None for r in caplog.records if r.name == LOGGER)


async def test_a_first_success_is_not_logged_as_restored(harness, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await harness.run_script(ScriptedLink(Up(hold=True)))
    assert logged(caplog, logging.INFO) == [] and logged(caplog, logging.WARNING) == []
    assert harness.states == [(CONNECTING, "connecting"), (ONLINE, "up after 1 attempts")]


# -- a bug does not end supervision ------------------------------------------------------------


async def test_an_unexpected_exception_is_logged_with_its_traceback_and_retried(harness, caplog):
    link = ScriptedLink(Fail(RuntimeError("a bug")), Up(lost=KeyError("another")), Up(hold=True))
    await harness.run_script(link)
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["[main] Test link: unexpected error; retrying"] * 2
    assert all(r.exc_info is not None for r in errors)
    assert (OFFLINE, "RuntimeError: a bug") in harness.states
    assert harness.states[-1] == (ONLINE, "up after 3 attempts")


async def test_a_failing_teardown_or_state_callback_does_not_end_supervision(harness, caplog):
    def on_state(state: ConnectionState, detail: str) -> None:
        harness.states.append((state, detail))
        if state is OFFLINE:
            raise RuntimeError("listener bug")

    link = ScriptedLink(Fail(refused()), Up(), Up(hold=True))
    link.teardown_error = RuntimeError("teardown bug")
    await harness.run_script(link, on_state=on_state)
    assert harness.states[-1] == (ONLINE, "up after 3 attempts")
    assert {r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR} == {
        "[main] Test link: tearing down failed", "[main] Test link: the state callback failed (offline)"}


async def test_the_expected_errors_are_the_links_own(harness, caplog):
    class LinkError(Exception):
        pass

    await harness.run_script(ScriptedLink(Fail(LinkError("no meter"))), expected=(LinkError,))
    assert logged(caplog, logging.WARNING) == ["[main] Test link down: LinkError: no meter; retrying with backoff"]
    assert logged(caplog, logging.ERROR) == []


# -- close -------------------------------------------------------------------------------------


async def test_close_ends_supervision_mid_connect_and_tears_down(harness):
    link = ScriptedLink()
    supervisor = await harness.run_script(link)
    await supervisor.close()
    assert not supervisor.running
    assert link.calls == ["connect", "teardown"]
    assert harness.states == [(CONNECTING, "connecting")]  # no offline: stopping is no outage


async def test_close_ends_supervision_mid_watch(harness):
    link = ScriptedLink(Up(hold=True))
    supervisor = await harness.run_script(link)
    await supervisor.close()
    assert not supervisor.running
    assert link.calls == ["connect", "watch", "teardown"]
    assert harness.states[-1] == (ONLINE, "up after 1 attempts")


async def test_close_ends_supervision_mid_sleep(harness):
    harness.sleep.hold = True
    link = ScriptedLink(Fail(refused()))
    supervisor = harness.supervisor(link)
    supervisor.start()
    async with asyncio.timeout(HANG_GUARD_S):
        await harness.sleep.holding.wait()
    await supervisor.close()
    assert not supervisor.running
    assert link.calls == ["connect", "teardown", "teardown"]  # the second is close's: harmless
    assert harness.sleep.waits == [1.0]


class SwallowingLink(ScriptedLink):
    """A link whose step swallows the first cancel, as 3.11's wait_for can when a reply races it."""

    def __init__(self, where: str) -> None:
        super().__init__(Up(hold=True))
        self.where = where
        self.swallowed = 0

    async def connect(self) -> str:
        if self.where != "connect":
            return await super().connect()
        self.calls.append("connect")
        self.holding.set()
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            self.swallowed += 1
        return "up although cancelled"

    async def watch(self) -> None:
        if self.where != "watch":
            return await super().watch()
        self.calls.append("watch")
        self.holding.set()
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            self.swallowed += 1
        await asyncio.get_running_loop().create_future()  # goes on watching: only a second cancel ends it


async def test_close_is_not_undone_by_a_cancel_swallowed_in_connect(harness):
    link = SwallowingLink("connect")
    supervisor = await harness.run_script(link)
    await supervisor.close()
    assert link.swallowed == 1 and not supervisor.running
    assert link.calls == ["connect", "teardown"]  # it did not go on to watch
    assert (ONLINE, "up although cancelled") not in harness.states


async def test_close_cancels_again_when_a_cancel_is_swallowed_in_watch(harness):
    link = SwallowingLink("watch")
    supervisor = await harness.run_script(link, recancel_s=0.01)
    async with asyncio.timeout(HANG_GUARD_S):  # one cancel only would leave close() waiting
        await supervisor.close()
    assert link.swallowed == 1 and not supervisor.running
    assert link.calls == ["connect", "watch", "teardown"]


async def test_close_before_start_only_tears_down(harness):
    link = ScriptedLink()
    supervisor = harness.supervisor(link)
    await supervisor.close()
    assert link.calls == ["teardown"] and harness.states == []


async def test_a_supervisor_starts_once(harness):
    supervisor = await harness.run_script(ScriptedLink())
    with pytest.raises(RuntimeError, match="already started"):
        supervisor.start()


async def test_the_owner_may_spawn_the_task(harness):
    spawned: list[str] = []

    def spawn(coro, name: str) -> asyncio.Task[None]:
        spawned.append(name)
        return asyncio.get_running_loop().create_task(coro, name=name)

    await harness.run_script(ScriptedLink(), spawn=spawn)
    assert spawned == ["test-link"]


# -- recovery does not wait out the backoff (C6: 10 s meter to display) ---------------------------


class OutageClock:
    """The test's time: each sleep of the supervisor moves it at once (hours pass in no real time)."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.waits: list[float] = []

    async def sleep(self, delay_s: float) -> None:
        self.waits.append(delay_s)
        self.now_s += delay_s
        await asyncio.sleep(0)


class MeterAway(ScriptedLink):
    """A link whose peer is away until ``back_at_s`` on the test's clock: connects fail until then."""

    def __init__(self, clock: OutageClock, back_at_s: float) -> None:
        super().__init__()
        self.clock = clock
        self.back_at_s = back_at_s
        self.connected_at_s: float | None = None

    async def connect(self) -> str:
        self.calls.append("connect")
        await asyncio.sleep(0)
        if self.clock.now_s < self.back_at_s:
            raise refused()
        self.connected_at_s = self.clock.now_s
        return "up"

    async def watch(self) -> None:
        await self._hold()

    async def probe(self) -> bool:
        return self.clock.now_s >= self.back_at_s


@pytest.mark.parametrize("outage_s", [70, 300, 3 * 3600, 26 * 3600])
async def test_the_link_is_back_within_seconds_of_the_peer_answering_whatever_the_outage(harness, outage_s):
    clock = OutageClock()
    link = MeterAway(clock, back_at_s=outage_s)
    supervisor = ReconnectSupervisor(
        link, name="[main] Test link", task_name="test-link", backoff=Backoff(2.0, 900.0, jitter=0.0),
        on_state=lambda state, detail: None, logger=logging.getLogger(LOGGER), sleep=clock.sleep,
        probe=link.probe, probe_interval_s=2.0,
    )
    harness.supervisors.append(supervisor)
    supervisor.start()
    async with asyncio.timeout(HANG_GUARD_S):
        await link.holding.wait()
    assert link.connected_at_s is not None
    assert link.connected_at_s - outage_s <= 2.0  # one probe interval, not the backoff (up to 15 min)
    # The expensive attempts kept their backoff (doubling from 2 s to the 15-minute cap), not one per probe.
    assert supervisor.attempts <= 10 + outage_s / 900
    assert supervisor.probes > supervisor.attempts


async def test_without_a_probe_the_backoff_is_waited_out(harness):
    clock = OutageClock()
    link = MeterAway(clock, back_at_s=300)
    supervisor = ReconnectSupervisor(
        link, name="[main] Test link", task_name="test-link", backoff=Backoff(2.0, 900.0, jitter=0.0),
        on_state=lambda state, detail: None, logger=logging.getLogger(LOGGER), sleep=clock.sleep,
    )
    harness.supervisors.append(supervisor)
    supervisor.start()
    async with asyncio.timeout(HANG_GUARD_S):
        await link.holding.wait()
    assert link.connected_at_s == 2 + 4 + 8 + 16 + 32 + 64 + 128 + 256  # 510 s: what the issue found


async def test_a_probe_that_raises_counts_as_not_yet(harness):
    clock = OutageClock()
    link = MeterAway(clock, back_at_s=60)

    async def probe() -> bool:
        if clock.now_s < 60:
            raise OSError("no route")
        return True

    supervisor = ReconnectSupervisor(
        link, name="[main] Test link", task_name="test-link", backoff=Backoff(2.0, 900.0, jitter=0.0),
        on_state=lambda state, detail: None, logger=logging.getLogger(LOGGER), sleep=clock.sleep,
        probe=probe, probe_interval_s=1.0,
    )
    harness.supervisors.append(supervisor)
    supervisor.start()
    async with asyncio.timeout(HANG_GUARD_S):
        await link.holding.wait()
    assert link.connected_at_s is not None and link.connected_at_s - 60 <= 1.0


async def test_wake_ends_the_backoff_wait_at_once(harness):
    harness.sleep.hold = True  # every wait holds until woken
    link = ScriptedLink(Fail(refused()), Up(hold=True))
    supervisor = harness.supervisor(link)
    supervisor.start()
    async with asyncio.timeout(HANG_GUARD_S):
        await harness.sleep.holding.wait()
    assert supervisor.waiting
    supervisor.wake()
    async with asyncio.timeout(HANG_GUARD_S):
        await link.holding.wait()
    assert link.calls == ["connect", "teardown", "connect", "watch"]
    assert not supervisor.waiting
