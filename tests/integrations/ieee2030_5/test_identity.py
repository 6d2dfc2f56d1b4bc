"""The appliance's 2030.5 identity: made once, its key private, its LFDI and SFDI as the standard computes them."""

from __future__ import annotations

import hashlib
import stat
import subprocess
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from integrations.ieee2030_5.identity import (
    SELF_SIGNED_CLIENT_POLICY,
    identity_for,
    lfdi_grouped,
    lfdi_of,
    normal_lfdi,
    sfdi_of,
)

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


def test_the_sfdi_of_the_standards_example_lfdi() -> None:
    # IEEE 2030.5 §6.3.3's example: the first 36 bits, then the check digit that makes the digits sum to a multiple of 10.
    assert sfdi_of("3E4F45AB31EDFE5B67E343E5E4562E31984E23E5") == 167261211391


def test_the_sfdi_of_the_digests_worked_example() -> None:
    assert sfdi_of("9632ABA454EE609B3A328004DC1023D5E041C5B1") == 403184502454


def test_an_lfdi_is_typed_grouped_or_not_in_any_case() -> None:
    assert normal_lfdi("9632A-BA454-EE609-B3A32-8004D-C1023-D5E04-1C5B1") == "9632ABA454EE609B3A328004DC1023D5E041C5B1"
    assert lfdi_grouped("9632aba454ee609b3a328004dc1023d5e041c5b1").split() == [
        "9632A", "BA454", "EE609", "B3A32", "8004D", "C1023", "D5E04", "1C5B1"]
    with pytest.raises(ValueError):
        normal_lfdi("9632ABA454EE609B3A32")  # half an LFDI


def test_the_certificate_follows_the_self_signed_client_policy(tmp_path) -> None:
    identity = identity_for(tmp_path, NOW)
    certificate = x509.load_pem_x509_certificate(identity.cert_path.read_bytes())
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert certificate.public_key().curve.name == "secp256r1"
    assert certificate.signature_hash_algorithm.name == "sha256"
    policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies)
    assert policies.critical
    assert [p.policy_identifier.dotted_string for p in policies.value] == [SELF_SIGNED_CLIENT_POLICY]
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert certificate.issuer == certificate.subject
    assert certificate.not_valid_after_utc.year == 9999  # 2030.5 device certificates do not expire


def test_the_lfdi_is_the_first_160_bits_of_the_certificates_sha256(tmp_path) -> None:
    identity = identity_for(tmp_path, NOW)
    der = x509.load_pem_x509_certificate(identity.cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert identity.lfdi == hashlib.sha256(der).hexdigest()[:40].upper() == lfdi_of(der)
    assert identity.sfdi == sfdi_of(identity.lfdi)
    assert len(str(identity.sfdi)) <= 12


def test_openssls_fingerprint_agrees(tmp_path) -> None:
    identity = identity_for(tmp_path, NOW)
    try:
        out = subprocess.run(["openssl", "x509", "-in", str(identity.cert_path), "-noout", "-fingerprint", "-sha256"],
                             capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        pytest.skip("no openssl command")
    assert out.split("=", 1)[1].replace(":", "").strip()[:40] == identity.lfdi


def test_it_is_made_once_and_its_key_only_its_owner_reads(tmp_path) -> None:
    first = identity_for(tmp_path, NOW)
    again = identity_for(tmp_path, NOW)
    assert again.lfdi == first.lfdi
    assert stat.S_IMODE(first.key_path.stat().st_mode) == 0o600
    assert "PRIVATE" not in repr(first) and "key_path" in repr(first)  # a path, never the key


def test_half_a_pair_from_an_interrupted_start_is_made_again(tmp_path) -> None:
    first = identity_for(tmp_path, NOW)
    first.cert_path.unlink()
    second = identity_for(tmp_path, NOW)
    assert second.lfdi != first.lfdi
    assert second.cert_path.exists() and second.key_path.exists()
