"""The rules check's problems in the reader's words: where, what is wrong, and what to type instead.

The validator (``rules/``, ``ems.config``) writes one English line per problem for the log and the
API, ``rules.yaml:2: devices.Living rooom.shed_priority: expected int (found 'ninety')``. The Rules
page shows the same problem translated and plain: "Line 2 · device “Living rooom” · shed_priority:
this must be a whole number. You wrote 'ninety'. Type digits only, such as 90." The validator's
wording stays as it is (the API and the log keep it); only its presentation is translated here, by
recognising the validator's phrases. A phrase not recognised is shown as the validator wrote it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from web.i18n import _

_PROBLEM = re.compile(r"^(?:(?P<file>[^\n]*?):(?P<line>\d+): )?(?P<rest>.*)$", re.DOTALL)
_YAML = "not valid YAML: "
_FOUND = re.compile(r" \(found (?P<found>.*)\)$")


@dataclass(frozen=True)
class Problem:
    """One problem as the Rules page shows it."""

    line: int | None  # the line of the rules text, when the validator knows it
    where: str  # the place in the rules ("rule 2 · trigger 1 · price"), or "" when only the line is known
    text: str  # what is wrong, translated
    fix: str  # what to type instead, translated ("" when there is no advice)
    original: str  # the validator's line, as logged


Advice = Callable[[re.Match[str], Sequence[str]], tuple[str, str]]


def _closest(word: str, known: Sequence[str]) -> str:
    """"Did you mean ...?" for a misspelt name, or ""."""
    match = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return _("Did you mean “{name}”?").format(name=match[0]) if match else ""


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _no_device(m: re.Match[str], devices: Sequence[str]) -> tuple[str, str]:
    name = m.group("name")
    return (_("There is no device named “{name}” in this home.").format(name=name),
            _join(_closest(name, devices), _("Type the name exactly as the Devices page shows it.")))


def _unknown_section(m: re.Match[str], _devices: Sequence[str]) -> tuple[str, str]:
    known = [k.strip() for k in m.group("known").split(",")]
    return (_("This is not a section of the rules file."),
            _join(_closest(m.group("key"), known), _("The sections are: {known}.").format(known=", ".join(known))))


# The validator's phrases (rules/schema.py, ems/config.py, PyYAML's messages) and what to say for each.
_MESSAGES: list[tuple[re.Pattern[str], Advice]] = [
    (re.compile(r"^expected int$"), lambda m, d: (
        _("This must be a whole number."), _("Type digits only, such as 90."))),
    (re.compile(r"^expected (?:a number|float)$"), lambda m, d: (
        _("This must be a number."), _("Type a number with a point for decimals, such as 0.35."))),
    (re.compile(r"^no device named '(?P<name>.*)' in this home$"), _no_device),
    (re.compile(r"^(?P<key>\S+): unknown section \(known sections: (?P<known>.*)\)$"), _unknown_section),
    (re.compile(r"^unknown key\b"), lambda m, d: (
        _("This setting is not known here."), _("Check its spelling against the examples at the top of the file."))),
    (re.compile(r"^expected a time\b"), lambda m, d: (
        _("This must be a time of day."),
        _("Type hours and minutes in quotes, such as \"16:30\" (from \"00:00\" to \"24:00\")."))),
    (re.compile(r"^expected a boolean$"), lambda m, d: (
        _("This must be yes or no."), _("Type true or false."))),
    (re.compile(r"^required key not provided$"), lambda m, d: (
        _("This setting is missing."), _("Add it, as in the examples at the top of the file."))),
    (re.compile(r"did not find expected '-' indicator|expected <block end>|did not find expected key"), lambda m, d: (
        _("The indentation of this line does not fit the lines above it."),
        _("Line up each “- ” item of a list under the one before, indenting with spaces."))),
    (re.compile(r"found character that cannot start any token"), lambda m, d: (
        _("This line has a character that cannot start a value, often a tab."),
        _("Indent with spaces, and put text that starts with @ or ` in quotes."))),
    (re.compile(r"mapping values are not allowed"), lambda m, d: (
        _("This line has one “:” too many."),
        _("Put a text that contains “: ” in quotes, such as name: \"Evening: pre-cool\"."))),
    (re.compile(r"could not find expected ':'"), lambda m, d: (
        _("A setting here is missing its “:”."), _("Write each setting as name: value."))),
    (re.compile(r"found unexpected end of stream|while scanning a quoted scalar"), lambda m, d: (
        _("A quote is not closed."), _("End the text with the same quote mark it starts with."))),
]


def _where(dotted: str) -> str:
    """``rules.0.triggers.1.price`` as "rule 1 · trigger 2 · price" (the YAML's own words kept)."""
    if dotted in ("", "(top level)"):
        return ""
    parts = dotted.split(".")
    out: list[str] = []
    i = 0
    numbered = {"rules": _("rule {n}"), "triggers": _("trigger {n}"), "conditions": _("condition {n}"),
                "action": _("action {n}")}
    while i < len(parts):
        part = parts[i]
        if part == "devices" and not out and i + 1 < len(parts):
            out.append(_("device “{name}”").format(name=parts[i + 1]))
            i += 2
            continue
        if part in numbered and i + 1 < len(parts) and parts[i + 1].isdigit():
            out.append(numbered[part].format(n=int(parts[i + 1]) + 1))
            i += 2
            continue
        out.append(".".join(parts[i:]))
        break
    return " · ".join(out)


def explain(problem: str, devices: Sequence[str] = ()) -> Problem:
    """One validator line as the Rules page shows it; ``devices`` are the home's names (for "did you mean")."""
    m = _PROBLEM.match(problem)
    assert m is not None  # the pattern matches any text
    line = int(m.group("line")) if m.group("line") else None
    rest = m.group("rest")
    where, message = "", rest
    if rest.startswith(_YAML):
        message = rest[len(_YAML):]
    elif ": " in rest:
        head, tail = rest.split(": ", 1)
        if " " not in head or head.startswith(("devices.", "rules.")):  # a key path
            where, message = _where(head), tail
            if "unknown section" in tail:
                message = f"{head}: {tail}"
    found = _FOUND.search(message)
    if found:
        message = message[:found.start()]
    for pattern, advice in _MESSAGES:
        hit = pattern.search(message)
        if hit:
            text, fix = advice(hit, devices)
            break
    else:
        first = message.split(" ", 1)[0]
        text, fix = (message if "_" in first else message[:1].upper() + message[1:]), ""  # a key stays as typed
    if found:
        text = _join(text, _("You wrote {found}.").format(found=found.group("found")))
    if not text.endswith((".", "?", "!", "。")):
        text += "."
    return Problem(line=line, where=where, text=text, fix=fix, original=problem)


def explain_all(problems: Sequence[str], devices: Sequence[str] = ()) -> list[Problem]:
    return [explain(p, devices) for p in problems]
