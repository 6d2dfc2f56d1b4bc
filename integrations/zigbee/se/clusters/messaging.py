"""Messaging cluster (0x0703), SE 1.0-1.2, as a zigpy cluster.

zigpy 2.4.0 ships ``Messaging`` as an empty stub. Message text uses ``Utf8String``
because zigpy's ``CharacterString`` frames non-ASCII text wrongly (digest §8 item 5).
Layouts follow digest §4 and Wireshark's ``dissect_zcl_msg_*``.
"""

from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseAttributeDefs, BaseCommandDefs, ZCLCommandDef

from ._frames import SeFrames
from ._types import Utf8String, attribute_reporting_status


class MessageText(Utf8String):
    """DisplayMessage text: a ZCL character string, at most 254 UTF-8 bytes.

    [ZB] caps unfragmented text at 48 bytes; that is a radio-frame limit the sender
    must respect, not a decoding rule, so decoding accepts the full ZCL range.
    """

    max_bytes = 254


class MessageResponse(Utf8String):
    """MessageConfirmation response text (SE 1.2): 0-20 bytes [TI11] (§4.5)."""

    max_bytes = 20


class MessageTransmission(t.enum2):
    """MessageControl bits 1-0 (§4.3)."""

    Normal = 0
    Normal_and_Anonymous_Inter_PAN = 1
    Anonymous_Inter_PAN_Only = 2
    Reserved = 3


class MessageImportance(t.enum2):
    """MessageControl bits 3-2 (§4.3)."""

    Low = 0
    Medium = 1
    High = 2
    Critical = 3


class MessageControl(t.IntStruct, t.uint8_t):
    """MessageControl bitmap8 (§4.3), split into its named bit fields.

    Fields run from the least significant bit: ``MessageControl(0x88)`` has
    ``importance == High`` and ``message_confirmation_required == 1``.
    """

    transmission: MessageTransmission
    importance: MessageImportance
    reserved_4: t.uint1_t
    enhanced_confirmation_required: t.uint1_t
    reserved_6: t.uint1_t
    message_confirmation_required: t.uint1_t


class ExtendedMessageControl(t.bitmap8):
    """SE 1.2 optional byte after the message text (§4.2)."""

    Message_Confirmed = 0x01


class MessageConfirmationControl(t.bitmap8):
    """SE 1.2 answer carried by MessageConfirmation (§4.5)."""

    No_Returned = 0x01
    Yes_Returned = 0x02


_DISPLAY_MESSAGE_SCHEMA: Final = {
    "message_id": t.uint32_t,
    "message_control": MessageControl,
    "start_time": t.UTCTime,  # 0 = now
    "duration_in_minutes": t.uint16_t,  # 0xFFFF = until changed
    "message": MessageText,
    "extended_message_control?": ExtendedMessageControl,  # SE 1.2
}


class Messaging(SeFrames, Cluster):
    """Messaging cluster with every SE 1.x command. It defines no attributes (§4.1)
    other than the SE 1.2 AttributeReportingStatus common to all SE clusters (§1.9)."""

    _skip_registry: Final = True  # installed per device (``clusters.install``), not in zigpy's registry

    MessageControl: Final = MessageControl
    MessageTransmission: Final = MessageTransmission
    MessageImportance: Final = MessageImportance
    ExtendedMessageControl: Final = ExtendedMessageControl
    MessageConfirmationControl: Final = MessageConfirmationControl

    cluster_id: Final[t.uint16_t] = 0x0703
    ep_attribute: Final = "smartenergy_messaging"

    class AttributeDefs(BaseAttributeDefs):
        attribute_reporting_status: Final = attribute_reporting_status()

    class ServerCommandDefs(BaseCommandDefs):
        """Client -> server (EMS -> ESI)."""

        get_last_message: Final = ZCLCommandDef(id=0x00, schema={})
        # §4.5: 8 bytes in SE 1.0/1.1; SE 1.2 adds the control byte and response text
        # (the response requires the control byte before it).
        message_confirmation: Final = ZCLCommandDef(
            id=0x01,
            schema={
                "message_id": t.uint32_t,
                "confirmation_time": t.UTCTime,
                "message_confirmation_control?": MessageConfirmationControl,
                "message_response?": MessageResponse,
            },
        )
        get_message_cancellation: Final = ZCLCommandDef(
            id=0x02, schema={"earliest_implementation_time": t.UTCTime}
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Server -> client (ESI -> EMS)."""

        display_message: Final = ZCLCommandDef(id=0x00, schema=_DISPLAY_MESSAGE_SCHEMA)
        # MessageControl should be 0x00 from SE 1.2 on; Wireshark flags others (§4.4).
        cancel_message: Final = ZCLCommandDef(
            id=0x01,
            schema={"message_id": t.uint32_t, "message_control": MessageControl},
        )
        # Same layout as DisplayMessage (§4.1).
        display_protected_message: Final = ZCLCommandDef(
            id=0x02, schema=dict(_DISPLAY_MESSAGE_SCHEMA)
        )
        cancel_all_messages: Final = ZCLCommandDef(
            id=0x03, schema={"implementation_date_time": t.UTCTime}
        )
