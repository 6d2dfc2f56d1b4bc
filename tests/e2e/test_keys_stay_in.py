"""The keys of the meter's network never leave the appliance (issue 15, Security): after a real join
(the install code's link key derived, the network key taken from the trust center's Transport-Key),
neither key is in any page or API answer, in the log at DEBUG, or in the store's database file.
(The appliance has no backup export; its store is the one file a backup would copy.)"""

from __future__ import annotations

import logging

from integrations.zigbee.install_code import InstallCode
from tests.e2e.conftest import running_appliance
from tests.ems.store.test_store_secrets import _Records, verbose_log

__all__ = ["verbose_log"]  # the logging `ems -v` sets up, every record it lets through collected

PATHS = ("/commissioning", "/settings", "/installer", "/devices", "/devices/add", "/ihd",
         "/api/v1/commissioning", "/api/v1/selftest", "/api/v1/health", "/api/v1/meter", "/api/v1/devices",
         "/api/v1/provision/devices", "/api/v1/provision/log", "/api/v1/messages", "/api/v1/openapi.json")


def forms(key: bytes) -> list[str]:
    """How a key could be written: hex either case, with colons or spaces."""
    hexed = key.hex()
    return [hexed, hexed.upper(), ":".join(f"{b:02x}" for b in key), " ".join(f"{b:02X}" for b in key),
            ":".join(f"{b:02X}" for b in key)]


async def test_neither_key_of_the_meters_network_leaves_the_appliance(tmp_path, verbose_log: _Records) -> None:
    async with running_appliance(tmp_path) as appliance:
        await appliance.online()
        app = appliance.hub.integrations["zigbee_se"].app
        assert app.joined is not None  # the appliance holds both keys now
        network_key = appliance.simulator.trust_center.network_key
        link_key = InstallCode.parse(appliance.hub.identity.install_code.hex()).link_key
        seen = []
        for path in PATHS:
            async with appliance.http.get(appliance.url + path) as response:
                seen.append(f"{path} {response.status} {await response.text()}")
        await appliance.hub.store.flush()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert sum(" 200 " in s for s in seen) >= len(PATHS) // 2  # the owner's token opens them
    assert logging.getLogger().isEnabledFor(logging.DEBUG) and len(verbose_log.texts) > 20  # the log ran
    for key in (network_key, link_key):
        assert key not in stored
        for form in forms(key):
            assert form.encode() not in stored
            assert not [t for t in verbose_log.texts if form in t]
            for answer in seen:
                assert form not in answer, answer[:80]
