"""Metering cluster (0x0702): zigpy 2.4.0's definition, completed for SE 1.1/1.2.

What was checked against digest §5 (each item has a test in
``tests/integrations/zigbee_se/test_metering.py``):

* Command IDs and directions of §5.9 all match zigpy 2.4.0 (the 0.69-era mix-ups of
  digest §8 item 2 are fixed there).
* GetProfile (C->S 0x00, 6 bytes), GetProfileResponse (S->C 0x00, 7 + 3n bytes, the
  interval list sized by NumberOfPeriodsDelivered), RequestFastPollMode (C->S 0x03,
  2 bytes) and its response (S->C 0x03, 5 bytes) match §5.7/§5.8. zigpy types the
  enum8 fields Status, ProfileIntervalPeriod and IntervalChannel as uint8: same bytes,
  left as they are.
* Attribute types of §5.1 match, including 0x0400 InstantaneousDemand = int24 and
  0x001E CurrentBlockReceived = enum8 (``CurrentBlock``; it is *not* uint48 in 2.4.0).

What zigpy 2.4.0 lacks, added by this subclass (same cluster ID, so it replaces zigpy's
class in the registry):

* 0x0010 IntervalReadReportingPeriod (uint16, deprecated in SE 1.2 but sent by 1.1 meters),
* 0x011E-0x015F CurrentTier16..48Summation Delivered/Received (uint48, SE 1.2),
* 0x0700-0x07FF CurrentTiertBlocknSummationDelivered, t = 0 (no tier) .. 15,
  n = 1..16 (uint48, SE 1.1), which block tariffs are billed from,
* 0xFFFE AttributeReportingStatus (SE 1.2, §1.9).

The SE 1.2 history attributes 0x0420-0x045C are not added: the digest gives no types.
"""

from typing import Final

import zigpy.types as t
from zigpy.zcl.clusters import smartenergy as zigpy_se
from zigpy.zcl.foundation import ZCLAttributeDef

from ._frames import SeFrames
from ._types import attribute_reporting_status

# zigpy's enums, re-exported for the adapter.
CurrentBlock = zigpy_se.CurrentBlock
MeteringDeviceType = zigpy_se.MeteringDeviceType
MeteringStatus = zigpy_se.MeteringStatus
MeteringUnitofMeasure = zigpy_se.MeteringUnitofMeasure
NumberFormatting = zigpy_se.NumberFormatting
ProfileIntervalPeriod = zigpy_se.ProfileIntervalPeriod
SupplyStatus = zigpy_se.SupplyStatus


class ProfileStatus(t.enum8):
    """GetProfileResponse Status (§5.7); zigpy carries it as a plain uint8."""

    Success = 0x00
    Undefined_Interval_Channel_Requested = 0x01
    Interval_Channel_Not_Supported = 0x02
    Invalid_End_Time = 0x03
    More_Periods_Requested_Than_Can_Be_Returned = 0x04
    No_Intervals_Available_For_The_Requested_Time = 0x05


class IntervalChannel(t.enum8):
    """GetProfile IntervalChannel (§5.7); zigpy carries it as a plain uint8."""

    Consumption_Delivered = 0x00
    Consumption_Received = 0x01


class _MeteringAttributeDefs(zigpy_se.Metering.AttributeDefs):
    interval_read_reporting_period: Final = ZCLAttributeDef(id=0x0010, type=t.uint16_t, access="r")
    attribute_reporting_status: Final = attribute_reporting_status()


def _add_attr(name: str, attr_id: int) -> None:
    setattr(_MeteringAttributeDefs, name, ZCLAttributeDef(id=attr_id, type=t.uint48_t, access="r"))


# CurrentTierNSummationDelivered/Received at 0x0100 + 2(N-1) / +1, N = 16..48.
for _tier in range(16, 49):
    _add_attr(f"current_tier{_tier}_summ_delivered", 0x0100 + 2 * (_tier - 1))
    _add_attr(f"current_tier{_tier}_summ_received", 0x0101 + 2 * (_tier - 1))

# CurrentTiertBlocknSummationDelivered at 0x0700 + 0x10 t + (n-1).
for _tier in range(16):
    for _block in range(1, 17):
        _prefix = "current_no_tier" if _tier == 0 else f"current_tier{_tier}"
        _add_attr(f"{_prefix}_block{_block}_summ_delivered", 0x0700 + 0x10 * _tier + _block - 1)

del _tier, _block, _prefix


class Metering(SeFrames, zigpy_se.Metering):
    """zigpy's Metering with the SE 1.1/1.2 attributes it lacks (module docstring)."""

    _skip_registry: Final = True  # installed per device (``clusters.install``), not in zigpy's registry

    ProfileStatus: Final = ProfileStatus
    IntervalChannel: Final = IntervalChannel

    AttributeDefs = _MeteringAttributeDefs
