"""Demand Response and Load Control cluster (0x0701), SE 1.0-1.2b, as a zigpy cluster.

zigpy 2.4.0 ships ``Drlc`` as an empty stub; this class replaces it in zigpy's cluster
registry (see ``clusters/__init__.py``) so that frames from the ESI decode into named
fields. Layouts follow digest §2 (Wireshark, Silicon Labs, ZBOSS and TI agree on them).
"""

from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import (
    BaseAttributeDefs,
    BaseCommandDefs,
    ZCLAttributeDef,
    ZCLCommandDef,
)

from ._frames import SeFrames
from ._types import FixedBytes, attribute_reporting_status

SIGNATURE_LENGTH: Final = 42


class DeviceClass(t.bitmap16):
    """Device classes an event targets (§2.4). Bits 12-15 are reserved."""

    HVAC_Compressor_or_Furnace = 0x0001
    Strip_Heaters_Baseboard_Heaters = 0x0002
    Water_Heater = 0x0004
    Pool_Pump_Spa_Jacuzzi = 0x0008
    Smart_Appliances = 0x0010
    Irrigation_Pump = 0x0020
    Managed_Commercial_and_Industrial_Loads = 0x0040
    Simple_Misc_Loads = 0x0080
    Exterior_Lighting = 0x0100
    Interior_Lighting = 0x0200
    Electric_Vehicle = 0x0400
    Generation_Systems = 0x0800


class CriticalityLevel(t.enum8):
    """Event criticality (§2.5). 0x00 and 0x10-0xFF are reserved; clients ignore them."""

    Reserved = 0x00
    Green = 0x01
    Level_1 = 0x02
    Level_2 = 0x03
    Level_3 = 0x04
    Level_4 = 0x05
    Level_5 = 0x06
    Emergency = 0x07
    Planned_Outage = 0x08
    Service_Disconnect = 0x09
    Utility_Defined_1 = 0x0A
    Utility_Defined_2 = 0x0B
    Utility_Defined_3 = 0x0C
    Utility_Defined_4 = 0x0D
    Utility_Defined_5 = 0x0E
    Utility_Defined_6 = 0x0F


class EventControl(t.bitmap8):
    """Which randomizations the client applies to an event (§2.6)."""

    Randomize_Start_Time = 0x01
    Randomize_End_Time = 0x02


def event_control(randomize_start: bool, randomize_end: bool) -> EventControl:
    """The EventControl bits for an event's (or a report's) randomisation flags."""
    bits = EventControl(0)
    if randomize_start:
        bits |= EventControl.Randomize_Start_Time
    if randomize_end:
        bits |= EventControl.Randomize_End_Time
    return bits


class CancelControl(t.bitmap8):
    """Bit 0 set: end the event using the original event's randomization (§2.7)."""

    Terminate_With_Randomization = 0x01


class EventStatus(t.enum8):
    """ReportEventStatus status codes (§2.9).

    0xFA and 0xFC are reserved: early TI headers gave them meanings that Wireshark,
    Silicon Labs and ZBOSS do not use (digest §10 item 7), so they are not named here.
    """

    Reserved = 0x00
    Load_Control_Event_Command_Received = 0x01
    Event_Started = 0x02
    Event_Completed = 0x03
    User_Chose_To_Opt_Out = 0x04
    User_Chose_To_Opt_In = 0x05
    Event_Cancelled = 0x06
    Event_Superseded = 0x07
    Event_Partially_Completed_With_User_Opt_Out = 0x08
    Event_Partially_Completed_Due_To_User_Opt_In = 0x09
    Event_Completed_No_User_Participation_Previous_Opt_Out = 0x0A
    Invalid_Opt_Out = 0xF6
    Event_Not_Found = 0xF7
    Rejected_Invalid_Cancel_Command_Default = 0xF8
    Rejected_Invalid_Cancel_Command_Invalid_Effective_Time = 0xF9
    Rejected_Event_Received_After_Expiration = 0xFB
    Rejected_Invalid_Cancel_Command_Undefined_Event = 0xFD
    Load_Control_Event_Command_Rejected = 0xFE


class SignatureType(t.enum8):
    """Signature carried by ReportEventStatus (§2.10). SE 1.1+ sends No_Signature."""

    No_Signature = 0x00
    ECDSA = 0x01


class Signature(FixedBytes):
    """42-octet ECDSA signature (SE 1.0) or 0xFF filler (SE 1.1+), §2.8."""

    length = SIGNATURE_LENGTH


