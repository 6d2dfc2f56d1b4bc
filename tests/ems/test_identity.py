"""The appliance's identity: made once at the first start, the same ever after (also after kill -9),
its install code the one the utility registers, its link key never stored."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import zigpy.util

from ems.clock import FixedClock
from ems.identity import DEVICE_ID, DEVICE_TYPE, load_or_create, random_ieee
from integrations.zigbee.install_code import InstallCode
from tests.hubs import new_hub

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
REPO = str(Path(__file__).resolve().parents[2])
CODE = InstallCode(bytes.fromhex("83FED3407A939723A5C639B26916D505"))
KEY_HEX = "66B6900981E1EE3CA4206B6B861C02BB"


def _maker(codes: list[bytes]):
    def make() -> bytes:
        code = InstallCode.generate(random.Random(len(codes)))
        codes.append(code.with_crc)
        return code.with_crc
    return make


async def test_first_start_makes_the_identity_and_later_starts_read_it_back(tmp_path: Path) -> None:
    made: list[bytes] = []
    hub = new_hub(tmp_path, clock=FixedClock(NOW))
    hub.make_install_code = _maker(made)
    await hub.start()
    first = hub.identity
    await hub.stop()
    assert first is not None and len(made) == 1
    assert first.install_code == made[0]
    assert (first.device_type, first.device_id) == (DEVICE_TYPE, DEVICE_ID)
    assert first.created_at == NOW

    again = new_hub_on(tmp_path)
    again.make_install_code = _maker(made)
    await again.start()
    try:
        assert again.identity == first
        assert len(made) == 1  # no second code was even made
    finally:
        await again.stop()


def new_hub_on(tmp_path: Path):
    from ems.config import load_config
    from ems.hub import Hub

    return Hub(load_config(tmp_path / "config"), tmp_path / "data", FixedClock(NOW))


async def test_a_hub_without_a_maker_has_no_identity(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, clock=FixedClock(NOW))
    await hub.start()
    try:
        assert hub.identity is None
    finally:
        await hub.stop()


async def test_two_makers_at_once_agree_on_one_identity(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, clock=FixedClock(NOW))
    await hub.store.open()
    try:
        first, second = await asyncio.gather(
            load_or_create(hub.store, NOW, lambda: InstallCode.generate().with_crc),
            load_or_create(hub.store, NOW, lambda: InstallCode.generate().with_crc),
        )
        assert first == second
    finally:
        await hub.store.close()


def test_a_random_ieee_is_locally_administered_and_unicast() -> None:
    for seed in range(64):
        first = int(random_ieee(random.Random(seed))[:2], 16)
        assert first & 0x02 and not first & 0x01
    assert random_ieee(random.Random(1)) != random_ieee(random.Random(2))


async def test_the_printed_forms_and_the_qr_text_zigpy_reads_back(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, clock=FixedClock(NOW))
    await hub.store.open()
    try:
        identity = await load_or_create(hub.store, NOW, lambda: CODE.with_crc, ieee="02:1A:2B:3C:4D:5E:6F:70")
    finally:
        await hub.store.close()
    assert identity.install_code_printed == "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"
    assert identity.ieee_printed == "02:1A:2B:3C:4D:5E:6F:70"
    assert identity.qr_text == "Z:021A2B3C4D5E6F70$I:83FED3407A939723A5C639B26916D505C3B5"
    ieee, key = zigpy.util.parse_install_code_qr(identity.qr_text)
    assert str(ieee) == "02:1a:2b:3c:4d:5e:6f:70"
    assert bytes(key).hex().upper() == KEY_HEX
    assert "83FE" not in repr(identity)


async def test_the_link_key_is_not_in_the_database_file(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, clock=FixedClock(NOW))
    hub.make_install_code = lambda: CODE.with_crc
    await hub.start()
    await hub.stop()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("ems.db*"))
    assert CODE.hex().encode() in raw  # the code itself is (it is the identity)
    assert bytes.fromhex(KEY_HEX) not in raw
    assert KEY_HEX.encode() not in raw and KEY_HEX.lower().encode() not in raw


CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from pathlib import Path

from ems.config import StoreConfig
from ems.identity import load_or_create
from ems.store import Store
from integrations.zigbee.install_code import InstallCode


async def main():
    store = Store(StoreConfig(None, 24.0, 400), Path(sys.argv[1]))
    await store.open()
    identity = await load_or_create(store, datetime(2026, 6, 1, tzinfo=UTC), lambda: InstallCode.generate().with_crc)
    print(identity.ieee, identity.install_code_hex, flush=True)
    await asyncio.sleep(3600)


asyncio.run(main())
"""


async def test_the_identity_made_survives_kill_9(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": REPO}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(tmp_path / "data"), stdout=asyncio.subprocess.PIPE, env=env)
    assert child.stdout is not None
    line = (await asyncio.wait_for(child.stdout.readline(), 60)).decode().split()
    child.kill()
    await child.wait()
    hub = new_hub(tmp_path, clock=FixedClock(NOW))
    hub.make_install_code = lambda: CODE.with_crc
    await hub.start()
    try:
        assert hub.identity is not None
        assert [hub.identity.ieee, hub.identity.install_code_hex] == line
    finally:
        await hub.stop()
