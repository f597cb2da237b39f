"""What a recursion is: how the answer state y and the latent state z are updated in one
supervision step, and which part carries gradients.

This module holds the interface; the reference schemes live in their families'
plugins (TRM's y/z scheme with the paper's ablations in ``plugins/trmzoo_trm``, the
direct baseline's single pass in ``plugins/trmzoo_direct``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

from trmzoo.core.layers import trunc_normal_init_

States = tuple[torch.Tensor | None, torch.Tensor | None]


class Recursion(nn.Module):
    """Interface: holds the networks and initial states, updates (y, z) for one supervision step.

    Subclasses set ``y_init`` / ``z_init`` buffers (``None`` for a state they do not use)
    and implement :meth:`forward` and :meth:`readout`. ``forward`` passes the latent through
    :meth:`after_latent_update` after each of its updates, so that a test-time strategy can
    act inside the recursion (noise at every recursion); by default that is the identity.
    """

    y_init: torch.Tensor | None
    z_init: torch.Tensor | None
    latent_hook: Callable[[torch.Tensor], torch.Tensor] | None = None

    def after_latent_update(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` itself unless a :func:`latent_hook` is installed, then what it makes of ``z``."""
        return z if self.latent_hook is None else self.latent_hook(z)

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


@contextmanager
def latent_hook(recursion: Recursion, hook: Callable[[torch.Tensor], torch.Tensor] | None) -> Iterator[None]:
    """Install ``hook`` on the latent after every update inside ``recursion`` for the ``with`` block."""
    previous = recursion.latent_hook
    recursion.latent_hook = hook
    try:
        yield
    finally:
        recursion.latent_hook = previous


def init_state(*shape: int) -> nn.Buffer:
    """A fixed random initial state (truncated normal, std 1), saved with the weights as the official ``H_init``/``L_init``."""
    return nn.Buffer(trunc_normal_init_(torch.empty(*shape), std=1.0), persistent=True)