# SE 1.1+ senders fill the signature with 0xFF "for backwards compatibility" (§2.8).
FILLER_SIGNATURE: Final = Signature(b"\xff" * SIGNATURE_LENGTH)


class Drlc(SeFrames, Cluster):
    """DRLC cluster with the client attributes and all SE 1.x commands.

    The DRLC *server* has no attributes (§2.2), so the client attributes that live on
    the EMS are declared in ``AttributeDefs``, as zigpy does for other client-side
    attribute sets (e.g. OTA).
    """

    _skip_registry: Final = True  # installed per device (``clusters.install``), not in zigpy's registry

    DeviceClass: Final = DeviceClass
    CriticalityLevel: Final = CriticalityLevel
    EventControl: Final = EventControl
    CancelControl: Final = CancelControl
    EventStatus: Final = EventStatus
    SignatureType: Final = SignatureType
    Signature: Final = Signature

    cluster_id: Final[t.uint16_t] = 0x0701
    ep_attribute: Final = "smartenergy_drlc"

    class AttributeDefs(BaseAttributeDefs):
        # Client attributes (§2.2).
        utility_enrollment_group: Final = ZCLAttributeDef(id=0x0000, type=t.uint8_t, access="rw")
        start_randomization_minutes: Final = ZCLAttributeDef(id=0x0001, type=t.uint8_t, access="rw")
        duration_randomization_minutes: Final = ZCLAttributeDef(
            id=0x0002, type=t.uint8_t, access="rw"
        )
        device_class_value: Final = ZCLAttributeDef(id=0x0003, type=t.uint16_t, access="rw")
        attribute_reporting_status: Final = attribute_reporting_status()

    class ServerCommandDefs(BaseCommandDefs):
        """Client -> server (EMS -> ESI)."""

        # §2.8: 18 bytes, then SignatureType and a 42-byte signature. Both are optional
        # on receipt (0 or 42 signature bytes accepted); send all 60 bytes.
        report_event_status: Final = ZCLCommandDef(
            id=0x00,
            schema={
                "issuer_event_id": t.uint32_t,
                "event_status": EventStatus,
                "event_status_time": t.UTCTime,
                "criticality_level_applied": CriticalityLevel,
                # Signed per [WS]; [SLX]/[ZB] say uint16 (same bytes, digest §10 item 8).
                "cooling_temperature_set_point_applied": t.int16s,
                "heating_temperature_set_point_applied": t.int16s,
                "average_load_adjustment_percentage_applied": t.int8s,
                "duty_cycle_applied": t.uint8_t,
                "event_control": EventControl,
                "signature_type?": SignatureType,
                "signature?": Signature,
            },
        )
        # §2.11: 5 bytes; IssuerEventID added in SE 1.2b (0xFFFFFFFF = not used).
        get_scheduled_events: Final = ZCLCommandDef(
            id=0x01,
            schema={
                "start_time": t.UTCTime,
                "number_of_events": t.uint8_t,
                "issuer_event_id?": t.uint32_t,
            },
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Server -> client (ESI -> EMS)."""

        # §2.3: exactly 23 bytes.
        load_control_event: Final = ZCLCommandDef(
            id=0x00,
            schema={
                "issuer_event_id": t.uint32_t,
                "device_class": DeviceClass,
                "utility_enrollment_group": t.uint8_t,
                "start_time": t.UTCTime,  # 0 = now
                "duration_in_minutes": t.uint16_t,  # at most 1440
                "criticality_level": CriticalityLevel,
                "cooling_temperature_offset": t.uint8_t,  # 0.1 degC, 0xFF = not used
                "heating_temperature_offset": t.uint8_t,  # 0.1 degC, 0xFF = not used
                "cooling_temperature_set_point": t.int16s,  # 0.01 degC, 0x8000 = not used
                "heating_temperature_set_point": t.int16s,  # 0.01 degC, 0x8000 = not used
                "average_load_adjustment_percentage": t.int8s,  # -128 = not used
                "duty_cycle": t.uint8_t,  # percent, 0xFF = not used
                "event_control": EventControl,
            },
        )
        # §2.7: 12 bytes.
        cancel_load_control_event: Final = ZCLCommandDef(
            id=0x01,
            schema={
                "issuer_event_id": t.uint32_t,
                "device_class": DeviceClass,
                "utility_enrollment_group": t.uint8_t,
                "cancel_control": CancelControl,
                "effective_time": t.UTCTime,  # 0 = now
            },
        )
        # §2.7: 1 byte.
        cancel_all_load_control_events: Final = ZCLCommandDef(
            id=0x02,
            schema={"cancel_control": CancelControl},
        )
