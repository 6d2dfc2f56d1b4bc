"""The appliance's IEEE 2030.5 client identity: a self-signed P-256 certificate, its LFDI and SFDI.

A 2030.5 meter on the home network (Xcel's Launchpad with Itron Gen5 Riva) admits a client by the
LFDI of its TLS certificate, which the customer types into the utility's portal. So the appliance
makes its certificate once, on the first start, and keeps it in the data directory: the key file is
0600 and never leaves the box (not in a log line, not in the API); the LFDI and SFDI are what the
Commissioning page shows the customer (``identity_for``).

The certificate follows the 2030.5 self-signed-client policy (spec/han-bridges.md §3.2): ECDSA
P-256 with SHA-256, a critical certificate-policies extension holding 1.3.6.1.4.1.40732.2.2, a
critical keyUsage of digitalSignature only, and, as 2030.5 device certificates do, no
well-defined expiry (notAfter 9999-12-31 23:59:59, RFC 5280 §4.1.2.5), so a registered appliance
never drops off the meter because its certificate ran out.

LFDI: the first 160 bits of the SHA-256 of the certificate (DER), 40 hex digits. SFDI: the first
36 bits of the LFDI as a decimal number followed by one check digit that makes the sum of all its
digits a multiple of 10 (§3.3; IEEE 2030.5's own example: LFDI 3E4F45AB31EDFE5B67E343E5E4562E31984E23E5,
SFDI 167261211391).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_LOGGER = logging.getLogger(__name__)

SELF_SIGNED_CLIENT_POLICY = "1.3.6.1.4.1.40732.2.2"  # IEEE 2030.5 self-signed client certificate policy
CLIENT_COMMON_NAME = "MeterReaderHanClient"  # what the community HAN clients use (and Xcel accepts)
NO_EXPIRY = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
FOLDER = "ieee2030_5"
CERT_FILE = "client.crt"
KEY_FILE = "client.key"


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The appliance's 2030.5 identity: what the customer registers (LFDI, SFDI) and where the
    certificate and key live. ``repr`` names no key material."""

    lfdi: str  # 40 upper-case hex digits
    sfdi: int  # 12 decimal digits at most, check digit last
    cert_path: Path
    key_path: Path
    created_at: datetime

    @property
    def lfdi_grouped(self) -> str:
        """The LFDI as eight groups of five hex digits (how the utility's portal also takes it)."""
        return lfdi_grouped(self.lfdi)

    @property
    def sfdi_text(self) -> str:
        """The SFDI as the customer reads it: 12 digits, in groups of three."""
        text = f"{self.sfdi:012d}"
        return "-".join(text[i:i + 3] for i in range(0, 12, 3))


def lfdi_of(certificate_der: bytes) -> str:
    """The LFDI of a certificate: the first 160 bits of SHA-256 over its DER, upper-case hex."""
    return hashlib.sha256(certificate_der).hexdigest()[:40].upper()


def sfdi_of(lfdi: str) -> int:
    """The SFDI of an LFDI: its first 36 bits in decimal, with a check digit appended."""
    value = int(normal_lfdi(lfdi)[:9], 16)
    check = (10 - sum(int(d) for d in str(value)) % 10) % 10
    return value * 10 + check


def normal_lfdi(text: str) -> str:
    """An LFDI as typed (grouped with spaces, dashes or colons, any case) as 40 upper-case hex digits."""
    digits = "".join(ch for ch in text if ch not in " -:\t").upper()
    if len(digits) != 40 or any(ch not in "0123456789ABCDEF" for ch in digits):
        raise ValueError(f"an LFDI is 40 hexadecimal digits, got {text!r}")
    return digits


def lfdi_grouped(lfdi: str) -> str:
    digits = normal_lfdi(lfdi)
    return " ".join(digits[i:i + 5] for i in range(0, 40, 5))


def identity_for(data_dir: Path, now: datetime | None = None) -> ClientIdentity:
    """The appliance's 2030.5 identity in ``data_dir``, made there on first use (blocking: call it
    in a thread from the loop). Made once: a second call, a restart, reads the same files back."""
    folder = Path(data_dir) / FOLDER
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    if not (cert_path.exists() and key_path.exists()):
        _create(folder, cert_path, key_path, now or datetime.now(UTC))
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    with contextlib.suppress(OSError):
        if key_path.stat().st_mode & 0o077:
            os.chmod(key_path, 0o600)
    lfdi = lfdi_of(certificate.public_bytes(serialization.Encoding.DER))
    return ClientIdentity(lfdi, sfdi_of(lfdi), cert_path, key_path, certificate.not_valid_before_utc)


def self_signed(common_name: str, now: datetime, *, client_policy: bool = True,
                not_after: datetime = NO_EXPIRY) -> tuple[bytes, bytes]:
    """A new P-256 key and a self-signed ECDSA-SHA256 certificate for it, both PEM.

    With ``client_policy`` it carries the 2030.5 self-signed-client policy (the appliance's);
    without, it is a plain server certificate (the simulated meter's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))  # a clock a little behind still accepts it
        .not_valid_after(not_after)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
    )
    if client_policy:
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(SELF_SIGNED_CLIENT_POLICY), None)]),
            critical=True,
        )
    certificate = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)


def _create(folder: Path, cert_path: Path, key_path: Path, now: datetime) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_pem, cert_pem = self_signed(CLIENT_COMMON_NAME, now)
    for path in (key_path, cert_path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # half a pair from an interrupted first start
    _write_private(key_path, key_pem)
    cert_path.write_bytes(cert_pem)
    lfdi = lfdi_of(x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER))
    _LOGGER.info("Made this appliance's IEEE 2030.5 client certificate: LFDI %s (register it with the utility)",
                 lfdi)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file only its owner can read (0600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
