"""Tiny checkpoints written the way other TRM code bases write theirs, and those code bases' forward
pass written from their documented math, for the converter and pretrained-entry tests.

- :func:`nano_trm_checkpoint`: a PyTorch Lightning checkpoint of nano-trm's ``TRMModule`` (top-level
  keys as Lightning 2 saves them, the module's tensor names, shapes and dtypes, its EMA callback's
  ``shadow``, a ModelCheckpoint state, AdamW optimizer state and the module's hyper-parameters).
- :func:`official_state`: the official TRM model's tensors under a chosen prefix (CGAR's
  ``pytorch_model.bin`` and every official ``step_N`` file), with its ``arch`` section.
- :func:`reference_rollout`: the TRM forward pass over either naming (official arXiv 2510.04871 math,
  which nano-trm follows with a one-output q head), for outputs to compare a converted model with.
"""

from __future__ import annotations

import io
import math

import torch
import torch.nn.functional as F

from trmzoo.core.layers import swiglu_width

TRM_CLASS = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
MODULE_CHECKPOINT = ("ModelCheckpoint{'monitor': 'val/accuracy', 'mode': 'max', 'every_n_train_steps': 0, "
                     "'every_n_epochs': 1, 'train_time_interval': None}")


def nano_hparams(**changes) -> dict:
    """nano-trm ``TRMModule`` arguments as ``save_hyperparameters`` records them (tiny widths)."""
    hp = dict(hidden_size=16, num_layers=2, num_heads=2, max_grid_size=9, H_cycles=3, L_cycles=6, N_supervision=16,
              N_supervision_val=16, ffn_expansion=4, learning_rate=1e-4, learning_rate_emb=1e-4, weight_decay=1.0,
              warmup_steps=2000, halt_exploration_prob=0.1, puzzle_emb_dim=0, puzzle_emb_len=0, rope_theta=10000,
              pos_emb_type="null", use_mlp_t=True, use_conv_swiglu=False, use_board_swiglu=False, lr_min_ratio=0.01,
              use_muon=False, vocab_size=12, num_puzzles=1, batch_size=768, pad_value=0, seq_len=81, output_dir=None,
              forward_dtype=None)
    hp.update(changes)
    return hp


def _randn(gen: torch.Generator, *shape: int, scale: float = 0.3) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * scale


def _blocks(gen, prefix: str, *, layers: int, hidden: int, expansion: float, mlp_t: bool, length: int) -> dict:
    width = swiglu_width(hidden, expansion)
    state = {}
    for i in range(layers):
        block = f"{prefix}layers.{i}."
        if mlp_t:
            token_width = swiglu_width(length, expansion)
            state[block + "mlp_t.gate_up_proj.weight"] = _randn(gen, 2 * token_width, length, scale=0.5 * length**-0.5)
            state[block + "mlp_t.down_proj.weight"] = _randn(gen, length, token_width, scale=0.5 * token_width**-0.5)
        else:
            state[block + "self_attn.qkv_proj.weight"] = _randn(gen, 3 * hidden, hidden, scale=0.5 * hidden**-0.5)
            state[block + "self_attn.o_proj.weight"] = _randn(gen, hidden, hidden, scale=0.5 * hidden**-0.5)
        state[block + "mlp.gate_up_proj.weight"] = _randn(gen, 2 * width, hidden, scale=0.5 * hidden**-0.5)
        state[block + "mlp.down_proj.weight"] = _randn(gen, hidden, width, scale=0.5 * width**-0.5)
    return state


