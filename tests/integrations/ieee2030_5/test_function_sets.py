"""Pricing, messaging and DRLC from the simulated 2030.5 meter, and the answers that go back to it."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest

from ems.model import (
    DeviceClass,
    EventStatus,
    EventStatusReport,
    LinkState,
    LoadControlEvent,
    MessageConfirmed,
    MeterRate,
    PriceSignal,
    UtilityMessage,
)
from tests.integrations.ieee2030_5.conftest import rig


async def test_the_price_in_force_from_the_tariff_profile(tmp_path) -> None:
    async with rig(tmp_path) as r:
        price = await r.until(lambda: next(iter(r.of(PriceSignal)), None), "a price")
        assert price.currency == "USD" and price.rate_label == "TOU-D-T"
        assert price.price_per_kwh_exact == Decimal("0.29")  # noon: off-peak, the first block
        assert price.tier == 1 and price.start <= r.clock() < price.end
        rate = await r.until(lambda: next(iter(r.of(MeterRate)), None), "the blocks")
        assert rate.block_thresholds_kwh == (350.0,)
        await r.advance(60)
        assert len(r.of(PriceSignal)) == 1  # the same price is not published again


async def test_text_messages_arrive_and_a_confirmation_goes_back(tmp_path) -> None:
    async with rig(tmp_path) as r:
        await r.until(lambda: r.link.state is LinkState.ONLINE, "online")
        await r.advance(60, step_s=2)
        messages = await r.until(lambda: len(r.of(UtilityMessage)) >= 4 and r.of(UtilityMessage), "messages")
        welcome = messages[0]
        assert welcome.text.startswith("Welcome to SmartConnect")
        assert not welcome.confirmation_required
        notice = next(m for m in messages if m.text.startswith("Day-ahead event notice"))
        assert notice.confirmation_required
        assert len({m.message_id for m in messages}) == len(messages)  # each once
        await r.hub.outbox.enqueue(MessageConfirmed("main", notice.message_id, r.clock()), meter_id="main")
        response = await r.until(lambda: next((x for x in r.meter.responses if x.kind == "TextResponse"), None),
                                 "the TextResponse at the meter")
        assert "<status>11</status>" in response.body and r.identity.lfdi in response.body


async def test_an_end_device_control_becomes_a_load_control_event_and_its_status_goes_back(tmp_path) -> None:
    async with rig(tmp_path) as r:
        await r.until(lambda: r.link.state is LinkState.ONLINE, "online")
        await r.advance(45, step_s=2)
        event = await r.until(lambda: next(iter(r.of(LoadControlEvent)), None), "the DR event")
        assert event.device_class & DeviceClass.HVAC
        assert event.cooling_offset_c == pytest.approx(2.0)
        assert event.duration_min == 30
        assert event.start == r.meter.started_at + timedelta(seconds=150)  # sent at 30 s, starting 2 min later
        await r.hub.outbox.enqueue(EventStatusReport("main", event.issuer_event_id, EventStatus.RECEIVED, r.clock()),
                                   meter_id="main")
        response = await r.until(lambda: next((x for x in r.meter.responses if x.kind == "DrResponse"), None),
                                 "the DrResponse at the meter")
        assert "<status>1</status>" in response.body
        assert "<subject>0000000000000000000010050000" in response.body  # the event's mRID
        await r.advance(30, step_s=2)
        await r.until(lambda: len(r.of(LoadControlEvent)) == 2, "the second event (sent at 60 s)")
        assert len({e.issuer_event_id for e in r.of(LoadControlEvent)}) == 2  # each published once


def _s_client(port: int, cert: str, key: str) -> str:
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-CCM8",
         "-cert", cert, "-key", key, "-brief"],
        input="", capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


async def test_openssl_s_client_negotiates_the_2030_5_suite_with_the_simulated_meter(tmp_path) -> None:
    async with rig(tmp_path) as r:
        await r.until(lambda: r.link.state is LinkState.ONLINE, "online")
        await r.link.client.drop()  # the meter serves one connection at a time
        try:
            out = await asyncio.to_thread(_s_client, r.meter.port, str(r.identity.cert_path), str(r.identity.key_path))
        except FileNotFoundError:
            pytest.skip("no openssl command")
        assert "ECDHE-ECDSA-AES128-CCM8" in out
        assert "TLSv1.2" in out


def _python_client(port: int, cert: str, key: str) -> tuple[str, str]:
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES128-CCM8")
    context.load_cert_chain(cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:
        return tls.version() or "", tls.cipher()[0]


async def test_a_plain_python_ssl_client_negotiates_the_same_suite(tmp_path) -> None:
    async with rig(tmp_path) as r:
        await r.until(lambda: r.link.state is LinkState.ONLINE, "online")
        await r.link.client.drop()
        version, cipher = await asyncio.to_thread(_python_client, r.meter.port, str(r.identity.cert_path),
                                                  str(r.identity.key_path))
        assert (version, cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES128-CCM8")
