"""The optimizers, the learning-rate schedule and the EMA against updates computed by hand."""

import math

import pytest
import torch
from torch import nn

from trmzoo.core.model import PuzzleEmbedding
from trmzoo.train.optim import AdamATan2, ParameterEMA, SparseSignSGD, lr_at


def test_adam_atan2_matches_hand_computed_updates():
    lr, (b1, b2), wd = 0.01, (0.9, 0.95), 0.5
    start = [0.5, -1.0, 2.0, 0.0]
    grads = [[0.1, -0.2, 0.0, 3.0], [-0.3, -0.1, 0.0, 1.0], [0.2, 0.4, 0.0, -2.0]]
    p = nn.Parameter(torch.tensor(start, dtype=torch.float64))
    opt = AdamATan2([p], lr=lr, betas=(b1, b2), weight_decay=wd)
    expected, m, v = list(start), [0.0] * 4, [0.0] * 4
    for t, g in enumerate(grads, start=1):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        for i in range(4):
            expected[i] *= 1 - lr * wd
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            expected[i] -= lr / (1 - b1**t) * math.atan2(m[i], math.sqrt(v[i]) / math.sqrt(1 - b2**t))
        assert p.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # a zero gradient throughout moves a weight by decay alone (atan2(0, 0) = 0: no epsilon needed)
    assert p[2].item() == pytest.approx(2.0 * (1 - lr * wd) ** 3, rel=1e-12)


def test_adam_atan2_skips_parameters_without_gradient():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    opt = AdamATan2([a, b], lr=0.1, weight_decay=0.1)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b, torch.ones(2)) and b not in opt.state
    assert not torch.equal(a, torch.ones(2))


def test_sparse_sign_sgd_touches_only_batch_rows_and_sums_duplicates():
    lr, wd = 0.1, 0.5
    emb = PuzzleEmbedding(5, 3)
    start = torch.arange(15, dtype=torch.float32).view(5, 3) - 7
    emb.weight.copy_(start)
    ids = torch.tensor([1, 3, 1])
    rows = emb(ids)
    # row 0 and row 2 share id 1: their gradients +1 and -3 sum to -2 (so sign -1, not +1);
    # column 2 of id 1 sums to exactly 0: decay only
    coeff = torch.tensor([[1.0, 2.0, 1.0], [-1.0, 0.5, 2.0], [-3.0, -1.0, -1.0]])
    (rows * coeff).sum().backward()
    SparseSignSGD(emb, lr=lr, weight_decay=wd).step()
    expected = start.clone()
    expected[1] = start[1] * (1 - lr * wd) - lr * torch.tensor([-1.0, 1.0, 0.0])
    expected[3] = start[3] * (1 - lr * wd) - lr * torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(emb.weight, expected, rtol=0, atol=1e-6)
    for untouched in (0, 2, 4):  # no gradient, no decay either
        assert torch.equal(emb.weight[untouched], start[untouched])
    assert emb.last_lookup is None  # consumed: a second step without a forward does nothing


def test_sparse_sign_sgd_second_step_uses_only_its_own_gradient():
    """The looked-up rows are one leaf reused across steps (so a compiled step has no graph break);
    the second step's update must come from the second backward alone, at the second batch's ids."""
    lr = 0.1
    emb = PuzzleEmbedding(4, 2)
    start = torch.tensor([[1.0, -1.0], [2.0, 0.5], [-3.0, 4.0], [0.25, -2.0]])
    emb.weight.copy_(start)
    sgd = SparseSignSGD(emb, lr=lr, weight_decay=0.0)
    (emb(torch.tensor([0, 1])) * torch.tensor([[5.0, 5.0], [-5.0, -5.0]])).sum().backward()
    sgd.step()
    after_first = emb.weight.clone()
    # second batch: id 1 then id 2; a gradient left from the first step (+5 / -5) would flip these signs
    (emb(torch.tensor([1, 2])) * torch.tensor([[-1.0, 1.0], [1.0, -1.0]])).sum().backward()
    sgd.step()
    expected = after_first.clone()
    expected[1] -= lr * torch.tensor([-1.0, 1.0])
    expected[2] -= lr * torch.tensor([1.0, -1.0])
    assert torch.equal(emb.weight, expected)
    assert torch.equal(emb.weight[0], start[0] - lr) and torch.equal(emb.weight[3], start[3])


def test_sparse_lookup_only_in_training_with_grad():
    emb = PuzzleEmbedding(3, 2)
    emb.eval()
    emb(torch.tensor([0]))
    assert emb.last_lookup is None
    emb.train()
    with torch.no_grad():
        emb(torch.tensor([0]))
    assert emb.last_lookup is None


def test_lr_warmup_starts_at_base_over_warmup():
    schedule = dict(base_lr=1e-4, warmup_steps=2000, total_steps=10_000, min_ratio=1.0)
    assert lr_at(1, **schedule) == pytest.approx(1e-4 / 2000)
    assert lr_at(1000, **schedule) == pytest.approx(0.5e-4)
    # min_ratio 1 (the official setting): constant after the warmup
    assert [lr_at(s, **schedule) for s in (2000, 5000, 10_000)] == pytest.approx([1e-4] * 3)


def test_lr_cosine_decays_to_the_floor():
    schedule = dict(base_lr=1.0, warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert lr_at(10, **schedule) == pytest.approx(1.0)
    assert lr_at(60, **schedule) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way: cos(pi/2) = 0
    assert lr_at(110, **schedule) == pytest.approx(0.1)
    assert lr_at(500, **schedule) >= 0.1 - 1e-12  # past the end it never goes below the floor
    lrs = [lr_at(s, **schedule) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_ema_update_and_swap():
    model = nn.Linear(2, 2)
    model.register_buffer("counter", torch.tensor([1.0]))
    model.bias.requires_grad_(False)  # frozen parameters are not averaged
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    ema = ParameterEMA(model, decay=0.9)
    assert set(ema.shadow) == {"weight"}
    with torch.no_grad():
        model.weight.fill_(11.0)
        model.counter.fill_(5.0)
    ema.update(model)
    averaged = 0.9 * torch.tensor([[1.0, 2.0], [3.0, 4.0]]) + 0.1 * 11.0
    assert torch.allclose(ema.shadow["weight"], averaged)
    bias = model.bias.detach().clone()
    ema.swap(model)
    assert torch.allclose(model.weight, averaged)
    assert torch.equal(model.bias, bias) and model.counter.item() == 5.0  # buffers stay live
    ema.swap(model)
    assert torch.equal(model.weight, torch.full((2, 2), 11.0))
    restored = ParameterEMA(model, decay=0.9)
    restored.load_state_dict(ema.state_dict())
    assert torch.equal(restored.shadow["weight"], ema.shadow["weight"])