def nano_trm_checkpoint(hp: dict, *, seed: int = 0, dtype: torch.dtype = torch.bfloat16) -> dict:
    """The dict Lightning's ``trainer.save_checkpoint`` writes for nano-trm's TRMModule; ``dtype`` is the
    forward dtype of the run (bfloat16 on a GPU), which its ``z_H_init``/``z_L_init`` buffers keep."""
    gen = torch.Generator().manual_seed(seed)
    h, vocab, dim = hp["hidden_size"], hp["vocab_size"], hp["puzzle_emb_dim"]
    prefix = hp["puzzle_emb_len"] if dim else 0
    block_len = hp["seq_len"] + (prefix or -(dim // -h))
    params = {"input_embedding.embedding_weight": _randn(gen, vocab, h, scale=h**-0.5)}
    params.update(_blocks(gen, "lenet.", layers=hp["num_layers"], hidden=h, expansion=hp["ffn_expansion"],
                          mlp_t=hp["use_mlp_t"], length=block_len))
    params.update({"lm_head.weight": _randn(gen, vocab, h, scale=h**-0.5), "q_head.weight": _randn(gen, 1, h),
                   "q_head.bias": _randn(gen, 1)})
    state = dict(params)
    state.update({"z_H_init": torch.randn(h, generator=gen).to(dtype), "z_L_init": torch.randn(h, generator=gen).to(dtype)})
    if dim:
        state["puzzle_emb.weights"] = _randn(gen, hp["num_puzzles"], dim)
    shadow = {k: v + _randn(gen, *v.shape, scale=0.05) for k, v in params.items()}  # EMA differs from the raw weights
    best = "/tmp/ml-experiments/run/checkpoints/epoch_099.ckpt"
    return {
        "epoch": 99, "global_step": 1300, "pytorch-lightning_version": "2.5.5", "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 1300},
                               "epoch_progress": {"total": {"ready": 100, "started": 100, "processed": 100,
                                                            "completed": 99}}}},
        "callbacks": {
            MODULE_CHECKPOINT: {"monitor": "val/accuracy", "best_model_score": torch.tensor(0.859),
                                "best_model_path": best, "current_score": torch.tensor(0.859),
                                "dirpath": "/tmp/ml-experiments/run/checkpoints", "best_k_models": {best: torch.tensor(0.859)},
                                "kth_best_model_path": best, "kth_value": torch.tensor(0.859),
                                "last_model_path": "/tmp/ml-experiments/run/checkpoints/last.ckpt"},
            "EMACallback": {"shadow": shadow, "decay": 0.999},
        },
        "optimizer_states": [{"state": {i: {"step": torch.tensor(1300.0), "exp_avg": torch.zeros_like(p),
                                            "exp_avg_sq": torch.zeros_like(p)} for i, p in enumerate(params.values())},
                              "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 1.0,
                                                "amsgrad": False, "params": list(range(len(params)))}]}],
        "lr_schedulers": [], "hparams_name": "kwargs", "hyper_parameters": dict(hp),
    }


def official_arch(**changes) -> dict:
    """An official all_config.yaml ``arch`` section (the TRM-MLP Sudoku recipe, tiny widths)."""
    arch = dict(name=TRM_CLASS, loss={"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"},
                halt_exploration_prob=0.1, halt_max_steps=16, H_cycles=3, L_cycles=6, H_layers=0, L_layers=2,
                hidden_size=16, num_heads=2, expansion=4, puzzle_emb_ndim=16, puzzle_emb_len=16,
                pos_encodings="none", forward_dtype="bfloat16", mlp_t=True, no_ACT_continue=True)
    arch.update(changes)
    return arch


