"""Hex helper for the test vectors: spec-style hex with spaces, '|' separators and
line breaks ("78 56 34 12 | 05 00") -> bytes."""


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace("|", " "))
