"""What a recursion is, and TRM's scheme with the paper's ablations as options.

A recursion owns the tiny network(s) and the fixed random initial states, and
performs the state updates of one supervision step. In the TRM scheme the answer
y and latent z are updated as::

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
from pydantic import BaseModel, ConfigDict
from torch import nn

from trmzoo.core.layers import trunc_normal_init_

States = tuple[torch.Tensor | None, torch.Tensor | None]


class Recursion(nn.Module):
    """Interface: holds the networks and initial states, updates (y, z) for one supervision step.

    Subclasses set ``y_init`` / ``z_init`` buffers (``None`` for a state they do not use)
    and implement :meth:`forward` and :meth:`readout`.
    """

    y_init: torch.Tensor | None
    z_init: torch.Tensor | None

    def initial_states(self, batch_size: int, seq_len: int, dtype: torch.dtype) -> States:
        """The reset value of each state, broadcast to the batch."""

        def expand(init: torch.Tensor | None) -> torch.Tensor | None:
            if init is None:
                return None
            shape = (batch_size, *init.shape[:-1], seq_len, init.shape[-1])
            return init.to(dtype).unsqueeze(-2).expand(shape).clone()

        return expand(self.y_init), expand(self.z_init)

    def reset(self, mask: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor | None) -> States:
        """Replace the states of the samples in ``mask`` by the initial states."""

        def blend(init: torch.Tensor | None, state: torch.Tensor | None) -> torch.Tensor | None:
            if init is None:
                return None
            init = init.to(state.dtype).unsqueeze(-2)  # [..., 1, D] broadcasts over the sequence
            return torch.where(mask.view(-1, *([1] * (state.ndim - 1))), init, state)

        return blend(self.y_init, y), blend(self.z_init, z)

    def forward(self, y: torch.Tensor | None, z: torch.Tensor | None, x: torch.Tensor) -> States:
        raise NotImplementedError

    def readout(self, y: torch.Tensor | None, z: torch.Tensor | None) -> torch.Tensor:
        """The state the output and halting heads read."""
        raise NotImplementedError


def _init_state(*shape: int) -> nn.Buffer:
    return nn.Buffer(trunc_normal_init_(torch.empty(*shape), std=1.0), persistent=True)


class TRMRecursionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["trm"] = "trm"
    H_cycles: int = 3
    """T: supervision-step rounds; the first T-1 run without gradient."""
    L_cycles: int = 6
    """n: latent updates per round."""
    L_layers: int = 2
    """Blocks in the network (in the z network when ``separate_nets``)."""
    H_layers: int | None = None
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
            self.y_init, self.z_init = None, _init_state(hidden_size)
        elif config.latents == "multiscale":
            self.y_init, self.z_init = _init_state(hidden_size), _init_state(config.L_cycles, hidden_size)
        else:
            self.y_init, self.z_init = _init_state(hidden_size), _init_state(hidden_size)

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


class DirectRecursionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["direct"] = "direct"
    layers: int = 8
    """Blocks of the single network applied once per supervision step."""


class DirectRecursion(Recursion):
    """No recursion: one deeper network applied once per step, ``y <- net(y, x)`` (the direct baseline)."""

    def __init__(self, *, config: DirectRecursionConfig, make_net: Callable[[int], nn.Module], hidden_size: int) -> None:
        super().__init__()
        self.config = config
        self.net = make_net(config.layers)
        self.y_init, self.z_init = _init_state(hidden_size), None

    def forward(self, y, z, x):
        return self.net(y, x), None

    def readout(self, y, z):
        return y
