"""A set of background tasks with one owner: started by it, cancelled by it, failures logged.

Every component that starts tasks keeps them in a ``TaskSet`` so that stopping the component
cancels all of them (no task outlives its owner) and a task that fails is logged, not lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


class TaskSet:
    """Owned asyncio tasks: ``spawn`` them, ``cancel_all`` on stop."""

    def __init__(self, logger: logging.Logger, owner: str = "") -> None:
        self._logger = logger
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._logger.error("%sTask %s failed", self._owner and f"[{self._owner}] ",
                               task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
