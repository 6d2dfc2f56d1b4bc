"""OpenADR 2.0b VEN (with openleadr): a utility's or aggregator's DR program as a source of events.

``signals.py`` turns OpenADR event signals into load-control asks (protocol only); ``ven.py`` runs
openleadr's client: it registers with the VTN, polls, publishes each ask as the same
``LoadControlEvent`` the meter's events are (``meter_id`` is the program id), answers optIn/optOut
and sends the customer's later choice, and offers telemetry reports that go out through the durable
outbox. The section is off unless ``vtn_url`` is set:

    openadr:
      vtn_url: https://vtn.example.com/OpenADR2/Simple/2.0b
      ven_name: home-123                 # as the program enrolled it
      cert: certs/ven.pem                # the VEN's certificate and key (relative to the config folder)
      key: certs/ven.key
      vtn_fingerprint: "ab:cd:..."       # the VTN's certificate fingerprint, as the program gives it
      poll_interval_s: 10                # default: what the VTN asks at registration

The owner can set the same up on the Commissioning page instead (``setup.py``: the certificate
and key uploaded as PEM files, a registration tried before anything is saved).
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol

from ems.errors import ConfigError

__all__ = ["CONFIG_SCHEMA", "VenSettings", "async_setup"]

_ID = vol.All(str, vol.Match(r"^[A-Za-z0-9_.:-]{1,40}$", msg="expected 1-40 letters, digits, '_', '-', '.' or ':'"))


def _url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise vol.Invalid("expected the VTN's http:// or https:// address")
    return value.rstrip("/")


def _fingerprint(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    digits = text.replace(":", "")
    if len(digits) < 20 or any(c not in "0123456789abcdef" for c in digits):
        raise vol.Invalid("expected the VTN's certificate fingerprint: hexadecimal pairs separated by ':'")
    return text


def _together(section: dict[str, Any]) -> dict[str, Any]:
    if bool(section.get("cert")) != bool(section.get("key")):
        missing = "key" if section.get("cert") else "cert"
        raise vol.Invalid("the VEN's certificate and key go together: both or neither", path=[missing])
    if section.get("vtn_url") is None and section.get("ven_name") is not None:
        raise vol.Invalid("a VEN name without the VTN's address: set vtn_url too", path=["vtn_url"])
    return section


CONFIG_SCHEMA = vol.All(
    vol.Schema({
        vol.Optional("vtn_url", default=None): _url,
        vol.Optional("ven_name", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=100))),
        vol.Optional("ven_id", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=100))),
        vol.Optional("program_id", default="openadr"): _ID,
        vol.Optional("meter_id", default="main"): _ID,
        vol.Optional("cert", default=None): vol.Any(None, str),
        vol.Optional("key", default=None): vol.Any(None, str),
        vol.Optional("passphrase", default=None): vol.Any(None, str),
        vol.Optional("ca_file", default=None): vol.Any(None, str),
        vol.Optional("check_hostname", default=True): bool,
        vol.Optional("vtn_fingerprint", default=None): _fingerprint,
        vol.Optional("poll_interval_s", default=None): vol.Any(None, vol.All(vol.Coerce(float), vol.Range(min=0.5, max=86400))),
        vol.Optional("price_threshold_per_kwh", default=0.30): vol.All(vol.Coerce(float), vol.Range(min=0.001)),
    }),
    _together,
)


@dataclass(frozen=True, slots=True)
class VenSettings:
    """The validated ``openadr`` section (paths resolved against the configuration folder)."""

    vtn_url: str
    ven_name: str
    ven_id: str | None = None
    program_id: str = "openadr"
    meter_id: str = "main"
    cert: str | None = None
    key: str | None = None
    passphrase: str | None = None
    ca_file: str | None = None
    check_hostname: bool = True
    vtn_fingerprint: str | None = None
    poll_interval_s: float | None = None
    price_threshold_per_kwh: float = 0.30

    @classmethod
    def from_section(cls, section: dict[str, Any], config_dir: Path) -> VenSettings | None:
        """None when the section does not name a VTN (the VEN is off)."""
        if not section.get("vtn_url"):
            return None

        def path(value: str | None) -> str | None:
            return None if value is None else str(config_dir / value)

        return cls(
            vtn_url=section["vtn_url"], ven_name=section.get("ven_name") or section["program_id"],
            ven_id=section["ven_id"], program_id=section["program_id"], meter_id=section["meter_id"],
            cert=path(section["cert"]), key=path(section["key"]), passphrase=section["passphrase"],
            ca_file=path(section["ca_file"]), check_hostname=section["check_hostname"],
            vtn_fingerprint=section["vtn_fingerprint"], poll_interval_s=section["poll_interval_s"],
            price_threshold_per_kwh=section["price_threshold_per_kwh"])


async def async_setup(hub: Any, settings: VenSettings) -> Any:
    """Start the VEN; it (re)registers with the VTN in the background until closed."""
    # openleadr brings lxml and signxml: imported off the loop, as the Zigbee stack is
    try:
        module = await asyncio.to_thread(importlib.import_module, "integrations.openadr.ven")
    except ModuleNotFoundError as err:
        if err.name != "openleadr":
            raise
        raise ConfigError(["openadr: the OpenADR program needs openleadr: pip install '.[programs]'"]) from err
    ven = module.Ven(hub, settings)
    await ven.start()
    return ven
