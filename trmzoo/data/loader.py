"""Batches from the on-disk format, with the official epoch semantics and an exact resume point.

Training: an epoch visits every group once in a random order; for each group one
random puzzle (augmented version) is drawn and its examples are packed into the
batch until it is full (the last puzzle is truncated); a final partial batch is
dropped. Everything is drawn from a Philox generator seeded by ``seed + epoch``,
so the batch sequence is a function of the seed and a position (epoch, batch),
which is all a checkpoint needs to resume. Each process takes its slice of the
global batch. An optional ``augment`` function transforms every global batch
afresh (on-the-fly symmetry augmentation), with a generator seeded by the seed and
the position, so it too resumes exactly.

Test: examples in order, the last batch padded (pad token, ignored labels, blank id).
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from trmzoo.core.supervision import IGNORE_LABEL
from trmzoo.data.format import DatasetMetadata, SplitArrays
from trmzoo.errors import DataError, RecipeError


def collate(metadata: DatasetMetadata, inputs, labels, puzzle_identifiers, size: int) -> dict[str, torch.Tensor]:
    """int32 tensors, ignored labels mapped to -100, padded up to ``size`` rows."""
    inputs = np.asarray(inputs, dtype=np.int32)
    labels = np.asarray(labels, dtype=np.int32)
    ids = np.asarray(puzzle_identifiers, dtype=np.int32)
    if metadata.ignore_label_id is not None:
        labels = np.where(labels == metadata.ignore_label_id, IGNORE_LABEL, labels)
    pad = size - len(ids)
    if pad > 0:
        inputs = np.pad(inputs, ((0, pad), (0, 0)), constant_values=metadata.pad_id)
        labels = np.pad(labels, ((0, pad), (0, 0)), constant_values=IGNORE_LABEL)
        ids = np.pad(ids, (0, pad), constant_values=metadata.blank_identifier_id)
    return {
        "inputs": torch.from_numpy(inputs), "labels": torch.from_numpy(labels),
        "puzzle_identifiers": torch.from_numpy(ids),
    }


Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
"""``(inputs, labels, rng) -> (inputs, labels)`` on raw stored rows ``[B, seq_len]``: one random
validity-preserving transform per row, the same for a row's inputs and labels."""


def check_batch_split(global_batch_size: int, world_size: int) -> None:
    """Each of the ``world_size`` processes takes an equal share of the global batch."""
    if global_batch_size % world_size:
        raise RecipeError(f"train.global_batch_size: {global_batch_size} is not divisible by the {world_size} processes")


class TrainBatches:
    """Endless training batches; ``position`` / ``seek`` give an exact resume point."""

    def __init__(
        self, metadata: DatasetMetadata, arrays: SplitArrays, *, global_batch_size: int, seed: int,
        rank: int = 0, world_size: int = 1, augment: Augment | None = None,
    ) -> None:
        check_batch_split(global_batch_size, world_size)
        self.metadata, self.arrays = metadata, arrays
        self.global_batch_size = global_batch_size
        self.local_batch_size = global_batch_size // world_size
        self.seed, self.rank = seed, rank
        self.augment = augment
        self.epoch, self.batch = 0, 0
        self._plan: list[tuple[np.ndarray, np.ndarray]] | None = self._epoch_plan(0)  # a split too small fails now

    def _epoch_plan(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """All full batches of one epoch as (example indices, puzzle indices)."""
        a = self.arrays
        rng = np.random.Generator(np.random.Philox(seed=self.seed + epoch + 1))
        order = rng.permutation(len(a.group_indices) - 1)
        batches, start = [], 0
        while start < len(order):
            examples, puzzles, size = [], [], 0
            while start < len(order) and size < self.global_batch_size:
                group = order[start]
                puzzle = int(rng.integers(a.group_indices[group], a.group_indices[group + 1]))
                start += 1
                first, count = int(a.puzzle_indices[puzzle]), int(a.puzzle_indices[puzzle + 1] - a.puzzle_indices[puzzle])
                take = min(count, self.global_batch_size - size)
                examples.append(first + rng.choice(count, take, replace=False))
                puzzles.append(np.full(take, puzzle, dtype=np.int64))
                size += take
            if size < self.global_batch_size:
                break
            batches.append((np.concatenate(examples), np.concatenate(puzzles)))
        if not batches:
            raise DataError(f"the training split has fewer examples in an epoch ({size}) than one global batch "
                            f"(train.global_batch_size {self.global_batch_size}); lower it, or build more puzzles")
        return batches

    @property
    def position(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

    def seek(self, position: dict[str, int]) -> None:
        if position["epoch"] != self.epoch:  # the plan made for this epoch still holds
            self._plan = None
        self.epoch, self.batch = position["epoch"], position["batch"]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._plan is None:
            self._plan = self._epoch_plan(self.epoch)
        if self.batch >= len(self._plan):
            self.epoch, self.batch = self.epoch + 1, 0
            self._plan = self._epoch_plan(self.epoch)
        examples, puzzles = self._plan[self.batch]
        a = self.arrays
        inputs, labels = a.inputs[examples], a.labels[examples]
        if self.augment is not None:  # the whole global batch, so every process count draws the same
            rng = np.random.default_rng([self.seed, self.epoch, self.batch])
            inputs, labels = self.augment(inputs, labels, rng)
        self.batch += 1
        lo, hi = self.rank * self.local_batch_size, (self.rank + 1) * self.local_batch_size
        return collate(self.metadata, inputs[lo:hi], labels[lo:hi], a.puzzle_identifiers[puzzles[lo:hi]],
                       self.local_batch_size)


def eval_batches(
    metadata: DatasetMetadata, arrays: SplitArrays, *, batch_size: int, rows: np.ndarray | None = None,
    rank: int = 0, world_size: int = 1,
) -> Iterator[tuple[dict[str, torch.Tensor], int]]:
    """Test examples in order (all, or the example indices ``rows``) as (batch, number of real
    rows); the last batch is padded. A split smaller than one batch is one batch of its own size:
    padding 8 puzzles to a batch of 768 would cost the compute of 768.

    With several processes each global batch of ``batch_size`` (rounded up to a multiple
    of ``world_size``) is cut into consecutive slices, one per rank, so the slices of all
    ranks, taken in rank order, are the examples in order.
    """
    rows = np.arange(len(arrays.inputs)) if rows is None else np.asarray(rows)
    total = len(rows)
    example_puzzle = np.repeat(np.arange(len(arrays.puzzle_identifiers)), np.diff(arrays.puzzle_indices))
    local = -(-max(1, min(batch_size, total)) // world_size)
    for start in range(0, total, local * world_size):
        lo = min(start + rank * local, total)
        hi = min(lo + local, total)
        picked = rows[lo:hi]
        yield collate(metadata, arrays.inputs[picked], arrays.labels[picked],
                      arrays.puzzle_identifiers[example_puzzle[picked]], local), hi - lo
