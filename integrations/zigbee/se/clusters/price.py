"""Price cluster (0x0700), SE 1.0-1.2, as a zigpy cluster.

zigpy 2.4.0 ships ``Price`` as an empty stub. This module declares the server
attributes of digest §3.7, the client attributes of §3.8 (see ``PriceClientAttributeDefs``
for why they are kept apart) and every SE 1.x Price command of §3.1-§3.6. Where the
digest gives no payload (PublishCreditPayment, PublishCurrencyConversion, CancelTariff)
the layout is Wireshark's ``dissect_zcl_price_publish_*``.

Nibble-packed bytes (§3.3) are ``IntStruct``s, so ``price_trailing_digit_and_price_tier``
reads as ``.price_trailing_digit`` / ``.price_tier`` yet stays one byte on the wire.
"""

from typing import Any, Final, NamedTuple

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.clusters.smartenergy import MeteringUnitofMeasure
from zigpy.zcl.foundation import (
    BaseAttributeDefs,
    BaseCommandDefs,
    ZCLAttributeDef,
    ZCLCommandDef,
)

from ._frames import SeFrames
from ._types import attribute_reporting_status

# Highest tier with its own label / price attribute (SE 1.2 extended tiers).
MAX_TIER: Final = 48


class PriceTrailingDigitAndPriceTier(t.IntStruct, t.uint8_t):
    """PublishPrice byte b+11 (§3.3): low nibble tier, high nibble trailing digits."""

    price_tier: t.uint4_t
    price_trailing_digit: t.uint4_t


class NumberOfPriceTiersAndRegisterTier(t.IntStruct, t.uint8_t):
    """PublishPrice byte b+12 (§3.3): low nibble register tier, high nibble tier count."""

    register_tier: t.uint4_t
    number_of_price_tiers: t.uint4_t


class TrailingDigit(t.IntStruct, t.uint8_t):
    """A trailing-digit byte whose high nibble counts decimal places (low nibble reserved)."""

    reserved: t.uint4_t
    trailing_digit: t.uint4_t


class TariffTypeAndChargingScheme(t.IntStruct, t.uint8_t):
    """PublishTariffInformation byte: low nibble TariffType, high nibble scheme (§3.6)."""

    tariff_type: t.uint4_t
    charging_scheme: t.uint4_t


class DurationType(t.IntStruct, t.uint8_t):
    """Block/Billing period duration type (§3.5): timebase low nibble, control high."""

    timebase: t.uint4_t  # 0 minutes, 1 days, 2 weeks, 3 months
    control: t.uint4_t  # 0 start of timebase, 1 end of timebase, 2 not specified


class TariffType(t.enum8):
    """TariffType (low nibble, high nibble reserved) of SE 1.2 commands (§3.5)."""

    Delivered = 0x00
    Received = 0x01
    Delivered_and_Received = 0x02


class ChargingScheme(t.enum8):
    """High nibble of TariffTypeAndChargingScheme (§3.6)."""

    TOU = 0x0
    Block = 0x1
    Block_TOU_Common_Thresholds = 0x2
    Block_TOU_Individual_Thresholds_Per_Tier = 0x3


class PriceControl(t.bitmap8):
    """PublishPrice PriceControl / PriceAcknowledgement Control (§3.4)."""

    Price_Acknowledgement_Required = 0x01
    Total_Tiers_Exceed_15 = 0x02


class BlockPeriodControl(t.bitmap8):
    """PublishBlockPeriod BlockPeriodControl (§3.5)."""

    Price_Acknowledgement_Required = 0x01
    Repeating_Block = 0x02


class GetCurrentPriceOptions(t.bitmap8):
    """GetCurrentPrice CommandOptions (§3.1, §3.9)."""

    Requestor_Rx_On_When_Idle = 0x01


class AlternateCostUnit(t.enum8):
    """PublishPrice AlternateCostUnit (§3.2); other values reserved, 0xFF = not used."""

    Kg_of_CO2_per_Unit_of_Measure = 0x02
    Not_Used = 0xFF


