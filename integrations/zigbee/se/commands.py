"""The typed payloads of the SE commands the appliance handles: zigpy's command schema structs.

Protocol only. zigpy builds one ``CommandSchema`` struct class per command definition (fields by
name, in wire order, absent optional fields None); these names make them usable as types, so a
translator says which command it takes (``def price_signal(fields: PublishPrice, ...)``).
"""

from __future__ import annotations

from typing import Final

from zigpy.zcl import foundation

from .clusters import Drlc, Messaging, Metering, Price

PublishPrice: Final = Price.ClientCommandDefs.publish_price.schema
PublishBlockPeriod: Final = Price.ClientCommandDefs.publish_block_period.schema  # or the SE 1.1 layout
PublishBillingPeriod: Final = Price.ClientCommandDefs.publish_billing_period.schema
PublishTierLabels: Final = Price.ClientCommandDefs.publish_tier_labels.schema
PublishCppEvent: Final = Price.ClientCommandDefs.publish_cpp_event.schema
DisplayMessage: Final = Messaging.ClientCommandDefs.display_message.schema
DisplayProtectedMessage: Final = Messaging.ClientCommandDefs.display_protected_message.schema
CancelMessage: Final = Messaging.ClientCommandDefs.cancel_message.schema
LoadControlEvent: Final = Drlc.ClientCommandDefs.load_control_event.schema
CancelLoadControlEvent: Final = Drlc.ClientCommandDefs.cancel_load_control_event.schema
CancelAllLoadControlEvents: Final = Drlc.ClientCommandDefs.cancel_all_load_control_events.schema
ReportEventStatus: Final = Drlc.ServerCommandDefs.report_event_status.schema
GetProfileResponse: Final = Metering.ClientCommandDefs.get_profile_response.schema
ReportAttributes: Final = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Report_Attributes].schema
