"""Built-in plugin: HRM (arXiv 2506.21734) as a configuration of the core's TRM recursion.

HRM is the TRM update scheme with two networks: the low level ``L`` (our ``z``
network) runs ``L_cycles`` times between updates of the high level ``H`` (our
``y`` network), ``H_cycles`` rounds per supervision step, and only the last ``L``
and the last ``H`` update carry gradient (the 1-step gradient). Halting is
Q-learning: halt when ``q_halt > q_continue``; ``q_continue`` is trained toward a
target from a second forward pass. The puzzle embedding takes ceil(512 / 512) = 1
prefix slot, not TRM's 16.

Parameter counts (puzzle table excluded) equal the official ones:
27,275,266 (Sudoku), 27,270,146 (Maze), 27,276,290 (ARC).
"""

from __future__ import annotations

from trmzoo import hookimpl

from trmzoo_hrm.pretrained import PRETRAINED

SUDOKU = {"vocab_size": 11, "seq_len": 81}
MAZE = {"vocab_size": 6, "seq_len": 900}
ARC = {"vocab_size": 12, "seq_len": 900}

HRM = {
    "hidden_size": 512,
    "puzzle_emb_ndim": 512,
    "puzzle_emb_len": 0,  # ceil(puzzle_emb_ndim / hidden_size) slots, as in HRM
    "pos_encodings": "rope",
    "backbone": {"kind": "attention", "num_heads": 8},
    "recursion": {
        "kind": "trm", "H_cycles": 2, "L_cycles": 2, "L_layers": 4, "H_layers": 4,
        "separate_nets": True, "gradient": "one_step",
    },
    "halting": {"kind": "q_learning", "bootstrap": True, "max_steps": 16, "exploration_prob": 0.1},
}

MODELS = {
    "hrm_sudoku": ({**HRM, **SUDOKU}, "HRM for 9x9 Sudoku (27M; paper Table 4: 55.0% on Sudoku-Extreme)"),
    "hrm_maze": ({**HRM, **MAZE}, "HRM for 30x30 mazes (27M; paper Table 4: 74.5% on Maze-Hard)"),
    "hrm_arc": ({**HRM, **ARC}, "HRM for ARC-AGI (27M; paper Table 5: 40.3% / 5.0% pass@2)"),
}


@hookimpl
def register_models(register):
    for name, (config, description) in MODELS.items():
        register(name, config, description=description, pretrained=PRETRAINED.get(name, ()))
