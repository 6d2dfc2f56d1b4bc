"""The MQTT broker set up on the Commissioning page: the section checked, then a connection tried."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

import voluptuous as vol

from ems.errors import ConfigError
from ems.program_setup import SetupProbe
from integrations.mqtt import CONFIG_SCHEMA, enabled, settings_from_section

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
            return SetupProbe(False, f"The broker at {where} did not answer within {self.timeout_s:g} s: "
                                     "check the address and port.", details)
        except aiomqtt.MqttCodeError as err:
            if getattr(err.rc, "value", err.rc) in NOT_AUTHORISED:
                return SetupProbe(False, f"The broker at {where} refused the user name or password.", details)
            return SetupProbe(False, f"The broker at {where} refused the connection ({err}).", details)
        except (aiomqtt.MqttError, OSError) as err:
            cause = err.__cause__ or err.__context__ or err
            if isinstance(err, ssl.SSLError) or isinstance(cause, ssl.SSLError) or "SSL" in str(err):
                return SetupProbe(False, f"The broker at {where} has a certificate this appliance does not "
                                         f"trust, or does not speak TLS ({err}).", details)
            return SetupProbe(False, f"Nothing answers at {where} ({err}): check the address and port, "
                                     "and that the broker runs.", details)
        return SetupProbe(True, None, details)

    async def _tls_refused(self, settings: Any, where: str) -> str | None:
        """Why a TLS connection to the broker fails (None: the handshake went through)."""
        from integrations.mqtt import connect

        writer = None
        try:
            async with asyncio.timeout(self.timeout_s):
                _reader, writer = await asyncio.open_connection(
                    settings.host, settings.port, ssl=connect.tls_context(settings), server_hostname=settings.host)
        except TimeoutError:
            return f"The broker at {where} did not answer within {self.timeout_s:g} s: check the address and port."
        except ssl.SSLError as err:
            return (f"The broker at {where} has a certificate this appliance does not trust, or does not "
                    f"speak TLS ({err.reason or err}).")
        except OSError as err:
            return f"Nothing answers at {where} ({err}): check the address and port, and that the broker runs."
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
        return None
