"""Inference strategies: the defaults reproduce the plain rollout exactly, symmetries map back exactly,
votes follow their documented rules, seeds fix answers, and every strategy's spend is what the
network was really called on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import trmzoo
from trmzoo.cli import cli
from trmzoo.errors import RecipeError
from trmzoo.evaluation import evaluate
from trmzoo.factory import make_strategy
from trmzoo.registry import get_registry
from trmzoo.strategy import count_network_rows, vote
from trmzoo.testing import tiny_model
from trmzoo_arc import ARCConfig, ARCTask
from trmzoo_maze import MazeConfig, MazeTask
from trmzoo_sudoku import SudokuConfig, SudokuTask
from trmzoo_sudoku.solver import random_grid

pytestmark = pytest.mark.usefixtures("one_thread")

SUDOKU4 = SudokuTask(SudokuConfig(box_rows=2, box_cols=2))
MAX_STEPS = 3


def sudoku_model():
    model = tiny_model(vocab_size=6, seq_len=16, halting={"max_steps": MAX_STEPS}).eval()
    with torch.no_grad():  # a halting head that reads the state, so samples halt at different steps
        model.q_head.weight.normal_(0, 1, generator=torch.Generator().manual_seed(3))
        model.q_head.bias.zero_()
    return model


def sudoku_batch(size=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(1, 6, (size, 16), generator=g, dtype=torch.int32)
    return {"inputs": inputs, "labels": inputs.clone(), "puzzle_identifiers": torch.zeros(size, dtype=torch.int32)}


def answers(name, options=None, model=None, batch=None, task=SUDOKU4):
    model = model or sudoku_model()
    with torch.no_grad():
        return make_strategy(name, options, task=task).run(model, batch or sudoku_batch())


def same(a, b):
    return torch.equal(a.preds, b.preds) and torch.equal(a.q_halt, b.q_halt) and torch.equal(a.steps, b.steps)


# -- the defaults are the plain rollout ------------------------------------------------------------
def test_noise_with_one_trajectory_and_scale_zero_is_the_plain_rollout():
    plain = answers("plain")
    final = sudoku_model().rollout(sudoku_batch())[-1]
    assert torch.equal(plain.preds, final.preds) and torch.equal(plain.q_halt, final.q_halt)
    assert same(answers("noise", {"k": 1, "scale": 0.0}), plain)
    assert same(answers("noise", {"k": 1, "scale": 0.0, "clean_first": False}), plain)
    assert same(answers("halt_first", {"k": 1, "scale": 0.0, "steps": MAX_STEPS}), answers("depth", {"stop": "halt"}))


def test_depth_with_the_trained_steps_is_the_plain_rollout_and_more_steps_go_on():
    assert same(answers("depth"), answers("plain"))
    assert same(answers("depth", {"steps": MAX_STEPS}), answers("plain"))
    deeper = answers("depth", {"steps": 7})
    final = sudoku_model().rollout(sudoku_batch(), steps=7)[-1]
    assert torch.equal(deeper.preds, final.preds) and deeper.steps.tolist() == [7] * 6
    assert deeper.sample_steps == 7 * 6


def test_depth_stops_on_halting_like_early_exit_and_on_a_stable_answer():
    early = answers("plain", {"early_exit": True})
    halt = answers("depth", {"stop": "halt"})
    assert same(halt, early) and halt.sample_steps == int(early.steps.sum()) < 6 * MAX_STEPS
    stable = answers("depth", {"steps": 12, "stop": "stable", "patience": 1})
    full = sudoku_model().rollout(sudoku_batch(), steps=12)
    for b, stopped in enumerate(stable.steps.tolist()):  # it stopped at the first repeat of its answer
        trace = [out.preds[b] for out in full]
        first_repeat = next((i + 1 for i in range(1, 12) if torch.equal(trace[i], trace[i - 1])), 12)
        assert stopped == first_repeat and torch.equal(stable.preds[b], trace[stopped - 1])


def test_the_noise_hook_is_off_outside_a_strategy():
    model = sudoku_model()
    before = model.rollout(sudoku_batch())[-1].logits
    answers("noise", {"k": 3, "scale": 1.0}, model=model)
    assert model.recursion.latent_hook is None
    assert torch.equal(model.rollout(sudoku_batch())[-1].logits, before)


# -- seeds ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["noise", "halt_first", "symmetry"])
def test_the_same_seed_gives_the_same_answers(name):
    options = {"k": 4, "seed": 5} if name == "symmetry" else {"k": 4, "scale": 2.0, "seed": 5}
    if name == "symmetry":
        options.update(inner="noise", inner_options={"k": 2, "scale": 2.0})
    first, again = answers(name, options), answers(name, options)
    assert same(first, again)
    other = answers(name, {**options, "seed": 6, **({"inner_options": {"k": 2, "scale": 2.0, "seed": 9}}
                                                     if name == "symmetry" else {})})
    assert not torch.equal(first.q_halt, other.q_halt)  # the seed matters


@pytest.mark.parametrize("name", ["noise", "halt_first", "symmetry"])
def test_answers_do_not_depend_on_the_batch_a_puzzle_is_in(name):
    """The noise of a puzzle's trajectories is keyed by the seed, the update and the puzzle, not by its row."""
    options = {"k": 4, "scale": 2.0, "seed": 5}
    if name == "symmetry":
        options = {"k": 4, "seed": 5, "inner": "noise", "inner_options": {"k": 3, "scale": 2.0, "seed": 7}}
    model, batch = sudoku_model(), sudoku_batch(size=6)
    whole = answers(name, options, model=model, batch=batch)
    order = [4, 1, 5]
    parts = [answers(name, options, model=model, batch={k: v[rows] for k, v in batch.items()})
             for rows in ([0, 2, 3], order)]
    for part, rows in zip(parts, ([0, 2, 3], order)):  # a product's sums may run in another order at another size
        assert torch.equal(part.preds, whole.preds[rows]) and torch.allclose(part.q_halt, whole.q_halt[rows], atol=1e-4)
    twice = answers(name, options, model=model, batch={k: torch.cat([v[:1], v[:1]]) for k, v in batch.items()})
    assert torch.equal(twice.preds[0], twice.preds[1])  # the same puzzle, the same noise
    noisy = answers("noise", {"k": 4, "scale": 2.0, "seed": 5, "clean_first": False}, model=model, batch=batch)
    assert not torch.equal(noisy.q_halt, answers("noise", {"k": 4, "scale": 2.0, "seed": 6, "clean_first": False},
                                                 model=model, batch=batch).q_halt)


