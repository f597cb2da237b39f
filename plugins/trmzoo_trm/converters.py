"""Converters of TRM checkpoints written by code other than the official repository.

Both translate their files into the official layout (tensor names and ``arch`` settings) and
hand that to the official TRM converter, so every check it makes (widths, layer counts, the
token mixer, the puzzle table, sizes) applies to them too.

``nano-trm`` reads a PyTorch Lightning checkpoint (``*.ckpt``) of nano-trm's ``TRMModule``, as
``andrw3000/bigr-checkpoints`` publishes them. Such a file is a dict with ``state_dict`` (the
module's tensors: ``input_embedding.embedding_weight``, ``lenet.layers.N.{self_attn,mlp_t,mlp}.*``,
``lm_head.weight``, a one-output ``q_head``, the ``z_H_init``/``z_L_init`` buffers in the forward
dtype and, with a puzzle embedding, ``puzzle_emb.weights``), ``hyper_parameters`` (the module's
arguments: ``hidden_size``, ``num_layers``, ``H_cycles``, ``L_cycles``, ``ffn_expansion``,
``use_mlp_t``, ``pos_emb_type``, ``vocab_size``, ``seq_len``, ...) and ``callbacks``, where
nano-trm's ``EMACallback`` keeps the moving average of every parameter (``shadow``). The
module's math is the official TRM's with one halting output, so the EMA weights (the ones its
validation scores) convert exactly; the missing ``q_continue`` row is zero (TRM's halting
never reads it). ``nano-trm-sudoku`` is the same for nano-trm's Sudoku builds, whose tokens are
0 PAD, 1 separator, 2 blank, 3..11 the digits: the separator row is dropped so the model reads
trmzoo's (the official) encoding, 0 PAD, 1 blank, 2..10 the digits.

``cgar`` reads the ``pytorch_model.bin`` of ``Kaleemullah/trm-cgar-sudoku`` (CGAR, a fork of the
official code): a state dict of the official model's tensors (the official wrappers' prefixes
optional; a dict holding it under ``model_state_dict``, ``state_dict`` or ``model`` is accepted)
and its ``config.yaml`` in the official all_config.yaml layout (an ``arch`` section, or the
settings at the top). CGAR's depth curriculum ends at the full H_cycles/L_cycles, which
inference uses. Both files are pickles or YAML: the pickle is read with
``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

from typing import Any

import torch

from trmzoo.convert import Converter, is_state_dict, read_torch_file
from trmzoo.errors import CheckpointError
from trmzoo.yamlio import read_yaml
from trmzoo_trm import TRM, TRMConverter

NANO_NAMES = {"input_embedding.embedding_weight": "embed_tokens.embedding_weight", "z_H_init": "H_init",
              "z_L_init": "L_init", "puzzle_emb.weights": "puzzle_emb.weights", "lm_head.weight": "lm_head.weight",
              "q_head.weight": "q_head.weight", "q_head.bias": "q_head.bias"}
"""nano-trm's names of the tensors outside the reasoning blocks -> the official names."""
NANO_BLOCKS = ("lenet.", "L_level.")  # nano-trm's one reasoning module -> the official L_level
EMA_CALLBACK = "EMACallback"  # the state key Lightning gives nano-trm's EMA callback (its class name)
NANO_SUDOKU_DROPPED = 1  # nano-trm's Sudoku separator token, which no 9x9 puzzle uses
NO_EQUIVALENT = {"use_conv_swiglu": "a convolutional SwiGLU", "use_board_swiglu": "a board-convolution SwiGLU"}


