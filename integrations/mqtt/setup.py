"""The MQTT broker set up on the Commissioning page: the section checked, then a connection tried."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

import voluptuous as vol

from ems.errors import ConfigError
from ems.local_text import N_
from ems.model import Text
from ems.program_setup import SetupProbe
from integrations.mqtt import CONFIG_SCHEMA, enabled, settings_from_section

_LOGGER = logging.getLogger(__name__)

# The reasons a customer reads (ems.model.Text: each reader's language); the library's own words go to the log.
NO_ANSWER = N_("The broker at {where} did not answer within {wait_num} s: check the address and port.")
BAD_LOGIN = N_("The broker at {where} refused the user name or password.")
REFUSED = N_("The broker at {where} refused the connection: check its settings and its log.")
UNTRUSTED = N_("The broker at {where} has a certificate this appliance does not trust, or does not speak TLS.")
NOTHING = N_("Nothing answers at {where}: check the address and port, and that the broker runs.")

PROBE_TIMEOUT_S = 5.0
NOT_AUTHORISED = (4, 5, 134, 135)  # CONNACK: bad user name or password, not authorised (MQTT 3.1.1, 5)


def problems(name: str, err: vol.Invalid) -> list[str]:
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    return [f"{'.'.join([name, *(str(p) for p in e.path)])}: {e.msg}" for e in errors]


class MqttSetup:
    """``ProgramSetup`` of the ``mqtt`` section."""

    name = "mqtt"
    secrets = ("password",)

    def __init__(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    def check(self, section: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(CONFIG_SCHEMA(dict(section)))
        except vol.Invalid as err:
            raise ConfigError(problems(self.name, err)) from None

    def enabled(self, section: dict[str, Any]) -> bool:
        return enabled(section)

    async def probe(self, section: dict[str, Any]) -> SetupProbe:
        import aiomqtt

        from integrations.mqtt import connect

        settings = settings_from_section(section)
        where = f"{settings.host}:{settings.port}"
        details = (("broker", where), ("tls", "yes" if settings.tls else "no"))
        if settings.tls:  # the handshake first, on a socket of our own: paho leaks its socket when it fails
            refused = await self._tls_refused(settings, where)
            if refused is not None:
                return SetupProbe(False, refused, details)
        try:
            async with asyncio.timeout(self.timeout_s):
                async with connect.client(settings, f"ems-{settings.site_id}-setup", timeout_s=self.timeout_s):
                    pass
        except TimeoutError:
            return SetupProbe(False, Text.of(NO_ANSWER, where=where, wait_num=f"{self.timeout_s:g}"), details)
        except aiomqtt.MqttCodeError as err:
            if getattr(err.rc, "value", err.rc) in NOT_AUTHORISED:
                return SetupProbe(False, Text.of(BAD_LOGIN, where=where), details)
            _LOGGER.info("Testing the broker at %s: refused (%s)", where, err)
            return SetupProbe(False, Text.of(REFUSED, where=where), details)
        except (aiomqtt.MqttError, OSError) as err:
            cause = err.__cause__ or err.__context__ or err
            if isinstance(err, ssl.SSLError) or isinstance(cause, ssl.SSLError) or "SSL" in str(err):
                _LOGGER.info("Testing the broker at %s: TLS failed (%s)", where, err)
                return SetupProbe(False, Text.of(UNTRUSTED, where=where), details)
            _LOGGER.info("Testing the broker at %s: %s", where, err)
            return SetupProbe(False, Text.of(NOTHING, where=where), details)
        return SetupProbe(True, None, details)

    async def _tls_refused(self, settings: Any, where: str) -> Text | None:
        """Why a TLS connection to the broker fails (None: the handshake went through)."""
        from integrations.mqtt import connect

        writer = None
        try:
            async with asyncio.timeout(self.timeout_s):
                _reader, writer = await asyncio.open_connection(
                    settings.host, settings.port, ssl=connect.tls_context(settings), server_hostname=settings.host)
        except TimeoutError:
            return Text.of(NO_ANSWER, where=where, wait_num=f"{self.timeout_s:g}")
        except ssl.SSLError as err:
            _LOGGER.info("Testing the broker at %s: TLS failed (%s)", where, err.reason or err)
            return Text.of(UNTRUSTED, where=where)
        except OSError as err:
            _LOGGER.info("Testing the broker at %s: %s", where, err)
            return Text.of(NOTHING, where=where)
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
        return None
