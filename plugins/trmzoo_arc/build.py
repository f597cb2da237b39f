"""The ARC dataset builder, byte-identical to the official ``build_arc_dataset.py``.

Identical means the same random draws in the same order from a legacy numpy
``RandomState(seed)``: one shuffle per subset, then per puzzle a dihedral id and a
colour permutation per augmentation try, then, split by split, per puzzle version
the example kept in place and two offsets for every translated example. Puzzle
identifiers, and so the rows of a trained model's puzzle table, follow from that.

Unlike the official builder, augmented versions are kept as (dihedral id, colour
map) and re-drawn while writing straight into memory-mapped ``.npy`` files, so a
full ARC build needs little memory.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trmzoo.data import DatasetMetadata, write_identifiers
from trmzoo.errors import DataError

from trmzoo_arc.grids import IDENTITY, SIZE, VOCAB, augment_grid, check_grid, grid_hash, to_canvas, version_name
from trmzoo_arc.sources import load_subset

RETRIES_PER_AUG = 5  # the official builder gives up after 5 * num_aug tries
BLANK = "<blank>"
log = logging.getLogger("trmzoo.arc")


@dataclass
class Group:
    """One original task, its pairs by split, and its versions (the original first)."""

    task_id: str
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]]
    versions: list[tuple[str, int, np.ndarray]]  # identifier name, dihedral id, colour map


def split_pairs(puzzle: object, where: str, to_test: bool) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Demonstration pairs go to train; test pairs go to test for a test subset, to train otherwise.
    Pairs keep the order of the task's JSON keys, as the official builder reads them."""
    if not isinstance(puzzle, dict):
        raise DataError(f"{where}: expected an object with train and test pairs")
    splits: dict[str, list] = {"train": [], "test": []} if to_test else {"train": []}
    for kind, pairs in puzzle.items():
        if kind not in ("train", "test"):
            continue
        if not isinstance(pairs, list):
            raise DataError(f"{where}.{kind}: expected a list of pairs")
        split = "test" if to_test and kind == "test" else "train"
        for i, pair in enumerate(pairs):
            if not isinstance(pair, dict) or "input" not in pair or "output" not in pair:
                raise DataError(f"{where}.{kind}[{i}]: expected an object with input and output")
            splits[split].append((check_grid(pair["input"], f"{where}.{kind}[{i}].input", DataError),
                                  check_grid(pair["output"], f"{where}.{kind}[{i}].output", DataError)))
    for split, pairs in splits.items():
        if not pairs:
            raise DataError(f"{where}: no pairs for the {split} split")
    return splits


def _signature(pairs: list[tuple[np.ndarray, np.ndarray]], tid: int, mapping: np.ndarray) -> tuple[str, ...]:
    """What makes two versions the same puzzle: the multiset of their transformed pairs."""
    return tuple(sorted(
        f"{grid_hash(augment_grid(inp, tid, mapping))}|{grid_hash(augment_grid(out, tid, mapping))}"
        for inp, out in pairs
    ))


def plan_versions(task_id: str, pairs: list, num_aug: int, rng: np.random.RandomState) -> list:
    """Up to ``num_aug`` distinct random (dihedral, colour map) versions after the original."""
    versions = [(task_id, 0, IDENTITY)]
    if num_aug <= 0:
        return versions
    seen = {_signature(pairs, 0, IDENTITY)}
    for _ in range(RETRIES_PER_AUG * num_aug):
        tid = int(rng.randint(0, 8))
        mapping = np.concatenate([IDENTITY[:1], rng.permutation(IDENTITY[1:])])
        key = _signature(pairs, tid, mapping)
        if key not in seen:
            seen.add(key)
            versions.append((version_name(task_id, tid, mapping), tid, mapping))
        if len(versions) > num_aug:
            break
    return versions


