"""The easy-to-miss details of the official TRM code (trm-official.md section 10), checked on trmzoo's model.

Each test builds a small model and observes the behaviour directly: forward hooks
record which network calls run with gradient, the carry is inspected between steps,
and the loss is recomputed by hand.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import trmzoo_mlp

import trmzoo.core.layers as layers
from trmzoo.core.backbone import Block
from trmzoo.core.model import Carry
from trmzoo.core.supervision import IGNORE_LABEL, supervision_loss
from trmzoo.testing import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

HIDDEN, SEQ, VOCAB, PREFIX = 32, 9, 7, 16
TRM = {
    "vocab_size": VOCAB, "seq_len": SEQ, "num_puzzle_identifiers": 4, "hidden_size": HIDDEN, "puzzle_emb_ndim": HIDDEN,
    "forward_dtype": "float32", "backbone": {"kind": "attention", "num_heads": 2},
    "puzzle_emb_len": PREFIX, "pos_encodings": "rope", "expansion": 4.0,
    "recursion": {"kind": "trm", "H_cycles": 3, "L_cycles": 2, "L_layers": 2},
    "halting": {"kind": "bce", "max_steps": 16},
}
HRM = {**TRM, "puzzle_emb_len": 0, "halting": {"kind": "q_learning", "max_steps": 16},
       "recursion": {**TRM["recursion"], "separate_nets": True, "gradient": "one_step", "H_layers": 1}}
MLP = {**TRM, "backbone": {"kind": "mlp"}, "pos_encodings": "none"}


def _model(config: dict, seed: int = 0):
    """The contract kit's tiny model with ``config``'s settings (all of them given) and a random puzzle table."""
    model = tiny_model(seed=seed, **config)
    with torch.no_grad():
        model.puzzle_emb.weight.normal_()
    return model


def _batch(size: int = 3, seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, VOCAB, (size, SEQ), generator=gen)
    labels[0, :4] = IGNORE_LABEL
    labels[-1] = IGNORE_LABEL  # a sequence with nothing to supervise
    return {
        "inputs": torch.randint(0, VOCAB, (size, SEQ), generator=gen),
        "labels": labels,
        "puzzle_identifiers": torch.randint(0, 4, (size,), generator=gen),
    }


def _record_grad_mode(net: torch.nn.Module, log: list[bool]):
    return net.register_forward_pre_hook(lambda module, args: log.append(torch.is_grad_enabled()))


# -- gradient flow ---------------------------------------------------------------------------
def test_only_the_last_round_runs_with_gradient():
    model = _model(TRM).train()
    log: list[bool] = []
    handle = _record_grad_mode(model.recursion.net, log)
    model.step(model.initial_carry(_batch()), _batch())
    handle.remove()
    T, n = 3, 2  # one shared net: n z-updates and one y-update per round
    assert log == [False] * ((T - 1) * (n + 1)) + [True] * (n + 1)


def test_hrm_one_step_gradient_and_target_pass_run_without_gradient():
    model = _model(HRM).train()
    z_log: list[bool] = []
    y_log: list[bool] = []
    handles = [_record_grad_mode(model.recursion.net, z_log), _record_grad_mode(model.recursion.y_net, y_log)]
    _, out = model.step(model.initial_carry(_batch()), _batch())
    for h in handles:
        h.remove()
    T, n = 3, 2
    step = [False] * (T * n - 1) + [True]
    assert z_log == step + [False] * (T * n)  # the second pass for the Q target never has gradient
    assert y_log == [False] * (T - 1) + [True] + [False] * T
    assert out.target_q_continue is not None and not out.target_q_continue.requires_grad


def test_evaluation_runs_every_call_without_gradient():
    model = _model(TRM).eval()
    log: list[bool] = []
    handle = _record_grad_mode(model.recursion.net, log)
    model.rollout(_batch(), steps=2)
    handle.remove()
    assert len(log) == 2 * 3 * 3 and not any(log)


def test_carry_is_detached_between_supervision_steps():
    model = _model(TRM).train()
    batch = _batch()
    carry, out = model.step(model.initial_carry(batch), batch)
    assert out.logits.requires_grad
    assert carry.y.grad_fn is None and carry.z.grad_fn is None
    assert not carry.y.requires_grad and not carry.z.requires_grad
    # A second step's loss reaches the weights only through that step's own last round.
    _, out2 = model.step(carry, batch)
    loss, _ = supervision_loss(out2, batch["labels"], model.halting)
    loss.backward()
    assert model.embed_tokens.weight.grad is not None


# -- carry and halting -----------------------------------------------------------------------
def test_only_halted_slots_reset_and_take_the_new_example():
    model = _model(TRM).eval()
    old, new = _batch(seed=1), _batch(seed=2)
    carry, _ = model.step(model.initial_carry(old), old)
    carry, _ = model.step(carry, old)
    carry.halted = torch.tensor([True, False, True])
    before = carry
    after, out = model.step(before, new)

    assert after.steps.tolist() == [1, 3, 1]
    for key in new:
        assert torch.equal(after.data[key][[0, 2]], new[key][[0, 2]])
        assert torch.equal(after.data[key][1], old[key][1])
    # A halted slot starts from the initial states, as if the model had never seen it ...
    fresh = model.initial_carry(new)
    _, fresh_out = model.step(fresh, new)
    torch.testing.assert_close(out.logits[[0, 2]], fresh_out.logits[[0, 2]])
    # ... and a running slot continues from its carried state with its old example.
    kept = Carry(before.y[[1]], before.z[[1]], before.steps[[1]], torch.tensor([False]),
                 {k: v[[1]] for k, v in before.data.items()})
    _, kept_out = model.step(kept, {k: v[[1]] for k, v in new.items()})
    torch.testing.assert_close(out.logits[[1]], kept_out.logits)


def test_halting_in_training_and_the_fixed_evaluation_depth():
    model = _model(TRM)
    with torch.no_grad():
        model.q_head.bias.fill_(5.0)  # the halt logit now says "stop" everywhere
    batch = _batch()
    model.eval()
    outputs = model.rollout(batch)
    assert all(not o.halted.any() for o in outputs[:-1]) and outputs[-1].halted.all()
    assert len(outputs) == 16
    model.train()
    no_explore = (torch.ones(3), torch.full((3,), 2, dtype=torch.int32))
    _, out = model.step(model.initial_carry(batch), batch, explore=no_explore)
    assert out.halted.all()
    forced = (torch.tensor([0.0, 1.0, 0.0]), torch.tensor([4, 4, 4], dtype=torch.int32))  # slots 0 and 2 explore
    _, out = model.step(model.initial_carry(batch), batch, explore=forced)
    assert out.halted.tolist() == [False, True, False]


# -- heads and their initialisation ----------------------------------------------------------
def test_q_head_starts_at_zero_weight_and_bias_minus_five_and_reads_position_zero():
    model = _model(TRM).eval()
    assert torch.count_nonzero(model.q_head.weight) == 0
    assert torch.equal(model.q_head.bias, torch.full((2,), -5.0))
    batch = _batch()
    _, out = model.step(model.initial_carry(batch), batch)
    assert torch.equal(out.q_halt, torch.full((3,), -5.0))
    with torch.no_grad():
        model.q_head.weight.normal_()
        _, out = model.step(model.initial_carry(batch), batch)
        q = model.q_head(out.y[:, 0])
    assert torch.equal(out.q_halt, q[:, 0]) and torch.equal(out.q_continue, q[:, 1])


def test_heads_read_the_answer_state_without_a_final_norm():
    model = _model(TRM).eval()
    batch = _batch()
    _, out = model.step(model.initial_carry(batch), batch)
    assert torch.equal(out.logits, model.lm_head(out.y)[:, PREFIX:])


# -- normalisation -----------------------------------------------------------------------------
def _block_outputs(model, batch) -> list[torch.Tensor]:
    outs: list[torch.Tensor] = []
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    handles = [b.register_forward_hook(lambda mod, a, o: outs.append(o)) for b in blocks]
    with torch.no_grad():
        model.step(model.initial_carry(batch), batch)
    for h in handles:
        h.remove()
    return outs


def test_post_norm_without_learnable_gains():
    model = _model(TRM).eval()
    assert not [name for name, _ in model.named_parameters() if "norm" in name]
    assert not [name for name in model.state_dict() if "norm" in name]
    outs = _block_outputs(model, _batch())
    assert len(outs) == 3 * 3 * 2
    for h in outs:  # every block ends in a parameter-free RMSNorm over the hidden axis
        torch.testing.assert_close(h.pow(2).mean(-1), torch.ones(h.shape[:-1]), atol=1e-4, rtol=0)


def test_mlp_token_mixer_normalises_over_the_sequence_axis():
    model = _model(MLP).eval()
    mixed: list[torch.Tensor] = []
    handles = [b.mixer.register_forward_hook(lambda mod, a, o: mixed.append(o))
               for b in model.modules() if isinstance(b, Block)]
    with torch.no_grad():
        model.step(model.initial_carry(_batch()), _batch())
    for h in handles:
        h.remove()
    assert mixed
    for h in mixed:  # [B, L, D]: unit mean square along L (positions), not along D
        torch.testing.assert_close(h.pow(2).mean(1), torch.ones(h.shape[0], h.shape[2]), atol=1e-4, rtol=0)
        assert not torch.allclose(h.pow(2).mean(-1), torch.ones(h.shape[:-1]), atol=1e-2)
    assert model.recursion.net.layers[0].mixer.gate_up_proj.weight.shape[1] == SEQ + PREFIX



def _transposed_token_mixer(mixer, h: torch.Tensor) -> torch.Tensor:
    """The official formulation: transpose to [B, D, L], SwiGLU over L, residual, fp32 RMSNorm over L, transpose back."""
    t = h.transpose(1, 2)
    gate, up = F.linear(t, mixer.gate_up_proj.weight.to(h.dtype)).chunk(2, dim=-1)
    x = (t + F.linear(F.silu(gate) * up, mixer.down_proj.weight.to(h.dtype))).float()
    return (x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-5)).to(h.dtype).transpose(1, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("slice_samples", [1, 2, 100])
@pytest.mark.parametrize("onednn", [True, False])
def test_mlp_token_mixer_computes_the_transposed_form(dtype, slice_samples, onednn, monkeypatch):
    """The mixer multiplies by its weights from the left instead of transposing, a few samples at a
    time; in fp32 the output and every gradient are bit-identical to the transposed form, in bf16 close
    (without gradient in bf16 on a CPU, oneDNN's products in the transposed layout where this torch has them)."""
    monkeypatch.setattr(trmzoo_mlp, "SLICE_TOKENS", slice_samples * (SEQ + PREFIX))
    if not onednn:
        monkeypatch.setattr(layers, "ONEDNN_BF16", False)
    mixer = _model(MLP).recursion.net.layers[0].mixer
    h = torch.randn(5, SEQ + PREFIX, HIDDEN, generator=torch.Generator().manual_seed(2)).to(dtype)
    upstream = torch.randn(h.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    results = []
    for fn in (mixer, lambda x: _transposed_token_mixer(mixer, x)):
        mixer.zero_grad()
        x = h.clone().requires_grad_(True)
        out = fn(x)
        out.backward(upstream)
        with torch.no_grad():
            without_grad = fn(h)
        results.append((out, without_grad, x.grad, mixer.gate_up_proj.weight.grad, mixer.down_proj.weight.grad))
    names = ("output", "output without grad", "input grad", "gate_up grad", "down grad")
    for name, ours, theirs in zip(names, *results):
        if dtype == torch.float32:
            assert torch.equal(ours, theirs), name
        else:
            torch.testing.assert_close(ours.float(), theirs.float(), atol=2e-2 * theirs.float().abs().max().item(), rtol=0)


# -- embedding ---------------------------------------------------------------------------------
def test_embedding_scale_and_zero_prefix_slots():
    model = _model(TRM).eval()
    batch = _batch()
    x = model.embed(batch["inputs"], batch["puzzle_identifiers"])
    scale = math.sqrt(HIDDEN)
    assert x.shape == (3, PREFIX + SEQ, HIDDEN)
    torch.testing.assert_close(x[:, 0], scale * model.puzzle_emb.weight[batch["puzzle_identifiers"]])
    assert torch.count_nonzero(x[:, 1:PREFIX]) == 0
    torch.testing.assert_close(x[:, PREFIX:], scale * model.embed_tokens.weight[batch["inputs"]])


# -- loss ----------------------------------------------------------------------------------------
def test_loss_is_a_per_sequence_mean_summed_over_the_batch():
    model = _model(TRM).train()
    batch = _batch()
    _, out = model.step(model.initial_carry(batch), batch)
    loss, metrics = supervision_loss(out, batch["labels"], model.halting, "stablemax")

    labels = batch["labels"]
    logits = out.logits.detach().double()
    s = torch.where(logits < 0, 1 / (1 - logits), logits + 1)  # stablemax, in fp64
    logp = (s / s.sum(-1, keepdim=True)).log()
    valid = labels != IGNORE_LABEL
    token_loss = -logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1) * valid
    per_sequence = token_loss.sum(-1) / valid.sum(-1).clamp_min(1)
    assert per_sequence[-1] == 0  # nothing supervised: contributes nothing, and no NaN
    lm = per_sequence.sum()
    correct = ((logits.argmax(-1) == labels) | ~valid).all(-1)
    bce = F.binary_cross_entropy_with_logits(out.q_halt.detach(), correct.float(), reduction="sum")
    torch.testing.assert_close(metrics["lm_loss"], lm)
    torch.testing.assert_close(loss.detach(), lm + 0.5 * bce.double())
    assert loss.dtype == torch.float64
