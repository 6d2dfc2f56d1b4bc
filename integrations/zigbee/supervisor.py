"""One reconnect supervisor for every Zigbee link: connect, watch, tear down, back off, again.

The meter link (``zigbee_se``) and the home network (``zigbee_home``) keep a radio up the same
way, so the loop that does it lives here once. A link says how it comes up (``connect``), how it
notices it is gone (``watch`` returns or raises), and how it lets go (``teardown``); the
supervisor decides when: it retries with exponential backoff and jitter from
``Backoff.first_s`` up to ``Backoff.cap_s``, starts again from ``first_s`` after a success, logs
an outage once at warning (then only at debug until the link is back) and the recovery once at
info, reports each change to a state callback, and survives a bug in the link (an unexpected
exception is logged with its traceback and retried like an outage).

It owns one task: ``start()`` spawns it, ``close()`` ends it and tears the link down. Python
3.11's ``asyncio.wait_for`` (used inside zigpy and in the links' requests) can swallow a cancel
that races a reply, so ``close()`` cancels until the task is done, and the loop checks that it is
closing between steps, so a swallowed cancel cannot bring the link back up.

Recovery does not wait out the backoff. A long outage grows the wait to the cap (15 minutes for
the meter), but the appliance must be back within seconds of the peer answering again (C6: 10 s
meter to display). So while it waits, the supervisor asks the link's cheap ``probe`` (if given)
every ``probe_interval_s``: the moment the probe says the peer answers, the wait ends and the full
attempt runs. ``wake()`` does the same from outside (the peer was heard some other way). The
expensive attempts keep their backoff; only the cheap probe runs at a fixed short interval.

The sleep between attempts (and between probes) is injected, so tests own the clock: a test's
sleep can let simulated hours of outage pass at once. No ``ems`` import: this is the zigbee
package (import-linter contract).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "Backoff",
    "ConnectionState",
    "ReconnectSupervisor",
    "SupervisedLink",
    "describe_error",
]

RECANCEL_S = 0.5  # how long close() waits for a cancel to land before it cancels again


class SupervisedLink(Protocol):
    """What the supervisor drives: one connection that comes up, is watched, and is let go."""

    async def connect(self) -> str:
        """Bring the link up (raise if it cannot); return a description for the online state."""
        ...

    async def watch(self) -> None:
        """Run while the link is up; return (or raise) once it is lost or has failed."""
        ...

    async def teardown(self) -> None:
        """Release whatever ``connect`` built, even half of it; safe when nothing is up."""
        ...


class ConnectionState(StrEnum):
    """The supervisor's view of a link, as given to the state callback."""

    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"