def _write_split(folder: Path, split: str, groups: list[Group], ids: dict[str, int], num_ids: int,
                 rng: np.random.RandomState, progress: bool) -> None:
    members = [g for g in groups if split in g.pairs]
    rows = sum(len(g.pairs[split]) * len(g.versions) for g in members)
    folder.mkdir(parents=True)
    inputs = np.lib.format.open_memmap(folder / "all__inputs.npy", "w+", np.uint8, (rows, SIZE * SIZE))
    labels = np.lib.format.open_memmap(folder / "all__labels.npy", "w+", np.uint8, (rows, SIZE * SIZE))
    identifiers, puzzle_indices, group_indices = [], [0], [0]
    translate = split == "train"
    row = 0
    for group in tqdm(members, desc=f"write {split}", unit="task", disable=not progress):
        pairs = group.pairs[split]
        for name, tid, mapping in group.versions:
            in_place = rng.randint(0, len(pairs))  # drawn for every version, even without translation
            for k, (inp, out) in enumerate(pairs):
                inp, out = augment_grid(inp, tid, mapping), augment_grid(out, tid, mapping)
                top = left = 0
                if translate and k != in_place:
                    top = rng.randint(0, SIZE - max(inp.shape[0], out.shape[0]) + 1)
                    left = rng.randint(0, SIZE - max(inp.shape[1], out.shape[1]) + 1)
                inputs[row] = to_canvas(inp, top, left)
                labels[row] = to_canvas(out, top, left)
                row += 1
            puzzle_indices.append(row)
            identifiers.append(ids[name])
        group_indices.append(len(identifiers))
    inputs.flush()
    labels.flush()
    del inputs, labels
    for name, values in (("puzzle_identifiers", identifiers), ("puzzle_indices", puzzle_indices),
                         ("group_indices", group_indices)):
        np.save(folder / f"all__{name}.npy", np.array(values, dtype=np.int32))
    metadata = DatasetMetadata(
        pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=VOCAB, seq_len=SIZE * SIZE,
        num_puzzle_identifiers=num_ids, total_groups=len(members), mean_puzzle_examples=rows / len(identifiers),
        total_puzzles=len(identifiers), sets=["all"],
    )
    (folder / "dataset.json").write_text(json.dumps(metadata.model_dump()))


def build_arc(config, out_dir: str | Path, *, progress: bool = True) -> None:
    """Build ``out_dir`` (train/, test/, identifiers.json, test_puzzles.json) from ``config``."""
    out_dir = Path(out_dir)
    rng = np.random.RandomState(config.seed)
    test_subsets = {config.test_set_name, config.test_set_name2}
    groups: list[Group] = []
    test_puzzles: dict[str, dict] = {}
    for subset in config.subsets:
        puzzles, where = load_subset(config.source, subset)
        order = list(puzzles.items())
        rng.shuffle(order)
        to_test = subset in test_subsets
        for task_id, puzzle in tqdm(order, desc=f"augment {subset}", unit="task", disable=not progress):
            pairs = split_pairs(puzzle, f"{where}: {task_id}", to_test)
            if to_test:
                test_puzzles[task_id] = puzzle
            every = [pair for split in pairs.values() for pair in split]
            groups.append(Group(task_id, pairs, plan_versions(task_id, every, config.num_aug, rng)))
    if not groups:
        raise DataError("task.subsets: no puzzles to build")
    short = sum(len(g.versions) <= config.num_aug for g in groups)
    if short:
        log.info("%d of %d tasks have fewer than %d distinct augmentations", short, len(groups), config.num_aug)

    splits = ["train", "test"] if test_puzzles else ["train"]
    if not test_puzzles:  # the official builder's train-only build, which no run can evaluate
        warnings.warn(f"no test split: task.test_set_name {config.test_set_name!r} (and test_set_name2 "
                      f"{config.test_set_name2!r}) names none of the subsets built ({', '.join(config.subsets)}); "
                      "a run needs one", stacklevel=2)
    names = [BLANK] * config.puzzle_identifiers_start
    ids: dict[str, int] = {}
    for split in splits:
        for group in groups:
            for name, _, _ in group.versions if split in group.pairs else ():
                if name not in ids:
                    ids[name] = len(names)
                    names.append(name)

    for split in splits:
        _write_split(out_dir / split, split, groups, ids, len(names), rng, progress)
    write_identifiers(out_dir, names)
    (out_dir / "test_puzzles.json").write_text(json.dumps(test_puzzles))
