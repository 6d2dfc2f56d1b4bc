"""A short, repeatable run of the EAGLE fuzz target (bench/fuzz/targets_eagle.py): whatever an EAGLE
sends as a reply's body, nothing crashes and every refusal is explained.

The long coverage-guided run is atheris's (``python -m bench.fuzz --targets eagle``); this is
hypothesis's, derandomized so that CI sees the same inputs every time: mutations of the real
replies (the digest's example, the 2017 manual's units, hex values, empty values), and replies
assembled from the real element and variable names with odd values.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz.targets import Target, make

SHORT = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture])
VARIABLES = ["zigbee:InstantaneousDemand", "zigbee:CurrentSummationDelivered", "zigbee:CurrentSummationReceived",
             "zigbee:Price", "zigbee:PriceTrailingDigits", "zigbee:PriceDuration", "zigbee:PriceStartTime",
             "zigbee:Block1Threshold", "zigbee:Block2Threshold", "zigbee:Message", "zigbee:MessageId",
             "zigbee:MessageDurationInMinutes", "zigbee:Multiplier", "zigbee:Divisor", "zigbee:PriceCurrency",
             "zigbee:CurrentBillingPeriodStart", "zigbee:CurrentBillingPeriodDuration"]
ODD = ["", "invalid", "0", "-0", "1e308", "-1e308", "nan", "inf", "0x", "0xffffffff", "4294967295", "946684800",
       "65535", "1.5 kW", "12 MWh", "1,000.5", "-2.5", "  7  ", "0x7fffffffffffffff", "99999999999999999999", "true"]


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    made = make("eagle")
    yield made
    made.close()


def test_the_real_replies_are_accepted(target: Target) -> None:
    outcomes = [target.run(seed) for seed in target.seeds()]
    assert outcomes[0] == "accepted query (reading, price, rate, message; no values refused)"
    assert outcomes[2].endswith("some values refused)")  # hex demand: that value only
    assert outcomes[5] == "accepted device list (a meter)"


@SHORT
@given(data=st.data())
def test_mutated_replies_never_crash(target: Target, data: st.DataObject) -> None:
    seed = bytearray(data.draw(st.sampled_from(target.seeds())))
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, max(0, len(seed) - 1)))
        choice = data.draw(st.integers(0, 2))
        if choice == 0 and len(seed) > 1:
            del seed[at:at + data.draw(st.integers(1, 40))]
        elif choice == 1:
            seed[at:at] = data.draw(st.sampled_from(target.words()))
        elif seed:
            seed[min(at, len(seed) - 1)] = data.draw(st.integers(0, 255))
    outcome = target.run(bytes(seed))
    assert outcome.startswith(("accepted", "rejected: "))


@SHORT
@given(st.lists(st.tuples(st.sampled_from(VARIABLES), st.sampled_from(ODD), st.sampled_from(["", "kW", "kWh", "min", "W"])),
                max_size=12))
def test_replies_of_odd_values_never_crash(target: Target, rows: list[tuple[str, str, str]]) -> None:
    body = "".join(f"<Variable><Name>{n}</Name><Value>{v}</Value><Units>{u}</Units></Variable>" for n, v, u in rows)
    reply = (f"<Device><DeviceDetails><HardwareAddress>0x0013500100aa3ce7</HardwareAddress></DeviceDetails>"
             f"<Components><Component><Variables>{body}</Variables></Component></Components></Device>")
    assert target.run(b"\x00" + reply.encode()).startswith("accepted")
