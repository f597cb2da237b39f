"""Early exit really removes work: halted samples leave the batch, keep their outputs, and the
reported mean steps are the steps run. Also the two speed paths the benchmarks rely on: the
cast-weight cache follows weight updates, and the bf16 CPU attention path agrees with SDPA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trmzoo.core.layers import ONEDNN_BF16, CastedLinear
from trmzoo.data import read_split
from trmzoo.data.loader import eval_batches
from trmzoo.evaluation import evaluate
from trmzoo.testing import tiny_model
from trmzoo_attention import MATMUL_ATTENTION_MAX_LEN, attention
from trmzoo_sudoku import SudokuConfig, SudokuTask

MAX_STEPS, H_CYCLES, L_CYCLES = 5, 2, 2
CALLS_PER_STEP = H_CYCLES * (L_CYCLES + 1)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(vocab_size=6, seq_len=9, num_puzzle_identifiers=3, forward_dtype="float32"):
    model = tiny_model(
        vocab_size=vocab_size, seq_len=seq_len, num_puzzle_identifiers=num_puzzle_identifiers, forward_dtype=forward_dtype,
        puzzle_emb_len=16, pos_encodings="rope", expansion=4.0,
        recursion={"H_cycles": H_CYCLES, "L_cycles": L_CYCLES}, halting={"max_steps": MAX_STEPS},
    ).eval()
    with torch.no_grad():  # a q head that reads the state, so samples halt at different steps
        model.q_head.weight.normal_(0, 1)
        model.q_head.bias.zero_()
    return model


def random_batch(size=8, seq_len=9):
    g = torch.Generator().manual_seed(1)
    return {"inputs": torch.randint(1, 6, (size, seq_len), generator=g),
            "puzzle_identifiers": torch.randint(0, 3, (size,), generator=g)}


def exit_steps(q_halt: torch.Tensor) -> torch.Tensor:
    """1-based step at which each column's q_halt first exceeds 0 (MAX_STEPS when never)."""
    fired = torch.cat((q_halt > 0, torch.ones(1, q_halt.shape[1], dtype=torch.bool)))
    return fired.int().argmax(0).clamp_max(MAX_STEPS - 1) + 1


def set_mixed_threshold(model, q_halt: torch.Tensor) -> None:
    """Shift the halting bias to the middle of a wide gap between observed q_halt values (so that
    rounding differences between batch sizes cannot flip a decision) chosen to give the most
    distinct exit steps."""
    values = q_halt.flatten().sort().values
    best = None
    for lo, hi in zip(values[:-1], values[1:]):
        t = float(lo + hi) / 2
        score = (len(exit_steps(q_halt - t).unique()), float(hi - lo))
        best = max(best or (score, t), (score, t))
    with torch.no_grad():
        model.q_head.bias[0] -= best[1]


def record_batch_sizes(model) -> list[int]:
    sizes: list[int] = []
    model.recursion.net.register_forward_hook(lambda module, args, out: sizes.append(args[0].shape[0]))
    return sizes


def test_without_early_exit_every_sample_runs_all_steps():
    model, b = tiny(), random_batch()
    with torch.no_grad():
        model.q_head.bias[0] = 50.0  # every signal fires at once; without early exit it is ignored
    sizes = record_batch_sizes(model)
    outs = model.rollout(b)
    assert len(outs) == MAX_STEPS
    assert (outs[-1].steps == MAX_STEPS).all()
    assert sizes == [8] * (MAX_STEPS * CALLS_PER_STEP)


def test_halted_samples_leave_the_batch_and_keep_their_outputs():
    model, b = tiny(), random_batch()
    full = model.rollout(b)
    set_mixed_threshold(model, torch.stack([o.q_halt for o in full]))
    full = model.rollout(b)
    expected = exit_steps(torch.stack([o.q_halt for o in full]))
    assert len(expected.unique()) >= 3 and expected.min() < MAX_STEPS, "the threshold gives no mixed exits"

    sizes = record_batch_sizes(model)
    outs = model.rollout(b, early_exit=True)
    assert len(outs) == int(expected.max())
    assert torch.equal(outs[-1].steps, expected)
    # the net sees, at step s, exactly the samples that have not exited before s
    running = [int((expected >= s).sum()) for s in range(1, len(outs) + 1)]
    assert sizes == [n for n in running for _ in range(CALLS_PER_STEP)]
    assert sum(sizes) < len(b["inputs"]) * MAX_STEPS * CALLS_PER_STEP
    for i, e in enumerate(expected.tolist()):
        torch.testing.assert_close(outs[e - 1].logits[i], full[e - 1].logits[i])  # same trajectory until exit
        for later in outs[e:]:  # frozen afterwards
            assert torch.equal(later.logits[i], outs[e - 1].logits[i])
            assert torch.equal(later.y[i], outs[e - 1].y[i])
            assert later.steps[i] == e and later.halted[i]


