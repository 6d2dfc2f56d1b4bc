"""pcap writer for virtual HAN traffic, readable by Wireshark/tshark.

Link type 230 (LINKTYPE_IEEE802_15_4_NOFCS): each record is one `AirFrame` without FCS.
Every record is flushed as it is written, so a crash loses at most the frame in flight.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from types import TracebackType

from .air import AirFrame

LOGGER = logging.getLogger(__name__)

LINKTYPE_IEEE802_15_4_NOFCS = 230
_MAGIC = 0xA1B2C3D4  # microsecond timestamps
_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")
_SNAPLEN = 65535


class PcapWriter:
    """Appends `AirFrame` records to a new pcap file; close() (or `with`) releases it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.records = 0
        self._file = open(self.path, "wb")  # noqa: SIM115 - owned until close()
        self._file.write(
            _GLOBAL_HEADER.pack(_MAGIC, 2, 4, 0, 0, _SNAPLEN, LINKTYPE_IEEE802_15_4_NOFCS)
        )
        self._file.flush()

    @property
    def closed(self) -> bool:
        """True once close() has run."""
        return self._file.closed

    def write(self, frame: AirFrame, timestamp: float | None = None) -> None:
        """Write one frame; `timestamp` is seconds since the epoch (default: now)."""
        self.write_bytes(frame.encode(), timestamp)

    def write_bytes(self, data: bytes, timestamp: float | None = None) -> None:
        """Write one frame given as its over-the-air bytes (a secured frame, a Transport-Key)."""
        if self._file.closed:
            raise ValueError(f"pcap file {self.path} is closed")
        ts = time.time() if timestamp is None else timestamp
        seconds = int(ts)
        micros = int(round((ts - seconds) * 1_000_000))
        if micros >= 1_000_000:
            seconds, micros = seconds + 1, micros - 1_000_000
        self._file.write(_RECORD_HEADER.pack(seconds, micros, len(data), len(data)) + data)
        self._file.flush()
        self.records += 1

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if not self._file.closed:
            self._file.close()
            LOGGER.debug("Closed pcap %s after %d records", self.path, self.records)

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
