"""Named models: official parameter counts, on what create_model and load return; the inference API."""

import pytest
import torch

import trmzoo
from trmzoo.errors import RecipeError, TrmzooError
from trmzoo import testing
from trmzoo.testing import tiny_batch, tiny_model

OFFICIAL_COUNTS = {
    "trm_sudoku_mlp": 5_028_866,
    "trm_sudoku_att": 6_828_034,
    "trm_maze_att": 6_822_914,
    "trm_arc_att": 6_829_058,
    "trm_maze_mlp": 18_795_522,
}


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(OFFICIAL_COUNTS))
def test_official_parameter_counts_exclude_the_puzzle_table(name):
    with torch.device("meta"):
        model = trmzoo.create_model(name, num_puzzle_identifiers=1000)
    assert count(model) == OFFICIAL_COUNTS[name]
    assert model.puzzle_emb.weight.shape == (1000, 512)  # a buffer: not a parameter


def test_loaded_model_has_the_same_count(tmp_path):
    model = trmzoo.create_model("trm_sudoku_mlp")
    trmzoo.save_pretrained(model, tmp_path / "w")
    loaded = trmzoo.load(tmp_path / "w")
    assert count(loaded) == OFFICIAL_COUNTS["trm_sudoku_mlp"]
    assert not loaded.training
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def tiny(**overrides):
    """The contract kit's tiny model with the official 16 prefix slots, RoPE and 5 supervision steps."""
    return tiny_model(vocab_size=6, seq_len=9, puzzle_emb_len=16, pos_encodings="rope", expansion=4.0,
                      recursion={"L_cycles": 2}, halting={"max_steps": 5}, **overrides).eval()


def batch(size=4):
    g = torch.Generator().manual_seed(1)
    return {"inputs": torch.randint(1, 6, (size, 9), generator=g), "puzzle_identifiers": torch.tensor([0, 1, 2, 1][:size])}


def test_step_outputs_have_the_official_shapes():
    model, b = tiny(), batch()
    carry = model.initial_carry(b)
    assert carry.halted.all()
    carry, out = model.step(carry, b)
    assert out.logits.shape == (4, 9, 6)
    assert out.y.shape == out.z.shape == (4, 16 + 9, 32)  # prefix positions included
    assert out.q_halt.dtype == torch.float32 and out.q_halt.shape == (4,)
    assert (out.steps == 1).all()


def test_rollout_matches_repeated_steps_and_can_start_from_given_states():
    model, b = tiny(), batch()
    outs = model.rollout(b)
    assert len(outs) == 5 and outs[-1].halted.all()
    carry = model.initial_carry(b)
    for expected in outs:
        carry, out = model.step(carry, b)
        torch.testing.assert_close(out.logits, expected.logits)
    # start one step from the states reached after two steps: same as the third step
    carry = model.initial_carry(b)
    carry, _ = model.step(carry, b)
    carry, _ = model.step(carry, b)
    restart = model.initial_carry(b)
    restart.y, restart.z, restart.halted = outs[1].y.clone(), outs[1].z.clone(), torch.zeros(4, dtype=torch.bool)
    restart.data = {k: v.clone() for k, v in carry.data.items()}
    _, out = model.step(restart, b)
    torch.testing.assert_close(out.logits, outs[2].logits)


def test_early_exit_stops_samples_whose_signal_fires():
    model, b = tiny(), batch()
    with torch.no_grad():  # q_halt is the bias while the weight is zero: every sample halts at once
        model.q_head.bias[0] = 5.0
    outs = model.rollout(b, early_exit=True)
    assert len(outs) == 1 and outs[-1].halted.all()
    assert (outs[-1].steps == 1).all()
    full = model.rollout(b)
    assert len(full) == 5 and (full[-1].steps == 5).all()


def test_a_section_without_kind_overrides_the_presets_default_kind():
    model = trmzoo.create_model("trm_sudoku_mlp", halting={"max_steps": 2})  # TRM's entries leave halting out
    assert (model.config.halting.kind, model.config.halting.max_steps) == ("bce", 2)
    hrm = trmzoo.create_model("hrm_sudoku", halting={"max_steps": 2})  # its entry's kind is kept
    assert (hrm.config.halting.kind, hrm.config.halting.max_steps) == ("q_learning", 2)


def test_a_registered_model_records_its_task_and_solves_its_puzzles():
    model = trmzoo.create_model("trm_sudoku_att", hidden_size=64, puzzle_emb_ndim=64)
    assert model.provenance.task == {"name": "sudoku"}
    solution = trmzoo.solve(model, "." * 81)
    assert solution.tokens.shape[-1] == 81
    assert trmzoo.create_model("trm_sudoku_att", seq_len=16, vocab_size=6).provenance.task is None  # not a 9x9 grid