StateCallback = Callable[[ConnectionState, str], None]
Sleep = Callable[[float], Awaitable[Any]]
Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]
Probe = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry timing: the first wait, the cap it doubles up to, and the jitter (0.1: +/-10 %).

    Each wait is drawn uniformly within +/- ``jitter`` of the unjittered one, so links that went
    down together (one radio, two networks) do not all retry at the same instant.
    """

    first_s: float
    cap_s: float
    jitter: float = 0.1

    def __post_init__(self) -> None:
        # A first wait above the cap is allowed (the configuration may say so): the waits are
        # then first_s, cap_s, cap_s, ...
        if self.first_s <= 0 or self.cap_s <= 0:
            raise ValueError(f"expected positive waits, got {self.first_s} and {self.cap_s}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"expected a jitter in [0, 1), got {self.jitter}")

    def next_delay_s(self, delay_s: float) -> float:
        """The (unjittered) wait after ``delay_s``: twice as long, at most the cap."""
        return min(delay_s * 2, self.cap_s)


def describe_error(err: BaseException) -> str:
    """``Type: message`` (just ``Type`` when the message is empty), for logs and state details."""
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class ReconnectSupervisor:
    """Keeps one link up for as long as it runs; see the module docstring for the rules.

    ``name`` starts every log line (device context first, e.g. ``"[main] Meter link"``);
    ``expected`` are the errors of an outage (logged without a traceback); anything else is a bug,
    logged with its traceback, and retried all the same. ``describe`` turns an error into the
    offline state's detail; ``connecting_detail`` is the connecting state's, ``lost_detail`` the
    offline state's when ``watch`` returns. ``sleep`` waits between attempts and ``rng`` draws the
    jitter (tests pass their own); ``spawn`` starts the task (an owner's task set, so its own
    stop is a backstop), by default on the running loop; ``recancel_s`` is how long ``close``
    gives a cancel to land before it cancels again. ``probe`` (optional) answers cheaply whether
    an attempt now would find the peer; it is asked every ``probe_interval_s`` while waiting out
    a backoff, and True ends the wait (a probe that raises counts as False).
    """

    def __init__(
        self,
        link: SupervisedLink,
        *,
        name: str,
        task_name: str,
        backoff: Backoff,
        on_state: StateCallback,
        logger: logging.Logger,
        expected: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError),
        describe: Callable[[BaseException], str] = describe_error,
        connecting_detail: str = "connecting",
        lost_detail: str = "radio connection lost",
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        spawn: Spawn | None = None,
        recancel_s: float = RECANCEL_S,
        probe: Probe | None = None,
        probe_interval_s: float = 2.0,
    ) -> None:
        if probe_interval_s <= 0:
            raise ValueError(f"expected a positive probe interval, got {probe_interval_s}")
        self._link = link
        self.name = name
        self._task_name = task_name
        self.backoff = backoff
        self._on_state = on_state
        self._logger = logger
        self._expected = expected
        self._describe = describe
        self._connecting_detail = connecting_detail
        self._lost_detail = lost_detail
        self._sleep = sleep
        self._uniform = (rng or random.Random()).uniform
        self._spawn = spawn
        self._recancel_s = recancel_s
        self._probe = probe
        self._probe_interval_s = probe_interval_s
        self._woken = asyncio.Event()
        self.waiting = False  # waiting out a backoff (tests and health read it)
        self.probes = 0  # probes asked so far
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._outage_logged = False
        self.attempts = 0  # connection attempts so far (tests and health read it)
        self.state = ConnectionState.CONNECTING  # the last state given to on_state

    @property
    def running(self) -> bool:
        """The supervising task is started and not yet ended."""
        return self._task is not None and not self._task.done()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start supervising in the background (once)."""
        if self._task is not None:
            raise RuntimeError(f"{self.name}: the supervisor is already started")
        self._closing = False
        coro = self._run()
        if self._spawn is not None:
            self._task = self._spawn(coro, self._task_name)
        else:
            self._task = asyncio.get_running_loop().create_task(coro, name=self._task_name)

    async def close(self) -> None:
        """Stop supervising, wherever the loop is (connecting, watching, waiting), and tear down."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            # Cancel until it is done: a cancel swallowed by wait_for would otherwise be lost.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=self._recancel_s)
            await asyncio.gather(task, return_exceptions=True)
        await self._teardown()

    def wake(self) -> None:
        """The peer is known to answer again: end the current backoff wait and try now."""
        self._woken.set()

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        delay_s = self.backoff.first_s
        while not self._closing:
            self.attempts += 1
            retry_after_s: float | None = None
            try:
                self._publish(ConnectionState.CONNECTING, self._connecting_detail)
                online_detail = await self._link.connect()
                if self._closing:  # a cancel was swallowed on the way up: do not go on
                    return
                self._publish(ConnectionState.ONLINE, online_detail)
                if self._outage_logged:
                    self._logger.info("%s restored", self.name)
                    self._outage_logged = False
                delay_s = self.backoff.first_s
                await self._link.watch()
                detail = self._lost_detail
            except self._expected as err:
                detail = self._describe(err)
                # A peer that answered "not now, try again in N s" (a meter's trust center that has
                # no registration for us yet, I1NFR3) sets the wait itself.
                retry_after_s = getattr(err, "retry_after_s", None)
            except Exception as err:  # noqa: BLE001 - a bug must not end supervision for good
                self._logger.exception("%s: unexpected error; retrying", self.name)
                detail = self._describe(err)
            if self._closing:
                return
            await self._teardown()
            if not self._outage_logged:
                self._logger.warning("%s down: %s; retrying with backoff", self.name, detail)
                self._outage_logged = True
            else:
                self._logger.debug("%s still down: %s", self.name, detail)
            self._publish(ConnectionState.OFFLINE, detail)
            if self._closing:
                return
            if retry_after_s is not None:
                await self._wait(retry_after_s)
                continue
            await self._wait(delay_s * self._uniform(1 - self.backoff.jitter, 1 + self.backoff.jitter))
            delay_s = self.backoff.next_delay_s(delay_s)

    async def _wait(self, wait_s: float) -> None:
        """Wait ``wait_s`` (the injected sleep), probing the peer meanwhile; end early when it answers."""
        self._woken.clear()
        self.waiting = True
        try:
            remaining_s = wait_s
            while remaining_s > 0 and not self._woken.is_set():
                step_s = remaining_s if self._probe is None else min(remaining_s, self._probe_interval_s)
                await self._sleep_or_woken(step_s)
                remaining_s -= step_s
                if self._woken.is_set() or self._closing:
                    return
                if remaining_s > 0 and self._probe is not None and await self._ask_probe():
                    self._logger.debug("%s: the peer answers a probe; trying now", self.name)
                    return
        finally:
            self.waiting = False

    async def _sleep_or_woken(self, seconds: float) -> None:
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(self._woken.wait())
        try:
            await asyncio.wait({sleeping, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (sleeping, woken):
                waiting.cancel()
            await asyncio.gather(sleeping, woken, return_exceptions=True)

    async def _ask_probe(self) -> bool:
        assert self._probe is not None
        self.probes += 1
        try:
            return bool(await self._probe())
        except Exception:  # noqa: BLE001 - a probe that fails says "not yet"
            self._logger.debug("%s: probe failed", self.name, exc_info=True)
            return False

    async def _teardown(self) -> None:
        try:
            await self._link.teardown()
        except Exception:  # noqa: BLE001 - a failed teardown must not end supervision
            self._logger.exception("%s: tearing down failed", self.name)

    def _publish(self, state: ConnectionState, detail: str) -> None:
        self.state = state
        try:
            self._on_state(state, detail)
        except Exception:  # noqa: BLE001 - a listener's bug must not end supervision
            self._logger.exception("%s: the state callback failed (%s)", self.name, state.value)
