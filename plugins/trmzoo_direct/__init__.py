"""The direct-prediction baseline (the official ``transformers_baseline``): its recursion, its
checkpoints' converter and the named models.

No recursion: one 8-layer attention network with 12 heads (head_dim 42) is applied
once per supervision step, ``y <- net(y + x)``, under the same deep-supervision and
halting wrapper as HRM (the TRM plugin's halting policies). The official baseline
halts on ``q_halt > q_continue`` but never computes the continue target, hence
Q-learning halting without bootstrap.

For a plain single pass (no deep supervision, no halting) override the halting
section with :data:`SINGLE_PASS`, e.g. ``create_model("direct_sudoku", halting=SINGLE_PASS)``
or, in a recipe, ``model.halting: {kind: fixed, max_steps: 1}``.

Parameter count (puzzle table excluded) for the ARC vocabulary: 27,145,218, as the official one.
"""

from __future__ import annotations

import warnings
from typing import Callable, Literal

from pydantic import Field
from torch import nn

from trmzoo import hookimpl
from trmzoo.core.config import Config
from trmzoo.convert import OfficialConverter, not_computed
from trmzoo.core.recursion import Recursion, init_state


# -- the recursion ---------------------------------------------------------------------------------
class DirectRecursionConfig(Config):
    kind: Literal["direct"] = "direct"
    layers: int = Field(8, ge=1)
    """Blocks of the single network applied once per supervision step."""


class DirectRecursion(Recursion):
    """No recursion: one deeper network applied once per step, ``y <- net(y, x)`` (the direct baseline)."""

    def __init__(self, *, config: DirectRecursionConfig, make_net: Callable[[int], nn.Module], hidden_size: int) -> None:
        super().__init__()
        self.config = config
        self.net = make_net(config.layers)
        self.y_init, self.z_init = init_state(hidden_size), None

    def forward(self, y, z, x):
        return self.after_latent_update(self.net(y, x)), None  # y is its only state

    def readout(self, y, z):
        return y


# -- official checkpoints --------------------------------------------------------------------------
BASELINE = "recursive_reasoning.transformers_baseline@Model_ACTV2"


class BaselineConverter(OfficialConverter):
    """The official ``transformers_baseline``: one network, its ``H_level``; attention only."""

    levels = {"H_level": "recursion.net"}
    inits = {"H_init": "recursion.y_init"}
    has_mlp_t = False

    def recursion(self, get, halting, source):
        if get("act_enabled", True):  # halts on q_halt > q_continue; q_continue is never trained
            halting.update(kind="q_learning", bootstrap=False)
        else:
            halting.update(kind="fixed", exploration_prob=0.0)
        if get("act_inference", False):  # an evaluation setting, not the model's: it maps to how one evaluates
            warnings.warn(f"{source}: act_inference is true, so the official evaluation stopped each sample when it "
                          "halted; evaluate with `trmzoo eval --early-exit` (early_exit=True) for the same", stacklevel=2)
        return {"kind": "direct", "layers": int(get("H_layers"))}

    def layer_settings(self, config):
        return {"H_level": ("H_layers", config["recursion"]["layers"])}

    def describe(self, model):
        cfg = model.config
        rec, halt = cfg.recursion, cfg.halting
        if rec.kind != "direct":
            return None
        ceil_len = -(cfg.puzzle_emb_ndim // -cfg.hidden_size)
        if cfg.backbone.kind != "attention" or cfg.pos_encodings == "none" or cfg.prefix_len != ceil_len:
            raise not_computed("the direct baseline needs attention, rope or learned positions, ceil(ndim/hidden) "
                               "prefix slots")
        if halt.kind == "q_learning" and not halt.bootstrap:
            act_enabled = True
        elif halt.kind == "fixed":
            act_enabled = False
        else:
            raise not_computed(f"the direct baseline has no {halt.kind} halting with this setting")
        arch = self.common_arch(model)
        del arch["mlp_t"]
        return {"name": self.name, **arch, "H_cycles": 1, "H_layers": rec.layers, "act_enabled": act_enabled}


# -- named models ----------------------------------------------------------------------------------
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
    "direct_sudoku": ("sudoku", "Direct prediction, 8-layer transformer for 9x9 Sudoku (27M; paper: 0.0%)"),
    "direct_maze": ("maze", "Direct prediction, 8-layer transformer for 30x30 mazes (27M; paper: 0.0%)"),
    "direct_arc": ("arc", "Direct prediction, 8-layer transformer for ARC-AGI (27M; paper: 21.0% / 0.0%)"),
}


# -- registration ----------------------------------------------------------------------------------
@hookimpl
def register_recursions(register):
    register("direct", DirectRecursionConfig, DirectRecursion)


@hookimpl
def register_models(register):
    for name, (task, description) in MODELS.items():
        register(name, DIRECT, description=description, task=task)


@hookimpl
def register_converters(register):
    register(BASELINE, BaselineConverter(BASELINE))
