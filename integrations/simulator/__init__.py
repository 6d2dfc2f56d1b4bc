"""The simulated HAN: a SmartConnect meter (ESI) and the home's devices, driven by a YAML scenario.

``SimulatedHan`` (in ``runner``) hosts the meter on a virtual HAN that the appliance's virtual
radio joins over loopback TCP, and the home's thermostat, plugs, battery and load controllers
on a second one (``home.py``). It is loaded on first use, so that validating a scenario does
not import the Zigbee stack.
"""

from __future__ import annotations

from typing import Any

from integrations.simulator.scenario import Scenario, load_scenario, scenario_from_dict

__all__ = ["SimulatedHan", "Scenario", "load_scenario", "scenario_from_dict"]


def __getattr__(name: str) -> Any:
    if name == "SimulatedHan":
        from integrations.simulator.runner import SimulatedHan

        return SimulatedHan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
