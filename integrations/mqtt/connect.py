"""One way to open a broker connection, for the bridge, zigbee2mqtt and the setup page's test.

TLS, when the section asks for it, verifies the broker's certificate and name (the system's CAs,
or ``ca_file``): a broker on a shared network must not be impersonated to read the commands' tokens.
"""

from __future__ import annotations

import socket
import ssl

import aiomqtt

from integrations.mqtt.settings import MqttSettings


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    return ssl.create_default_context(cafile=settings.ca_file)  # verifies the certificate and hostname


def client(settings: MqttSettings, identifier: str, will: aiomqtt.Will | None = None,
           timeout_s: float | None = None) -> aiomqtt.Client:
    assert settings.host is not None
    return aiomqtt.Client(
        settings.host, settings.port, identifier=identifier, username=settings.username,
        password=settings.password, keepalive=settings.keepalive_s, will=will,
        tls_context=tls_context(settings), timeout=timeout_s,
        # Small packets at once: a command and its answer are a few dozen bytes each way, and Nagle's
        # algorithm against the broker's delayed ACKs held each for up to 40 ms.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