class CommodityType(t.enum8):
    """Price CommodityType (§3.7); values past 0x02 are not listed in the digest."""

    Electric_Metering = 0x00
    Gas_Metering = 0x01
    Water_Metering = 0x02


class CalorificValueUnit(t.enum8):
    """PublishCalorificValue unit (§3.6)."""

    MJ_per_m3 = 0x01
    MJ_per_kg = 0x02


class CO2Unit(t.enum8):
    """PublishCO2Value unit (§3.6)."""

    Kg_per_kWh = 0x01
    Kg_per_Gallon_of_Gasoline = 0x02
    Kg_per_Therm_of_Natural_Gas = 0x03


class TierBlockMode(t.enum8):
    """PublishTariffInformation TierBlockMode (§3.6)."""

    Active_Block = 0x00
    Active_Block_Price_Tier = 0x01
    Active_Block_Price_Tier_Threshold = 0x02
    Not_Used = 0xFF


class TariffResolutionPeriod(t.enum8):
    """PublishBlockPeriod TariffResolutionPeriod (§3.5)."""

    Not_Defined = 0x00
    Block_Period = 0x01
    One_Day = 0x02


class CPPPriceTier(t.enum8):
    """PublishCPPEvent CPPPriceTier: CPP1 price is 0x05FE, CPP2 0x05FF (§3.6)."""

    CPP1 = 0x00
    CPP2 = 0x01


class CPPAuth(t.enum8):
    """PublishCPPEvent / CPPEventResponse authorisation (§3.6)."""

    Pending = 0x00
    Accepted = 0x01
    Rejected = 0x02
    Forced = 0x03


class TierLabel(t.Struct):
    """One PublishTierLabels entry: TierID then an octet-string label (<= 12 bytes)."""

    tier_id: t.uint8_t
    tier_label: t.LimitedLVBytes(12)


class PriceMatrixEntry(t.Struct):
    """One PublishPriceMatrix entry (§3.6).

    ``tier_block_id`` is just the tier when SubPayloadControl bit 0 is set (TOU-based);
    otherwise the tier is the high nibble and the block the low nibble.
    """

    tier_block_id: t.uint8_t
    price: t.uint32_t


class BlockThresholdSubPayload(t.Struct):
    """One PublishBlockThresholds group (§3.6): a packed tier/count byte, then the
    thresholds. The tier nibble only means something when SubPayloadControl bit 0 = 0.
    """

    tier_number_of_block_thresholds: t.uint8_t
    block_thresholds: t.List[t.uint48_t] = t.StructField(
        length=lambda s: s.tier_number_of_block_thresholds & 0x0F
    )

    @property
    def tier(self) -> int:
        return (self.tier_number_of_block_thresholds >> 4) & 0x0F

    @property
    def number_of_block_thresholds(self) -> int:
        return self.tier_number_of_block_thresholds & 0x0F


# --- Server attributes (§3.7) ------------------------------------------------------------


