"""The HRM and direct-prediction baselines: sizes, HRM's update order and gradient, halting, conversion."""

from __future__ import annotations

import pytest
import torch

import trmzoo
from trmzoo.convert import config_to_official, convert_official, to_official
from trmzoo.testing import tiny_batch
from trmzoo_direct import SINGLE_PASS

pytestmark = pytest.mark.usefixtures("one_thread")

# Small versions of the named models: the structure of the paper-size ones at a width a test can run.
SMALL = {
    "hidden_size": 32, "puzzle_emb_ndim": 32, "forward_dtype": "float32", "num_puzzle_identifiers": 3,
    "backbone": {"num_heads": 4},
}
SMALL_HRM = {**SMALL, "recursion": {"L_layers": 1, "H_layers": 1, "L_cycles": 3}}
SMALL_DIRECT = {**SMALL, "recursion": {"layers": 2}}


def _randomise(model):
    """Give the zero-initialised puzzle table and q head values, so conversions have something to carry."""
    torch.manual_seed(1)
    with torch.no_grad():
        model.puzzle_emb.weight.normal_()
        model.q_head.weight.normal_(0, 0.3)
        model.q_head.bias.normal_()
    return model


@pytest.mark.parametrize("name, count", [
    ("hrm_sudoku", 27_275_266), ("hrm_maze", 27_270_146), ("hrm_arc", 27_276_290),
    ("direct_arc", 27_145_218), ("direct_sudoku", 27_144_194), ("direct_maze", 27_139_074),
])
def test_parameter_counts_match_the_official_models(name, count):
    with torch.device("meta"):
        model = trmzoo.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == count
    assert model.prefix_len == 1  # ceil(512 / 512) slots, not TRM's 16


def test_named_models_map_to_the_official_architecture_settings():
    with torch.device("meta"):
        hrm = config_to_official(trmzoo.create_model("hrm_arc"))
        direct = config_to_official(trmzoo.create_model("direct_arc"))
    # config/arch/hrm.yaml and transformers_baseline.yaml of the official repository
    assert hrm["name"].startswith("recursive_reasoning.hrm@")
    assert {k: hrm[k] for k in ("H_cycles", "L_cycles", "H_layers", "L_layers", "hidden_size", "num_heads",
                                "expansion", "puzzle_emb_ndim", "pos_encodings", "halt_max_steps",
                                "halt_exploration_prob", "forward_dtype", "mlp_t")} == {
        "H_cycles": 2, "L_cycles": 2, "H_layers": 4, "L_layers": 4, "hidden_size": 512, "num_heads": 8,
        "expansion": 4.0, "puzzle_emb_ndim": 512, "pos_encodings": "rope", "halt_max_steps": 16,
        "halt_exploration_prob": 0.1, "forward_dtype": "bfloat16", "mlp_t": False,
    }
    assert direct["name"].startswith("recursive_reasoning.transformers_baseline@")
    assert {k: direct[k] for k in ("H_layers", "num_heads", "hidden_size", "pos_encodings", "act_enabled")} == {
        "H_layers": 8, "num_heads": 12, "hidden_size": 512, "pos_encodings": "rope", "act_enabled": True,
    }


def _record_calls(model) -> list[tuple[str, bool]]:
    """Hook every network of the recursion: (which net, whether the call builds a graph), in call order."""
    calls: list[tuple[str, bool]] = []
    for label in ("net", "y_net"):
        net = getattr(model.recursion, label, None)
        if net is not None:
            net.register_forward_hook(lambda m, i, o, label=label: calls.append((label, o.requires_grad)))
    return calls


def test_hrm_updates_low_level_n_times_per_high_update_and_backprops_one_step():
    model = trmzoo.create_model("hrm_sudoku", **SMALL_HRM).train()
    calls = _record_calls(model)
    batch = tiny_batch(model)
    _, out = model.step(model.initial_carry(batch), batch)
    # H_cycles=2 rounds of (3 z updates, 1 y update), then the same again for the Q target (no graph).
    round_ = [("net", False)] * 3 + [("y_net", False)]
    graded = [("net", False)] * 2 + [("net", True), ("y_net", True)]
    assert calls == round_ + graded + round_ * 2
    assert out.target_q_continue is not None and out.target_q_continue.shape == (4,)
    out.logits.float().square().mean().backward()
    assert model.recursion.net.layers[0].mlp.down_proj.weight.grad.abs().sum() > 0  # the last z update
    assert model.recursion.y_net.layers[0].mlp.down_proj.weight.grad.abs().sum() > 0
    assert model.embed_tokens.weight.grad.abs().sum() > 0  # reached through the last z update's injection


def test_direct_applies_its_network_once_per_step_and_trains_no_continue_target():
    model = trmzoo.create_model("direct_sudoku", **SMALL_DIRECT, halting={"exploration_prob": 0.0}).train()
    calls = _record_calls(model)
    batch = tiny_batch(model)
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor([1.0, -1.0]))  # q_halt > q_continue: halt
    carry, out = model.step(model.initial_carry(batch), batch)
    assert calls == [("net", True)]
    assert out.target_q_continue is None
    assert bool(carry.halted.all())
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor([1.0, 2.0]))  # q_halt > 0 but below q_continue: go on
    carry, _ = model.step(model.initial_carry(batch), batch)
    assert not bool(carry.halted.any())


def test_direct_single_pass_option_stops_every_sample_after_one_step():
    model = trmzoo.create_model("direct_sudoku", **SMALL_DIRECT, halting=SINGLE_PASS)
    batch = tiny_batch(model)
    carry, _ = model.train().step(model.initial_carry(batch), batch)
    assert bool(carry.halted.all()) and carry.steps.tolist() == [1, 1, 1, 1]
    assert len(model.eval().rollout(batch)) == 1


@pytest.mark.parametrize("name, overrides", [("hrm_sudoku", SMALL_HRM), ("direct_maze", SMALL_DIRECT)])
def test_conversion_to_the_official_layout_and_back_keeps_outputs(name, overrides):
    model = _randomise(trmzoo.create_model(name, **overrides)).eval()
    state, arch = to_official(model)
    back = convert_official(state, arch, seq_len=model.config.seq_len)
    assert back.config == model.config
    batch = tiny_batch(model)
    for ours, theirs in zip(model.rollout(batch, steps=3), back.rollout(batch, steps=3), strict=True):
        assert torch.equal(ours.logits, theirs.logits)
        assert torch.equal(ours.q_halt, theirs.q_halt) and torch.equal(ours.q_continue, theirs.q_continue)


def test_a_baseline_converted_with_act_inference_says_how_to_evaluate_it_the_same():
    model = _randomise(trmzoo.create_model("direct_maze", **SMALL_DIRECT)).eval()
    state, arch = to_official(model)
    with pytest.warns(UserWarning, match=r"act_inference is true.*trmzoo eval --early-exit"):
        back = convert_official(state, {**arch, "act_inference": True}, seq_len=model.config.seq_len)
    assert back.config == model.config  # an evaluation setting: the model is the same
