"""The time-to-accuracy recipe options do what they say: on-the-fly augmentation, the depth
curriculum, supervision-step weights, K parallel latents, Muon and the linear schedule
(their defaults are today's training: tests/test_equivalence.py and the resume tests)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from trmzoo.core.supervision import IGNORE_LABEL, LOSSES, supervision_loss
from trmzoo.core.trajectories import split
from trmzoo.data.format import read_split
from trmzoo.errors import RecipeError, TrmzooError
from trmzoo.recipe import dump_recipe, load_recipe, validate_recipe
from trmzoo.train.optim import AdamATan2, lr_at
from trmzoo.train.trainer import Trainer
from trmzoo.yamlio import read_yaml
from test_sudoku import is_solved_grid
from trmzoo_sudoku.symmetry import canonical_form

MAZE = Path(__file__).parent / "data" / "recipes" / "maze_tiny.yaml"
SUDOKU6 = {
    "model": {"hidden_size": 32, "expansion": 2, "puzzle_emb_ndim": 32, "puzzle_emb_len": 1, "forward_dtype": "float32",
              "backbone": {"kind": "attention", "num_heads": 2},
              "recursion": {"kind": "trm", "H_cycles": 1, "L_cycles": 1, "L_layers": 1},
              "halting": {"kind": "bce", "max_steps": 2}},
    "task": {"name": "sudoku", "box_rows": 2, "box_cols": 3, "givens": [10, 20], "num_train": 16, "num_test": 4},
    "train": {"global_batch_size": 8, "max_steps": 4, "device": "cpu"},
}
pytestmark = pytest.mark.usefixtures("one_thread")


def make_trainer(run_dir: Path, raw: dict, *sets: str) -> Trainer:
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe = validate_recipe(raw, "test recipe", sets)
    (run_dir / "recipe.yaml").write_text(dump_recipe(recipe))
    return Trainer(recipe, run_dir, progress=False)


@pytest.fixture(scope="module")
def sudoku_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sudoku6") / "data"


@pytest.fixture(scope="module")
def maze_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("maze") / "data"
    make_trainer(tmp_path_factory.mktemp("build"), read_yaml(MAZE), f"data.dir={out}")  # builds the data
    return out


# -- on-the-fly augmentation ---------------------------------------------------------------------
def test_augmentation_yields_valid_transformed_puzzles_whose_labels_match(sudoku_dir, tmp_path):
    plain = make_trainer(tmp_path / "plain", SUDOKU6, f"data.dir={sudoku_dir}")
    augmented = make_trainer(tmp_path / "aug", SUDOKU6, f"data.dir={sudoku_dir}", "train.augment=true")
    _, arrays = read_split(sudoku_dir, "train")
    originals = {canonical_form(p.astype(int) - 1, 2, 3) for p in arrays.inputs}
    changed = 0
    for _ in range(4):  # two epochs of 16 puzzles
        before, after = next(plain.loader), next(augmented.loader)
        for inputs, labels, original in zip(after["inputs"].numpy(), after["labels"].numpy(), before["inputs"].numpy()):
            puzzle, solution = inputs.astype(int) - 1, labels.astype(int) - 1
            assert is_solved_grid(list(solution), 2, 3)  # the label is a valid full grid
            assert all(p in (0, s) for p, s in zip(puzzle, solution))  # and solves the transformed puzzle
            assert canonical_form(puzzle, 2, 3) in originals  # a symmetry of a training puzzle
            assert np.count_nonzero(puzzle) == np.count_nonzero(original - 1)  # of the one the plain loader drew
            changed += not np.array_equal(inputs, original)
    assert changed >= 28  # nearly every row is a new image
    # a fresh transform each time: the same position twice gives the same batch, another epoch another image
    augmented.loader.seek({"epoch": 0, "batch": 1})
    again = next(augmented.loader)
    augmented.loader.seek({"epoch": 0, "batch": 1})
    assert torch.equal(next(augmented.loader)["inputs"], again["inputs"])
    plain.loader.seek({"epoch": 0, "batch": 1})
    assert not torch.equal(next(plain.loader)["inputs"], again["inputs"])


def test_augmentation_is_refused_where_transforms_would_not_match_the_identifiers(tmp_path):
    from test_train import build_multi_id_maze

    data = build_multi_id_maze(tmp_path / "multi")
    with pytest.raises(RecipeError, match="train.augment: the dataset has 9 puzzle identifiers"):
        make_trainer(tmp_path / "run", read_yaml(MAZE), f"data.dir={data}", "train.augment=true")


# -- the depth curriculum ------------------------------------------------------------------------
def count_net_calls(trainer: Trainer) -> list[int]:
    calls = []
    trainer.model.recursion.net.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_curriculum_changes_T_n_and_supervision_steps_at_the_stated_steps(maze_dir, tmp_path):
    stages = "train.curriculum=[{until_step: 3, H_cycles: 1, L_cycles: 1, max_steps: 2}, {until_step: 5, L_cycles: 3}]"
    t = make_trainer(tmp_path / "run", read_yaml(MAZE), f"data.dir={maze_dir}", stages, "train.max_steps=8")
    calls, per_step, most_steps = count_net_calls(t), [], []
    for _ in range(8):
        before = len(calls)
        t.train_step()
        per_step.append(len(calls) - before)
        most_steps.append(int(t.state.carry.steps.max()))
    # net calls per step = T * (n + 1): (T, n) = (1, 1) to step 3, (2, 3) to step 5, then the model's (2, 2)
    assert per_step == [2, 2, 2, 8, 8, 6, 6, 6]
    assert max(most_steps[:3]) == 2 and max(most_steps) > 2  # N_sup 2 in the first stage, then 4
    assert t.model.recursion.config.H_cycles == 2 and t.model.recursion.config.L_cycles == 2
    assert t.model.halting.max_steps == 4  # evaluation and the saved weights see the model's depth
    with pytest.raises(RecipeError, match="curriculum: the stages' until_step must increase"):
        load_recipe(MAZE, ("train.curriculum=[{until_step: 4}, {until_step: 2}]",))


# -- supervision-step weights --------------------------------------------------------------------
def test_supervision_weights_decay_per_step_with_mean_one(maze_dir, tmp_path):
    t = make_trainer(tmp_path / "run", read_yaml(MAZE), f"data.dir={maze_dir}", "train.supervision_weight_decay=0.5")
    weights = t._step_weights(torch.tensor([1, 2, 3, 4, 4]))
    assert weights.tolist() == pytest.approx([1 / 0.46875, 0.5 / 0.46875, 0.25 / 0.46875, 0.125 / 0.46875,
                                              0.125 / 0.46875])  # mean of 0.5**t over t=0..3 is 0.46875
    assert make_trainer(tmp_path / "plain", read_yaml(MAZE), f"data.dir={maze_dir}")._step_weights(weights) is None

    class Out:  # a two-sample step output: sample 0 all right, sample 1 all wrong
        logits = torch.tensor([[[0.0, 5.0], [5.0, 0.0]], [[5.0, 0.0], [0.0, 5.0]]])
        q_halt = q_continue = torch.zeros(2)
        halted = torch.ones(2, dtype=torch.bool)
        steps = torch.ones(2, dtype=torch.int32)
        target_q_continue = None

    labels = torch.tensor([[1, 0], [1, IGNORE_LABEL]])
    halting = t.model.halting
    _, plain = supervision_loss(Out, labels, halting)
    _, ones = supervision_loss(Out, labels, halting, weights=torch.ones(2, dtype=torch.float64))
    _, only_first = supervision_loss(Out, labels, halting, weights=torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert float(ones["lm_loss"]) == pytest.approx(float(plain["lm_loss"]))
    right = -math.log(6 / 7)  # stablemax of logits (5, 0) on the right token: 6 / (6 + 1)
    assert float(only_first["lm_loss"]) == pytest.approx(right)  # the wrong sample's loss weighed 0
    assert float(plain["lm_loss"]) > right + 1


# -- K parallel latents --------------------------------------------------------------------------
def test_parallel_latents_backpropagate_only_each_samples_lowest_loss_copy(maze_dir, tmp_path):
    t = make_trainer(tmp_path / "run", read_yaml(MAZE), f"data.dir={maze_dir}", "train.parallel_latents=3",
                     "train.latent_noise=0.5")
    for _ in range(2):  # the second step starts from carried (noisy, diverging) states
        seen = {}

        def keep(module, args, output):
            output.retain_grad()
            seen["logits"] = output

        hook = t.model.lm_head.register_forward_hook(keep)
        t.train_step()
        hook.remove()
        logits = seen["logits"]
        assert logits.shape[0] == 3 * 16  # three trajectory-major copies of the batch of 16
        labels = t.state.carry.data["labels"].repeat(3, 1)
        mask = labels != IGNORE_LABEL
        token_loss = LOSSES["stablemax"](logits[:, 1:].detach(), labels, mask).sum(-1) / mask.sum(-1)
        # gradient reaches exactly one copy of each sample: its lowest-loss copy
        has_grad = split(logits.grad.abs().flatten(1).sum(-1) > 0, 3)
        assert has_grad.sum(0).tolist() == [1] * 16
        assert torch.equal(has_grad.int().argmax(0), split(token_loss, 3).argmin(0))
    assert t.state.carry.z.shape[0] == 16  # the carry holds the winners only


# -- optimizers and schedules --------------------------------------------------------------------
def test_muon_takes_the_recursion_matrices_and_adam_atan2_the_rest(maze_dir, tmp_path):
    t = make_trainer(tmp_path / "run", read_yaml(MAZE), f"data.dir={maze_dir}", "train.optimizer=muon")
    muon, adam = t.optimizer.optimizers
    assert isinstance(muon, torch.optim.Muon) and isinstance(adam, AdamATan2)
    matrices = {id(p) for g in muon.param_groups for p in g["params"]}
    for name, p in t.model.named_parameters():
        assert (id(p) in matrices) == (name.startswith("recursion.") and p.ndim == 2), name
    before = {k: v.clone() for k, v in t.model.named_parameters()}
    lrs = [float(t.train_step()["lr"]) for _ in range(2)]
    assert [g["lr"] for g in t.optimizer.param_groups] == pytest.approx([lrs[-1]] * 2)  # one schedule for both
    assert [k for k, p in t.model.named_parameters() if torch.equal(p, before[k])] == []
    state = t.optimizer.state_dict()
    assert set(state) == {"Muon", "AdamATan2"}
    t.optimizer.load_state_dict(state)


def test_linear_schedule_decays_to_the_floor_at_max_steps():
    lrs = [lr_at(s, base_lr=1.0, warmup_steps=2, total_steps=6, min_ratio=0.1, shape="linear") for s in range(1, 8)]
    assert lrs == pytest.approx([0.5, 1.0, 0.775, 0.55, 0.325, 0.1, 0.1])


# -- torch.compile -------------------------------------------------------------------------------
@pytest.mark.slow
def test_compile_runs_the_whole_supervision_step_compiled_and_trains_as_eager(maze_dir, tmp_path):
    torch._dynamo.reset()
    sets = (f"data.dir={maze_dir}", "train.curriculum=[{until_step: 2, H_cycles: 1, L_cycles: 1}]")
    eager = make_trainer(tmp_path / "eager", read_yaml(MAZE), *sets)
    compiled = make_trainer(tmp_path / "compiled", read_yaml(MAZE), *sets, "train.compile=true")
    assert compiled.model._compiled_call_impl is not None and eager.model._compiled_call_impl is None
    torch._dynamo.utils.counters.clear()
    for _ in range(4):  # two steps in the curriculum's stage, two at the model's depth
        ours, theirs = compiled.train_step(), eager.train_step()
        for key in ("loss", "accuracy", "count"):
            assert float(ours[key]) == pytest.approx(float(theirs[key]), rel=1e-4, abs=1e-5), key
    # Dynamo compiled the step itself (embedding, recursion, heads) as one graph per depth, with no
    # graph break (the puzzle embedding's leaf is made outside the step)
    assert compiled.model.puzzle_emb is not None
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2
    assert not torch._dynamo.utils.counters["graph_break"]
    for (name, a), b in zip(compiled.model.named_parameters(), eager.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    torch.testing.assert_close(compiled.model.puzzle_emb.weight, eager.model.puzzle_emb.weight, rtol=1e-4, atol=1e-5)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert compiled.evaluate()["exact_accuracy"] == eager.evaluate()["exact_accuracy"]
    # evaluation adds its graph without gradient, not one per call (counting network rows once recompiled each call)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs <= 2
    torch._dynamo.reset()


@pytest.mark.slow
def test_compile_for_inference_evaluates_as_eager_and_refuses_to_run_once_the_weights_changed():
    from trmzoo.testing import tiny_model

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = tiny_model(vocab_size=6, seq_len=9, num_puzzle_identifiers=3, forward_dtype="bfloat16",
                       puzzle_emb_len=1, recursion={"H_cycles": 2, "L_cycles": 2}, halting={"max_steps": 2})
    g = torch.Generator().manual_seed(1)
    batch = {"inputs": torch.randint(1, 6, (4, 9), generator=g), "puzzle_identifiers": torch.randint(0, 3, (4,), generator=g)}

    def logits():
        with torch.no_grad():
            return model.step(model.initial_carry(batch), batch)[1].logits.float()

    model.eval()
    eager = logits()
    model.compile_for_inference()
    frozen = logits()
    torch.testing.assert_close(frozen, eager, rtol=0, atol=0.05 * eager.abs().max().item())  # bf16, fused differently
    with torch.no_grad():
        model.lm_head.weight.mul_(-1)
    with pytest.raises(TrmzooError, match="compile_for_inference"):
        logits()
    model.compile_for_inference()
    torch.testing.assert_close(logits(), -frozen, rtol=0, atol=0.05 * eager.abs().max().item())
    model.compile()  # a training compile ends the frozen one: weights may change again
    model.train()
    with torch.no_grad():
        model.lm_head.weight.mul_(-1)
    model.eval()
    torch.testing.assert_close(logits(), eager, rtol=0, atol=0.05 * eager.abs().max().item())
    torch._dynamo.reset()