class _PriceAttributeDefs(BaseAttributeDefs):
    block_threshold_count: Final = ZCLAttributeDef(id=0x010F, type=t.uint8_t, access="r")
    start_of_block_period: Final = ZCLAttributeDef(id=0x0200, type=t.UTCTime, access="r")
    block_period_duration: Final = ZCLAttributeDef(id=0x0201, type=t.uint24_t, access="r")
    threshold_multiplier: Final = ZCLAttributeDef(id=0x0202, type=t.uint24_t, access="r")
    threshold_divisor: Final = ZCLAttributeDef(id=0x0203, type=t.uint24_t, access="r")
    block_period_duration_type: Final = ZCLAttributeDef(id=0x0204, type=t.bitmap8, access="r")
    commodity_type: Final = ZCLAttributeDef(id=0x0300, type=CommodityType, access="r")
    standing_charge: Final = ZCLAttributeDef(id=0x0301, type=t.uint32_t, access="r")
    conversion_factor: Final = ZCLAttributeDef(id=0x0302, type=t.uint32_t, access="r")
    conversion_factor_trailing_digit: Final = ZCLAttributeDef(id=0x0303, type=t.bitmap8, access="r")
    calorific_value: Final = ZCLAttributeDef(id=0x0304, type=t.uint32_t, access="r")
    calorific_value_unit: Final = ZCLAttributeDef(id=0x0305, type=CalorificValueUnit, access="r")
    calorific_value_trailing_digit: Final = ZCLAttributeDef(id=0x0306, type=t.bitmap8, access="r")
    cpp1_price: Final = ZCLAttributeDef(id=0x05FE, type=t.uint32_t, access="r")
    cpp2_price: Final = ZCLAttributeDef(id=0x05FF, type=t.uint32_t, access="r")
    tariff_label: Final = ZCLAttributeDef(id=0x0610, type=t.LimitedLVBytes(24), access="r")
    number_of_price_tiers_in_use: Final = ZCLAttributeDef(id=0x0611, type=t.uint8_t, access="r")
    number_of_block_thresholds_in_use: Final = ZCLAttributeDef(
        id=0x0612, type=t.uint8_t, access="r"
    )
    tier_block_mode: Final = ZCLAttributeDef(id=0x0613, type=TierBlockMode, access="r")
    unit_of_measure: Final = ZCLAttributeDef(id=0x0615, type=MeteringUnitofMeasure, access="r")
    currency: Final = ZCLAttributeDef(id=0x0616, type=t.uint16_t, access="r")
    price_trailing_digit: Final = ZCLAttributeDef(id=0x0617, type=t.bitmap8, access="r")
    tariff_resolution_period: Final = ZCLAttributeDef(
        id=0x0619, type=TariffResolutionPeriod, access="r"
    )
    co2: Final = ZCLAttributeDef(id=0x0620, type=t.uint32_t, access="r")
    co2_unit: Final = ZCLAttributeDef(id=0x0621, type=CO2Unit, access="r")
    co2_trailing_digit: Final = ZCLAttributeDef(id=0x0622, type=t.bitmap8, access="r")
    current_billing_period_start: Final = ZCLAttributeDef(id=0x0700, type=t.UTCTime, access="r")
    current_billing_period_duration: Final = ZCLAttributeDef(id=0x0701, type=t.uint24_t, access="r")
    last_billing_period_start: Final = ZCLAttributeDef(id=0x0702, type=t.UTCTime, access="r")
    last_billing_period_duration: Final = ZCLAttributeDef(id=0x0703, type=t.uint24_t, access="r")
    last_billing_period_consolidated_bill: Final = ZCLAttributeDef(
        id=0x0704, type=t.uint32_t, access="r"
    )
    attribute_reporting_status: Final = attribute_reporting_status()


def _add_attr(name: str, attr_id: int, attr_type: type) -> None:
    setattr(_PriceAttributeDefs, name, ZCLAttributeDef(id=attr_id, type=attr_type, access="r"))


# Tier1..Tier48 PriceLabel, 0x0000-0x002F (1-15 SE 1.1, 16-48 SE 1.2).
for _tier in range(1, MAX_TIER + 1):
    _add_attr(f"tier{_tier}_price_label", _tier - 1, t.LimitedLVBytes(12))

# Block1..Block15 Threshold, 0x0100-0x010E (SE 1.1).
for _block in range(1, 16):
    _add_attr(f"block{_block}_threshold", 0x0100 + _block - 1, t.uint48_t)

# TiertBlocknThreshold 0x0110 + 0x10(t-1) + (n-1), n = 1..15, and the per-tier
# count at 0x011F + 0x10(t-1) (SE 1.2).
for _tier in range(1, 16):
    for _block in range(1, 16):
        _add_attr(
            f"tier{_tier}_block{_block}_threshold",
            0x0110 + 0x10 * (_tier - 1) + (_block - 1),
            t.uint48_t,
        )
    _add_attr(f"tier{_tier}_block_threshold_count", 0x011F + 0x10 * (_tier - 1), t.uint8_t)

# Block prices 0x0400 + 0x10 t + (n-1): t = 0 ("no tier") .. 15, n = 1..16 (SE 1.1).
for _tier in range(16):
    for _block in range(1, 17):
        _prefix = "no_tier" if _tier == 0 else f"tier{_tier}"
        _add_attr(f"{_prefix}_block{_block}_price", 0x0400 + 0x10 * _tier + _block - 1, t.uint32_t)