def test_evaluate_reports_the_steps_actually_run(tmp_path):
    SudokuTask(SudokuConfig(box_rows=2, box_cols=2, num_train=4, num_test=7, seed=3)).build(tmp_path, progress=False)
    metadata, arrays = read_split(tmp_path, "test")
    model = tiny(metadata.vocab_size, metadata.seq_len, metadata.num_puzzle_identifiers)
    task = SudokuTask(SudokuConfig(box_rows=2, box_cols=2))
    batches = list(eval_batches(metadata, arrays, batch_size=4))  # 7 puzzles: the last batch is padded

    def q_table():
        return torch.cat([torch.stack([o.q_halt[:real] for o in model.rollout(batch)], 0) for batch, real in batches], 1)

    set_mixed_threshold(model, q_table())
    expected = exit_steps(q_table())
    assert len(expected) == 7 and expected.min() < MAX_STEPS

    sizes = record_batch_sizes(model)
    early = evaluate(model, tmp_path, task, batch_size=4, early_exit=True)
    assert early["mean_steps"] == pytest.approx(float(expected.float().mean()))
    assert sum(sizes) < 8 * MAX_STEPS * CALLS_PER_STEP
    full = evaluate(model, tmp_path, task, batch_size=4)
    assert full["mean_steps"] == MAX_STEPS


def test_cast_weight_cache_follows_weight_updates():
    model, b = tiny(forward_dtype="bfloat16"), random_batch()
    before = model.rollout(b)[-1].logits
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    carry, out = model.step(model.initial_carry(b), b)
    out.logits.float().square().mean().backward()
    optimizer.step()
    model.eval()
    after = model.rollout(b)[-1].logits
    fresh = tiny(forward_dtype="bfloat16")  # never ran: no cached casts
    fresh.load_state_dict(model.state_dict())
    assert not torch.equal(before, after)
    assert torch.equal(after, fresh.rollout(b)[-1].logits)
    model.load_state_dict(tiny(forward_dtype="bfloat16").state_dict())  # a load is seen too
    assert torch.equal(model.rollout(b)[-1].logits, before)


def test_kept_bf16_weight_is_prepacked_on_cpu_and_gives_the_same_values():
    if not ONEDNN_BF16:
        pytest.skip("this torch or CPU has no oneDNN bf16 linear: the plain product runs")
    g = torch.Generator().manual_seed(0)
    layer = CastedLinear(24, 40, bias=True)
    with torch.no_grad():
        layer.bias.normal_(generator=g)
        for x in (torch.randn(3, 7, 24, generator=g).bfloat16(), torch.randn(5, 24, generator=g).bfloat16()):
            expected = F.linear(x, layer.weight.bfloat16(), layer.bias.bfloat16())
            assert torch.equal(layer(x), expected)
        (packed,) = layer.onednn_blocks(x)
        assert packed.layout == torch._mkldnn and layer.onednn_blocks(x)[0] is packed  # packed once
        layer.weight.mul_(-1)  # as an optimizer step: the packed copy is made again
        assert torch.equal(layer(x), F.linear(x, layer.weight.bfloat16(), layer.bias.bfloat16()))
        assert layer.onednn_blocks(x)[0] is not packed


@pytest.mark.parametrize("train_weights", [True, False])
def test_kept_bf16_weight_gives_the_gradients_of_a_per_call_cast(train_weights):
    """With gradient the kept (and on a CPU prepacked) cast is used too; every gradient must be the one
    autograd computes through the official per-call cast, bit for bit, also with frozen weights."""
    g = torch.Generator().manual_seed(0)
    layer = CastedLinear(24, 40, bias=True)
    with torch.no_grad():
        layer.bias.normal_(generator=g)
    layer.requires_grad_(train_weights)
    x = torch.randn(3, 7, 24, generator=g).bfloat16()
    upstream = torch.randn(3, 7, 40, generator=g)
    grads = []
    for use_layer in (True, False):
        xi = x.clone().requires_grad_(True)
        w, b = layer.weight.detach().clone().requires_grad_(train_weights), layer.bias.detach().clone().requires_grad_(train_weights)
        if use_layer:
            for _ in range(2):  # two calls, as the recursion calls a net several times per step
                (layer(xi).float() * upstream).sum().backward()
            grads.append((xi.grad, layer.weight.grad, layer.bias.grad))
        else:
            for _ in range(2):
                (F.linear(xi, w.to(torch.bfloat16), b.to(torch.bfloat16)).float() * upstream).sum().backward()
            grads.append((xi.grad, w.grad, b.grad))
    for ours, reference in zip(*grads):
        assert (ours is None) == (reference is None) and (ours is None or torch.equal(ours, reference))
    assert grads[0][0] is not None and (grads[0][1] is not None) == train_weights


def test_bf16_cpu_attention_agrees_with_sdpa():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 25, 16, generator=g) for _ in range(3))
    reference = F.scaled_dot_product_attention(q, k, v)
    assert torch.equal(attention(q, k, v), reference)  # fp32: the fused kernel itself
    # bf16, with and without gradient (two code paths), at score magnitudes of a trained model:
    # against fp32 attention of the same bf16 inputs, about as close as the fused bf16 kernel.
    q, k = 4 * q, 4 * k
    low_inputs = [t.bfloat16() for t in (q, k, v)]
    exact = F.scaled_dot_product_attention(*(t.float() for t in low_inputs))
    with torch.no_grad():
        without_grad = attention(*low_inputs)
    with_grad = attention(*(t.clone().requires_grad_(True) for t in low_inputs))
    for low in (without_grad, with_grad):
        assert low.dtype == torch.bfloat16
        np.testing.assert_allclose(low.detach().float().numpy(), exact.numpy(), atol=3e-2)


def test_bf16_cpu_attention_over_long_sequences_is_the_fused_kernel_with_gradient():
    g = torch.Generator().manual_seed(0)
    length = MATMUL_ATTENTION_MAX_LEN + 1
    q, k, v = (torch.randn(1, 2, length, 8, generator=g).bfloat16().requires_grad_(True) for _ in range(3))
    assert torch.equal(attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
