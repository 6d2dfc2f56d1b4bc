"""Smart Energy install codes and the trust-center link key derived from them.

An SE device is admitted to the meter's network only if the trust center holds a link key for
its EUI-64; the utility derives that key from the device's install code, which the customer
hands over out of band (spec/zigbee-se-1x.md §6.2):

- an install code is 6, 8, 12 or 16 bytes followed by a 2-byte CRC-16/X-25 over those bytes,
  appended least-significant byte first (so code ``83FE...D505`` has CRC 0xB5C3, printed and
  sent as ``C3B5``);
- the link key is the AES-MMO hash of the code *including* its CRC bytes.

zigpy already implements both (``zigpy.util.convert_install_code`` checks the CRC and hashes,
``crccheck``'s ``CrcX25`` is the CRC it uses); this module wraps them in a value type with the
printed forms a homeowner and a utility exchange. No ``ems`` import: the EMS, the simulated
meter and the tests share it.

The install code is a credential. ``repr`` never shows it, and the link key is computed on
demand, never kept on the object.
"""

from __future__ import annotations

import dataclasses
import random as _random
import re
import secrets

import zigpy.util
from crccheck.crc import CrcX25

CODE_SIZES = (6, 8, 12, 16)
"""Install-code lengths in bytes, without the CRC (SE 1.x)."""

GENERATED_SIZES = (12, 16)
"""Lengths this appliance generates; 16 bytes is the usual choice of SE 1.x devices."""

CRC_SIZE = 2

_SEPARATORS = re.compile(r"[\s\-:_.]+")
_PREFIX = re.compile(r"^0x", re.IGNORECASE)


def crc_x25(data: bytes) -> bytes:
    """The CRC-16/X-25 of `data` as the 2 bytes SE appends (least-significant byte first)."""
    crc = CrcX25()
    crc.process(data)
    return bytes(crc.finalbytes(byteorder="little"))


@dataclasses.dataclass(frozen=True, repr=False)
class InstallCode:
    """An install code (`code`, without its CRC); `crc`, `with_crc` and `link_key` follow from it."""

    code: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.code, bytes):
            object.__setattr__(self, "code", bytes(self.code))
        if len(self.code) not in CODE_SIZES:
            raise ValueError(
                f"an install code has 6, 8, 12 or 16 bytes before its check digits, "
                f"not {len(self.code)}"
            )

    def __repr__(self) -> str:
        return f"InstallCode(<{len(self.code)} bytes>)"

    @property
    def crc(self) -> bytes:
        """The 2 CRC bytes in the order they are printed and sent (CRC-16/X-25, little-endian)."""
        return crc_x25(self.code)

    @property
    def with_crc(self) -> bytes:
        """The code followed by its CRC: what the utility registers and what is hashed."""
        return self.code + self.crc

    @property
    def link_key(self) -> bytes:
        """The 16-byte trust-center link key: AES-MMO hash of code and CRC (§6.2)."""
        return bytes(zigpy.util.convert_install_code(self.with_crc))

    def printed(self) -> str:
        """Code and CRC in upper-case hex groups of 4, the form utilities' forms ask for.

        >>> InstallCode(bytes.fromhex("83FED3407A939723A5C639B26916D505")).printed()
        '83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5'
        """
        text = self.with_crc.hex().upper()
        return " ".join(text[i : i + 4] for i in range(0, len(text), 4))

    def hex(self) -> str:
        """Code and CRC as one upper-case hex string without spaces (for QR codes and storage)."""
        return self.with_crc.hex().upper()

    @classmethod
    def parse(cls, text: str, *, with_crc: bool | None = None) -> InstallCode:
        """Read an install code as people print it: hex, spaces, dashes or colons anywhere.

        With its CRC (8, 10, 14 or 18 bytes) the CRC is checked; without it (6, 12 or 16 bytes)
        it is computed. 8 bytes is either an 8-byte code or a 6-byte code with CRC: it is taken as
        the latter when its last 2 bytes are that CRC. `with_crc` forces either reading.
        Raises ValueError with a message that says what is wrong in words.
        """
        cleaned = _SEPARATORS.sub("", _PREFIX.sub("", text.strip()))
        if not cleaned:
            raise ValueError("the install code is empty")
        bad = sorted({ch for ch in cleaned if ch not in "0123456789abcdefABCDEF"})
        if bad:
            raise ValueError(
                "an install code has only the digits 0-9 and letters A-F; "
                f"found {' '.join(repr(ch) for ch in bad)}"
            )
        if len(cleaned) % 2:
            raise ValueError(
                f"an install code has an even number of hex digits; found {len(cleaned)}"
            )
        raw = bytes.fromhex(cleaned)
        if with_crc is None:
            with_crc = _has_crc(raw)
        if not with_crc:
            return cls(raw)
        if len(raw) - CRC_SIZE not in CODE_SIZES:
            raise ValueError(
                "an install code with its check digits has 8, 10, 14 or 18 bytes "
                f"(16, 20, 28 or 36 hex digits); found {len(raw)} bytes"
            )
        code = cls(raw[:-CRC_SIZE])
        if code.crc != raw[-CRC_SIZE:]:
            raise ValueError(
                "the install code's last 4 digits (its check digits) do not match the rest: "
                "a digit was mistyped"
            )
        return code

    @classmethod
    def generate(cls, rng: _random.Random | None = None, size: int = 16) -> InstallCode:
        """A new random install code of `size` bytes (12 or 16); `rng` defaults to the OS's."""
        if size not in GENERATED_SIZES:
            raise ValueError(f"generated install codes have 12 or 16 bytes, not {size}")
        source = rng if rng is not None else secrets.SystemRandom()
        return cls(source.randbytes(size))


def _has_crc(raw: bytes) -> bool:
    if len(raw) in (12, 16, 6):
        return False
    if len(raw) in (10, 14, 18):
        return True
    if len(raw) == 8:
        return crc_x25(raw[:6]) == raw[6:]
    sizes = "6, 8, 12 or 16 bytes (12, 16, 24 or 32 hex digits), plus 4 check digits"
    raise ValueError(f"an install code has {sizes}; found {len(raw)} bytes")
