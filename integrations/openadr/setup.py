"""The OpenADR program set up on the Commissioning page: the section checked, a registration tried.

The page uploads the VEN's certificate and key as PEM text (``cert_pem``, ``key_pem``); they are
kept with the section in the store and written, readable by the appliance only, to
``<data>/openadr/`` when the VEN starts on them (openleadr reads them from files). The key is a
secret: never shown back, never logged.

The probe is one registration as the VEN makes it (``oadrCreatePartyRegistration`` with the VEN
name, the VTN's fingerprint checked when given). openleadr logs what went wrong instead of raising
it; the probe listens to its log for the cause and says it in words the owner can act on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import voluptuous as vol

from ems.errors import ConfigError
from ems.local_text import N_
from ems.model import Text
from ems.program_setup import SetupProbe
from integrations.openadr import CONFIG_SCHEMA, VenSettings

PROBE_TIMEOUT_S = 10.0
MAX_PEM_CHARS = 64 * 1024
PEM_KEYS = ("cert_pem", "key_pem")


def _problems(err: vol.Invalid) -> list[str]:
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    return [f"{'.'.join(['openadr', *(str(p) for p in e.path)])}: {e.msg}" for e in errors]


def _pem_problems(cert_pem: str | None, key_pem: str | None, passphrase: str | None) -> list[str]:
    """The certificate and key parse, and belong together (else openleadr fails at its first request)."""
    if not cert_pem and not key_pem:
        return []
    if not cert_pem or not key_pem:
        return ["openadr.cert: the VEN's certificate and its private key go together: upload both"]
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    found: list[str] = []
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        found.append("openadr.cert: the certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)")
        cert = None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as err:
        found.append(f"openadr.key: the private key cannot be read ({err}); is its passphrase right?")
        key = None
    if cert is not None and key is not None:
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        encoding = serialization.Encoding.PEM
        if cert.public_key().public_bytes(encoding, public) != key.public_key().public_bytes(encoding, public):
            found.append("openadr.key: this private key is not the one of the certificate")
    return found


def write_pems(section: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The section with the uploaded PEMs written under ``folder`` (0600) and named as files."""
    if not section.get("cert_pem") or not section.get("key_pem"):
        return {k: v for k, v in section.items() if k not in PEM_KEYS}
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    paths = {}
    for key, name in (("cert_pem", "ven.pem"), ("key_pem", "ven.key")):
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(section[key])
        paths[key[:-4]] = str(path.resolve())
    return {**{k: v for k, v in section.items() if k not in PEM_KEYS}, **paths}


def ven_settings(section: dict[str, Any], config_dir: Path, data_dir: Path) -> VenSettings | None:
    """The VEN's settings from a section saved on the page (its PEMs written) or from ems.yaml."""
    return VenSettings.from_section(write_pems(section, data_dir / "openadr"), config_dir)


