"""Accounts and access over a real SQLite store: hashes, lockout, sessions, tokens, consent, usage log."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from ems.accounts import (
    AccountRejected,
    Accounts,
    LoginResult,
    Role,
    Scope,
    digest,
    ensure_demo_owner,
)
from ems.config import StoreConfig
from ems.store import Store, queries, tables
from ems.store.engine import create_engine, database_url, migrate

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
# Cheap argon2id parameters keep the suite quick; the hash format is the same.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(StoreConfig(url=None, message_retention_hours=24.0, reading_retention_days=400), tmp_path)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def accounts(store: Store) -> Accounts:
    return Accounts(store, FAST)


async def _all(store: Store, table: sa.Table) -> list[sa.Row]:
    async def read(conn):
        return list(await conn.execute(sa.select(table)))

    return await store.read("read a table", read)


async def test_password_is_stored_as_an_argon2id_hash(store: Store) -> None:
    accounts = Accounts(store)  # the production parameters
    await accounts.create_user("Ann", PASSWORD, Role.OWNER)

    row = await store.read("read a user", queries.user_by_name, "ann")

    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash


async def test_right_password_signs_in_and_a_wrong_one_does_not(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)

    assert (await accounts.verify_login("Ann ", PASSWORD)).user.username == "ann"
    assert (await accounts.verify_login("ann", "wrong password")).user is None


async def test_five_failures_in_15_minutes_lock_the_name_for_a_minute(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    for minute in range(4):
        result = await accounts.verify_login("ann", "guess", T0 + timedelta(minutes=minute))
        assert result.user is None and result.locked_until is None

    fifth = await accounts.verify_login("ann", "guess", T0 + timedelta(minutes=4))

    assert fifth.locked_until == T0 + timedelta(minutes=5)
    locked = await accounts.verify_login("ann", PASSWORD, T0 + timedelta(minutes=4, seconds=59))
    assert locked.user is None and locked.locked_until == fifth.locked_until
    assert (await accounts.verify_login("ann", PASSWORD, T0 + timedelta(minutes=5))).user is not None


async def test_the_lock_doubles_at_each_failure_after_it_up_to_15_minutes(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    at, locks = T0, []
    for _ in range(10):
        result = await accounts.verify_login("ann", "guess", at)
        if result.locked_until is not None:
            locks.append(result.locked_until - at)
            at = result.locked_until  # the stranger tries again the moment the lock ends
        else:
            at += timedelta(seconds=10)

    assert locks == [timedelta(minutes=m) for m in (1, 2, 4, 8, 15, 15)]


async def test_the_name_is_forgiven_after_a_quiet_window(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    for second in range(5):
        last = await accounts.verify_login("ann", "guess", T0 + timedelta(seconds=second))
    assert last.locked_until is not None

    later = last.locked_until + timedelta(minutes=15)
    assert (await accounts.verify_login("ann", "guess", later)).locked_until is None  # counting afresh


async def test_a_known_browser_signs_in_while_strangers_are_locked_out(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    device = await accounts.remember_device(ann, now=T0)
    for second in range(5):
        stranger = await accounts.verify_login("ann", "guess", T0 + timedelta(seconds=second))
    assert stranger.locked_until is not None
    at = T0 + timedelta(seconds=10)

    owner = await accounts.verify_login("ann", PASSWORD, at, device)
    assert owner.user is not None and owner.user.id == ann.id
    again = await accounts.verify_login("ann", PASSWORD, at)  # no cookie: still a stranger
    assert again.user is None and again.locked_until == stranger.locked_until
    # the owner's mistyping from the known browser does not lengthen the strangers' lock either
    assert (await accounts.verify_login("ann", "typo", at, device)) == LoginResult()
    assert (await accounts.verify_login("ann", PASSWORD, at)).locked_until == stranger.locked_until


async def test_another_users_known_browser_is_a_stranger_to_this_name(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    bob = await accounts.create_user("bob", PASSWORD, Role.MEMBER)
    bobs_device = await accounts.remember_device(bob, now=T0)
    for second in range(5):
        await accounts.verify_login("ann", "guess", T0 + timedelta(seconds=second))

    result = await accounts.verify_login("ann", PASSWORD, T0 + timedelta(seconds=10), bobs_device)
    forged = await accounts.verify_login("ann", PASSWORD, T0 + timedelta(seconds=10), "made-up")

    assert result.user is None and result.locked_until is not None
    assert forged.user is None and forged.locked_until is not None


async def test_a_known_browser_keeps_its_cookie_and_a_user_keeps_twenty(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    first = await accounts.remember_device(ann, now=T0)
    assert await accounts.remember_device(ann, first, now=T0 + timedelta(days=1)) == first
    others = [await accounts.remember_device(ann, now=T0 + timedelta(days=2, minutes=i)) for i in range(20)]

    assert first not in others
    assert await accounts.remember_device(ann, first, now=T0 + timedelta(days=3)) != first  # the oldest went


async def test_failures_spread_over_more_than_15_minutes_do_not_lock(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    for minute in (0, 5, 10, 14, 16, 20):
        result = await accounts.verify_login("ann", "guess", T0 + timedelta(minutes=minute))
        assert result.locked_until is None
    assert (await accounts.verify_login("ann", PASSWORD, T0 + timedelta(minutes=21))).user is not None


async def test_a_success_clears_the_failures(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    for minute in range(4):
        await accounts.verify_login("ann", "guess", T0 + timedelta(minutes=minute))
    await accounts.verify_login("ann", PASSWORD, T0 + timedelta(minutes=4))

    result = await accounts.verify_login("ann", "guess", T0 + timedelta(minutes=5))

    assert result.locked_until is None


async def test_an_unknown_name_is_locked_like_a_known_one(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    answers = {}
    for name in ("ann", "nobody"):
        for minute in range(5):
            answers[name] = await accounts.verify_login(name, "guess", T0 + timedelta(minutes=minute))

    assert answers["ann"] == answers["nobody"]
    assert answers["nobody"].locked_until is not None


async def test_the_first_owner_is_created_only_while_no_user_exists(accounts: Accounts) -> None:
    assert not await accounts.has_users()
    await accounts.create_user("ann", PASSWORD, Role.OWNER, first=True)

    with pytest.raises(AccountRejected, match="already exists"):
        await accounts.create_user("bob", PASSWORD, Role.OWNER, first=True)
    assert await accounts.has_users()


async def test_a_short_password_is_refused_with_its_minimum(accounts: Accounts) -> None:
    with pytest.raises(AccountRejected, match="at least 8 characters"):
        await accounts.create_user("ann", "short", Role.OWNER)


async def test_the_last_owner_can_be_neither_removed_nor_demoted(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    bob = await accounts.create_user("bob", PASSWORD, Role.MEMBER)

    with pytest.raises(AccountRejected, match="needs an owner"):
        await accounts.remove_user(ann.id)
    with pytest.raises(AccountRejected, match="needs an owner"):
        await accounts.set_role(ann.id, Role.MEMBER)
    await accounts.set_role(bob.id, Role.OWNER)
    await accounts.remove_user(ann.id)
    assert [u.username for u in await accounts.users()] == ["bob"]


async def test_a_session_is_stored_only_as_a_digest(accounts: Accounts, store: Store) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)

    started = await accounts.start_session(ann, T0)

    [row] = await _all(store, tables.sessions)
    assert row.id_hash == digest(started.session_id) != started.session_id
    assert (await accounts.session(started.session_id, T0)).user == ann


async def test_an_unused_session_ends_after_seven_days(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    started = await accounts.start_session(ann, T0)

    assert await accounts.session(started.session_id, T0 + timedelta(days=6)) is not None
    assert await accounts.session(started.session_id, T0 + timedelta(days=12)) is not None  # pushed back
    assert await accounts.session(started.session_id, T0 + timedelta(days=20)) is None


async def test_an_ended_session_no_longer_signs_in(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    started = await accounts.start_session(ann)

    await accounts.end_session(started.session_id)

    assert await accounts.session(started.session_id) is None


async def test_a_token_is_stored_only_as_a_digest(accounts: Accounts, store: Store) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)

    new = await accounts.create_token(ann, "script", [Scope.READ])

    [row] = await _all(store, tables.api_tokens)
    assert row.token_hash == digest(new.secret)
    assert new.secret not in {str(v) for v in row}
    assert (await accounts.authenticate_token(new.secret)).id == new.token.id


async def test_a_revoked_token_no_longer_authenticates(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    new = await accounts.create_token(ann, "script", [Scope.READ])

    assert await accounts.revoke_token(new.token.id)

    assert await accounts.authenticate_token(new.secret) is None


async def test_a_member_cannot_create_an_admin_token(accounts: Accounts) -> None:
    bob = await accounts.create_user("bob", PASSWORD, Role.MEMBER)

    with pytest.raises(AccountRejected, match="member cannot grant admin"):
        await accounts.create_token(bob, "sneaky", [Scope.READ, Scope.ADMIN])


async def test_a_token_never_does_more_than_its_users_role_now_allows(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    bob = await accounts.create_user("bob", PASSWORD, Role.OWNER)
    new = await accounts.create_token(bob, "script", [Scope.READ, Scope.ADMIN])

    await accounts.set_role(bob.id, Role.MEMBER)

    token = await accounts.authenticate_token(new.secret)
    assert token.effective_scopes == {Scope.READ}


async def test_a_third_party_token_needs_a_consent_for_its_scopes(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    consent = await accounts.grant_consent(ann, "GridFlex", [Scope.READ])

    with pytest.raises(AccountRejected, match="GridFlex was not granted override_events"):
        await accounts.create_token(ann, "GridFlex", [Scope.READ, Scope.OVERRIDE_EVENTS], consent=consent)
    new = await accounts.create_token(ann, "GridFlex", [Scope.READ], consent=consent)
    assert (await accounts.authenticate_token(new.secret)).party == "GridFlex"


async def test_a_third_party_cannot_be_granted_admin(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)

    with pytest.raises(AccountRejected, match="cannot be granted admin"):
        await accounts.grant_consent(ann, "GridFlex", [Scope.READ, Scope.ADMIN])


async def test_revoking_a_consent_revokes_its_tokens(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    consent = await accounts.grant_consent(ann, "GridFlex", [Scope.READ], T0)
    new = await accounts.create_token(ann, "GridFlex", [Scope.READ], consent=consent)
    own = await accounts.create_token(ann, "mine", [Scope.READ])

    assert await accounts.revoke_consent(consent.id, T0 + timedelta(days=1))

    assert await accounts.authenticate_token(new.secret) is None
    assert await accounts.authenticate_token(own.secret) is not None
    [record] = await accounts.consents()
    assert (record.party, record.scopes, record.granted_by) == ("GridFlex", {Scope.READ}, "ann")
    assert (record.granted_at, record.revoked_at) == (T0, T0 + timedelta(days=1))
    with pytest.raises(AccountRejected, match="revoked"):
        await accounts.create_token(ann, "again", [Scope.READ], consent=await accounts.consent(consent.id))


async def test_every_token_use_is_logged(accounts: Accounts) -> None:
    ann = await accounts.create_user("ann", PASSWORD, Role.OWNER)
    new = await accounts.create_token(ann, "script", [Scope.READ])

    await accounts.record_token_use(new.token.id, "GET", "/api/v1/meter", 200, T0)
    await accounts.record_token_use(new.token.id, "POST", "/api/v1/events/1/override", 403, T0 + timedelta(seconds=1))

    uses = await accounts.token_uses()
    assert [(u.token_id, u.token_name, u.method, u.path, u.status) for u in uses] == [
        (new.token.id, "script", "POST", "/api/v1/events/1/override", 403),
        (new.token.id, "script", "GET", "/api/v1/meter", 200),
    ]
    assert (await accounts.tokens())[0].last_used_at == T0 + timedelta(seconds=1)


async def test_removing_a_user_ends_their_sessions_and_tokens(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    bob = await accounts.create_user("bob", PASSWORD, Role.MEMBER)
    session = await accounts.start_session(bob)
    token = await accounts.create_token(bob, "tablet", [Scope.READ])

    await accounts.remove_user(bob.id)

    assert await accounts.session(session.session_id) is None
    assert await accounts.authenticate_token(token.secret) is None


async def test_removing_a_user_forgets_their_browsers(accounts: Accounts) -> None:
    await accounts.create_user("ann", PASSWORD, Role.OWNER)
    bob = await accounts.create_user("bob", PASSWORD, Role.MEMBER)
    device = await accounts.remember_device(bob, now=T0)
    await accounts.remove_user(bob.id)
    await accounts.create_user("bob", PASSWORD, Role.MEMBER)  # a new account under the old name
    for second in range(5):
        await accounts.verify_login("bob", "guess", T0 + timedelta(seconds=second))

    result = await accounts.verify_login("bob", PASSWORD, T0 + timedelta(seconds=10), device)

    assert result.user is None and result.locked_until is not None


async def test_the_demo_owner_and_its_token_file(accounts: Accounts, tmp_path: Path) -> None:
    token_file = tmp_path / "demo-api-token"

    demo = await ensure_demo_owner(accounts, token_file)

    secret = token_file.read_text().strip()
    assert demo.role is Role.OWNER
    assert (await accounts.verify_login("demo", "demo")).user == demo
    assert (await accounts.authenticate_token(secret)).user == demo
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    await ensure_demo_owner(accounts, token_file)  # the next start keeps the working token
    assert token_file.read_text().strip() == secret


async def test_an_0002_database_upgrades_to_the_account_tables(tmp_path: Path) -> None:
    engine = create_engine(database_url(None, tmp_path))
    await migrate(engine, "0002")
    await migrate(engine)

    def names(conn: sa.Connection) -> set[str]:
        return set(sa.inspect(conn).get_table_names())

    async with engine.connect() as conn:
        found = await conn.run_sync(names)
    await engine.dispose()
    assert {"users", "sessions", "login_failures", "consents", "api_tokens", "token_uses"} <= found
