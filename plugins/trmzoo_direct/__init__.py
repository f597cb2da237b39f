"""Built-in plugin: the direct-prediction baseline (the official ``transformers_baseline``).

No recursion: one 8-layer attention network with 12 heads (head_dim 42) is applied
once per supervision step, ``y <- net(y + x)``, under the same deep-supervision and
halting wrapper as HRM. The official baseline halts on ``q_halt > q_continue`` but
never computes the continue target, hence Q-learning halting without bootstrap.

For a plain single pass (no deep supervision, no halting) override the halting
section with :data:`SINGLE_PASS`, e.g. ``create_model("direct_sudoku", halting=SINGLE_PASS)``
or, in a recipe, ``model.halting: {kind: fixed, max_steps: 1}``.

Parameter count (puzzle table excluded) for the ARC vocabulary: 27,145,218, as the official one.
"""

from __future__ import annotations

from trmzoo import hookimpl

SUDOKU = {"vocab_size": 11, "seq_len": 81}
MAZE = {"vocab_size": 6, "seq_len": 900}
ARC = {"vocab_size": 12, "seq_len": 900}

DIRECT = {
    "hidden_size": 512,
    "puzzle_emb_ndim": 512,
    "puzzle_emb_len": 0,  # ceil(puzzle_emb_ndim / hidden_size) slots, as in the official baseline
    "pos_encodings": "rope",
    "backbone": {"kind": "attention", "num_heads": 12},
    "recursion": {"kind": "direct", "layers": 8},
    "halting": {"kind": "q_learning", "bootstrap": False, "max_steps": 16, "exploration_prob": 0.1},
}
SINGLE_PASS = {"kind": "fixed", "max_steps": 1}
"""Halting section that makes the baseline one forward pass per example, trained once."""

MODELS = {
    "direct_sudoku": ({**DIRECT, **SUDOKU}, "Direct prediction, 8-layer transformer for 9x9 Sudoku (27M; paper: 0.0%)"),
    "direct_maze": ({**DIRECT, **MAZE}, "Direct prediction, 8-layer transformer for 30x30 mazes (27M; paper: 0.0%)"),
    "direct_arc": ({**DIRECT, **ARC}, "Direct prediction, 8-layer transformer for ARC-AGI (27M; paper: 21.0% / 0.0%)"),
}


@hookimpl
def register_models(register):
    for name, (config, description) in MODELS.items():
        register(name, config, description=description)
