"""Recipes ship as package data: a wheel built from the repository, installed into a fresh virtual
environment (on top of the running interpreter's packages, tests/throwaway_venv.py), lists and runs
the shipped recipes by name, away from any source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from throwaway_venv import make_venv, pip_install

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("pyproject.toml", "README.md", "trmzoo", "plugins", "recipes")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of the repository, built from a copy so that the checkout gets no build/ or egg-info."""
    root = tmp_path_factory.mktemp("wheel")
    for name in SHIPPED:
        source, target = ROOT / name, root / "source" / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(root / "dist"), str(root / "source")], check=True, timeout=300)
    (built,) = (root / "dist").glob("trmzoo-*.whl")
    return built


def test_the_wheel_holds_every_module_plugin_and_recipe(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "trmzoo").rglob("*.py")}
    expected |= {p.relative_to(ROOT / "plugins").as_posix() for p in (ROOT / "plugins").rglob("*.py")}
    expected |= {"trmzoo/recipes/" + p.relative_to(ROOT / "recipes").as_posix() for p in (ROOT / "recipes").rglob("*.yaml")}
    assert not expected - names, f"missing from the wheel (pyproject.toml [tool.setuptools]): {sorted(expected - names)}"
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)


@pytest.mark.slow
def test_an_installed_wheel_lists_and_runs_the_shipped_recipes_by_name(wheel, tmp_path):
    python = make_venv(tmp_path / "venv")
    pip_install(python, wheel, tmp_path)
    away = tmp_path / "elsewhere"  # no ./recipes, no source tree
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRMZOO_")}

    def trmzoo(*args: str) -> str:
        result = subprocess.run([python, "-m", "trmzoo", *args], capture_output=True, text=True, cwd=away, env=env,
                                timeout=300)
        assert result.returncode == 0, f"trmzoo {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    where = subprocess.run([python, "-c", "import trmzoo; print(trmzoo.__file__)"], capture_output=True, text=True,
                           cwd=away, env=env, check=True, timeout=120).stdout
    assert where.startswith(str(tmp_path / "venv")), f"trmzoo came from {where}, not the installed wheel"
    listed = {line.split()[0] for line in trmzoo("recipes", "list").splitlines() if line.strip()}
    assert {"sudoku_cpu", "sudoku_mlp", "arc1_att", "fast/sudoku6_cpu", "fast/sudoku_mlp", "paper/table1_trm"} <= listed
    assert "valid; model" in trmzoo("train", "sudoku_cpu", "--dry-run")
    assert "valid; model" in trmzoo("train", "fast/sudoku6_cpu", "--dry-run")
    assert trmzoo("recipes", "show", "sudoku_cpu") == (ROOT / "recipes" / "sudoku_cpu.yaml").read_text()
    assert trmzoo("recipes", "show", "paper/table1_trm") == (ROOT / "recipes" / "paper" / "table1_trm.yaml").read_text()