def _official(tensors: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """nano-trm's tensors under the official names, the one-output q head padded to TRM's two."""
    out, unknown = {}, []
    for key, tensor in tensors.items():
        if key in NANO_NAMES:
            out[NANO_NAMES[key]] = tensor
        elif key.startswith(NANO_BLOCKS[0]):
            out[NANO_BLOCKS[1] + key[len(NANO_BLOCKS[0]):]] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"{source}: tensors nano-trm's TRMModule does not have: {', '.join(sorted(unknown)[:5])}")
    for key in ("q_head.weight", "q_head.bias"):
        if key in out and out[key].shape[0] == 1:  # q_halt only; q_continue is never read by TRM's halting
            out[key] = torch.cat([out[key], torch.zeros_like(out[key])])
    return out


class NanoTRMConverter(Converter):
    """PyTorch Lightning checkpoints of nano-trm's ``TRMModule`` (see the module docstring)."""

    settings_name = "hyper_parameters"

    def __init__(self, name: str, *, dropped_tokens: tuple[int, ...] = ()) -> None:
        self.name = name
        self.dropped_tokens = dropped_tokens
        self.official = TRMConverter(TRM)

    def read(self, checkpoint, config):
        saved = read_torch_file(checkpoint, "PyTorch Lightning checkpoint")
        if not isinstance(saved, dict) or not is_state_dict(saved.get("state_dict")) \
                or not isinstance(saved.get("hyper_parameters"), dict):
            raise CheckpointError(f"{checkpoint}: not a PyTorch Lightning checkpoint (no state_dict and "
                                  "hyper_parameters)")
        tensors = dict(saved["state_dict"])
        callbacks = saved.get("callbacks") or {}
        shadow = (callbacks.get(EMA_CALLBACK) or {}).get("shadow") if isinstance(callbacks, dict) else None
        if shadow:  # the EMA weights are the ones nano-trm validates and tests with
            missing = sorted(set(shadow) - set(tensors))
            if missing or not is_state_dict(shadow):
                raise CheckpointError(f"{checkpoint}: callbacks.{EMA_CALLBACK}.shadow holds "
                                      f"{missing[0] if missing else 'something other than tensors'}, not a "
                                      "parameter of the state_dict")
            tensors.update(shadow)
        return tensors, dict(saved["hyper_parameters"])

    def arch(self, hp: dict[str, Any], tensors: dict[str, torch.Tensor], source: str) -> dict[str, Any]:
        """The official ``arch`` section computing what nano-trm computes with these hyper-parameters."""

        def get(key: str) -> Any:
            if hp.get(key) is None:
                raise CheckpointError(f"{source}: hyper_parameters.{key} is missing")
            return hp[key]

        for key, what in NO_EQUIVALENT.items():
            if hp.get(key):
                raise CheckpointError(f"{source}: hyper_parameters.{key} is true: {what} has no trmzoo equivalent")
        pos = hp.get("pos_emb_type")
        if pos == "2d":
            raise CheckpointError(f"{source}: hyper_parameters.pos_emb_type '2d' (2-D RoPE) has no trmzoo equivalent")
        theta = float(hp.get("rope_theta", 10000))
        dim = int(hp.get("puzzle_emb_dim") or 0)
        if dim and not hp.get("puzzle_emb_len"):
            raise CheckpointError(f"{source}: hyper_parameters.puzzle_emb_len is 0 with puzzle_emb_dim {dim}, "
                                  "which nano-trm cannot run")
        dtype = hp.get("forward_dtype")
        dtype = dtype if isinstance(dtype, torch.dtype) else tensors.get("z_H_init", torch.empty(0)).dtype
        return {
            "name": TRM, "hidden_size": int(get("hidden_size")), "expansion": float(get("ffn_expansion")),
            "num_heads": int(get("num_heads")), "puzzle_emb_ndim": dim, "puzzle_emb_len": int(hp["puzzle_emb_len"]) if dim else 0,
            "pos_encodings": "rope" if pos == "1d" and theta > 0 else "none", "rope_theta": theta,
            "rms_norm_eps": 1e-5, "forward_dtype": "bfloat16" if dtype == torch.bfloat16 else "float32",
            "H_cycles": int(get("H_cycles")), "L_cycles": int(get("L_cycles")), "L_layers": int(get("num_layers")),
            "H_layers": 0, "halt_max_steps": int(get("N_supervision_val")),
            "halt_exploration_prob": float(get("halt_exploration_prob")), "mlp_t": bool(hp.get("use_mlp_t")),
            "no_ACT_continue": True,
        }

    def convert(self, tensors, settings, sizes, source):
        weights = _official(tensors, source)
        arch = self.arch(settings, tensors, source)
        found = {"vocab_size": settings.get("vocab_size"), "seq_len": settings.get("seq_len"),
                 "num_puzzle_identifiers": settings.get("num_puzzles") if arch["puzzle_emb_ndim"] else None}
        if self.dropped_tokens:
            vocab = found["vocab_size"]
            embed = weights.get("embed_tokens.embedding_weight")
            if embed is None or embed.shape[0] != vocab:
                raise CheckpointError(f"{source}: hyper_parameters.vocab_size {vocab} does not match the token "
                                      f"embedding ({None if embed is None else embed.shape[0]} rows)")
            keep = [t for t in range(vocab) if t not in self.dropped_tokens]
            for key in ("embed_tokens.embedding_weight", "lm_head.weight"):
                weights[key] = weights[key][keep]
            found["vocab_size"] = len(keep)
        for key, value in found.items():
            if value is None:
                continue
            if sizes.get(key) is not None and sizes[key] != value:
                after = f" ({len(self.dropped_tokens)} token(s) dropped for {self.name})" if key == "vocab_size" \
                    and self.dropped_tokens else ""
                raise CheckpointError(f"{source}: the checkpoint's {key} is {value}{after} but the model needs "
                                      f"{sizes[key]}")
            sizes = {**sizes, key: value}
        return self.official.convert(weights, arch, sizes, source)

    def foreign_names(self, model):
        back = {official: nano for nano, official in NANO_NAMES.items()}
        names = {}
        for ours, theirs in self.official.foreign_names(model).items():
            official = theirs.removeprefix("inner.")
            if official.startswith(NANO_BLOCKS[1]):
                names[ours] = NANO_BLOCKS[0] + official[len(NANO_BLOCKS[1]):]
            else:
                names[ours] = back.get(official, official)
        return names


