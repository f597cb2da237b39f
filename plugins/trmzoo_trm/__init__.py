"""The TRM family (arXiv 2510.04871): its recursion, its halting policies, the converters of the
official TRM checkpoints (and, in ``converters.py``, of nano-trm's and CGAR's), and the paper's named models.

Parameter counts of the named configurations (puzzle table excluded) equal the
official ones: 5,028,866 (Sudoku MLP), 6,828,034 (Sudoku attention),
6,822,914 (Maze attention), 6,829,058 (ARC attention), 18,795,522 (Maze MLP).
The vocabulary and grid length of each come from its task's plugin.

In the TRM scheme the answer y and latent z are updated as::

    repeat T times (the first T-1 without gradient):
        repeat n times: z <- net(z, y + x)
        y <- net(y, z)

``net(h, inj)`` adds the injection and runs the blocks. The options reproduce the
paper's variants with the same code: a single latent, multi-scale latents,
separate networks for z and y (HRM's two levels), and the 1-step gradient.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from trmzoo import hookimpl
from trmzoo.core.config import Config
from trmzoo.convert import OfficialConverter, not_computed
from trmzoo.core.halting import HaltingConfig, HaltingPolicy
from trmzoo.core.recursion import Recursion, init_state
from trmzoo.errors import CheckpointError
from trmzoo_trm.pretrained import PRETRAINED


# -- the recursion -------------------------------------------------------------------------------
class TRMRecursionConfig(Config):
    kind: Literal["trm"] = "trm"
    H_cycles: int = Field(3, ge=1)
    """T: supervision-step rounds; the first T-1 run without gradient."""
    L_cycles: int = Field(6, ge=1)
    """n: latent updates per round."""
    L_layers: int = Field(2, ge=1)
    """Blocks in the network (in the z network when ``separate_nets``)."""
    H_layers: int | None = Field(None, ge=1)
    """Blocks in the y network when ``separate_nets`` (default: ``L_layers``)."""
    latents: Literal["yz", "single", "multiscale"] = "yz"
    """``yz``: answer and latent (TRM); ``single``: one state; ``multiscale``: y plus ``L_cycles`` latents."""
    separate_nets: bool = False
    """Use one network for z updates and another for y updates (paper's "separate fH, fL", HRM)."""
    gradient: Literal["last_round", "one_step"] = "last_round"
    """``last_round``: backprop through the whole last round (TRM); ``one_step``: only its final z and y updates."""


class TRMRecursion(Recursion):
    def __init__(self, *, config: TRMRecursionConfig, make_net: Callable[[int], nn.Module], hidden_size: int) -> None:
        super().__init__()
        self.config = config
        self.net = make_net(config.L_layers)
        self.y_net = make_net(config.H_layers or config.L_layers) if config.separate_nets else None
        if config.latents == "single":
            self.y_init, self.z_init = None, init_state(hidden_size)
        elif config.latents == "multiscale":
            self.y_init, self.z_init = init_state(hidden_size), init_state(config.L_cycles, hidden_size)
        else:
            self.y_init, self.z_init = init_state(hidden_size), init_state(hidden_size)

    def _round(self, y, z, x, *, last: bool):
        cfg, z_net = self.config, self.net
        y_net = self.y_net if self.y_net is not None else self.net
        partial = last and cfg.gradient == "one_step"
        for i in range(cfg.L_cycles):
            with torch.no_grad() if partial and i < cfg.L_cycles - 1 else nullcontext():
                if cfg.latents == "single":
                    z = z_net(z, x)
                elif cfg.latents == "multiscale":
                    updated = z_net(z.sum(dim=1), y + x)
                    z = torch.cat((z[:, :i], updated.unsqueeze(1), z[:, i + 1 :]), dim=1)
                else:
                    z = z_net(z, y + x)
                z = self.after_latent_update(z)
        if cfg.latents == "single":
            return None, y_net(z)
        return y_net(y, z.sum(dim=1) if cfg.latents == "multiscale" else z), z

    def forward(self, y, z, x):
        with torch.no_grad():
            for _ in range(self.config.H_cycles - 1):
                y, z = self._round(y, z, x, last=False)
        return self._round(y, z, x, last=True)

    def readout(self, y, z):
        return z if self.config.latents == "single" else y


# -- halting ---------------------------------------------------------------------------------------
class BCEHaltingConfig(HaltingConfig):
    kind: Literal["bce"] = "bce"


class BCEHalting(HaltingPolicy):
    """TRM: q_halt learns whether the whole answer is already correct; halt when q_halt > 0."""

    def signal(self, q_halt, q_continue):
        return q_halt > 0

    def loss(self, q_halt, q_continue, seq_correct, target_q_continue=None):
        return F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype), reduction="sum")


