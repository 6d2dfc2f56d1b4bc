"""Accounts and access: users and roles, sign-in with lockout, sessions, scoped API tokens,
third-party consent and the log of every token use.

A service over the store, free of any web framework, so the web layer, the CLI and the tests
share one set of rules. Passwords are argon2id hashes (hashed in an executor: argon2 is slow on
purpose); session ids and tokens are random and kept only as SHA-256 digests, so a copy of the
database signs nobody in. A third party (an aggregator acting for the customer) gets a token
only under a consent the owner granted for named scopes, and revoking the consent revokes its
tokens (C6 3.1 step 1: "explicit permission from the customer ... to access HAN data").
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update

from ems.errors import RejectedCommand
from ems.model import utcnow
from ems.store import Store, commands, queries, tables

_LOGGER = logging.getLogger(__name__)

MAX_FAILURES = 5  # failed sign-ins within FAILURE_WINDOW ...
FAILURE_WINDOW = timedelta(minutes=15)
FIRST_LOCK = timedelta(minutes=1)  # ... lock the name for strangers this long, doubling at each failure after
LOCK_FOR = timedelta(minutes=15)  # ... up to this long
KNOWN_DEVICES_KEPT = 20  # per user: the browsers they signed in from most recently
SESSION_IDLE = timedelta(days=7)  # a session unused this long ends
SESSION_MAX = timedelta(days=30)  # and none lives longer than this
LANGUAGES = ("en", "es", "zh")  # a user's choice; the catalogs are in web/translations
SESSION_TOUCH_EVERY = timedelta(hours=1)  # how often a used session's expiry is pushed back
TOKEN_USE_RETENTION = timedelta(days=90)
MIN_PASSWORD_LENGTH = 8
HASHING_AT_ONCE = 2  # argon2id takes 64 MiB a hash: twelve sign-ins at once took 384 MB more
TOKEN_PREFIX = "ems_"
# A read-only token named "Kiosk: <place>" is a display link for the In-Home Display (/ihd):
# a naming convention rather than a column, so the web layer can hold it to the display alone.
KIOSK_NAME_PREFIX = "Kiosk: "
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


class Role(StrEnum):
    OWNER = "owner"  # everything
    MEMBER = "member"  # household member: view, confirm messages, override events
    INSTALLER = "installer"  # commissioning and provisioning pages only


class Scope(StrEnum):
    READ = "read"  # every GET of the API and the pages
    CONFIRM_MESSAGES = "confirm_messages"  # answer a utility message
    OVERRIDE_EVENTS = "override_events"  # opt out of a DR event (C6 3.3 step 4)
    COMMISSION = "commission"  # commissioning and provisioning
    ADMIN = "admin"  # users, tokens, consents, and any write not named above


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: frozenset(Scope),
    Role.MEMBER: frozenset({Scope.READ, Scope.CONFIRM_MESSAGES, Scope.OVERRIDE_EVENTS}),
    Role.INSTALLER: frozenset({Scope.COMMISSION}),
}
# What a third party may be granted: acting for the customer, never administering the appliance.
THIRD_PARTY_SCOPES = frozenset({Scope.READ, Scope.CONFIRM_MESSAGES, Scope.OVERRIDE_EVENTS})


class AccountRejected(RejectedCommand):
    """An account request refused; the message is meant for the person at the page."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    created_at: datetime
    language: str | None = None  # the language the person chose; None follows the site's
    temperature_unit: str | None = None  # "C" or "F" as the person chose; None follows the site's

    @property
    def scopes(self) -> frozenset[Scope]:
        return ROLE_SCOPES[self.role]


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who, the CSRF token its forms must carry, and when it ends."""

    user: User
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just started; ``session_id`` goes into the cookie and is never stored."""

    session_id: str
    session: Session


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A sign-in attempt: the user on success; otherwise whether the name is locked, and until when."""

    user: User | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    id: int
    party: str
    scopes: frozenset[Scope]
    granted_by: str | None  # the granting user's name (None once that user is removed)
    granted_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    name: str
    user: User
    scopes: frozenset[Scope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    consent_id: int | None = None
    party: str | None = None  # the third party, for a token issued under a consent

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_kiosk(self) -> bool:
        """A display link: named "Kiosk: ...", the ``read`` scope only, not a third party's."""
        return (
            self.name.startswith(KIOSK_NAME_PREFIX)
            and self.scopes == frozenset({Scope.READ})
            and self.consent_id is None
        )

    @property
    def effective_scopes(self) -> frozenset[Scope]:
        """What the token may do: its scopes, never more than its user's role allows."""
        return self.scopes & self.user.scopes


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created; ``secret`` is shown once and never stored."""

    token: ApiToken
    secret: str


@dataclass(frozen=True, slots=True)
class TokenUse:
    token_id: int
    token_name: str
    at: datetime
    method: str
    path: str
    status: int


def digest(secret: str) -> str:
    """SHA-256 of a session id or token: what the store keeps (the secrets are 256-bit random)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def normalize_username(username: str) -> str:
    return username.strip().lower()


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scopes by name; an unknown name is refused with the list of known ones."""
    scopes = set()
    for name in names:
        try:
            scopes.add(Scope(name))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise AccountRejected(f"unknown scope {name!r} (known: {known})") from None
    return frozenset(scopes)


def _scope_text(scopes: Iterable[Scope]) -> str:
    return " ".join(sorted(s.value for s in scopes))


def _scopes_from_text(text: str) -> frozenset[Scope]:
    known = {s.value for s in Scope}
    return frozenset(Scope(n) for n in text.split() if n in known)  # a dropped scope stays unused


def check_password(password: str) -> None:
    """Refuse a password too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountRejected(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.")


def _user(row: Any, prefix: str = "") -> User:
    return User(
        id=row.user_id if prefix else row.id,
        username=row.username,
        role=Role(row.role),
        created_at=row.user_created_at if prefix else row.created_at,
        language=getattr(row, f"{prefix}language", None),
        temperature_unit=getattr(row, f"{prefix}temperature_unit", None),
    )


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        user=_user(row, "user_"),
        scopes=_scopes_from_text(row.scopes),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        consent_id=row.consent_id,
        party=row.party,
    )


