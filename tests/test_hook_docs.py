"""docs/plugin-guide.md documents every hook of trmzoo.hookspecs with its exact signature."""

import re
from pathlib import Path

import pytest

from trmzoo.plugins import pm

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugin-guide.md"
HOOKS = sorted(name for name in vars(pm.hook) if not name.startswith("_"))


def documented() -> dict[str, str]:
    """``### name(args)`` headings of the guide's hook reference, as name -> heading text."""
    reference = GUIDE.read_text().split("## Hook reference", 1)[1]
    return {m.group(1): m.group(0)[4:] for m in re.finditer(r"^### (\w+)\(.*\)$", reference, re.MULTILINE)}


def test_the_guide_has_a_hook_reference():
    assert "## Hook reference" in GUIDE.read_text()
    assert HOOKS, "no hooks found in trmzoo.hookspecs"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_heading_with_its_signature(hook):
    argnames = getattr(pm.hook, hook).spec.argnames
    expected = f"{hook}({', '.join(argnames)})"
    headings = documented()
    assert hook in headings, f"docs/plugin-guide.md: no '### {expected}' heading under '## Hook reference'"
    assert headings[hook] == expected, f"docs/plugin-guide.md: heading '{headings[hook]}', the hookspec is '{expected}'"


def test_no_heading_documents_a_hook_that_does_not_exist():
    assert set(documented()) <= set(HOOKS), f"documented but not a hook: {sorted(set(documented()) - set(HOOKS))}"