class QLearningHaltingConfig(HaltingConfig):
    kind: Literal["q_learning"] = "q_learning"
    bootstrap: bool = True
    """Train q_continue toward a target from a second forward pass. The official direct
    baseline halts on q_halt > q_continue but never computes that target (False)."""


class QLearningHalting(BCEHalting):
    """HRM (and TRM's "w/ ACT" ablation): q_continue learns a bootstrapped target from a
    second forward pass; halt when q_halt > q_continue."""

    def __init__(self, config: QLearningHaltingConfig) -> None:
        super().__init__(config)
        self.needs_target = config.bootstrap

    def signal(self, q_halt, q_continue):
        return q_halt > q_continue

    def loss(self, q_halt, q_continue, seq_correct, target_q_continue=None):
        halt_loss = super().loss(q_halt, q_continue, seq_correct)
        if target_q_continue is None:  # evaluation: no target was computed
            return halt_loss
        return halt_loss + F.binary_cross_entropy_with_logits(q_continue, target_q_continue, reduction="sum")

    def target(self, next_q_halt, next_q_continue, is_last_step):
        return torch.sigmoid(torch.where(is_last_step, next_q_halt, torch.maximum(next_q_halt, next_q_continue)))


class FixedHaltingConfig(HaltingConfig):
    kind: Literal["fixed"] = "fixed"
    exploration_prob: float = Field(0.0, ge=0, le=1)


class FixedHalting(BCEHalting):
    """Always run ``max_steps`` steps; the q head still learns the BCE target but never stops a sample."""

    def signal(self, q_halt, q_continue):
        return torch.zeros_like(q_halt, dtype=torch.bool)


# -- official checkpoints --------------------------------------------------------------------------
TRM = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
TRM_SINGLEZ = "recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1"
TRM_HIER6 = "recursive_reasoning.trm_hier6@TinyRecursiveReasoningModel_ACTV1"
HIER6_LATENTS = 6  # trm_hier6 hard-codes six latent features
LATENTS = {TRM: "yz", TRM_SINGLEZ: "single", TRM_HIER6: "multiscale"}
STACKED = f"inner.L1_init..L{HIER6_LATENTS}_init"  # what messages call trm_hier6's stacked z_init


