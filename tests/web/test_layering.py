"""The web's own layering, read from its sources: keys in one leaf module, every import between web
modules at the top (no cycles hidden in functions), and no SQL (the core's services run it)."""

from __future__ import annotations

import ast
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"


def _imports(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.extend([(node, node.module)] + [(node, f"{node.module}.{a.name}") for a in node.names])
    return found


def _sources() -> dict[str, ast.Module]:
    return {path.name: ast.parse(path.read_text(), str(path)) for path in sorted(WEB.glob("*.py"))}


def _is_web(name: str) -> bool:
    return name == "web" or name.startswith("web.")


def test_the_keys_module_imports_nothing_from_web() -> None:
    tree = _sources()["keys.py"]
    assert [name for _node, name in _imports(tree) if _is_web(name)] == []


def test_web_modules_import_each_other_only_at_the_top() -> None:
    inside = []
    for name, tree in _sources().items():
        top = set(map(id, tree.body))
        for node, module in _imports(tree):
            if _is_web(module) and id(node) not in top:
                inside.append(f"{name}:{node.lineno} {module}")
    assert inside == []


def test_no_web_module_runs_sql() -> None:
    sql = [f"{name}:{node.lineno} {module}" for name, tree in _sources().items() for node, module in _imports(tree)
           if module.split(".")[0] == "sqlalchemy" or module in ("ems.store.tables", "ems.store.commands")]
    assert sql == []




def test_no_web_module_reads_another_ones_private_names() -> None:
    private = {f"{name} {module}" for name, tree in _sources().items() for node, module in _imports(tree)
               if _is_web(module) and module.rsplit(".", 1)[-1].startswith("_")
               and module.rsplit(".", 1)[-1] != "_"}  # ``_`` is gettext (web.i18n), not a private name
    assert private == set()
