"""The house has one-way corridors: every import inside ``trmzoo/`` (function bodies included) goes to
the same layer or a lower one, and no import circle exists, not even one closed by a lazy import.

``LAYERS`` is the declared order, lowest first; docs/architecture.md states the same order and its
picture of the house is the one :func:`diagram` draws from the code (``python tests/test_layers.py``
prints it).
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "trmzoo"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

LAYERS: list[tuple[str, list[str]]] = [
    ("errors, version, yamlio, files, memory",
     ["trmzoo.errors", "trmzoo.version", "trmzoo.yamlio", "trmzoo.files", "trmzoo.memory"]),
    ("core", ["trmzoo.core", "trmzoo.core.*"]),
    ("data", ["trmzoo.data", "trmzoo.data.*"]),
    ("task", ["trmzoo.task", "trmzoo.strategy"]),
    ("registry and plugins", ["trmzoo.hookspecs", "trmzoo.plugins", "trmzoo.registry"]),
    ("recipe", ["trmzoo.recipe"]),
    ("factory", ["trmzoo.factory"]),
    ("weights, card and run folder", ["trmzoo.card", "trmzoo.weights", "trmzoo.run"]),
    ("conversion", ["trmzoo.convert"]),
    ("evaluation", ["trmzoo.evaluation", "trmzoo.distributed"]),
    ("hub and loading", ["trmzoo.hub", "trmzoo.api"]),
    ("train", ["trmzoo.train", "trmzoo.train.*"]),
    ("public API", ["trmzoo"]),
    ("cli, contract kit and pictures", ["trmzoo.cli", "trmzoo.__main__", "trmzoo.testing", "trmzoo.plot"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return index
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py LAYERS; declare where it belongs")


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The trmzoo modules ``module`` imports anywhere in its file (lazy imports in functions included)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from trmzoo import hub`` imports the module trmzoo.hub; ``from trmzoo import load`` the package
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import trmzoo.core.model`` names a module
                target = target.rpartition(".")[0]
            if target.startswith("trmzoo") and target != module:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {module: imports(module, path, known) for module, path in known.items()}


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_no_import_goes_up_a_layer():
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in graph().items() for target in sorted(targets) if layer_of(target) > layer_of(module)
    ]
    assert not upward, "imports from a lower layer up to a higher one:\n" + "\n".join(upward)


def test_no_import_circle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                circle = path[path.index(target):] + [target]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_the_checker_sees_lazy_upward_imports(tmp_path):
    fake = tmp_path / "trmzoo"
    (fake / "core").mkdir(parents=True)
    (fake / "hub.py").write_text("")
    (fake / "core" / "model.py").write_text("def f():\n    from trmzoo import hub\n    import trmzoo\n")
    known = {"trmzoo": fake / "__init__.py", "trmzoo.hub": fake / "hub.py", "trmzoo.core.model": fake / "core" / "model.py"}
    found = imports("trmzoo.core.model", known["trmzoo.core.model"], known)
    assert found == {"trmzoo.hub", "trmzoo"}
    assert all(layer_of(target) > layer_of("trmzoo.core.model") for target in found)


def diagram() -> str:
    """The layers as a Mermaid flowchart, lowest at the bottom, with the imports between layers
    that are not implied by others (a transitive reduction of the layer graph)."""
    edges = graph()
    layer_edges = {(layer_of(m), layer_of(t)) for m, targets in edges.items() for t in targets
                   if layer_of(m) != layer_of(t)}
    reach = {i: {j for a, j in layer_edges if a == i} for i in range(len(LAYERS))}
    for k in range(len(LAYERS)):  # transitive closure, layers are few
        for i in range(len(LAYERS)):
            if k in reach[i]:
                reach[i] |= reach[k]
    direct = sorted((a, b) for a, b in layer_edges
                    if not any(b in reach[c] for c in reach[a] if c != b))
    lines = ["flowchart BT"]
    known = modules()
    for index, (name, patterns) in enumerate(LAYERS):
        members = [m for m in known if layer_of(m) == index]
        short = sorted({_file_label(known[m]) for m in members})
        lines.append(f'  L{index}["<b>{name}</b><br/>{" ".join(short)}"]')
    lines += [f"  L{a} --> L{b}" for a, b in direct]
    return "\n".join(lines)


def _file_label(path: Path) -> str:
    """``hub.py`` for a module, ``core/`` for a whole subpackage, ``__init__.py`` for the package."""
    parts = path.relative_to(PACKAGE).parts
    return f"{parts[0]}/" if len(parts) > 1 else parts[0]


def test_architecture_doc_states_the_order_and_draws_the_house_from_the_code():
    text = ARCHITECTURE.read_text()
    listed = re.findall(r"^\d+\. \*\*(.+?)\*\*", text, re.MULTILINE)
    assert listed == [name for name, _ in LAYERS], \
        "docs/architecture.md: the numbered layer list differs from tests/test_layers.py LAYERS"
    match = re.search(r"```mermaid\n(.*?)\n```", text, re.DOTALL)
    assert match, "docs/architecture.md: no mermaid diagram of the house"
    assert match.group(1) == diagram(), \
        "docs/architecture.md: the diagram is not the one the code draws; paste `python tests/test_layers.py`"


if __name__ == "__main__":
    print(diagram())
