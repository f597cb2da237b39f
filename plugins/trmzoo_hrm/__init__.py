"""The HRM family (arXiv 2506.21734): the official HRM checkpoints' converter and the named models.

HRM is the TRM update scheme with two networks, so its modules are the TRM plugin's
recursion (kind ``trm``) and halting (``q_learning``) in one configuration: the low
level ``L`` (our ``z`` network) runs ``L_cycles`` times between updates of the high
level ``H`` (our ``y`` network), ``H_cycles`` rounds per supervision step, and only
the last ``L`` and the last ``H`` update carry gradient (the 1-step gradient).
Halting is Q-learning: halt when ``q_halt > q_continue``; ``q_continue`` is trained
toward a target from a second forward pass. The puzzle embedding takes
ceil(512 / 512) = 1 prefix slot, not TRM's 16.

Parameter counts (puzzle table excluded) equal the official ones:
27,275,266 (Sudoku), 27,270,146 (Maze), 27,276,290 (ARC); the vocabulary and grid
length come from each model's task plugin.
"""

from __future__ import annotations

from trmzoo import hookimpl
from trmzoo.convert import OfficialConverter, not_computed

from trmzoo_hrm.pretrained import PRETRAINED

HRM_ARCH = "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1"
HRM_REPO_ARCH = "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1"
"""The same class under the name the HRM repository's own configs give it (sapientinc/HRM, whose checkpoints
the HRM entries load): the same tensors, settings and computation."""


class HRMConverter(OfficialConverter):
    """The official HRM class: its ``L_level`` is our z network, its ``H_level`` our y network."""

    levels = {"L_level": "recursion.net", "H_level": "recursion.y_net"}
    inits = {"H_init": "recursion.y_init", "L_init": "recursion.z_init"}

    def recursion(self, get, halting, source):
        halting["kind"] = "q_learning"
        return {"kind": "trm", "H_cycles": int(get("H_cycles")), "L_cycles": int(get("L_cycles")),
                "L_layers": int(get("L_layers")), "H_layers": int(get("H_layers")), "separate_nets": True,
                "gradient": "one_step"}

    def layer_settings(self, config):
        recursion = config["recursion"]
        return {"L_level": ("L_layers", recursion.get("L_layers")), "H_level": ("H_layers", recursion.get("H_layers"))}

    def describe(self, model):
        cfg = model.config
        rec, halt = cfg.recursion, cfg.halting
        if rec.kind != "trm" or not (rec.separate_nets or rec.gradient == "one_step") \
                or cfg.backbone.kind not in ("attention", "mlp"):
            return None
        hrm_like = rec.separate_nets and rec.gradient == "one_step" and rec.latents == "yz"
        ceil_len = -(cfg.puzzle_emb_ndim // -cfg.hidden_size)
        if not hrm_like or halt.kind != "q_learning" or not halt.bootstrap or cfg.prefix_len != ceil_len:
            raise not_computed("separate nets and the one-step gradient exist only together, as HRM")
        return {"name": self.name, **self.common_arch(model), "H_cycles": rec.H_cycles, "L_cycles": rec.L_cycles,
                "L_layers": rec.L_layers, "H_layers": rec.H_layers or rec.L_layers}


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
    "hrm_sudoku": ("sudoku", "HRM for 9x9 Sudoku (27M; paper Table 4: 55.0% on Sudoku-Extreme)"),
    "hrm_maze": ("maze", "HRM for 30x30 mazes (27M; paper Table 4: 74.5% on Maze-Hard)"),
    "hrm_arc": ("arc", "HRM for ARC-AGI (27M; paper Table 5: 40.3% / 5.0% pass@2)"),
}


@hookimpl
def register_models(register):
    for name, (task, description) in MODELS.items():
        register(name, HRM, description=description, task=task, pretrained=PRETRAINED.get(name, ()))


@hookimpl
def register_converters(register):
    register(HRM_ARCH, HRMConverter(HRM_ARCH))
    register(HRM_REPO_ARCH, HRMConverter(HRM_REPO_ARCH))