# PriceTier16..48, 0x050F-0x052F (SE 1.2).
for _tier in range(16, MAX_TIER + 1):
    _add_attr(f"price_tier{_tier}", 0x050F + _tier - 16, t.uint32_t)

del _tier, _block, _prefix


class PriceClientAttributeDefs(BaseAttributeDefs):
    """Price *client* attributes (§3.8), which live on the EMS.

    zigpy 2.4.0 has one attribute namespace per cluster class and the client IDs
    0x0000-0x0002 collide with the server's Tier1-3PriceLabel, so these cannot sit in
    ``Price.AttributeDefs``. They are kept here as data (with explicit names) for the
    adapter that answers Read Attributes on its Price client cluster.
    """

    price_increase_randomize_minutes: Final = ZCLAttributeDef(
        name="price_increase_randomize_minutes", id=0x0000, type=t.uint8_t, access="rw"
    )
    price_decrease_randomize_minutes: Final = ZCLAttributeDef(
        name="price_decrease_randomize_minutes", id=0x0001, type=t.uint8_t, access="rw"
    )
    commodity_type: Final = ZCLAttributeDef(
        name="commodity_type", id=0x0002, type=CommodityType, access="r"
    )


class PriceClientDefaults(NamedTuple):
    """Defaults of the Price client attributes (§3.8): the maximum random delay, in
    minutes (0-60), before reacting to a price increase or decrease."""

    price_increase_randomize_minutes: int = 0x05
    price_decrease_randomize_minutes: int = 0x0F


# --- Commands --------------------------------------------------------------------------

# §3.5 SE 1.2 layout (19 bytes). The last three fields are optional so that the type
# can also carry a truncated frame, but a 17-byte payload is the SE 1.1 layout
# (``PublishBlockPeriodSE11``): decode with ``decode_publish_block_period``.
_PUBLISH_BLOCK_PERIOD_SCHEMA: Final = {
    "provider_id": t.uint32_t,
    "issuer_event_id": t.uint32_t,
    "block_period_start_time": t.UTCTime,  # 0 = now
    "block_period_duration": t.uint24_t,  # in the DurationType timebase
    "block_period_control": BlockPeriodControl,
    "block_period_duration_type?": DurationType,
    "tariff_type?": t.uint8_t,  # TariffType in the low nibble
    "tariff_resolution_period?": TariffResolutionPeriod,
}

# GetConversionFactor and relatives share this request header (§3.1).
_GET_BY_EVENT_SCHEMA: Final = {
    "earliest_start_time": t.UTCTime,
    "min_issuer_event_id": t.uint32_t,
    "number_of_commands": t.uint8_t,
}


class PublishBlockPeriodSE11(t.Struct):
    """SE 1.1 PublishBlockPeriod, 17 bytes [TI11] (§3.5).

    Which nibble of the packed byte holds which count is unconfirmed (digest §10 item 2);
    by analogy with PublishPrice the tier count is taken from the high nibble.
    """

    provider_id: t.uint32_t
    issuer_event_id: t.uint32_t
    block_period_start_time: t.UTCTime
    block_period_duration_in_minutes: t.uint24_t
    number_of_price_tiers_and_number_of_block_thresholds: t.uint8_t
    block_period_control: BlockPeriodControl

    @property
    def number_of_price_tiers(self) -> int:
        return (self.number_of_price_tiers_and_number_of_block_thresholds >> 4) & 0x0F

    @property
    def number_of_block_thresholds(self) -> int:
        return self.number_of_price_tiers_and_number_of_block_thresholds & 0x0F


SE11_BLOCK_PERIOD_LENGTH: Final = 17