def test_noise_picks_the_most_confident_trajectory():
    model, batch = sudoku_model(), sudoku_batch()
    k = 4
    result = answers("noise", {"k": k, "scale": 1.0, "seed": 1}, model=model, batch=batch)
    # the same trajectories by hand: replicate, noise hook, the highest final q_halt per sample
    from trmzoo_strategies import run_rows
    from trmzoo.core.trajectories import replicate, split

    scale = torch.full((k * 6,), 1.0)
    scale[:6] = 0
    with torch.no_grad():
        rows = run_rows(model, replicate(batch, k), MAX_STEPS, noise_scale=scale, seed=1, trajectories=k)
    q = split(rows["q_halt"], k)
    assert torch.equal(result.q_halt, q.max(0).values)
    assert result.sample_steps == k * 6 * MAX_STEPS
    assert len({tuple(p.flatten().tolist()) for p in split(rows["preds"], k)}) > 1  # noise changed answers


# -- symmetries ----------------------------------------------------------------------------------------
def sudoku_solutions(box_rows, box_cols, count=3):
    rng = np.random.default_rng(0)
    return np.stack([np.array(random_grid(box_rows, box_cols, rng)) + 1 for _ in range(count)])  # digit d: token d + 1


@pytest.mark.parametrize("boxes", [(2, 2), (2, 3), (3, 3)])
def test_every_sudoku_symmetry_used_maps_back_exactly_and_keeps_a_valid_grid(boxes):
    task = SudokuTask(SudokuConfig(box_rows=boxes[0], box_cols=boxes[1]))
    group = task.symmetries()
    strategy = make_strategy("symmetry", {"k": 64, "seed": 0}, task=task)
    elements = strategy.elements()
    assert len(elements) == 64 and np.array_equal(elements[0].positions, np.arange(task.seq_len))
    labels = sudoku_solutions(*boxes)
    puzzle = labels.copy()
    puzzle[:, ::3] = 1  # blanks
    assert task.verify(puzzle, labels).all()
    for g in elements:
        moved = g.apply(labels)
        assert task.verify(g.apply(puzzle), moved).all()  # a symmetry keeps a solution a solution
        assert np.array_equal(g.invert(moved), labels)
        assert torch.equal(g.invert(g.apply(torch.from_numpy(labels))), torch.from_numpy(labels))
    square = boxes[0] == boxes[1]
    n = boxes[0] * boxes[1]
    transpose = np.arange(n * n).reshape(n, n).T.reshape(-1)
    assert np.array_equal(group[len(group) // 2].positions, transpose) == square  # only where boxes are square
    assert len(group) == {(2, 2): 24 * 2 * 4 * 2 * 4 * 2, (2, 3): 720 * 6 * 8 * 2 * 36,
                          (3, 3): 362880 * 6 * 216 * 6 * 216 * 2}[boxes]


def test_the_eight_maze_symmetries_map_back_exactly():
    task = MazeTask(MazeConfig(size=5))
    group = task.symmetries()
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 6, (4, 25))
    images = {tuple(group[i].apply(labels[0])) for i in range(8)}
    assert len(group) == 8 and len(images) == 8
    for i in range(8):
        assert np.array_equal(group[i].invert(group[i].apply(labels)), labels)
        assert np.array_equal(group[i].apply(labels), task._transform(labels, i))  # the official numbering


def test_symmetry_votes_over_mapped_back_answers():
    model, batch = sudoku_model(), sudoku_batch()
    strategy = make_strategy("symmetry", {"k": 5, "seed": 2}, task=SUDOKU4)
    with torch.no_grad():
        result = strategy.run(model, batch)
        elements = strategy.elements()
        candidates = torch.stack([g.invert(model.rollout({"inputs": g.apply(batch["inputs"]),
                                                          "puzzle_identifiers": batch["puzzle_identifiers"]})[-1].preds)
                                  for g in elements])
    for b in range(6):
        counts = [sum(torch.equal(candidates[j, b], candidates[i, b]) for j in range(5)) for i in range(5)]
        assert sum(torch.equal(result.preds[b], candidates[j, b]) for j in range(5)) == max(counts)
    assert result.sample_steps == 5 * 6 * MAX_STEPS


def test_vote_majority_and_documented_ties():
    a, b, c = [0, 0], [1, 1], [2, 2]
    preds = torch.tensor([[a, a, a, a], [b, b, b, b], [a, c, b, c], [c, b, b, a]])  # [K=4, B=4, L=2]
    conf = torch.tensor([[0.9, 0.1, 0.5, 0.5],
                         [0.2, 0.8, 0.5, 0.5],
                         [0.1, 0.7, 0.5, 0.5],
                         [0.1, 0.6, 0.5, 0.5]])
    winner = vote(preds, conf)
    # sample 0: a has 2 votes (k 0, 2), b 1, c 1 -> a;  sample 1: b (k 1, 3) vs a 1, c 1 -> b
    # sample 2: a,b,b,b -> b (3 votes), first voter k=1;  sample 3: a,b,c,a: a 2 votes -> k 0
    assert winner.tolist() == [0, 1, 1, 0]
    # a tie on votes goes to the higher mean confidence, then to the lowest k
    tie = torch.tensor([[a, a], [b, b]])
    assert vote(tie, torch.tensor([[0.3, 0.5], [0.6, 0.5]])).tolist() == [1, 0]
    # only allowed candidates vote, where any is allowed
    allowed = torch.tensor([[False, False], [True, False]])
    assert vote(tie, torch.tensor([[0.9, 0.5], [0.1, 0.5]]), allowed).tolist() == [1, 0]


# -- verify --------------------------------------------------------------------------------------------
def test_sudoku_verify_checks_the_rules_and_the_givens():
    solution = sudoku_solutions(2, 2, 1)
    puzzle = solution.copy()
    puzzle[:, 1::2] = 1
    wrong_given = puzzle.copy()
    wrong_given[0, 0] = 2 + (wrong_given[0, 0] - 1) % 4
    swapped = solution.copy()
    swapped[0, [0, 1]] = swapped[0, [1, 0]]
    assert SUDOKU4.verify(puzzle, solution).tolist() == [True]
    assert SUDOKU4.verify(wrong_given, solution).tolist() == [False]
    assert SUDOKU4.verify(puzzle, swapped).tolist() == [False]
    assert SUDOKU4.verify(np.zeros_like(puzzle), solution).tolist() == [False]  # a padding row is no puzzle


def test_verify_strategies_say_so_and_need_a_task_that_offers_it():
    assert all("verify" in name for name, entry in get_registry().strategy.items() if entry.strategy_cls.uses_verify)
    with pytest.raises(RecipeError, match="arc task offers none"):
        make_strategy("noise+verify", task=ARCTask(ARCConfig()))
    result = answers("noise+verify", {"k": 4, "scale": 1.0})
    plain = answers("noise", {"k": 4, "scale": 1.0})
    assert result.preds.shape == plain.preds.shape


def test_verify_strategies_run_on_maze_batches_with_padding_rows():
    from trmzoo_maze.generate import make_maze

    rng = np.random.default_rng(0)
    mazes = np.stack([make_maze(7, 4, rng)[0].reshape(-1) for _ in range(3)])
    inputs = torch.cat([torch.as_tensor(mazes, dtype=torch.int32), torch.zeros(1, 49, dtype=torch.int32)])
    batch = {"inputs": inputs, "labels": inputs.clone(), "puzzle_identifiers": torch.zeros(4, dtype=torch.int32)}
    model = tiny_model(vocab_size=6, seq_len=49, halting={"max_steps": 2}).eval()
    for name in ("noise+verify", "symmetry+verify"):  # the padding row (all zeros) is no maze: never verified
        result = answers(name, {"k": 2}, model=model, batch=batch, task=MazeTask(MazeConfig(size=7)))
        assert result.preds.shape == (4, 49) and result.steps.tolist() == [2] * 4


def test_bad_options_are_one_line_errors():
    with pytest.raises(RecipeError, match="--strategy-option of strategy 'noise': k: input should be greater than or equal to 1"):
        make_strategy("noise", {"k": 0}, task=SUDOKU4)
    with pytest.raises(RecipeError, match="wobble: extra inputs are not permitted"):
        make_strategy("depth", {"wobble": 1}, task=SUDOKU4)
    with pytest.raises(Exception, match="unknown strategy 'nosie'; did you mean noise"):
        make_strategy("nosie", task=SUDOKU4)


# -- compute counts ------------------------------------------------------------------------------------
STRATEGIES = [
    ("plain", {}), ("plain", {"early_exit": True}), ("depth", {"steps": 5, "stop": "stable"}),
    ("noise", {"k": 3, "scale": 0.5}), ("halt_first", {"k": 3, "scale": 0.5}),
    ("symmetry", {"k": 3, "inner": "halt_first", "inner_options": {"k": 2}}), ("symmetry+verify", {"k": 2}),
]


@pytest.mark.parametrize("name, options", STRATEGIES)
def test_the_compute_count_is_what_the_network_was_called_on(name, options):
    model, batch = sudoku_model(), sudoku_batch()
    heads, nets = [], []
    hooks = [model.lm_head.register_forward_hook(lambda m, args, out: heads.append(args[0].shape[0]))]
    hooks += [net.register_forward_hook(lambda m, args, out: nets.append(args[0].shape[0]))
              for net in (model.recursion.net, model.recursion.y_net) if net is not None]
    with torch.no_grad(), count_network_rows(model) as counted:
        result = make_strategy(name, options, task=SUDOKU4).run(model, batch)
    for hook in hooks:
        hook.remove()
    assert result.sample_steps == sum(heads)  # one head call per supervision step of every row
    assert counted.take() == sum(nets) > 0 and counted.take() == 0
    calls = model.config.recursion.H_cycles * (model.config.recursion.L_cycles + 1)
    assert sum(nets) == calls * result.sample_steps


# -- everywhere a user evaluates or solves ---------------------------------------------------------------
@pytest.fixture(scope="module")
def sudoku_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tts")
    data = root / "data"
    SudokuTask(SudokuConfig(box_rows=2, box_cols=2, num_train=5, num_test=12, givens=(6, 10))).build(data, progress=False)
    model = tiny_model(vocab_size=6, seq_len=16, num_puzzle_identifiers=1, halting={"max_steps": MAX_STEPS})
    model.provenance.task = {"name": "sudoku", "box_rows": 2, "box_cols": 2}
    return trmzoo.save_pretrained(model, root / "weights"), data


def test_evaluate_reports_strategy_and_spend(sudoku_run):
    weights, data = sudoku_run
    model, task = trmzoo.load(weights), SUDOKU4
    plain = evaluate(model, data, task, batch_size=5)
    assert plain["sample_steps"] == 12 * MAX_STEPS  # 3 batches of 5 rows, the last one's padding left out
    assert plain["uses_verify"] == 0.0
    noisy = trmzoo.evaluate(model, data, task, batch_size=5, strategy="noise", strategy_options={"k": 4})
    assert noisy["sample_steps"] == 4 * plain["sample_steps"] and noisy["network_rows"] == 4 * plain["network_rows"]
    assert trmzoo.evaluate(model, data, task, strategy="symmetry+verify")["uses_verify"] == 1.0
    with pytest.raises(RecipeError, match="early exit \\(--early-exit\\): the .noise. strategy has none"):
        evaluate(model, data, task, strategy="noise", early_exit=True)


def test_cli_eval_and_solve_take_a_strategy(sudoku_run):
    weights, data = sudoku_run
    runner = CliRunner()
    for batch_size in ("5", "256"):  # padded batches: the padding's share is left out
        result = runner.invoke(cli, ["eval", str(weights), "--data", str(data), "--batch-size", batch_size,
                                     "--strategy", "noise", "--strategy-option", "k=2", "--strategy-option", "scale=0.5",
                                     "--json"])
        assert result.exit_code == 0, result.output
        metrics = json.loads(result.output[result.output.index("{"):])
        assert metrics["strategy"] == "noise" and metrics["sample_steps"] == 2 * 12 * MAX_STEPS
    result = runner.invoke(cli, ["eval", str(weights), "--data", str(data), "--strategy", "symmetry+verify"])
    assert result.exit_code == 0 and "uses the task's verify check" in result.output, result.output
    result = runner.invoke(cli, ["eval", str(weights), "--data", str(data), "--strategy-option", "k"])
    assert result.exit_code == 1 and "--strategy-option 'k': expected KEY=VALUE" in result.output
    result = runner.invoke(cli, ["solve", str(weights), "1...|..3.|.4..|...2", "--strategy", "symmetry",
                                 "--strategy-option", "k=4", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["strategy"] == "symmetry"
    plain = CliRunner().invoke(cli, ["eval", str(weights), "--data", str(data), "--json"])
    assert plain.exit_code == 0 and json.loads(plain.output)["strategy"] == "plain"
    solution = trmzoo.solve(str(weights), "1...|..3.|.4..|...2", strategy="depth", strategy_options={"steps": 5})
    assert solution.steps == 5 and solution.tokens.shape == (16,)


def test_the_guide_example_strategy_runs():
    page = (Path(__file__).resolve().parents[1] / "docs" / "test-time-scaling.md").read_text()
    code = re.search(r"<!-- strategy-example -->\n```python\n(.*?)```", page, re.DOTALL).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/test-time-scaling.md", "exec"), namespace)
    registered = {}
    namespace["register_strategies"](register=lambda name, cls: registered.update({name: cls}))
    model, batch = sudoku_model(), sudoku_batch()
    strategy = registered["most_confident_step"](namespace["MostConfidentStepConfig"](steps=4), task=SUDOKU4)
    with torch.no_grad():
        result = strategy.run(model, batch)
        outputs = model.rollout(batch, steps=4)
    for b, step in enumerate(result.steps.tolist()):
        assert torch.equal(result.preds[b], outputs[step - 1].preds[b])
        assert result.q_halt[b] == max(out.q_halt[b] for out in outputs)
    assert result.sample_steps == 4 * 6


def test_a_trajectory_with_a_nan_score_never_wins():
    from trmzoo.core.trajectories import best_trajectory

    score = torch.tensor([0.2, float("nan"), float("nan"), 0.1])  # K=2 trajectories of B=2 samples
    assert best_trajectory(score, 2).tolist() == [0, 1]
