"""Throwaway plugins for tests: real installed distributions (a dist-info with ``entry_points.txt``) on
``sys.path``, found through the ``trmzoo`` entry-point group like any installed plugin."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from trmzoo import registry


@pytest.fixture
def fresh(monkeypatch):
    """Rediscover entry points for this test, and again afterwards."""
    monkeypatch.delenv("TRMZOO_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("TRMZOO_DISABLE_PLUGINS", raising=False)
    registry.reset()
    yield
    registry.reset()


def install_dist(root, dist_name, module_name, source, entry_name=None):
    """Write an installed distribution (a dist-info with entry_points.txt) and its module on sys.path."""
    (root / f"{module_name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist_name}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[trmzoo]\n{entry_name or module_name} = {module_name}\n")
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for :func:`install_dist`; its modules are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("zoo_")]:
        del sys.modules[name]
