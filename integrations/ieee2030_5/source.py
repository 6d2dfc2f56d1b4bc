"""The Commissioning page's meter setup for IEEE 2030.5 meters (``ems.meter_source.MeterSourceKind``).

``discover`` lists the meters that answer mDNS on the LAN; ``probe`` connects with the settings the
customer entered (the appliance's own certificate), reads DeviceCapability, the meter's Time and one
reading, and says in plain words what is wrong when it cannot: not reachable, not registered yet
(with the LFDI to give the utility), a different meter than the one named, not a 2030.5 server.
Nothing is pinned by a probe: the meter is pinned when the saved source first reads it. Its reasons
and labels are ``N_`` msgids (a reason a ``Text`` with its values), shown in the reader's language.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import voluptuous as vol

from ems.local_text import N_
from ems.meter_source import SourceCandidate, SourceField, SourceProbe
from ems.model import Text
from integrations.ieee2030_5 import KIND, Settings
from integrations.ieee2030_5 import resources as res
from integrations.ieee2030_5.client import (
    MeterError,
    MeterMismatch,
    NotRegistered,
    ResourceGone,
    tls_context,
)
from integrations.ieee2030_5.discovery import browse
from integrations.ieee2030_5.identity import identity_for, lfdi_grouped, sfdi_of
from integrations.ieee2030_5.link import MeterLink

_LOGGER = logging.getLogger(__name__)
# What a setting the probe refuses means, by its key (English msgids the page translates; the
# schema's own words go to the log).
SETTING_WORDS = {
    "url": N_("The meter's address is not valid: enter it as https:// and its address, such as "
              "https://192.168.1.40:8081."),
    "meter_lfdi": N_("The meter's LFDI is 40 hexadecimal digits, as the utility's portal shows it."),
}
# The function sets a probe found, in words (the page joins them in the reader's language).
FUNCTION_SET_WORDS = {
    "metering": N_("Readings"),
    "intervals": N_("Interval data"),
    "pricing": N_("Prices"),
    "messaging": N_("Messages"),
    "demand response": N_("Demand response"),
}


class Ieee2030Kind:
    """IEEE 2030.5 meters on the home network, for the meter setup flow."""

    kind = KIND
    title = N_("IEEE 2030.5 meter on the home network (Xcel Launchpad, Itron Riva)")
    fields = (
        SourceField("url", N_("Meter address"), kind="address", required=True,
                    hint=N_("Such as https://192.168.1.40:8081 (Find lists the meters on the home network)")),
        SourceField("meter_lfdi", N_("Meter LFDI (optional: only this meter is accepted)"),
                    hint=N_("40 hexadecimal digits, as the utility's portal shows it")),
    )

    def __init__(self, hub: Any) -> None:
        self._hub = hub

    async def registration(self) -> tuple[tuple[str, str], ...]:
        """What the customer gives the utility to register this appliance with a 2030.5 meter."""
        identity = await asyncio.to_thread(identity_for, self._hub.data_dir)
        return ((N_("This appliance's LFDI"), identity.lfdi_grouped), (N_("This appliance's SFDI"), identity.sfdi_text))

    async def discover(self, timeout_s: float) -> list[SourceCandidate]:
        found = await browse(timeout_s)
        return [SourceCandidate(self.kind, meter.url, Text.of(
                    N_("IEEE 2030.5 meter {name} at {host} (SFDI {sfdi})") if meter.sfdi else
                    N_("IEEE 2030.5 meter {name} at {host}"),
                    name=meter.name, host=f"{meter.host}:{meter.port}", sfdi=str(meter.sfdi or "")))
                for meter in found]

    async def probe(self, section: dict[str, Any]) -> SourceProbe:
        try:
            settings = Settings.from_section(section)
        except vol.Invalid as err:
            where = ".".join(str(p) for p in err.path)
            _LOGGER.info("IEEE 2030.5 test: settings not valid (%s: %s)", where or KIND, err.msg)
            return SourceProbe(False, SETTING_WORDS.get(where, SETTING_WORDS["url"] if "url" in err.msg or "https"
                                                        in err.msg else N_("The settings are not valid: check the "
                                                                           "meter's address.")))
        identity = await asyncio.to_thread(identity_for, self._hub.data_dir)
        mine = (N_("This appliance's LFDI"), lfdi_grouped(identity.lfdi))
        link = MeterLink(self._hub, settings, identity)
        context = await asyncio.to_thread(tls_context, identity.cert_path, identity.key_path, settings.meter_lfdi)
        from integrations.ieee2030_5.client import MeterClient

        link.client = MeterClient(settings.url, context, timeout_s=min(settings.timeout_s, 8.0), retries=1)
        try:
            lfdi = await link.connect(admit=False)
            reading, _rate = await link.read_values() if link.plan and (link.plan.demand or link.plan.delivered) \
                else (None, None)
            firmware = None
            if link.plan is not None and link.plan.time:
                time = res.parse_time(await link.client.get(link.plan.time))
                if time.current_time is not None:
                    # "{meter_at}": the meter's clock, shown in the reader's locale and the site's zone
                    firmware = (N_("Meter time"), Text.of("{meter_at}", meter_at=time.current_time))
        except NotRegistered:
            return SourceProbe(False, Text.of(N_(
                "The meter does not accept this appliance yet: give your utility this appliance's LFDI {lfdi} "
                "(SFDI {sfdi}), then test again."), lfdi=lfdi_grouped(identity.lfdi), sfdi=identity.sfdi_text),
                details=(mine,))
        except MeterMismatch as err:
            return SourceProbe(False, Text.of(N_("A different meter answered (LFDI {seen}), not the one named "
                                                 "({named})."), seen=lfdi_grouped(err.seen),
                                              named=lfdi_grouped(err.pinned)), hardware_id=err.seen, details=(mine,))
        except (res.BadResource, ResourceGone) as err:
            _LOGGER.info("IEEE 2030.5 test: %s does not answer as a 2030.5 meter (%s)", settings.url, err)
            return SourceProbe(False, Text.of(N_("The device at {url} does not answer as an IEEE 2030.5 meter: "
                                                 "check the address."), url=settings.url),
                               details=(mine,))
        except (MeterError, OSError) as err:
            _LOGGER.info("IEEE 2030.5 test: cannot reach %s (%s)", settings.url, err)
            return SourceProbe(False, Text.of(N_("Cannot reach the meter at {url}. Check the address and that "
                                                 "the meter is on the home network."),
                                              url=settings.url), details=(mine,))
        finally:
            await link.client.close()
        plan = link.plan
        assert plan is not None
        sets = [name for name, present in (("metering", plan.demand or plan.delivered), ("intervals", plan.has_intervals),
                                           ("pricing", plan.tariffs), ("messaging", plan.messages),
                                           ("demand response", plan.programs)) if present]
        # The function sets as phrases: "{set0_phrase}, {set1_phrase}" (each a msgid the page translates).
        found_sets = Text.of(", ".join(f"{{set{i}_phrase}}" for i in range(len(sets))),
                             **{f"set{i}_phrase": FUNCTION_SET_WORDS[name] for i, name in enumerate(sets)}) \
            if sets else Text.of(N_("None"))
        details: list[tuple[str, str | Text]] = [
            (N_("Meter LFDI"), lfdi_grouped(lfdi)), (N_("Meter SFDI"), str(sfdi_of(lfdi))), mine,
            (N_("TLS cipher"), context.cipher_name or "?"), (N_("Function sets"), found_sets)]
        if firmware is not None:
            details.append(firmware)
        if reading is None:
            return SourceProbe(False, N_("The meter answered but serves no demand or energy reading this "
                                         "appliance recognises."), hardware_id=lfdi, details=tuple(details))
        return SourceProbe(True, None, hardware_id=lfdi, reading=reading, details=tuple(details))
