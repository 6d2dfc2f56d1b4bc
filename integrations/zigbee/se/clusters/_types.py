"""Wire types shared by the Smart Energy clusters that zigpy 2.4.0 does not provide.

zigpy's ``CharacterString`` writes the *character* count as its length prefix, so any
non-ASCII text is mis-framed (digest §8 item 5). SE message text is a ZCL character
string whose prefix counts *bytes*; ``Utf8String`` implements that. The fixed 42-octet
DRLC signature gets its own bytes type so it reads as one value, not 42 integers.
"""

from typing import Final, Self

from zigpy.zcl import foundation

# A ZCL character/octet string with a one-byte prefix of 0xFF is "invalid" (no data).
_INVALID_LENGTH: Final = 0xFF


class Utf8String(str):
    """ZCL character string (type 0x42) holding UTF-8 text, prefixed by its byte count.

    Encoding rejects text whose UTF-8 form exceeds ``max_bytes`` (use :meth:`fit` to
    trim at a character boundary first). Decoding accepts any length the prefix allows,
    stops at the first NUL (some senders pad), replaces undecodable bytes with U+FFFD and
    keeps the undecoded bytes in ``raw``. A prefix of 0xFF decodes as an empty string
    with ``invalid`` set, as in zigpy's ``CharacterString``.
    """

    max_bytes: int = 254

    invalid: bool
    raw: bytes

    def __new__(cls, value: str = "", *, invalid: bool = False) -> Self:
        instance = super().__new__(cls, value)
        instance.invalid = invalid
        instance.raw = str(value).encode("utf-8")
        return instance

    @classmethod
    def fit(cls, text: str) -> Self:
        """Return ``text`` trimmed so that its UTF-8 form fits ``max_bytes``."""
        encoded = text.encode("utf-8")[: cls.max_bytes]
        # Dropping a partial multi-byte sequence at the cut keeps the text valid.
        return cls(encoded.decode("utf-8", errors="ignore"))

    def serialize(self) -> bytes:
        if self.invalid:
            return bytes([_INVALID_LENGTH])
        data = self.encode("utf-8")
        if len(data) > self.max_bytes:
            raise ValueError(
                f"{type(self).__name__} is {len(data)} UTF-8 bytes, the limit is {self.max_bytes}"
            )
        return bytes([len(data)]) + data

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        if not data:
            raise ValueError("Data is too short for a character string length")
        length = data[0]
        if length == _INVALID_LENGTH:
            return cls("", invalid=True), data[1:]
        if len(data) < 1 + length:
            raise ValueError(f"Character string claims {length} bytes, only {len(data) - 1} remain")
        raw = data[1 : 1 + length]
        text = raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")
        instance = cls(text)
        instance.raw = raw
        return instance, data[1 + length :]


def limited_utf8_string(max_bytes: int) -> type[Utf8String]:
    """Return a ``Utf8String`` subclass whose encoded form is limited to ``max_bytes``."""

    class LimitedUtf8String(Utf8String):
        pass

    LimitedUtf8String.max_bytes = max_bytes
    LimitedUtf8String.__name__ = LimitedUtf8String.__qualname__ = f"Utf8String{max_bytes}"
    return LimitedUtf8String


class FixedBytes(bytes):
    """Exactly ``length`` raw octets, no length prefix (subclass and set ``length``)."""

    length: int = 0

    def serialize(self) -> bytes:
        if len(self) != self.length:
            raise ValueError(f"{type(self).__name__} must be {self.length} bytes, got {len(self)}")
        return bytes(self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        if len(data) < cls.length:
            raise ValueError(f"{cls.__name__} needs {cls.length} bytes, only {len(data)} remain")
        return cls(data[: cls.length]), data[cls.length :]


def attribute_reporting_status() -> foundation.ZCLAttributeDef:
    """A fresh 0xFFFE AttributeReportingStatus definition (SE 1.2, digest §1.9).

    A new object per cluster: zigpy writes the attribute's name into the definition,
    so one definition cannot be shared between clusters under different names.
    """
    return foundation.ZCLAttributeDef(
        id=0xFFFE, type=foundation.AttributeReportingStatus, access="r"
    )


__all__ = [
    "FixedBytes",
    "Utf8String",
    "attribute_reporting_status",
    "limited_utf8_string",
]
