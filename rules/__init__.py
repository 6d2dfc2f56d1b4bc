"""The customer's rule engine: rules from YAML, evaluated as pure functions over a snapshot.

No I/O beyond reading the rules file, no asyncio: the control cycle calls ``evaluate`` with a
frozen ``Snapshot`` and gets ``Proposal``s back; the arbiter and the dispatcher do the rest.
"""

from rules.conflicts import check_conflicts
from rules.engine import evaluate, unknown_targets
from rules.ruleset import Rule, RuleSet
from rules.schema import load_rules, parse_rules
from rules.shedding import Candidate, Shed, ShedPlan, plan_shedding, thermostat_kw_per_c

__all__ = [
    "Candidate",
    "Rule",
    "RuleSet",
    "Shed",
    "ShedPlan",
    "check_conflicts",
    "evaluate",
    "load_rules",
    "parse_rules",
    "plan_shedding",
    "thermostat_kw_per_c",
    "unknown_targets",
]
