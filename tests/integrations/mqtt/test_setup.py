"""The MQTT setup's probe (what the Commissioning page tries before it saves) against real brokers:
one that asks for a password, one that speaks only TLS with a certificate of its own."""

from __future__ import annotations

import asyncio
import getpass
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from integrations import mqtt
from integrations.mqtt.setup import MqttSetup
from tests.conftest import require_tool
from tests.mosquitto import MOSQUITTO, free_port

PASSWD = "/usr/bin/mosquitto_passwd"
NOW = datetime(2026, 6, 1, 19, 0, tzinfo=UTC)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@asynccontextmanager
async def broker(folder: Path, extra: str) -> AsyncIterator[int]:
    """A mosquitto with ``extra`` lines in its listener's configuration, on a free port."""
    require_tool(MOSQUITTO, "the setup is tried against a real broker")
    port = free_port()
    config = folder / "mosquitto.conf"
    # user: as root it would drop to "mosquitto", which cannot read the test's files (0700 folders)
    await asyncio.to_thread(_write, config, f"user {getpass.getuser()}\nper_listener_settings true\n"
                                            f"listener {port} 127.0.0.1\npersistence false\n{extra}")
    proc = await asyncio.to_thread(subprocess.Popen, [MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    try:
        async with asyncio.timeout(30):  # a guard against a hang only
            while True:
                try:
                    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                await writer.wait_closed()
                break
        yield port
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)


def _section(port: int, **values: Any) -> dict[str, Any]:
    return dict(mqtt.CONFIG_SCHEMA({"host": "127.0.0.1", "port": port, **values}))


async def test_a_wrong_password_is_said_so_and_the_right_one_connects(tmp_path: Path) -> None:
    require_tool(PASSWD, "the broker's password file")
    passwords = tmp_path / "passwd"
    await asyncio.to_thread(subprocess.run, [PASSWD, "-c", "-b", str(passwords), "ems", "right-one"], check=True,
                            capture_output=True)
    async with broker(tmp_path / "broker", f"allow_anonymous false\npassword_file {passwords}\n") as port:
        setup = MqttSetup(timeout_s=5)
        wrong = await setup.probe(_section(port, username="ems", password="wrong-one"))
        assert not wrong.ok and str(wrong.reason) == f"The broker at 127.0.0.1:{port} refused the user name or password."
        assert "wrong-one" not in repr(wrong)
        assert (await setup.probe(_section(port, username="ems", password="right-one"))).ok


def _certificates(folder: Path) -> tuple[Path, Path]:
    """A CA of its own and the broker's certificate for 127.0.0.1 signed by it (files: ca, cert+key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("Test CA")).issuer_name(name("Test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(NOW - timedelta(days=1))
          .not_valid_after(NOW + timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "ca.pem", folder


async def test_a_tls_broker_is_trusted_only_with_its_ca_and_plain_mqtt_to_it_fails(tmp_path: Path) -> None:
    ca, folder = _certificates(tmp_path / "tls")
    extra = (f"allow_anonymous true\ncertfile {folder / 'cert.pem'}\nkeyfile {folder / 'key.pem'}\n")
    async with broker(tmp_path / "broker", extra) as port:
        setup = MqttSetup(timeout_s=5)
        untrusted = await setup.probe(_section(port, tls=True))
        assert not untrusted.ok and "certificate this appliance does not trust" in str(untrusted.reason)
        assert (await setup.probe(_section(port, tls=True, ca_file=str(ca)))).ok
        plain = await setup.probe(_section(port))
        assert not plain.ok  # MQTT without TLS to a TLS listener: no CONNACK
