"""Built-in plugin: TRM's recursion and halting policies from the core, and the paper's named models.

Parameter counts of these configurations (puzzle table excluded) equal the
official ones: 5,028,866 (Sudoku MLP), 6,828,034 (Sudoku attention),
6,822,914 (Maze attention), 6,829,058 (ARC attention), 18,795,522 (Maze MLP).
"""

from __future__ import annotations

from trmzoo import hookimpl
from trmzoo.core import halting, recursion
from trmzoo_trm.pretrained import PRETRAINED

SUDOKU = {"vocab_size": 11, "seq_len": 81, "num_puzzle_identifiers": 1}
MAZE = {"vocab_size": 6, "seq_len": 900, "num_puzzle_identifiers": 1}
ARC = {"vocab_size": 12, "seq_len": 900, "num_puzzle_identifiers": 1}
MLP = {"backbone": {"kind": "mlp"}, "pos_encodings": "none"}
ATT = {"backbone": {"kind": "attention", "num_heads": 8}, "pos_encodings": "rope"}


def _trm(task: dict, mixer: dict, n: int, **extra) -> dict:
    return {**task, **mixer, "recursion": {"kind": "trm", "H_cycles": 3, "L_cycles": n, "L_layers": 2}, **extra}


MODELS = {
    "trm_sudoku_mlp": (_trm(SUDOKU, MLP, 6), "TRM-MLP for 9x9 Sudoku (paper Table 4: 87.4% on Sudoku-Extreme)"),
    "trm_sudoku_att": (_trm(SUDOKU, ATT, 6), "TRM with attention for 9x9 Sudoku (paper Table 4: 74.7%)"),
    "trm_maze_att": (_trm(MAZE, ATT, 4), "TRM with attention for 30x30 mazes (paper Table 4: 85.3% on Maze-Hard)"),
    "trm_maze_mlp": (_trm(MAZE, {**MLP, "pos_encodings": "rope"}, 4), "TRM-MLP for 30x30 mazes (19M; paper: 0%)"),
    "trm_arc_att": (_trm(ARC, ATT, 4), "TRM with attention for ARC-AGI (paper Table 5: 44.6% / 7.8% pass@2)"),
}


@hookimpl
def register_recursions(register):
    register("trm", recursion.TRMRecursionConfig, recursion.TRMRecursion)
    register("direct", recursion.DirectRecursionConfig, recursion.DirectRecursion)


@hookimpl
def register_halting_policies(register):
    register("bce", halting.BCEHaltingConfig, halting.BCEHalting)
    register("q_learning", halting.QLearningHaltingConfig, halting.QLearningHalting)
    register("fixed", halting.FixedHaltingConfig, halting.FixedHalting)


@hookimpl
def register_models(register):
    for name, (config, description) in MODELS.items():
        register(name, config, description=description, pretrained=PRETRAINED.get(name, ()))
