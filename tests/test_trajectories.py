"""K trajectories side by side: replicate lays copies out trajectory-major, split and select read them
back, and a replicated carry runs each copy exactly as the single batch would."""

from __future__ import annotations

import pytest
import torch

from trmzoo.core.trajectories import best_trajectory, replicate, select, split
from trmzoo.testing import tiny_batch, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_rows_are_trajectory_major():
    x = torch.arange(6).view(3, 2)  # B=3
    big = replicate({"x": x, "none": None, "n": 5}, 4)
    assert big["x"].shape == (12, 2) and big["none"] is None and big["n"] == 5
    for k in range(4):
        for b in range(3):
            assert torch.equal(big["x"][k * 3 + b], x[b])
    assert torch.equal(split(big["x"], 4)[2], x)
    with pytest.raises(ValueError, match="not 5 trajectories"):
        split(big["x"], 5)


def test_select_takes_each_samples_winner_and_ties_go_to_the_first():
    k, b = 3, 4
    values = torch.arange(k * b).float()  # row k*B+b holds k*B+b
    winner = torch.tensor([0, 2, 1, 2])
    assert select(values, winner).tolist() == [0, 9, 6, 11]
    score = torch.tensor([1.0, 5, 0, 2,  # trajectory 0
                          1.0, 7, 0, 9,  # trajectory 1
                          0.5, 7, 3, 9])  # trajectory 2
    assert best_trajectory(score, k).tolist() == [0, 1, 2, 1]  # equal scores: the lower trajectory


def test_a_replicated_carry_runs_each_copy_like_the_batch():
    model = tiny_model(halting={"max_steps": 3}).eval()
    batch = tiny_batch(model, batch_size=3)
    with torch.no_grad():
        single = model.rollout(batch)[-1]
        big_batch = replicate(batch, 2)
        outs = model.rollout(big_batch, carry=replicate(model.initial_carry(batch), 2))
    logits = split(outs[-1].logits, 2)
    assert torch.allclose(logits[0], single.logits, atol=1e-5) and torch.allclose(logits[1], single.logits, atol=1e-5)
    picked = select(outs[-1], torch.tensor([1, 0, 1]))
    assert picked.logits.shape == single.logits.shape and torch.equal(picked.steps, single.steps)