class _Cause(logging.Handler):
    """openleadr's warnings and errors while the probe runs (the first one says why)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class OpenAdrSetup:
    """``ProgramSetup`` of the ``openadr`` section."""

    name = "openadr"
    secrets = ("key_pem", "passphrase")

    def __init__(self, config_dir: Path, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.config_dir = config_dir
        self.timeout_s = timeout_s

    def check(self, section: dict[str, Any]) -> dict[str, Any]:
        given = dict(section)
        pems = {k: given.pop(k, None) for k in PEM_KEYS}
        found: list[str] = []
        for key, text in pems.items():
            if text is not None and (not isinstance(text, str) or len(text) > MAX_PEM_CHARS):
                found.append(f"openadr.{key[:-4]}: expected a PEM file of at most {MAX_PEM_CHARS // 1024} kB")
        try:
            checked = dict(CONFIG_SCHEMA(given))
        except vol.Invalid as err:
            found.extend(_problems(err))
            checked = {}
        if not found:
            found = _pem_problems(pems["cert_pem"], pems["key_pem"], checked.get("passphrase"))
        if found:
            raise ConfigError(found)
        if pems["cert_pem"] and pems["key_pem"]:
            checked.update(cert=None, key=None)  # the uploaded pair replaces ems.yaml's files
        return {**checked, **{k: v for k, v in pems.items() if v}}

    def enabled(self, section: dict[str, Any]) -> bool:
        return bool(section.get("vtn_url"))

    async def probe(self, section: dict[str, Any]) -> SetupProbe:
        with tempfile.TemporaryDirectory(prefix="ems-openadr-probe-") as folder:
            settings = ven_settings(section, self.config_dir, Path(folder))
            if settings is None:
                return SetupProbe(False, N_("Enter the VTN's address."))
            return await self._register(settings)

    async def _register(self, s: VenSettings) -> SetupProbe:
        try:
            from openleadr import OpenADRClient
        except ModuleNotFoundError:
            return SetupProbe(False, N_("This appliance lacks the OpenADR library (openleadr)."))
        details: list[tuple[str, str]] = [("vtn", s.vtn_url), ("ven_name", s.ven_name)]
        cause = _Cause()
        logger = logging.getLogger("openleadr")
        logger.addHandler(cause)
        client = None
        try:
            client = OpenADRClient(
                ven_name=s.ven_name, vtn_url=s.vtn_url, cert=s.cert, key=s.key, passphrase=s.passphrase,
                vtn_fingerprint=s.vtn_fingerprint, ca_file=s.ca_file, ven_id=s.ven_id, show_fingerprint=False,
                disable_signature=not (s.cert and s.key), check_hostname=s.check_hostname)
            async with asyncio.timeout(self.timeout_s):
                await client.create_party_registration(ven_id=s.ven_id)
        except TimeoutError:
            return SetupProbe(False, Text.of(N_("The VTN at {url} did not answer within {wait_num} s."),
                                             url=s.vtn_url, wait_num=f"{self.timeout_s:g}"), tuple(details))
        except Exception as err:  # noqa: BLE001 - a bad certificate file, a library error: said, not raised
            logging.getLogger(__name__).info("Testing the VTN at %s: the VEN could not be set up: %s", s.vtn_url, err)
            return SetupProbe(False, N_("The VEN could not be set up with these settings: check the certificate "
                                        "and key files."), tuple(details))
        finally:
            logger.removeHandler(cause)
            if client is not None and client.client_session is not None:
                await client.client_session.close()
        if client.registration_id:
            details += [("ven_id", str(client.ven_id)), ("registration_id", str(client.registration_id))]
            return SetupProbe(True, None, tuple(details))
        return SetupProbe(False, _reason(s, cause.messages), tuple(details))


def _reason(s: VenSettings, messages: list[str]) -> Text:
    text = " ".join(messages)
    if messages:
        logging.getLogger(__name__).info("Testing the VTN at %s: %s", s.vtn_url, messages[0][:200])
    if "Could not connect" in text or "ClientConnector" in text:
        return Text.of(N_("Nothing answers at {url}: check the address, and that this network reaches the VTN."),
                       url=s.vtn_url)
    if "fingerprint" in text.lower():
        return Text.of(N_("The VTN's certificate does not have the fingerprint you entered: check it with your "
                          "program."))
    if "SSL" in text or "certificate" in text.lower():
        return Text.of(N_("The VTN's certificate is not trusted, or it refused this VEN's: check the certificates "
                          "with your program."))
    if "Non-OK status" in text:
        return Text.of(N_("The VTN at {url} answered with an error: check the address (it usually ends in "
                          "/OpenADR2/Simple/2.0b)."), url=s.vtn_url)
    if "Create Party Registration" in text or "registration" in text.lower():
        return Text.of(N_("The VTN refused to register the VEN name {ven}: check it with your program."),
                       ven=s.ven_name)
    return Text.of(N_("The VTN at {url} did not register this VEN."), url=s.vtn_url)
