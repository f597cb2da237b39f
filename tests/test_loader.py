"""The training loader's epoch semantics and resume point, and the padded test batches."""

import numpy as np
import pytest
import torch

from trmzoo.data.format import DatasetMetadata, SplitArrays
from trmzoo.data.loader import TrainBatches, eval_batches
from trmzoo.errors import DataError, RecipeError


def dataset(puzzles_per_group: list[int], examples_per_puzzle, *, ignore_label_id=0):
    """A dataset whose example ``i`` has inputs ``[i, puzzle]`` (offset by 1) and labels ``[i, 0]``,
    so every row of a batch says where it came from."""
    group_indices = np.concatenate([[0], np.cumsum(puzzles_per_group)]).astype(np.int32)
    counts = [examples_per_puzzle(p) for p in range(group_indices[-1])]
    puzzle_indices = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    n = int(puzzle_indices[-1])
    puzzle_of = np.repeat(np.arange(len(counts)), counts)
    inputs = np.stack([np.arange(n) + 1, puzzle_of + 1], axis=1).astype(np.int32)
    labels = np.stack([np.arange(n) + 1, np.zeros(n)], axis=1).astype(np.int32)
    arrays = SplitArrays(inputs, labels, (np.arange(len(counts)) * 10 + 7).astype(np.int32), puzzle_indices, group_indices)
    meta = DatasetMetadata(pad_id=0, ignore_label_id=ignore_label_id, blank_identifier_id=0, vocab_size=n + 1,
                           seq_len=2, num_puzzle_identifiers=10 * len(counts) + 8, total_groups=len(puzzles_per_group),
                           mean_puzzle_examples=float(np.mean(counts)), total_puzzles=len(counts))
    return meta, arrays


def rows(batch):
    """(example index, puzzle index) of every row."""
    inputs = batch["inputs"].numpy() - 1
    return [tuple(r) for r in inputs]


def group_of(arrays, puzzle):
    return int(np.searchsorted(arrays.group_indices, puzzle, side="right") - 1)


def test_epoch_visits_every_group_once_with_one_random_version():
    meta, arrays = dataset([3, 1, 2, 3, 1, 2, 3], lambda p: 2)
    loader = TrainBatches(meta, arrays, global_batch_size=1, seed=5)
    seen = {g: set() for g in range(7)}
    for _ in range(40):
        groups = []
        for _ in range(7):
            (example, puzzle), = rows(next(loader))
            assert arrays.puzzle_indices[puzzle] <= example < arrays.puzzle_indices[puzzle + 1]
            groups.append(group_of(arrays, puzzle))
            seen[groups[-1]].add(puzzle)
        assert sorted(groups) == list(range(7))  # each group once per epoch
    assert loader.position == {"epoch": 39, "batch": 7}
    for g in range(7):  # over many epochs every version of a group is drawn
        assert seen[g] == set(range(arrays.group_indices[g], arrays.group_indices[g + 1]))


def test_batches_packed_with_truncation_and_partial_batch_dropped():
    # 5 groups of one puzzle with 3 examples each, batch 4: [3 + 1 truncated] [3 + 1] and a dropped [3]
    meta, arrays = dataset([1] * 5, lambda p: 3)
    loader = TrainBatches(meta, arrays, global_batch_size=4, seed=0)
    epoch_puzzles = []
    for _ in range(2):
        batch = rows(next(loader))
        assert len(batch) == 4
        whole = [e for e, p in batch[:3]]
        first_puzzle = batch[0][1]
        assert {p for _, p in batch[:3]} == {first_puzzle}
        assert sorted(whole) == list(range(3 * first_puzzle, 3 * first_puzzle + 3))  # all its examples
        assert batch[3][1] != first_puzzle  # the next puzzle, cut after one example
        epoch_puzzles += [first_puzzle, batch[3][1]]
    assert len(set(epoch_puzzles)) == 4
    assert loader.position == {"epoch": 0, "batch": 2}
    next(loader)  # the third batch would be partial: a new epoch starts instead
    assert loader.position == {"epoch": 1, "batch": 1}