class Price(SeFrames, Cluster):
    """Price cluster: server attributes of §3.7 and all SE 1.0-1.2 commands."""

    _skip_registry: Final = True  # installed per device (``clusters.install``), not in zigpy's registry

    PriceControl: Final = PriceControl
    BlockPeriodControl: Final = BlockPeriodControl
    GetCurrentPriceOptions: Final = GetCurrentPriceOptions
    AlternateCostUnit: Final = AlternateCostUnit
    CommodityType: Final = CommodityType
    CPPAuth: Final = CPPAuth
    CPPPriceTier: Final = CPPPriceTier
    TierBlockMode: Final = TierBlockMode
    ClientAttributeDefs: Final = PriceClientAttributeDefs

    cluster_id: Final[t.uint16_t] = 0x0700
    ep_attribute: Final = "smartenergy_price"

    AttributeDefs = _PriceAttributeDefs

    class ServerCommandDefs(BaseCommandDefs):
        """Client -> server (EMS -> ESI), §3.1."""

        get_current_price: Final = ZCLCommandDef(
            id=0x00, schema={"command_options": GetCurrentPriceOptions}
        )
        get_scheduled_prices: Final = ZCLCommandDef(
            id=0x01,
            schema={"start_time": t.UTCTime, "number_of_events": t.uint8_t},  # 0 = all
        )
        # 13 bytes [TI11]; Control echoes the price's PriceControl (§3.4).
        price_acknowledgement: Final = ZCLCommandDef(
            id=0x02,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "price_ack_time": t.UTCTime,
                "control": PriceControl,
            },
        )
        get_block_periods: Final = ZCLCommandDef(
            id=0x03,
            schema={
                "start_time": t.UTCTime,
                "number_of_events": t.uint8_t,
                "tariff_type?": t.uint8_t,  # SE 1.2
            },
        )
        get_conversion_factor: Final = ZCLCommandDef(id=0x04, schema=dict(_GET_BY_EVENT_SCHEMA))
        get_calorific_value: Final = ZCLCommandDef(id=0x05, schema=dict(_GET_BY_EVENT_SCHEMA))
        get_tariff_information: Final = ZCLCommandDef(
            id=0x06, schema={**_GET_BY_EVENT_SCHEMA, "tariff_type": t.uint8_t}
        )
        get_price_matrix: Final = ZCLCommandDef(id=0x07, schema={"issuer_tariff_id": t.uint32_t})
        get_block_thresholds: Final = ZCLCommandDef(
            id=0x08, schema={"issuer_tariff_id": t.uint32_t}
        )
        get_co2_value: Final = ZCLCommandDef(
            id=0x09, schema={**_GET_BY_EVENT_SCHEMA, "tariff_type?": t.uint8_t}
        )
        get_tier_labels: Final = ZCLCommandDef(id=0x0A, schema={"issuer_tariff_id": t.uint32_t})
        get_billing_period: Final = ZCLCommandDef(
            id=0x0B, schema={**_GET_BY_EVENT_SCHEMA, "tariff_type?": t.uint8_t}
        )
        get_consolidated_bill: Final = ZCLCommandDef(
            id=0x0C, schema={**_GET_BY_EVENT_SCHEMA, "tariff_type?": t.uint8_t}
        )
        cpp_event_response: Final = ZCLCommandDef(
            id=0x0D, schema={"issuer_event_id": t.uint32_t, "cpp_auth": CPPAuth}
        )
        get_credit_payment: Final = ZCLCommandDef(
            id=0x0E,
            schema={"latest_end_time": t.UTCTime, "number_of_records": t.uint8_t},
        )
        get_currency_conversion: Final = ZCLCommandDef(id=0x0F, schema={})
        get_tariff_cancellation: Final = ZCLCommandDef(id=0x10, schema={})

    class ClientCommandDefs(BaseCommandDefs):
        """Server -> client (ESI -> EMS), §3.1."""

        # §3.2: mandatory core up to ``price`` (28 + L bytes); Wireshark decodes every
        # later field as optional. SE 1.0 (TI) stops after generation_price_ratio,
        # SE 1.1 after price_control, SE 1.2 carries all fields.
        publish_price: Final = ZCLCommandDef(
            id=0x00,
            schema={
                "provider_id": t.uint32_t,
                "rate_label": t.LimitedLVBytes(12),
                "issuer_event_id": t.uint32_t,
                "current_time": t.UTCTime,
                "unit_of_measure": MeteringUnitofMeasure,
                "currency": t.uint16_t,  # ISO 4217 numeric
                "price_trailing_digit_and_price_tier": PriceTrailingDigitAndPriceTier,
                "number_of_price_tiers_and_register_tier": NumberOfPriceTiersAndRegisterTier,
                "start_time": t.UTCTime,  # 0 = now
                "duration_in_minutes": t.uint16_t,  # 0xFFFF = until changed
                "price": t.uint32_t,
                "price_ratio?": t.uint8_t,  # 0xFF = not used
                "generation_price?": t.uint32_t,  # 0xFFFFFFFF = not used
                "generation_price_ratio?": t.uint8_t,  # 0xFF = not used
                "alternate_cost_delivered?": t.uint32_t,  # 0xFFFFFFFF = not used
                "alternate_cost_unit?": AlternateCostUnit,
                "alternate_cost_trailing_digit?": TrailingDigit,  # 0xFF = not used
                "number_of_block_thresholds?": t.uint8_t,  # SE 1.1, 0xFF = not used
                "price_control?": PriceControl,  # SE 1.1
                "number_of_generation_tiers?": t.uint8_t,  # SE 1.2
                "generation_tier?": t.uint8_t,  # SE 1.2, 0x01..0x30
                "extended_number_of_price_tiers?": t.uint8_t,  # SE 1.2, 0 = see nibble
                "extended_price_tier?": t.uint8_t,  # SE 1.2, 0 = see nibble
                "extended_register_tier?": t.uint8_t,  # SE 1.2, 0 = see nibble
            },
        )
        publish_block_period: Final = ZCLCommandDef(
            id=0x01, schema=dict(_PUBLISH_BLOCK_PERIOD_SCHEMA)
        )
        publish_conversion_factor: Final = ZCLCommandDef(
            id=0x02,
            schema={
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "conversion_factor": t.uint32_t,
                "conversion_factor_trailing_digit": TrailingDigit,
            },
        )
        publish_calorific_value: Final = ZCLCommandDef(
            id=0x03,
            schema={
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "calorific_value": t.uint32_t,
                "calorific_value_unit": CalorificValueUnit,
                "calorific_value_trailing_digit": TrailingDigit,
            },
        )
        publish_tariff_information: Final = ZCLCommandDef(
            id=0x04,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "issuer_tariff_id": t.uint32_t,
                "start_time": t.UTCTime,
                "tariff_type_charging_scheme": TariffTypeAndChargingScheme,
                "tariff_label": t.LimitedLVBytes(24),
                "number_of_price_tiers_in_use": t.uint8_t,
                "number_of_block_thresholds_in_use": t.uint8_t,
                "unit_of_measure": MeteringUnitofMeasure,
                "currency": t.uint16_t,
                "price_trailing_digit": TrailingDigit,
                "standing_charge": t.uint32_t,
                "tier_block_mode": TierBlockMode,
                "block_threshold_multiplier": t.uint24_t,
                "block_threshold_divisor": t.uint24_t,
            },
        )
        # §3.6: header, then {TierBlockID, Price} repeated to the end of the payload.
        publish_price_matrix: Final = ZCLCommandDef(
            id=0x05,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "issuer_tariff_id": t.uint32_t,
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "sub_payload_control": t.bitmap8,  # bit 0: 1 = TOU-based
                "price_matrix_sub_payload": t.List[PriceMatrixEntry],
            },
        )
        # §3.6: header, then {tier/count byte, count x uint48} repeated to the end.
        publish_block_thresholds: Final = ZCLCommandDef(
            id=0x06,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "issuer_tariff_id": t.uint32_t,
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "sub_payload_control": t.bitmap8,  # bit 0: 1 = all TOU tiers / block only
                "block_threshold_sub_payload": t.List[BlockThresholdSubPayload],
            },
        )
        publish_co2_value: Final = ZCLCommandDef(
            id=0x07,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "tariff_type": t.uint8_t,
                "co2_value": t.uint32_t,
                "co2_value_unit": CO2Unit,
                "co2_value_trailing_digit": TrailingDigit,
            },
        )
        # §3.6: NumberOfLabels is the uint8 count that LVList writes before the items.
        publish_tier_labels: Final = ZCLCommandDef(
            id=0x08,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "issuer_tariff_id": t.uint32_t,
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "tier_labels": t.LVList[TierLabel],
            },
        )
        # §3.6: 17 bytes [WS] (Silicon Labs packs the duration type differently).
        publish_billing_period: Final = ZCLCommandDef(
            id=0x09,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "billing_period_start_time": t.UTCTime,
                "billing_period_duration": t.uint24_t,
                "billing_period_duration_type": DurationType,
                "tariff_type": t.uint8_t,
            },
        )
        publish_consolidated_bill: Final = ZCLCommandDef(
            id=0x0A,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "billing_period_start_time": t.UTCTime,
                "billing_period_duration": t.uint24_t,
                "billing_period_duration_type": DurationType,
                "tariff_type": t.uint8_t,
                "consolidated_bill": t.uint32_t,
                "currency": t.uint16_t,
                "bill_trailing_digit": TrailingDigit,
            },
        )
        publish_cpp_event: Final = ZCLCommandDef(
            id=0x0B,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "duration_in_minutes": t.uint16_t,
                "tariff_type": t.uint8_t,
                "cpp_price_tier": CPPPriceTier,
                "cpp_auth": CPPAuth,
            },
        )
        # Not in the digest: Wireshark's dissect_zcl_price_publish_credit_payment.
        publish_credit_payment: Final = ZCLCommandDef(
            id=0x0C,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "credit_payment_due_date": t.UTCTime,
                "credit_payment_overdue_amount": t.uint32_t,
                "credit_payment_status": t.uint8_t,
                "credit_payment": t.uint32_t,
                "credit_payment_date": t.UTCTime,
                "credit_payment_ref": t.LVBytes,
            },
        )
        # Not in the digest: Wireshark's dissect_zcl_price_publish_currency_conversion.
        publish_currency_conversion: Final = ZCLCommandDef(
            id=0x0D,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "old_currency": t.uint16_t,
                "new_currency": t.uint16_t,
                "conversion_factor": t.uint32_t,
                "conversion_factor_trailing_digit": TrailingDigit,
                "currency_change_control_flags": t.bitmap32,
            },
        )
        # Not in the digest: 9 bytes per Wireshark, which labels the second field
        # "Issuer Event ID"; SE 1.2 implementations send the IssuerTariffID there.
        cancel_tariff: Final = ZCLCommandDef(
            id=0x0E,
            schema={
                "provider_id": t.uint32_t,
                "issuer_tariff_id": t.uint32_t,
                "tariff_type": t.uint8_t,
            },
        )


PublishBlockPeriodSE12 = Price.ClientCommandDefs.publish_block_period.schema


def _decode_payload(direction: Any, name: str, schema: Any, payload: bytes) -> tuple[Any, bytes]:
    """Price's one layout told apart by length: PublishBlockPeriod (SE 1.1 or 1.2, §3.5)."""
    if int(direction) == 1 and name == "publish_block_period":  # server -> client
        return decode_publish_block_period(payload)
    return schema.deserialize(payload)


Price.decode_payload = staticmethod(_decode_payload)  # type: ignore[attr-defined]


def decode_publish_block_period(
    payload: bytes,
) -> tuple[PublishBlockPeriodSE11 | t.Struct, bytes]:
    """Decode a PublishBlockPeriod payload into the SE 1.1 or SE 1.2 layout by length.

    The command ID is the same for both layouts; only the length tells them apart
    (§3.5): exactly 17 bytes is SE 1.1, anything else is read as SE 1.2. Returns the
    decoded struct and any trailing bytes; raises ``ValueError`` if too short.
    """
    if len(payload) == SE11_BLOCK_PERIOD_LENGTH:
        return PublishBlockPeriodSE11.deserialize(payload)
    return PublishBlockPeriodSE12.deserialize(payload)