def official_state(arch: dict, *, vocab: int, seq_len: int, puzzles: int = 1, prefix: str = "_orig_mod.model.",
                   seed: int = 0, hrm: bool = False) -> dict[str, torch.Tensor]:
    """The official model's tensors as ``torch.save(model.state_dict())`` of the compiled ACTLossHead writes
    them (``prefix`` + ``inner.``): parameters fp32, H_init/L_init in the forward dtype, the puzzle table fp32."""
    gen = torch.Generator().manual_seed(seed)
    h, dim = arch["hidden_size"], arch["puzzle_emb_ndim"]
    emb_len = 0 if hrm else arch.get("puzzle_emb_len", 16)  # HRM always takes ceil(ndim / hidden) slots
    length = seq_len + ((emb_len or -(dim // -h)) if dim else 0)
    state = {"embed_tokens.embedding_weight": _randn(gen, vocab, h, scale=h**-0.5)}
    levels = {"H_level.": arch["H_layers"], "L_level.": arch["L_layers"]} if hrm else {"L_level.": arch["L_layers"]}
    for level, layers in levels.items():
        state.update(_blocks(gen, level, layers=layers, hidden=h, expansion=arch["expansion"], mlp_t=arch["mlp_t"],
                             length=length))
    state.update({"lm_head.weight": _randn(gen, vocab, h, scale=h**-0.5), "q_head.weight": _randn(gen, 2, h),
                  "q_head.bias": _randn(gen, 2)})
    dtype = getattr(torch, arch["forward_dtype"])
    state.update({"H_init": torch.randn(h, generator=gen).to(dtype), "L_init": torch.randn(h, generator=gen).to(dtype)})
    if dim:
        state["puzzle_emb.weights"] = _randn(gen, puzzles, dim)
    return {f"{prefix}inner.{k}": v for k, v in state.items()}


def saved_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# -- the source side's forward pass --------------------------------------------------------------
NANO = {"embed": "input_embedding.embedding_weight", "blocks": "lenet.", "H_init": "z_H_init", "L_init": "z_L_init"}
OFFICIAL = {"embed": "embed_tokens.embedding_weight", "blocks": "L_level.", "H_init": "H_init", "L_init": "L_init"}


def _rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    dtype = x.dtype
    x = x.float()
    return (x * torch.rsqrt(x.pow(2).mean(dim=(-1,), keepdim=True) + eps)).to(dtype)


def _swiglu(x, gate_up, down):
    gate, up = F.linear(x, gate_up.to(x.dtype)).chunk(2, dim=-1)
    return F.linear(F.silu(gate) * up, down.to(x.dtype))


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


@torch.no_grad()
def reference_rollout(tensors: dict[str, torch.Tensor], names: dict[str, str], *, hidden: int, heads: int,
                      layers: int, H_cycles: int, L_cycles: int, prefix: int, rope: bool, mlp_t: bool,
                      dtype: torch.dtype, inputs: torch.Tensor, puzzle_ids: torch.Tensor, steps: int,
                      theta: float = 10000.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(logits, q_halt) after each supervision step of an evaluation without early stop: the TRM math of
    arXiv 2510.04871 as the official code and nano-trm compute it, over tensors named by ``names``."""
    t = tensors
    batch, seq = inputs.shape
    x = F.embedding(inputs, t[names["embed"]].to(dtype))
    if prefix:
        table = t["puzzle_emb.weights"][puzzle_ids].to(dtype)
        table = F.pad(table, (0, prefix * hidden - table.shape[-1]))
        x = torch.cat((table.view(batch, prefix, hidden), x), dim=-2)
    x = math.sqrt(hidden) * x
    length = seq + prefix
    if rope:
        head_dim = hidden // heads
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
        cos, sin = torch.cat((freqs, freqs), -1).cos(), torch.cat((freqs, freqs), -1).sin()

    def block(i: int, hs: torch.Tensor) -> torch.Tensor:
        key = f"{names['blocks']}layers.{i}."
        if mlp_t:
            tr = hs.transpose(1, 2)
            tr = _rms_norm(tr + _swiglu(tr, t[key + "mlp_t.gate_up_proj.weight"], t[key + "mlp_t.down_proj.weight"]))
            hs = tr.transpose(1, 2)
        else:
            qkv = F.linear(hs, t[key + "self_attn.qkv_proj.weight"].to(hs.dtype)).view(batch, length, 3 * heads, -1)
            q, k, v = qkv[:, :, :heads], qkv[:, :, heads:2 * heads], qkv[:, :, 2 * heads:]
            if rope:
                q, k = (((u.float() * cos.unsqueeze(-2)) + (_rotate_half(u.float()) * sin.unsqueeze(-2))).to(hs.dtype)
                        for u in (q, k))
            out = F.scaled_dot_product_attention(*(u.transpose(1, 2) for u in (q, k, v))).transpose(1, 2)
            hs = _rms_norm(hs + F.linear(out.reshape(batch, length, hidden), t[key + "self_attn.o_proj.weight"].to(hs.dtype)))
        return _rms_norm(hs + _swiglu(hs, t[key + "mlp.gate_up_proj.weight"], t[key + "mlp.down_proj.weight"]))

    def net(hs, injection):
        hs = hs + injection
        for i in range(layers):
            hs = block(i, hs)
        return hs

    z_h = t[names["H_init"]].to(dtype).expand(batch, length, hidden)
    z_l = t[names["L_init"]].to(dtype).expand(batch, length, hidden)
    outputs = []
    for _ in range(steps):
        for _ in range(H_cycles):
            for _ in range(L_cycles):
                z_l = net(z_l, z_h + x)
            z_h = net(z_h, z_l)
        logits = F.linear(z_h, t["lm_head.weight"].to(dtype))[:, prefix:]
        q = F.linear(z_h[:, 0], t["q_head.weight"].to(dtype), t["q_head.bias"].to(dtype)).float()
        outputs.append((logits, q[..., 0]))
    return outputs
