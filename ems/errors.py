"""The appliance's exceptions, grouped by what the caller must do about them."""

from __future__ import annotations


class EmsError(Exception):
    """Base of every error the appliance raises on purpose."""


class ConfigError(EmsError):
    """The configuration is wrong: a person must fix a file; the appliance does not start.

    ``problems`` lists every problem found, each naming the file, line and key path.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DocumentRefused(ConfigError):
    """A YAML document refused before it is read: too large, nested too deep, or its aliases
    expand too far (a "billion laughs"). The web answers 400, not the rule problems' 422."""


class NotReady(EmsError):
    """A peer (meter, radio, database) is not reachable yet: retry later."""


class DeviceError(EmsError):
    """A device did not do what was asked (no answer, refused, out of range)."""


class RejectedCommand(EmsError):
    """A request was understood but refused (bad value, not allowed now); say why."""


class StoreError(EmsError):
    """The store could not be opened or migrated; data is safe, the cause is named."""


class NotFound(RejectedCommand):
    """What the request names does not exist here (an unknown event, device or message)."""


class Conflict(RejectedCommand):
    """The request clashes with how things stand: already so, or over (asking again changes nothing)."""


class StoreUnavailable(StoreError, NotReady):
    """The database cannot be written now (the disk is full, it went read-only, it is unreachable).

    Its message is for a person (no path, no SQL); the store retries by itself and says when it
    works again. ``problem`` is "disk_full" or "unwritable".
    """

    def __init__(self, message: str, problem: str = "unwritable") -> None:
        super().__init__(message)
        self.problem = problem
