"""The paper-table recipes: every row has one, each validates, and each builds (shapes only) at its stated size."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from trmzoo.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "recipes" / "paper"
RECIPES = sorted(PAPER.glob("*.yaml"))

# Every row of the paper's Tables 1-5 that a model here can reproduce, as the recipe headers name them.
ROWS = [
    *(f'Table 1 (Sudoku-Extreme ablations), row "{row}"' for row in (
        "TRM (T=3, n=6)", "w/ ACT (continue loss)", "w/ separate fH, fL", "no EMA", "w/ 4 layers, n=3",
        "w/ self-attention", "w/ T=2, n=2", "w/ 1-step gradient", "HRM")),
    'Table 2 row "y, z (2 features)"',
    'Table 2 (number of latent features, Sudoku-Extreme), row "multi-scale z',
    'Table 2 (number of latent features, Sudoku-Extreme), row "single z"',
    "Table 3 HRM k=2 T=2", "Table 3 TRM k=3 T=3",
    *(f"Table 3 (recursion depth, Sudoku-Extreme), row k={k} T={t}, {which}"
      for k, t in ((1, 1), (3, 3), (4, 4), (6, 3), (3, 6), (6, 6), (2, 2)) for which in ("HRM", "TRM")
      if (k, t, which) not in ((2, 2, "HRM"), (3, 3, "TRM"))),
    *(f"Table 4 Sudoku-Extreme {m}" for m in ("TRM-MLP", "TRM-Att", "HRM")),
    'Table 4 (Sudoku-Extreme and Maze-Hard), row "Direct pred", Sudoku-Extreme',
    *(f'Table 4 (Sudoku-Extreme and Maze-Hard), row "{m}", Maze-Hard' for m in ("Direct pred", "HRM", "TRM-Att", "TRM-MLP")),
    *(f'Table 5 (ARC-AGI, pass@2), row "{m}", ARC-AGI-{v}' for v in (1, 2) for m in ("Direct pred", "HRM", "TRM-Att", "TRM-MLP")),
]


def _header(path: Path) -> str:
    return "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))


def test_every_table_row_has_exactly_one_recipe():
    headers = {path.name: _header(path) for path in RECIPES}
    for row in ROWS:
        holders = [name for name, text in headers.items() if row in text]
        assert len(holders) == 1, f"{row!r} is in {holders}"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_header_names_the_paper_figure_size_and_its_own_command(path):
    header = _header(path)
    assert re.search(r"^# Paper \(TRM, arXiv 2510\.04871\) Table \d .*: .*(%|out of memory)", header, re.M)
    assert re.search(r"^# Parameters: [\d,]+ ", header, re.M)
    assert f"# Run: trmzoo train recipes/paper/{path.name}\n" in header
    assert "# Official equivalent: " in header


def test_recipes_validate_passes_for_every_table_recipe():
    result = CliRunner().invoke(cli, ["recipes", "validate", *map(str, RECIPES)])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok") == len(RECIPES)


def test_dry_run_builds_each_model_at_the_size_its_header_states(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipes' data folders are relative: none may appear
    runner = CliRunner()
    for path in RECIPES:
        result = runner.invoke(cli, ["train", "--dry-run", str(path)])
        assert result.exit_code == 0, f"{path.name}: {result.output}"
        stated = re.search(r"^# Parameters: ([\d,]+) ", _header(path), re.M).group(1)
        assert f"model {stated} parameters" in result.output, f"{path.name}: {result.output}"
    assert list(tmp_path.iterdir()) == []
