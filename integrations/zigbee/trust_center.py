"""The trust center of an SE network: who may join, and with which link key (SE 1.x §5.4, §6).

On a SmartConnect HAN the meter is the coordinator and trust center. It admits a device only
after the utility registered the device's IEEE address and install code with it (the link key
is derived from the install code, §5.4.8.1) and only if the utility approved the device's type.
It then sends the network key in an APS Transport-Key secured with that link key: a joiner
with another install code cannot read it. `VirtualHan` runs one of these when the radio joins
the network rather than forming it (the meter's network); no `ems` import.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime

import zigpy.types as t

from .install_code import InstallCode

DEVICE_TYPES = (
    "energy_management_system",
    "in_home_display",
    "programmable_thermostat",
    "load_control_device",
    "smart_appliance",
    "range_extender",
    "prepayment_terminal",
)
DEFAULT_DEVICE_TYPE = "energy_management_system"
FIRST_JOINER_NWK = 0x2A01

# The identity of an appliance that has none of its own yet (development, tests, the demo), and
# the registration of it that the simulated meter has unless its scenario says otherwise. A real
# appliance creates its own identity on first start; its install code is then what the utility
# (or the scenario, or `ems simulate-meter --register`) registers.
DEVELOPMENT_IEEE = "02:50:52:45:4d:00:00:01"
DEVELOPMENT_INSTALL_CODE = InstallCode(b"premise-ems-dev1")
DEVELOPMENT_REGISTRATION = {
    "ieee": DEVELOPMENT_IEEE,
    "install_code": DEVELOPMENT_INSTALL_CODE.hex(),
    "device_type": "energy_management_system",
}


class JoinRefusal(enum.IntEnum):
    """Why a trust center did not admit a joiner (the number travels on the virtual wire)."""

    NOT_REGISTERED = 1
    WRONG_INSTALL_CODE = 2
    DEVICE_TYPE_NOT_APPROVED = 3


# Words for the customer: what happened and what to do about it.
REFUSAL_TEXT = {
    JoinRefusal.NOT_REGISTERED: (
        "the utility has not registered this appliance yet: give them the install code on the"
        " Commissioning page"
    ),
    JoinRefusal.WRONG_INSTALL_CODE: (
        "the meter knows this appliance under another install code: check the install code the"
        " utility registered against the one on the Commissioning page"
    ),
    JoinRefusal.DEVICE_TYPE_NOT_APPROVED: (
        "the utility does not accept this kind of device on its meters: ask them which devices"
        " their program supports"
    ),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Registration:
    """A device the utility registered with the meter."""

    ieee: t.EUI64
    install_code: InstallCode
    device_type: str = DEFAULT_DEVICE_TYPE

    def __post_init__(self) -> None:
        if self.device_type not in DEVICE_TYPES:
            raise ValueError(f"device type {self.device_type!r} is not one of {', '.join(DEVICE_TYPES)}")

    @property
    def link_key(self) -> bytes:
        return self.install_code.link_key

    @classmethod
    def parse(cls, text: str) -> Registration:
        """``IEEE=INSTALLCODE[:DEVICE_TYPE]``, as ``ems simulate-meter --register`` takes it."""
        ieee_text, sep, rest = text.partition("=")
        if not sep:
            raise ValueError(f"expected IEEE=INSTALLCODE, got {text!r}")
        code_text, _, device_type = rest.partition("/")
        return cls(t.EUI64.convert(ieee_text.strip()), InstallCode.parse(code_text),
                   device_type.strip() or DEFAULT_DEVICE_TYPE)


@dataclasses.dataclass(frozen=True, slots=True)
class JoinRecord:
    """One entry of the trust center's log: a join admitted, authenticated or refused."""

    at: datetime | None
    ieee: t.EUI64
    outcome: str  # "admitted", "authenticated", "refused"
    detail: str


class TrustCenter:
    """The registrations, the network key and the join log of one meter's network."""

    def __init__(
        self,
        ieee: t.EUI64,
        *,
        network_key: bytes,
        registrations: list[Registration] | tuple[Registration, ...] = (),
        approved_device_types: tuple[str, ...] | None = None,
        key_seq: int = 0,
    ) -> None:
        if len(network_key) != 16:
            raise ValueError("the network key has 16 bytes")
        self.ieee = ieee
        self.network_key = bytes(network_key)
        self.key_seq = key_seq
        self.approved_device_types = tuple(approved_device_types or DEVICE_TYPES)
        self._registrations: dict[t.EUI64, Registration] = {}
        self._addresses: dict[t.EUI64, int] = {}
        self.log: list[JoinRecord] = []
        for registration in registrations:
            self.register(registration)

    def register(self, registration: Registration) -> None:
        """The utility registers (or re-registers) a device's install code."""
        self._registrations[registration.ieee] = registration

    def unregister(self, ieee: t.EUI64) -> None:
        self._registrations.pop(ieee, None)

    def registered(self) -> tuple[t.EUI64, ...]:
        return tuple(self._registrations)

    def registration(self, ieee: t.EUI64) -> Registration | None:
        return self._registrations.get(ieee)

    def admit(self, ieee: t.EUI64, device_type: str, at: datetime | None = None) -> Registration | JoinRefusal:
        """The registration that lets ``ieee`` join, or why it may not."""
        registration = self._registrations.get(ieee)
        if registration is None:
            return self._refuse(ieee, JoinRefusal.NOT_REGISTERED, at)
        if device_type not in self.approved_device_types or device_type != registration.device_type:
            return self._refuse(ieee, JoinRefusal.DEVICE_TYPE_NOT_APPROVED, at)
        self.log.append(JoinRecord(at, ieee, "admitted", f"{device_type}, network key sent under its install code"))
        return registration

    def refused_key(self, ieee: t.EUI64, at: datetime | None = None) -> None:
        """The joiner went without using the network key: its install code is not the registered one."""
        self._refuse(ieee, JoinRefusal.WRONG_INSTALL_CODE, at)

    def authenticated(self, ieee: t.EUI64, at: datetime | None = None) -> None:
        self.log.append(JoinRecord(at, ieee, "authenticated", "first frame under the network and link keys"))

    def _refuse(self, ieee: t.EUI64, reason: JoinRefusal, at: datetime | None) -> JoinRefusal:
        self.log.append(JoinRecord(at, ieee, "refused", REFUSAL_TEXT[reason]))
        return reason

    def address_for(self, ieee: t.EUI64, taken: set[int]) -> int:
        """The NWK address the joiner gets (the same one again when it rejoins)."""
        nwk = self._addresses.get(ieee)
        if nwk is None:
            nwk = FIRST_JOINER_NWK
            while nwk in taken or nwk in self._addresses.values():
                nwk += 1
            self._addresses[ieee] = nwk
        return nwk