class TRMConverter(OfficialConverter):
    """The official TRM classes: ``trm`` (y and z), ``trm_singlez`` (one state) and ``trm_hier6``
    (y and six latents, their ``L1_init``..``L6_init`` stacked into one ``z_init``)."""

    levels = {"L_level": "recursion.net"}
    has_puzzle_emb_len = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.latents = LATENTS[name]
        self.inits = {
            "yz": {"H_init": "recursion.y_init", "L_init": "recursion.z_init"},
            "single": {"L_init": "recursion.z_init"},
            "multiscale": {"H_init": "recursion.y_init",
                           **{f"L{i + 1}_init": f"recursion.z_init.{i}" for i in range(HIER6_LATENTS)}},
        }[self.latents]

    def recursion(self, get, halting, source):
        recursion = {"kind": "trm", "H_cycles": int(get("H_cycles")), "L_cycles": int(get("L_cycles")),
                     "L_layers": int(get("L_layers"))}
        halting["kind"] = "bce" if get("no_ACT_continue", True) else "q_learning"
        if self.latents == "single":
            recursion["latents"] = "single"
        if self.latents == "multiscale":
            if recursion["L_cycles"] != HIER6_LATENTS:
                raise CheckpointError(
                    f"{source}: trm_hier6 needs L_cycles {HIER6_LATENTS} (it keeps six latents),"
                    f" got {recursion['L_cycles']}"
                )
            recursion["latents"] = "multiscale"
        return recursion

    def layer_settings(self, config):
        return {"L_level": ("L_layers", config["recursion"].get("L_layers"))}

    def state_dict(self, weights, source):
        state = super().state_dict(weights, source)
        if self.latents != "multiscale":
            return state
        parts = {i: state.pop(f"recursion.z_init.{i}") for i in range(HIER6_LATENTS) if f"recursion.z_init.{i}" in state}
        missing = [f"L{i + 1}_init" for i in range(HIER6_LATENTS) if i not in parts]
        if missing:
            raise CheckpointError(f"{source}: missing tensor inner.{missing[0]}")
        state["recursion.z_init"] = torch.stack([parts[i] for i in range(HIER6_LATENTS)])
        return state

    def describe(self, model):
        cfg = model.config
        rec, halt = cfg.recursion, cfg.halting
        if rec.kind != "trm" or rec.separate_nets or rec.gradient == "one_step" or rec.latents != self.latents \
                or cfg.backbone.kind not in ("attention", "mlp"):
            return None  # separate nets or the one-step gradient: HRM's converter
        if halt.kind == "bce":
            no_act_continue = True
        elif halt.kind == "q_learning" and halt.bootstrap:
            no_act_continue = False
        else:
            raise not_computed(f"TRM has no {halt.kind} halting with this setting")
        if self.latents == "multiscale" and rec.L_cycles != HIER6_LATENTS:
            raise not_computed(f"trm_hier6 keeps six latents, the model has {rec.L_cycles}")
        return {"name": self.name, **self.common_arch(model), "H_cycles": rec.H_cycles, "L_cycles": rec.L_cycles,
                "L_layers": rec.L_layers, "H_layers": 0, "puzzle_emb_len": cfg.puzzle_emb_len,
                "no_ACT_continue": no_act_continue}

    def foreign_names(self, model):
        names = super().foreign_names(model)
        if self.latents == "multiscale":
            names["recursion.z_init"] = STACKED
        return names

    def export(self, model, prefix):
        state = super().export(model, prefix)
        if self.latents == "multiscale":
            z_init = state.pop(prefix + STACKED)
            for i in range(HIER6_LATENTS):
                state[f"{prefix}inner.L{i + 1}_init"] = z_init[i]
        return state


# -- named models ----------------------------------------------------------------------------------
MLP = {"backbone": {"kind": "mlp"}, "pos_encodings": "none"}
ATT = {"backbone": {"kind": "attention", "num_heads": 8}, "pos_encodings": "rope"}


def _trm(mixer: dict, n: int, **extra) -> dict:
    return {**mixer, "recursion": {"kind": "trm", "H_cycles": 3, "L_cycles": n, "L_layers": 2}, **extra}


MODELS = {
    "trm_sudoku_mlp": ("sudoku", _trm(MLP, 6), "TRM-MLP for 9x9 Sudoku (paper Table 4: 87.4% on Sudoku-Extreme)"),
    "trm_sudoku_att": ("sudoku", _trm(ATT, 6), "TRM with attention for 9x9 Sudoku (paper Table 4: 74.7%)"),
    "trm_maze_att": ("maze", _trm(ATT, 4), "TRM with attention for 30x30 mazes (paper Table 4: 85.3% on Maze-Hard)"),
    "trm_maze_mlp": ("maze", _trm({**MLP, "pos_encodings": "rope"}, 4), "TRM-MLP for 30x30 mazes (19M; paper: 0%)"),
    "trm_arc_att": ("arc", _trm(ATT, 4), "TRM with attention for ARC-AGI (paper Table 5: 44.6% / 7.8% pass@2)"),
}


# -- registration ----------------------------------------------------------------------------------
@hookimpl
def register_recursions(register):
    register("trm", TRMRecursionConfig, TRMRecursion)


@hookimpl
def register_halting_policies(register):
    register("bce", BCEHaltingConfig, BCEHalting)
    register("q_learning", QLearningHaltingConfig, QLearningHalting)
    register("fixed", FixedHaltingConfig, FixedHalting)


@hookimpl
def register_models(register):
    for name, (task, config, description) in MODELS.items():
        register(name, config, description=description, task=task, pretrained=PRETRAINED.get(name, ()))


@hookimpl
def register_converters(register):
    from trmzoo_trm.converters import CONVERTERS  # they build on TRMConverter, defined above

    for name in LATENTS:
        register(name, TRMConverter(name))
    for converter in CONVERTERS:
        register(converter.name, converter)