def test_same_seed_same_stream_and_seek_reproduces_it():
    meta, arrays = dataset([2, 1, 3, 1, 2, 2], lambda p: 1 + p % 3)
    make = lambda seed: TrainBatches(meta, arrays, global_batch_size=4, seed=seed)  # noqa: E731
    loader = make(3)
    stream, positions = [], []
    for _ in range(12):  # several epochs
        positions.append(loader.position)
        stream.append(next(loader))
    again = make(3)
    for batch in stream:
        assert all(torch.equal(batch[k], v) for k, v in next(again).items())
    other = make(4)
    assert any(not torch.equal(b["inputs"], next(other)["inputs"]) for b in stream)
    for i in (0, 5, 9):
        resumed = make(3)
        resumed.seek(positions[i])
        for batch in stream[i:]:
            assert all(torch.equal(batch[k], v) for k, v in next(resumed).items())


def test_process_slices_make_the_global_batch():
    meta, arrays = dataset([1, 2, 1, 3, 1, 1, 2, 1], lambda p: 1 + p % 2)
    whole = TrainBatches(meta, arrays, global_batch_size=6, seed=1)
    parts = [TrainBatches(meta, arrays, global_batch_size=6, seed=1, rank=r, world_size=3) for r in range(3)]
    for _ in range(8):
        batch = next(whole)
        pieces = [next(p) for p in parts]
        for key in batch:
            assert torch.equal(batch[key], torch.cat([p[key] for p in pieces]))
    with pytest.raises(RecipeError, match="train.global_batch_size: 6 is not divisible by the 4 processes"):
        TrainBatches(meta, arrays, global_batch_size=6, seed=1, world_size=4)


def test_dataset_smaller_than_a_batch_is_a_data_error():
    meta, arrays = dataset([1, 1], lambda p: 1)
    with pytest.raises(DataError, match="train.global_batch_size 3"):
        next(TrainBatches(meta, arrays, global_batch_size=3, seed=0))


def test_train_batches_map_ignored_labels_and_puzzle_ids():
    meta, arrays = dataset([1, 1], lambda p: 2)
    batch = next(TrainBatches(meta, arrays, global_batch_size=4, seed=0))
    assert batch["inputs"].dtype == batch["labels"].dtype == batch["puzzle_identifiers"].dtype == torch.int32
    assert (batch["labels"][:, 1] == -100).all()  # ignore_label_id 0 becomes -100
    assert torch.equal(batch["labels"][:, 0], batch["inputs"][:, 0])
    assert batch["puzzle_identifiers"].tolist() == [10 * (p - 1) + 7 for p in batch["inputs"][:, 1].tolist()]


def test_eval_batches_in_order_with_padding():
    meta, arrays = dataset([1, 1, 1], lambda p: 3)  # 9 examples
    meta = meta.model_copy(update={"pad_id": 2, "blank_identifier_id": 5})
    batches = list(eval_batches(meta, arrays, batch_size=4))
    assert [real for _, real in batches] == [4, 4, 1]
    order = torch.cat([b["inputs"][:real, 0] for b, real in batches]) - 1
    assert order.tolist() == list(range(9))
    last, _ = batches[-1]
    assert last["inputs"][1:].eq(2).all()
    assert last["labels"][1:].eq(-100).all()
    assert last["puzzle_identifiers"][1:].tolist() == [5, 5, 5]
    assert last["puzzle_identifiers"][0] == 27  # example 8 belongs to puzzle 2
    assert [r for _, r in eval_batches(meta, arrays, batch_size=4, rows=np.arange(5))] == [4, 1]


@pytest.mark.parametrize("world_size, rows_per_rank", [(1, 5), (2, 3)])
def test_a_split_smaller_than_a_batch_is_not_padded_to_the_batch(world_size, rows_per_rank):
    meta, arrays = dataset([1], lambda p: 5)  # 5 examples, batch 768
    per_rank = [list(eval_batches(meta, arrays, batch_size=768, rank=r, world_size=world_size)) for r in range(world_size)]
    assert [[(b["inputs"].shape[0], real) for b, real in batches] for batches in per_rank] == \
        [[(rows_per_rank, min(rows_per_rank, 5 - r * rows_per_rank))] for r in range(world_size)]


@pytest.mark.parametrize("batch_size", [4, 5])
def test_eval_slices_of_all_ranks_are_the_examples_in_order(batch_size):
    meta, arrays = dataset([1] * 11, lambda p: 1)
    per_rank = [list(eval_batches(meta, arrays, batch_size=batch_size, rank=r, world_size=2)) for r in range(2)]
    assert len(per_rank[0]) == len(per_rank[1])
    seen = []
    for step in zip(*per_rank):
        for batch, real in step:
            assert batch["inputs"].shape[0] == -(-batch_size // 2)
            seen += (batch["inputs"][:real, 0] - 1).tolist()
    assert seen == list(range(11))
