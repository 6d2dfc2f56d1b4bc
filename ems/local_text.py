"""The messages the EMS makes itself: their English templates (catalog msgids) and how to fill them.

A local message keeps its template and its values (``UtilityMessage.template``/``params``), so each
person reads it in their own language: the web layer translates the template with its catalogs
(``web/translations``) and fills it with :func:`render`. ``text`` keeps the English rendering, for
the log, the API and anything that knows no catalog (C6 4.1: several language versions of one
message, chosen by the customer's preference).

Values are machine strings, formatted for the reader's locale by the name of their placeholder:

- ``*_kwh``: a number of kWh (``"523.4"``), shown with the locale's decimal mark;
- ``*_cost``: an amount of money in the ``currency`` value (``"150.00"`` and ``"USD"``);
- ``start``, ``end``, ``*_at``: an aware time in ISO 8601 (``"2024-07-01T23:00:00+00:00"``),
  shown in the site's time zone;
- ``since``, ``*_date``: a date in ISO 8601 (``"2024-07-01"``);
- anything else (an event id, a device's name, a plan): shown as it is.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton, format_time
from babel.numbers import format_currency, format_decimal

from ems.model import MessageImportance, MessageOrigin, UtilityMessage

# The reader's temperature unit, "C" or "F", set per request by the web layer (web/i18n.py).
TEMPERATURE_UNIT: contextvars.ContextVar[str] = contextvars.ContextVar("ems_temperature_unit", default="C")
FAHRENHEIT_TERRITORIES = frozenset({"US", "PR", "GU", "VI", "AS", "MP", "UM", "LR", "MM", "BS", "BZ", "KY", "PW", "FM", "MH"})


def default_temperature_unit(timezone: str) -> str:
    """°F where the site's time zone lies in a country that reads Fahrenheit (the US), else °C."""
    from babel.core import get_global

    territory = get_global("zone_territories").get(timezone)
    return "F" if territory in FAHRENHEIT_TERRITORIES else "C"


def temperature(celsius: float, *, difference: bool = False) -> float:
    """A temperature (or, with ``difference``, a change of one) in the reader's unit."""
    if TEMPERATURE_UNIT.get() != "F":
        return celsius
    return celsius * 9 / 5 if difference else celsius * 9 / 5 + 32


def format_temperature(celsius: float, locale: str = "en", *, difference: bool = False) -> str:
    """``24.5 °C`` or ``76.1 °F``, one decimal at most, the locale's decimal mark."""
    value = round(temperature(celsius, difference=difference), 1)
    return f"{format_decimal(value, format='#,##0.#', locale=locale)} °{TEMPERATURE_UNIT.get()}"


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark a string for extraction into the catalogs; it is translated where it is shown."""
    return msgid


# -- the templates (msgids); keep the placeholders' names: the translations use them too --------

TIER_WARNING = N_(
    "Energy usage warning: you have entered pricing tier {tier} of {plan} this billing cycle "
    "({used_kwh} kWh used since {since})."
)
BILL_WARNING = N_(
    "Energy usage warning: this billing cycle's bill is projected at {projected_cost}, "
    "above the {threshold_cost} you set."
)
EVENT_ANNOUNCED = N_(
    "Energy event {event_id} announced: please use less from {start} to {end}."
)
EVENT_STARTED = N_("Energy event {event_id} has started: please use less until {end}.")
EVENT_ENDED = N_("Energy event {event_id} has ended. Thank you for taking part.")
# Ended without the home taking part (opted out, or every device taken out): no thanks for nothing.
EVENT_ENDED_WITHOUT_YOU = N_("Energy event {event_id} has ended. Your home did not take part.")
EVENT_CANCELLED = N_("Energy event {event_id} was cancelled by the utility.")
EVENT_OPTED_OUT = N_(
    "{device} no longer takes part in energy event {event_id}; the utility has been told."
)

TEMPLATES = (
    TIER_WARNING,
    BILL_WARNING,
    EVENT_ANNOUNCED,
    EVENT_STARTED,
    EVENT_ENDED,
    EVENT_ENDED_WITHOUT_YOU,
    EVENT_CANCELLED,
    EVENT_OPTED_OUT,
)

ENGLISH = "en"

# The catalogs, by language: the gettext of one (the web layer's, which the composition root gives
# the hub as ``hub.catalogs``): what delivers a local message outside a page (MQTT) reads it in the
# customer's language with it.
Catalogs = Callable[[str], Callable[[str], str]]


def in_language(message: UtilityMessage, language: str, timezone: str, catalogs: Catalogs | None) -> str:
    """A message as delivered in ``language``: a local one rendered from its template (English
    without catalogs), the utility's as it sent it."""
    if not message.template:
        return message.text
    return render(message.template, message.params, locale=language, timezone=timezone,
                  gettext=catalogs(language) if catalogs is not None else None)


def local_message(
    meter_id: str,
    message_id: int,
    template: str,
    params: Mapping[str, str],
    *,
    importance: MessageImportance,
    start: datetime,
    end: datetime | None,
    received_at: datetime,
    confirmation_required: bool = False,
    timezone: str = "UTC",
) -> UtilityMessage:
    """A message of local origin: ``text`` in English, the template and its values kept."""
    values = {key: str(value) for key, value in params.items()}
    return UtilityMessage(
        meter_id=meter_id,
        message_id=message_id,
        text=render(template, values, locale=ENGLISH, timezone=timezone),
        importance=importance,
        start=start,
        end=end,
        confirmation_required=confirmation_required,
        received_at=received_at,
        origin=MessageOrigin.LOCAL,
        template=template,
        params=tuple(sorted(values.items())),
    )


def render(
    template: str,
    params: Mapping[str, str] | tuple[tuple[str, str], ...],
    *,
    locale: str = ENGLISH,
    timezone: str = "UTC",
    gettext: Callable[[str], str] | None = None,
) -> str:
    """The message in ``locale``: the template translated by ``gettext``, its values formatted.

    A placeholder the translation names but the values lack stays as ``{name}``, rather than
    failing: a reader sees a gap, never an error page.
    """
    values = dict(params)
    text = gettext(template) if gettext is not None else template
    formatted = _Values({key: format_value(key, value, values, locale, timezone) for key, value in values.items()})
    try:
        return text.format_map(formatted)
    except (ValueError, IndexError, AttributeError):  # a broken translation: fall back to English
        return template.format_map(formatted)


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def format_value(key: str, value: str, values: Mapping[str, str], locale: str, timezone: str) -> str:
    """One value as a reader in ``locale`` expects it (see the module's docstring for the rules)."""
    try:
        if key.endswith("_kwh"):
            return format_decimal(round(float(value), 1), locale=locale)
        if key.endswith("_cost"):
            return format_currency(float(value), values.get("currency", "USD"), locale=locale)
        if key in ("start", "end") or key.endswith("_at"):
            at = datetime.fromisoformat(value).astimezone(ZoneInfo(timezone))
            return format_moment(at, locale)
        if key == "since" or key.endswith("_date"):
            return format_skeleton("MMMd", date.fromisoformat(value), locale=locale)
    except (ValueError, TypeError, LookupError):
        return value  # not what its name promises: shown as it came
    return value


def format_moment(at: datetime, locale: str) -> str:
    """A moment as the locale writes it: weekday, day and month, and the time (``Mon, Jul 1, 4:00 PM``)."""
    day = format_skeleton("MMMEd", at, locale=locale)
    time = format_time(at, "short", locale=locale)
    joiner = str(Locale.parse(locale).datetime_formats["medium"])
    return joiner.replace("{1}", day).replace("{0}", time)

