"""Revision 0006 on both backends: known devices (kept per user, newest first) and the growing
sign-in lock, as ems.accounts uses them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher

from ems.accounts import Accounts, Role
from ems.store import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


async def test_a_user_keeps_their_newest_browsers_and_the_lock_grows(
        open_store: Callable[..., Awaitable[Store]]) -> None:
    store = await open_store()
    accounts = Accounts(store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    oldest = await accounts.remember_device(ann, now=T0)
    newest = [await accounts.remember_device(ann, now=T0 + timedelta(minutes=i + 1)) for i in range(20)]

    at, locks = T0 + timedelta(hours=1), []
    for _ in range(7):
        result = await accounts.verify_login("ann", "guess", at)
        if result.locked_until is not None:
            locks.append(result.locked_until - at)
            at = result.locked_until
    owner = await accounts.verify_login("ann", PASSWORD, at - timedelta(seconds=1), newest[-1])
    forgotten = await accounts.verify_login("ann", PASSWORD, at - timedelta(seconds=1), oldest)

    assert locks == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert owner.user is not None
    assert forgotten.user is None and forgotten.locked_until is not None