def test_api_arguments_that_would_be_silently_misread_are_refused():
    model = tiny_model()
    batch = tiny_batch(model)
    for steps in (0, -1, 2.5, True):
        with pytest.raises(TrmzooError, match="rollout: steps"):
            model.rollout(batch, steps=steps)
    assert len(model.rollout(batch, steps=2)) == 2
    with pytest.raises(TypeError, match="True or False"):
        trmzoo.use_fused_ops("off")
    with pytest.raises(RecipeError, match="strategy_options: options go with a strategy"):
        trmzoo.solve(trmzoo.create_model("trm_sudoku_att", hidden_size=64, puzzle_emb_ndim=64), "." * 81,
                     strategy_options={"k": 4})


def test_saving_into_a_weight_folder_again_keeps_none_of_the_old_models_files(tmp_path):
    old = tiny_model()
    old.provenance.identifiers = ["<blank>"] + [f"p{i}" for i in range(old.config.num_puzzle_identifiers - 1)]
    trmzoo.save_pretrained(old, tmp_path)
    assert {"identifiers.json", "puzzle_emb.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    new = trmzoo.build_model(testing.tiny_model_config(puzzle_emb_ndim=0))
    trmzoo.save_pretrained(new, tmp_path)
    assert not {"identifiers.json", "puzzle_emb.safetensors"} & {p.name for p in tmp_path.iterdir()}
    assert trmzoo.load(tmp_path).provenance.identifiers is None


def test_a_batch_the_model_cannot_read_is_one_line_naming_what_is_wrong():
    model = tiny_model()
    good = tiny_batch(model)
    rows, length = good["inputs"].shape
    bad = {
        "inputs is torch.float32": {**good, "inputs": good["inputs"].float()},
        f"the model reads integer tokens \\[B >= 1, {length}\\]": {**good, "inputs": good["inputs"][:, :-1]},
        "inputs holds -1": {**good, "inputs": good["inputs"] - good["inputs"] - 1},
        f"inputs holds {model.config.vocab_size}; the model's tokens are": {
            **good, "inputs": torch.full_like(good["inputs"], model.config.vocab_size)},
        "puzzle_identifiers holds": {**good, "puzzle_identifiers": good["puzzle_identifiers"] + 10 ** 6},
        "no 'puzzle_identifiers'": {"inputs": good["inputs"]},
        f"every entry needs the {rows} rows": {**good, "puzzle_identifiers": good["puzzle_identifiers"][:1]},
        "a dict with 'inputs'": good["inputs"],
    }
    for message, batch in bad.items():
        with pytest.raises(TrmzooError, match=message):
            model.rollout(batch)
    with pytest.raises(TrmzooError, match=f"the carry holds {rows} samples, the batch 1"):
        model.rollout({k: v[:1] for k, v in good.items()}, carry=model.initial_carry(good))


def test_arguments_of_the_wrong_kind_are_one_line_errors(tmp_path):
    with pytest.raises(TrmzooError, match="model 5: not a name"):
        trmzoo.create_model(5)
    model = trmzoo.create_model("trm_sudoku_att", hidden_size=64, puzzle_emb_ndim=64)
    with pytest.raises(TrmzooError, match="puzzle 1234: give the puzzle as text"):
        trmzoo.solve(model, 1234)
    with pytest.raises(RecipeError, match="task 'sudoku': give a Task"):
        trmzoo.evaluate(model, tmp_path, "sudoku")


def test_load_refuses_hub_options_it_cannot_honour(tmp_path):
    trmzoo.save_pretrained(tiny_model(), tmp_path)
    with pytest.raises(TrmzooError, match="a local folder has no revisions"):
        trmzoo.load(tmp_path, revision="v9")
    with pytest.raises(TrmzooError, match="pins revision 'v1', and revision='v2' was given too"):
        trmzoo.load("hf-hub:org/name@v1", revision="v2")


@pytest.mark.parametrize("backbone", ["attention", "mlp"])
def test_to_a_dtype_sets_the_compute_dtype_on_float32_masters(backbone, tmp_path):
    model = tiny_model(backbone={"kind": backbone}, pos_encodings="learned")
    batch = tiny_batch(model)
    built = tiny_model(backbone={"kind": backbone}, pos_encodings="learned", forward_dtype="bfloat16")
    with torch.no_grad():
        fp32 = model.rollout(batch)[-1].logits
        assert model.to(torch.bfloat16) is model and model.config.forward_dtype == "bfloat16"
        assert all(p.dtype == torch.float32 for p in model.parameters())  # masters, cast per call
        assert torch.equal(model.rollout(batch)[-1].logits, built.rollout(batch)[-1].logits)  # the same weights
        trmzoo.save_pretrained(model, tmp_path / "w")
        assert trmzoo.load(tmp_path / "w").config.forward_dtype == "bfloat16"
        assert torch.equal(model.float().rollout(batch)[-1].logits, fp32)
        model.to("cpu", dtype=torch.bfloat16)
        assert model.dtype == torch.bfloat16 and model.embed_tokens.dtype == model.embed_pos.dtype == torch.bfloat16
    for convert in (model.half, model.double, lambda: model.to(torch.float16)):
        with pytest.raises(TrmzooError, match="forward dtype float(16|64): the models compute in float32 or bfloat16"):
            convert()