def _consent(row: Any) -> Consent:
    return Consent(
        id=row.id,
        party=row.party,
        scopes=_scopes_from_text(row.scopes),
        granted_by=row.username,
        granted_at=row.granted_at,
        revoked_at=row.revoked_at,
    )


class Accounts:
    """Users, sessions, tokens and consents over the store; one per web app (it keeps no state)."""

    def __init__(self, store: Store, hasher: PasswordHasher | None = None) -> None:
        self._store = store
        self._hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 parameters
        self._dummy_hash: str | None = None
        self._hashing = asyncio.Semaphore(HASHING_AT_ONCE)  # the others wait their turn, in order

    # -- users -----------------------------------------------------------------------------

    async def has_users(self) -> bool:
        """False until the owner's account exists (the first start asks for it)."""
        return await self._store.read("count users", queries.user_count) > 0

    async def create_user(
        self,
        username: str,
        password: str,
        role: Role,
        *,
        first: bool = False,
        allow_weak: bool = False,
        now: datetime | None = None,
    ) -> User:
        """Add a user; ``first`` adds the first owner only while no user exists at all."""
        name = normalize_username(username)
        if not _USERNAME.match(name):
            raise AccountRejected(
                "A user name is 1 to 64 letters, digits or . _ @ - (starting with a letter or digit)."
            )
        if not allow_weak:
            check_password(password)
        if first and role is not Role.OWNER:
            raise AccountRejected("The first account is the owner's.")
        password_hash = await self._hash(password)
        at = now or utcnow()
        user_id = await self._store.write(
            "add a user",
            lambda conn: commands.add_user(conn, name, password_hash, role.value, at, only_if_first=first),
        )
        if user_id is None:
            raise AccountRejected(
                "The owner's account already exists; sign in instead."
                if first
                else f"There is already a user named {name!r}."
            )
        _LOGGER.info("Added user %s (%s)", name, role.value)
        return User(user_id, name, role, at)

    async def users(self) -> list[User]:
        return [_user(row) for row in await self._store.read("read users", queries.users)]

    async def user(self, username: str) -> User | None:
        row = await self._store.read(
            "read a user", queries.user_by_name, normalize_username(username)
        )
        return None if row is None else _user(row)

    async def set_language(self, user_id: int, language: str | None) -> None:
        """Set the language a user reads the pages in (a code such as "es"); None follows the site."""
        if language is not None and language not in LANGUAGES:
            raise AccountRejected(f"Choose one of the languages: {', '.join(LANGUAGES)}.")
        users = tables.users
        await self._store.write(
            "set a user's language",
            lambda conn: conn.execute(update(users).where(users.c.id == user_id).values(language=language)),
        )
        _LOGGER.info("User %d reads in %s", user_id, language or "the site's language")

    async def set_temperature_unit(self, user_id: int, unit: str | None) -> None:
        """Set the unit a user reads temperatures in ("C" or "F"); None follows the site's."""
        if unit not in (None, "C", "F"):
            raise AccountRejected("Choose °C or °F.")
        users = tables.users
        await self._store.write(
            "set a user's temperature unit",
            lambda conn: conn.execute(update(users).where(users.c.id == user_id).values(temperature_unit=unit)),
        )
        _LOGGER.info("User %d reads temperatures in %s", user_id, unit and f"°{unit}" or "the site's unit")

    async def set_role(self, user_id: int, role: Role) -> None:
        """Change a user's role; the last owner stays an owner."""
        changed = await self._store.write(
            "change a role", lambda conn: commands.set_role(conn, user_id, role.value, Role.OWNER.value)
        )
        if not changed:
            raise AccountRejected("The appliance needs an owner: make someone else owner first.")
        _LOGGER.info("User %d is now %s", user_id, role.value)

    async def remove_user(self, user_id: int) -> None:
        """Remove a user with their sessions and tokens; the last owner cannot be removed."""
        removed = await self._store.write(
            "remove a user", lambda conn: commands.delete_user(conn, user_id, Role.OWNER.value)
        )
        if not removed:
            raise AccountRejected("The appliance needs an owner: the last owner cannot be removed.")
        _LOGGER.info("Removed user %d", user_id)

    # -- sign-in ---------------------------------------------------------------------------

    async def verify_login(
        self, username: str, password: str, now: datetime | None = None, device: str | None = None
    ) -> LoginResult:
        """Check a sign-in. Five failures in 15 minutes lock the name for a minute, then for twice
        as long at each further failure, up to 15 minutes.

        The lock holds strangers only: ``device`` is the known-device cookie of the browser asking
        (``remember_device``); one that this user signed in from before is let through to the
        password check, so a stranger's guesses never lock the owner out of their own browser,
        and its failures do not count against the name. Unknown names are treated exactly like
        known ones (same hashing work, same counting, same lock), so the answer never tells
        whether a user exists.
        """
        at = now or utcnow()
        name = normalize_username(username)[:64]
        failure = await self._store.read("read sign-in failures", queries.login_failure, name)
        row = await self._store.read("read a user", queries.user_by_name, name)
        known = row is not None and device is not None and await self._store.read(
            "read a known device", queries.known_device_user, digest(device)) == row.id
        if not known and failure is not None and failure.locked_until is not None and failure.locked_until > at:
            return LoginResult(locked_until=failure.locked_until)
        stored_hash = row.password_hash if row is not None else await self._dummy()
        ok = await self._verify(stored_hash, password) and row is not None
        if not ok:
            if known:
                return LoginResult()
            locked_until = await self._store.write(
                "count a failed sign-in",
                lambda conn: commands.record_login_failure(
                    conn, name, at, FAILURE_WINDOW, MAX_FAILURES, FIRST_LOCK, LOCK_FOR
                ),
            )
            if locked_until is not None:
                _LOGGER.warning("Sign-in paused for a user name until %s (for browsers it has not signed in "
                                "from) after %d failures", locked_until.isoformat(timespec="seconds"), MAX_FAILURES)
            return LoginResult(locked_until=locked_until)
        assert row is not None
        if failure is not None and not known:
            await self._store.write(
                "clear sign-in failures", lambda conn: commands.clear_login_failures(conn, name)
            )
        if self._hasher.check_needs_rehash(row.password_hash):
            new_hash = await self._hash(password)
            await self._store.write(
                "rehash a password", lambda conn: commands.set_password_hash(conn, row.id, new_hash)
            )
        return LoginResult(user=_user(row))

    async def remember_device(self, user: User, device: str | None = None, now: datetime | None = None) -> str:
        """Mark the browser ``user`` just signed in from as known; returns its cookie's secret.

        ``device`` is the cookie it already carries: kept if it is this user's, otherwise a new
        one is made. Only the secret's digest is stored.
        """
        at = now or utcnow()
        if device is None or await self._store.read(
                "read a known device", queries.known_device_user, digest(device)) != user.id:
            device = secrets.token_urlsafe(32)
        id_hash = digest(device)
        await self._store.write(
            "remember a device",
            lambda conn: commands.remember_device(conn, id_hash, user.id, at, KNOWN_DEVICES_KEPT),
        )
        return device

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.get_running_loop().run_in_executor(None, self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        async with self._hashing:
            return await asyncio.get_running_loop().run_in_executor(None, verify)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_hex(16))
        return self._dummy_hash

    # -- sessions --------------------------------------------------------------------------

    async def start_session(self, user: User, now: datetime | None = None) -> NewSession:
        """A new session (a fresh id at every sign-in, so an id planted before it is useless)."""
        at = now or utcnow()
        session_id = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        expires_at = at + SESSION_IDLE
        await self._store.write(
            "start a session",
            lambda conn: commands.add_session(
                conn, digest(session_id), user.id, csrf_token, at, expires_at
            ),
        )
        return NewSession(session_id, Session(user, csrf_token, expires_at))

    async def session(self, session_id: str, now: datetime | None = None) -> Session | None:
        """The live session with this id, its expiry pushed back if it was used; None if none."""
        at = now or utcnow()
        id_hash = digest(session_id)
        row = await self._store.read("read a session", queries.session_with_user, id_hash)
        if row is None:
            return None
        if row.expires_at <= at:
            await self._store.write("end a session", lambda conn: commands.delete_session(conn, id_hash))
            return None
        expires_at = row.expires_at
        if at - row.last_seen_at >= SESSION_TOUCH_EVERY:
            expires_at = min(at + SESSION_IDLE, row.created_at + SESSION_MAX)
            await self._store.write(
                "touch a session",
                lambda conn: commands.touch_session(conn, id_hash, at, expires_at),
            )
        return Session(_user(row, "user_"), row.csrf_token, expires_at)

    async def end_session(self, session_id: str) -> None:
        id_hash = digest(session_id)
        await self._store.write("end a session", lambda conn: commands.delete_session(conn, id_hash))

    # -- tokens ----------------------------------------------------------------------------

    async def create_token(
        self,
        user: User,
        name: str,
        scopes: Iterable[Scope],
        *,
        consent: Consent | None = None,
        now: datetime | None = None,
    ) -> NewToken:
        """A bearer token for ``user`` with ``scopes``; under a consent, only its scopes."""
        wanted = frozenset(scopes)
        label = name.strip()[:128]
        if not label:
            raise AccountRejected("Give the token a name, so you know later who uses it.")
        if not wanted:
            raise AccountRejected("Choose at least one scope.")
        if not wanted <= user.scopes:
            raise AccountRejected(
                f"A {user.role.value} cannot grant {_scope_text(wanted - user.scopes)}."
            )
        if consent is not None:
            if not consent.active:
                raise AccountRejected(f"The consent for {consent.party} was revoked.")
            if not wanted <= consent.scopes:
                raise AccountRejected(
                    f"{consent.party} was not granted {_scope_text(wanted - consent.scopes)}."
                )
        at = now or utcnow()
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        consent_id = None if consent is None else consent.id
        token_id = await self._store.write(
            "add a token",
            lambda conn: commands.add_token(
                conn, user.id, label, digest(secret), _scope_text(wanted), consent_id, at
            ),
        )
        _LOGGER.info("Token %d (%s) created for %s: %s", token_id, label, user.username, _scope_text(wanted))
        token = ApiToken(
            token_id, label, user, wanted, at, None, None, consent_id,
            None if consent is None else consent.party,
        )
        return NewToken(token, secret)

    async def create_kiosk_token(self, user: User, place: str, now: datetime | None = None) -> NewToken:
        """A read-only display link for the In-Home Display on a wall at ``place``."""
        where = " ".join(place.split())
        if not where:
            raise AccountRejected("Say where the display hangs (e.g. Shop wall), so you can revoke it later.")
        return await self.create_token(user, KIOSK_NAME_PREFIX + where, [Scope.READ], now=now)

    async def authenticate_token(self, secret: str) -> ApiToken | None:
        """The active token with this secret (its consent still in force), or None."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        row = await self._store.read("read a token", queries.token_by_hash, digest(secret))
        if row is None or row.revoked_at is not None:
            return None
        if row.consent_id is not None and row.consent_revoked_at is not None:
            return None
        return _token(row)

    async def tokens(self) -> list[ApiToken]:
        """Every token, newest first (revoked ones too, for the record)."""
        return [_token(row) for row in await self._store.read("read tokens", queries.tokens)]

    async def revoke_token(self, token_id: int, now: datetime | None = None) -> bool:
        at = now or utcnow()
        revoked = await self._store.write(
            "revoke a token", lambda conn: commands.revoke_token(conn, token_id, at)
        )
        if revoked:
            _LOGGER.info("Token %d revoked", token_id)
        return revoked

    async def record_token_use(
        self, token_id: int, method: str, path: str, status: int, at: datetime | None = None
    ) -> None:
        """Log one request made with a token (the path only: a query string may hold a token)."""
        when = at or utcnow()
        await self._store.write(
            "log a token use",
            lambda conn: commands.add_token_use(
                conn, token_id, when, method, path, status, when - TOKEN_USE_RETENTION
            ),
        )

    async def token_uses(self, limit: int = 200) -> list[TokenUse]:
        """The latest uses of any token, newest first."""
        rows = await self._store.read("read token uses", queries.token_uses, limit)
        return [TokenUse(r.token_id, r.name, r.at, r.method, r.path, r.status) for r in rows]

    # -- third-party consent ---------------------------------------------------------------

    async def grant_consent(
        self, owner: User, party: str, scopes: Iterable[Scope], now: datetime | None = None
    ) -> Consent:
        """Record the owner's explicit consent for ``party`` to act with ``scopes``."""
        if owner.role is not Role.OWNER:
            raise AccountRejected("Only the owner can give a third party access.")
        wanted = frozenset(scopes)
        who = party.strip()[:128]
        if not who:
            raise AccountRejected("Name the third party you give access to.")
        if not wanted:
            raise AccountRejected("Choose at least one scope.")
        if not wanted <= THIRD_PARTY_SCOPES:
            raise AccountRejected(
                f"A third party cannot be granted {_scope_text(wanted - THIRD_PARTY_SCOPES)}."
            )
        at = now or utcnow()
        consent_id = await self._store.write(
            "record a consent",
            lambda conn: commands.add_consent(conn, who, _scope_text(wanted), owner.id, at),
        )
        _LOGGER.info("Consent %d granted to %s for %s", consent_id, who, _scope_text(wanted))
        return Consent(consent_id, who, wanted, owner.username, at, None)

    async def consent(self, consent_id: int) -> Consent | None:
        row = await self._store.read("read a consent", queries.consent, consent_id)
        return None if row is None else _consent(row)

    async def consents(self) -> list[Consent]:
        return [_consent(row) for row in await self._store.read("read consents", queries.consents)]

    async def revoke_consent(self, consent_id: int, now: datetime | None = None) -> bool:
        """Revoke a consent and, with it, every token issued under it."""
        at = now or utcnow()
        revoked = await self._store.write(
            "revoke a consent", lambda conn: commands.revoke_consent(conn, consent_id, at)
        )
        if revoked:
            _LOGGER.info("Consent %d revoked with its tokens", consent_id)
        return revoked


DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"


async def ensure_demo_owner(accounts: Accounts, token_file: Path) -> User:
    """``ems demo``'s owner ``demo``/``demo`` and a token for it in ``token_file`` (kept if it works)."""
    user = await accounts.user(DEMO_USERNAME)
    if user is None:
        user = await accounts.create_user(DEMO_USERNAME, DEMO_PASSWORD, Role.OWNER, allow_weak=True)
    if await asyncio.to_thread(token_file.exists):
        kept = (await asyncio.to_thread(token_file.read_text)).strip()
        if await accounts.authenticate_token(kept) is not None:
            return user
    new = await accounts.create_token(user, "demo", user.scopes)
    await asyncio.to_thread(_write_secret, token_file, new.secret + "\n")
    _LOGGER.info("Demo owner %r; its API token is in %s", DEMO_USERNAME, token_file)
    return user


def _write_secret(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds a token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above is for a new file only; an older one may be readable to all
    with os.fdopen(fd, "w") as file:
        file.write(text)