class CGARConverter(Converter):
    """CGAR's released ``pytorch_model.bin`` and ``config.yaml`` (see the module docstring)."""

    name = "cgar"
    WRAPPERS = ("model_state_dict", "state_dict", "model")

    def __init__(self) -> None:
        self.official = TRMConverter(TRM)

    def read(self, checkpoint, config):
        if config is None:
            raise CheckpointError(f"{checkpoint}: a CGAR checkpoint needs its config.yaml")
        saved = read_torch_file(checkpoint)
        if isinstance(saved, dict) and not is_state_dict(saved):
            saved = next((saved[k] for k in self.WRAPPERS if is_state_dict(saved.get(k))), saved)
        if not is_state_dict(saved):
            keys = ", ".join(map(str, list(saved)[:5])) if isinstance(saved, dict) else type(saved).__name__
            raise CheckpointError(f"{checkpoint}: not a state dict of tensors (it holds {keys})")
        settings = read_yaml(config, what="not a CGAR config.yaml (no mapping at the top)")
        arch = settings.get("arch", settings)
        if not isinstance(arch, dict) or "hidden_size" not in arch:
            raise CheckpointError(f"{config}: no arch settings (hidden_size, H_cycles, ...); not a CGAR config.yaml")
        return saved, arch

    def convert(self, tensors, settings, sizes, source):
        return self.official.convert(tensors, settings, sizes, source)

    def foreign_names(self, model):
        return self.official.foreign_names(model)


CONVERTERS = (NanoTRMConverter("nano-trm"),
              NanoTRMConverter("nano-trm-sudoku", dropped_tokens=(NANO_SUDOKU_DROPPED,)),
              CGARConverter())
