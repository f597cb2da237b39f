"""RecursiveModel: input embedding (with the puzzle prefix) + a recursion + output and halting heads.

One call of :meth:`RecursiveModel.step` is one supervision step of the official ACT
wrapper: samples marked halted in the carry are reset and take the new batch's
example, the recursion runs, the heads read the answer state, and the halting
policy decides who stops. The carry is detached between steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, Mapping

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from trmzoo.core.config import Config
from trmzoo.core.halting import HaltingPolicy
from trmzoo.core.layers import CastedEmbedding, CastedLinear
from trmzoo.core.provenance import Provenance
from trmzoo.core.recursion import Recursion
from trmzoo.errors import TrmzooError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DEFAULT_KINDS = {"backbone": "attention", "recursion": "trm", "halting": "bce"}
"""The kind of a model section that names none: TRM's (``halting: {max_steps: 8}`` is BCE halting)."""


class ModelConfigBase(Config):
    """Architecture fields shared by every recursive model (official names and defaults).

    The recipe schema extends this with the ``backbone``, ``recursion`` and
    ``halting`` sections, whose kinds come from plugins.
    """

    vocab_size: int = Field(0, ge=0)
    """Token vocabulary (0: taken from the dataset)."""
    seq_len: int = Field(0, ge=0)
    """Grid tokens, without the prefix (0: taken from the dataset)."""
    num_puzzle_identifiers: int = Field(1, ge=1)
    """Rows of the per-puzzle embedding table (taken from the dataset when training)."""
    hidden_size: int = Field(512, ge=1)
    expansion: float = Field(4.0, gt=0)
    puzzle_emb_ndim: int = Field(512, ge=0)
    """Width of a puzzle embedding; 0 means no puzzle embedding and no prefix."""
    puzzle_emb_len: int = Field(16, ge=0)
    """Prefix slots; 0 means ceil(puzzle_emb_ndim / hidden_size)."""
    pos_encodings: Literal["rope", "learned", "none"] = "rope"
    rope_theta: float = Field(10000.0, gt=0)
    rms_norm_eps: float = Field(1e-5, gt=0)
    forward_dtype: Literal["float32", "bfloat16"] = "bfloat16"

    @property
    def prefix_len(self) -> int:
        if self.puzzle_emb_ndim == 0:
            return 0
        return self.puzzle_emb_len or -(self.puzzle_emb_ndim // -self.hidden_size)

    @model_validator(mode="before")
    @classmethod
    def _default_kinds(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for section, kind in DEFAULT_KINDS.items():
                if isinstance(data.get(section), dict) and "kind" not in data[section]:
                    data = {**data, section: {"kind": kind, **data[section]}}
        return data

    @model_validator(mode="after")
    def _check_prefix(self):
        if self.puzzle_emb_ndim > self.prefix_len * self.hidden_size:
            raise ValueError(
                f"puzzle_emb_ndim {self.puzzle_emb_ndim} does not fit in {self.prefix_len} prefix slots of {self.hidden_size}"
            )
        return self


class PuzzleEmbedding(nn.Module):
    """Per-puzzle vectors kept as a buffer and trained by their own sparse optimizer.

    In training the looked-up rows are copied into a leaf tensor that requires grad; after
    backward the sparse optimizer reads ``last_lookup`` (ids, rows with grad) and updates
    only those rows. The leaf is made once per batch size and refilled without gradient, as
    the official code does, so a compiled supervision step has no graph break here.
    """

    def __init__(self, num: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Buffer(torch.zeros(num, dim), persistent=True)
        self.last_lookup: tuple[torch.Tensor, torch.Tensor] | None = None
        self._rows: torch.Tensor | None = None  # the leaf; not a buffer, so no state dict, EMA or broadcast sees it

    def prepare(self, batch_size: int) -> torch.Tensor:
        """The leaf for ``batch_size`` rows, made if needed. :meth:`RecursiveModel.step` calls this
        before the step, which may be compiled (Dynamo cannot create a tensor that requires grad)."""
        rows = self._rows
        if rows is None or rows.shape[0] != batch_size or rows.device != self.weight.device:
            rows = self._rows = torch.zeros(batch_size, self.weight.shape[1], device=self.weight.device,
                                            requires_grad=True)
        return rows

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.is_grad_enabled()):
            return self.weight[ids]
        rows = self.prepare(ids.shape[0])
        with torch.no_grad():
            rows.copy_(self.weight[ids])
        self.last_lookup = (ids, rows)
        return rows


@dataclass
class Carry:
    """State carried between supervision steps. ``y`` and ``z`` may be replaced by a caller."""

    y: torch.Tensor | None
    z: torch.Tensor | None
    steps: torch.Tensor  # int32 [B]
    halted: torch.Tensor  # bool [B]: the slot takes a new example at the next step
    data: dict[str, torch.Tensor] = field(default_factory=dict)

    def index(self, idx: torch.Tensor) -> "Carry":
        take = lambda t: None if t is None else t[idx]  # noqa: E731
        return Carry(take(self.y), take(self.z), self.steps[idx], self.halted[idx], {k: v[idx] for k, v in self.data.items()})


@dataclass
class StepOutput:
    logits: torch.Tensor  # [B, seq_len, vocab]
    q_halt: torch.Tensor  # fp32 [B]
    q_continue: torch.Tensor
    y: torch.Tensor | None  # states after the step, prefix included
    z: torch.Tensor | None
    halted: torch.Tensor
    steps: torch.Tensor
    target_q_continue: torch.Tensor | None = None

    @property
    def preds(self) -> torch.Tensor:
        return self.logits.argmax(-1)


class RecursiveModel(nn.Module):
    """A tiny recursive reasoning model. The recursion (holding the backbone nets) and the
    halting policy are passed in; :func:`trmzoo.create_model` builds them from a config."""

    def __init__(self, *, config: ModelConfigBase, recursion: Recursion, halting: HaltingPolicy) -> None:
        super().__init__()
        self.config = config
        self.recursion = recursion
        self.halting = halting
        self.dtype = DTYPES[config.forward_dtype]
        self.prefix_len = config.prefix_len
        self._frozen: list[tuple[torch.Tensor, int, int]] | None = None  # see compile_for_inference
        hidden = config.hidden_size
        self.embed_scale = math.sqrt(hidden)
        self.embed_tokens = CastedEmbedding(config.vocab_size, hidden, init_std=1 / self.embed_scale, dtype=self.dtype)
        self.puzzle_emb = PuzzleEmbedding(config.num_puzzle_identifiers, config.puzzle_emb_ndim) if config.puzzle_emb_ndim else None
        total_len = config.seq_len + self.prefix_len
        self.embed_pos = (
            CastedEmbedding(total_len, hidden, init_std=1 / self.embed_scale, dtype=self.dtype)
            if config.pos_encodings == "learned" else None
        )
        self.lm_head = CastedLinear(hidden, config.vocab_size)
        self.q_head = CastedLinear(hidden, 2, bias=True)
        with torch.no_grad():  # start by (almost) never halting
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5)
        self.provenance = Provenance()
        """What the model is and where its weights come from (filled by create_model, training, conversion, load)."""

    @property
    def meta(self) -> Mapping[str, Any]:
        """A read-only view of :attr:`provenance` under the keys of trmzoo 0.1's ``meta`` dict,
        for code written against it."""
        return MappingProxyType(self.provenance.v1())

    def parameter_counts(self) -> tuple[int, int]:
        """(learned network parameters, puzzle-table values). The table is a buffer with its own
        optimizer whose size follows the data build, so the two are reported apart."""
        table = self.puzzle_emb.weight.numel() if self.puzzle_emb is not None else 0
        return sum(p.numel() for p in self.parameters()), table

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live (inputs go there)."""
        return next(self.parameters()).device

    # -- the compute dtype ------------------------------------------------------------------------
    def set_forward_dtype(self, dtype: torch.dtype | str) -> "RecursiveModel":
        """Compute in ``dtype`` (float32 or bfloat16) from now on: ``config.forward_dtype``, which a save
        records. The weights stay float32 masters, cast per call as the official code casts them."""
        name = str(dtype).removeprefix("torch.")
        if name not in DTYPES:
            raise TrmzooError(f"forward dtype {name}: the models compute in {' or '.join(DTYPES)}")
        self.config = self.config.model_copy(update={"forward_dtype": name})
        self.dtype = DTYPES[name]
        for embedding in (self.embed_tokens, self.embed_pos):
            if embedding is not None:
                embedding.dtype = self.dtype
        return self

    def to(self, *args: Any, **kwargs: Any) -> "RecursiveModel":
        """As ``nn.Module.to``, but a floating dtype sets the compute dtype (:meth:`set_forward_dtype`):
        ``model.to(torch.bfloat16)`` computes in bfloat16 on float32 master weights, as a model built with
        ``forward_dtype="bfloat16"`` does."""
        device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is None or not dtype.is_floating_point:
            return super().to(*args, **kwargs)
        self.set_forward_dtype(dtype)
        return super().to(device=device, non_blocking=non_blocking, memory_format=memory_format) if device else self

    def float(self) -> "RecursiveModel":
        return self.to(torch.float32)

    def bfloat16(self) -> "RecursiveModel":
        return self.to(torch.bfloat16)

    def half(self) -> "RecursiveModel":
        return self.to(torch.float16)

    def double(self) -> "RecursiveModel":
        return self.to(torch.float64)

    # -- embeddings -------------------------------------------------------------------------
    def embed(self, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(inputs.long())
        if self.puzzle_emb is not None:
            puzzle = self.puzzle_emb(puzzle_identifiers.long()).to(self.dtype)
            puzzle = F.pad(puzzle, (0, self.prefix_len * self.config.hidden_size - puzzle.shape[-1]))
            x = torch.cat((puzzle.view(-1, self.prefix_len, self.config.hidden_size), x), dim=-2)
        if self.embed_pos is not None:
            x = 0.707106781 * (x + self.embed_pos.weight.to(self.dtype))
        return self.embed_scale * x

    def _heads(self, y, z):
        answer = self.recursion.readout(y, z)
        logits = self.lm_head(answer)[:, self.prefix_len :]
        q = self.q_head(answer[:, 0]).float()
        return logits, q[..., 0], q[..., 1]

    # -- the public inference API ----------------------------------------------------------
    def check_batch(self, batch: dict[str, torch.Tensor]) -> None:
        """Refuse, in one line, a batch this model cannot read: ``inputs`` an integer tensor ``[B, seq_len]``
        of tokens below ``vocab_size``, ``puzzle_identifiers`` ``[B]`` rows of the puzzle table (where the
        model has one), every tensor of the batch with the same ``B`` rows, at least one."""
        if not isinstance(batch, Mapping) or not isinstance(batch.get("inputs"), torch.Tensor):
            raise TrmzooError("batch: a dict with 'inputs', an integer tensor [B, seq_len] (and 'puzzle_identifiers' [B])")
        inputs, config = batch["inputs"], self.config
        if inputs.dtype.is_floating_point or inputs.dtype == torch.bool or inputs.ndim != 2 \
                or inputs.shape[1] != config.seq_len or inputs.shape[0] < 1:
            raise TrmzooError(f"batch: inputs is {inputs.dtype} {tuple(inputs.shape)}; the model reads integer "
                              f"tokens [B >= 1, {config.seq_len}]")
        needed = {"inputs": config.vocab_size}
        if self.puzzle_emb is not None:
            needed["puzzle_identifiers"] = config.num_puzzle_identifiers
        for key, value in batch.items():
            if not isinstance(value, torch.Tensor) or value.ndim < 1 or value.shape[0] != inputs.shape[0]:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise TrmzooError(f"batch: {key} is {shape}; every entry needs the {inputs.shape[0]} rows of inputs")
        for key, limit in needed.items():
            if key not in batch:
                raise TrmzooError(f"batch: no {key!r}; the model reads it")
            values = batch[key]
            if values.dtype.is_floating_point or values.dtype == torch.bool or (key != "inputs" and values.ndim != 1):
                raise TrmzooError(f"batch: {key} is {values.dtype} {tuple(values.shape)}; the model reads integers")
            low, high = int(values.min()), int(values.max())
            if low < 0 or high >= limit:
                what = "tokens" if key == "inputs" else "puzzle ids"
                raise TrmzooError(f"batch: {key} holds {low if low < 0 else high}; the model's {what} are 0..{limit - 1}")

    def initial_carry(self, batch: dict[str, torch.Tensor]) -> Carry:
        """A carry whose samples are all halted, so the first step loads the batch (checked by :meth:`check_batch`)."""
        self.check_batch(batch)
        inputs = batch["inputs"]
        size = inputs.shape[0]
        y, z = self.recursion.initial_states(size, inputs.shape[1] + self.prefix_len, self.dtype)
        device = inputs.device
        to = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Carry(
            y=to(y), z=to(z),
            steps=torch.zeros(size, dtype=torch.int32, device=device),
            halted=torch.ones(size, dtype=torch.bool, device=device),
            data={k: torch.zeros_like(v) for k, v in batch.items()},
        )

    def begin(self, carry: Carry, batch: dict[str, torch.Tensor]) -> Carry:
        """The carry at the start of a step: halted slots reset their states and step count and take
        ``batch``'s example; no slot is halted any more (so :meth:`step` on the result resets nothing)."""
        reset = carry.halted
        y, z = self.recursion.reset(reset, carry.y, carry.z)
        steps = torch.where(reset, 0, carry.steps)
        data = {
            k: torch.where(reset.view(-1, *([1] * (v.ndim - 1))), batch[k], v) if k in batch else v
            for k, v in (carry.data or {k: torch.zeros_like(v) for k, v in batch.items()}).items()
        }
        return Carry(y, z, steps, torch.zeros_like(reset), data)

    def step(
        self,
        carry: Carry,
        batch: dict[str, torch.Tensor],
        *,
        early_exit: bool = False,
        explore: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[Carry, StepOutput]:
        """One supervision step from ``carry``; halted slots first take ``batch``'s example.

        It is the module's ``forward``, so ``model.compile()`` compiles the whole step (embedding,
        recursion, heads, halting), as the official code compiles its loss head."""
        if self._frozen is not None:
            self._check_frozen()
        if self.puzzle_emb is not None and self.training and torch.is_grad_enabled():
            self.puzzle_emb.prepare(carry.steps.shape[0])  # outside the step, which may be compiled
        return self(carry, batch, early_exit=early_exit, explore=explore)

    def compile_for_inference(self) -> "RecursiveModel":
        """Compile the supervision step for evaluation with these weights, with Inductor's freezing passes,
        which a training compile cannot use (its weights change): they cast each weight once per step instead
        of once per network call. In bf16 on a CPU an evaluation step runs about 1.1-1.4x as fast as with
        ``compile()`` (docs/performance.md). The weights stay inputs of the compiled graph: Dynamo makes them
        constants only under the global ``freezing`` flag, whose CPU prepacking kept one copy of each weight
        per call (measured, not used). Puts the model in eval mode; a step after a weight or buffer changed
        (an optimizer step, a load, a move) raises a ``TrmzooError`` rather than risk computing with the old
        ones, as another torch may fold them in: call this again, then."""
        self.eval()
        self.compile(options={"freezing": True})
        self._frozen = [(t, t._version, t.data_ptr()) for t in (*self.parameters(), *self.buffers())]
        return self

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """``torch.compile`` the supervision step (``nn.Module.compile``); ends :meth:`compile_for_inference`."""
        if kwargs.get("backend", "inductor") == "inductor":
            self._check_cpu_compiler()
        self._frozen = None
        super().compile(*args, **kwargs)

    def _check_cpu_compiler(self) -> None:
        """Inductor's CPU code needs a C++ compiler: say so in one line now, not deep in the first step."""
        if next(self.parameters()).device.type != "cpu":
            return
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler
        except ImportError:  # another torch: the first step will tell
            return
        try:
            get_cpp_compiler()
        except RuntimeError as exc:
            raise TrmzooError(f"torch.compile on a CPU needs a working C++ compiler ({exc}): install one (g++) "
                              "or set CXX, or run without compiling") from None

    def _check_frozen(self) -> None:
        if any(t._version != version or t.data_ptr() != ptr for t, version, ptr in self._frozen):
            raise TrmzooError("the weights changed after compile_for_inference(), which may have compiled them "
                              "in as constants: call model.compile_for_inference() again")

    def forward(
        self,
        carry: Carry,
        batch: dict[str, torch.Tensor],
        *,
        early_exit: bool = False,
        explore: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[Carry, StepOutput]:
        """The supervision step itself; call :meth:`step`."""
        carry = self.begin(carry, batch)
        y, z, steps, data = carry.y, carry.z, carry.steps, carry.data
        x = self.embed(data["inputs"], data["puzzle_identifiers"])
        y, z = self.recursion(y, z, x)
        logits, q_halt, q_continue = self._heads(y, z)
        detach = lambda t: None if t is None else t.detach()  # noqa: E731
        y, z = detach(y), detach(z)
        with torch.no_grad():
            steps = steps + 1
            halted = self.halting.halted(
                steps, q_halt, q_continue, training=self.training, early_exit=early_exit, explore=explore
            )
            target = None
            if self.training and self.halting.needs_target:
                next_y, next_z = self.recursion(y, z, x.detach())
                _, next_halt, next_continue = self._heads(next_y, next_z)
                target = self.halting.target(next_halt, next_continue, steps >= self.halting.max_steps)
        out = StepOutput(logits, q_halt, q_continue, y, z, halted, steps, target)
        return Carry(y, z, steps, halted, data), out

    @torch.no_grad()
    def rollout(
        self,
        batch: dict[str, torch.Tensor],
        steps: int | None = None,
        carry: Carry | None = None,
        *,
        early_exit: bool = False,
    ) -> list[StepOutput]:
        """Run up to ``steps`` supervision steps (default: the halting limit) on one batch.

        Returns one output per step, full batch size. With ``early_exit`` a sample stops
        once its halting signal fires: it leaves the batch (the work shrinks) and its
        last output is repeated in the later steps. The rollout ends when all stopped.
        """
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise TrmzooError(f"rollout: steps {steps!r}; give a whole number of supervision steps, at least 1")
        steps = steps or self.halting.max_steps
        if carry is None:
            carry = self.initial_carry(batch)
        else:
            self.check_batch(batch)
            if carry.steps.shape[0] != batch["inputs"].shape[0]:
                raise TrmzooError(f"rollout: the carry holds {carry.steps.shape[0]} samples, the batch "
                                  f"{batch['inputs'].shape[0]}")
        active: torch.Tensor | None = None  # rows of ``batch`` still running; None while all are
        outputs: list[StepOutput] = []
        for _ in range(steps):
            sub_batch = batch if active is None else {k: v[active] for k, v in batch.items()}
            carry, out = self.step(carry, sub_batch, early_exit=early_exit)
            outputs.append(out if active is None else _scatter(outputs[-1], out, active))
            carry.halted = torch.zeros_like(carry.halted)  # keep each sample's example
            if early_exit:
                stay = ~out.halted
                if not bool(stay.any()):
                    break
                if not bool(stay.all()):  # the stopped samples leave the batch
                    carry = carry.index(stay)
                    active = (torch.arange(len(stay), device=stay.device) if active is None else active)[stay]
        return outputs


def _scatter(full: StepOutput, part: StepOutput, idx: torch.Tensor) -> StepOutput:
    """A copy of ``full`` whose rows ``idx`` are replaced by ``part``."""
    values = {}
    for f in fields(StepOutput):
        whole, piece = getattr(full, f.name), getattr(part, f.name)
        if piece is not None:
            whole = whole.clone()
            whole[idx] = piece
        values[f.name] = whole if piece is not None else None
    return StepOutput(**values)
