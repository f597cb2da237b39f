"""The official on-disk dataset layout, read and written byte-compatibly.

A dataset folder holds one folder per split (``train``, ``test``) with
``dataset.json`` and the arrays ``all__{inputs,labels,puzzle_identifiers,
puzzle_indices,group_indices}.npy``, plus ``identifiers.json`` (puzzle id -> name)
at the top. Examples belong to puzzles (``puzzle_indices`` are example offsets),
puzzles to groups (``group_indices`` are puzzle offsets; a group is one original
puzzle with all its augmented versions).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from pydantic import BaseModel

from trmzoo.core.model import RecursiveModel
from trmzoo.errors import DataError
from trmzoo.files import build_dir, check_output_dir

ARRAY_NAMES = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
IDENTIFIERS_FILE = "identifiers.json"


class DatasetMetadata(BaseModel):
    """``dataset.json``, field order as the official builders write it."""

    pad_id: int = 0
    ignore_label_id: int | None = 0
    blank_identifier_id: int = 0
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    total_groups: int
    mean_puzzle_examples: float
    total_puzzles: int
    sets: list[str] = ["all"]


@dataclass
class SplitArrays:
    inputs: np.ndarray  # [examples, seq_len] uint8 tokens
    labels: np.ndarray  # [examples, seq_len]; ignore_label_id marks unsupervised cells
    puzzle_identifiers: np.ndarray  # int32 [puzzles]
    puzzle_indices: np.ndarray  # int32 [puzzles + 1], example offsets
    group_indices: np.ndarray  # int32 [groups + 1], puzzle offsets

    def check(self, where: str) -> None:
        if self.inputs.shape != self.labels.shape:
            raise DataError(f"{where}: inputs {self.inputs.shape} and labels {self.labels.shape} differ")
        if self.puzzle_indices[-1] != len(self.inputs) or self.group_indices[-1] != len(self.puzzle_identifiers):
            raise DataError(f"{where}: puzzle or group offsets do not cover the arrays")


def write_split(root: str | Path, split: str, arrays: SplitArrays, metadata: DatasetMetadata) -> None:
    """Write one split; arrays keep the dtypes given (the official builders' dtypes)."""
    arrays.check(f"{root}/{split}")
    folder = Path(root) / split
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "dataset.json", "w") as f:
        json.dump(metadata.model_dump(), f)
    for name in ARRAY_NAMES:
        np.save(folder / f"all__{name}.npy", getattr(arrays, name))


def is_dataset_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a dataset in this format (a split's ``dataset.json`` or ``identifiers.json``)."""
    path = Path(path)
    return (path / IDENTIFIERS_FILE).exists() or any(
        (split / "dataset.json").exists() for split in path.iterdir() if split.is_dir())


def build_dataset(out_dir: str | Path, build: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Run a task's ``build(folder)`` so that ``out_dir`` gets the whole dataset or nothing.

    An existing dataset is replaced only with ``overwrite``, and only once the new one is
    complete; a failed or killed build leaves ``out_dir`` as it was.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, what="dataset", overwrite=overwrite, is_replaceable=is_dataset_dir)
    build_dir(out_dir, build, what="dataset")
    return out_dir


def write_identifiers(root: str | Path, identifiers: list[str]) -> None:
    with open(Path(root) / IDENTIFIERS_FILE, "w") as f:
        json.dump(identifiers, f)


def read_split(root: str | Path, split: str, *, mmap: bool = False) -> tuple[DatasetMetadata, SplitArrays]:
    folder = Path(root) / split
    meta_path = folder / "dataset.json"
    if not meta_path.exists():
        raise DataError(f"{folder}: no dataset.json; build the data first (`trmzoo data build TASK --out {root}`)")
    try:
        metadata = DatasetMetadata.model_validate_json(meta_path.read_text())
        arrays = SplitArrays(**{
            name: np.load(folder / f"all__{name}.npy", mmap_mode="r" if mmap else None) for name in ARRAY_NAMES
        })
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder}: unreadable dataset ({exc})") from None
    arrays.check(str(folder))
    return metadata, arrays


def read_identifiers(root: str | Path) -> list[str]:
    path = Path(root) / IDENTIFIERS_FILE
    if not path.exists():
        raise DataError(f"{root}: no {IDENTIFIERS_FILE}")
    return json.loads(path.read_text())


def embedding_fingerprint(identifiers: list[str]) -> str:
    """Hash of the ordered puzzle identifiers: all a per-puzzle embedding table depends on."""
    digest = hashlib.sha256("\n".join(identifiers).encode()).hexdigest()
    return f"sha256:{digest[:16]}"


def build_fingerprint(root: str | Path) -> str:
    """Hash of every array and metadata file of a build, in a fixed order."""
    digest = hashlib.sha256()
    root = Path(root)
    files = [root / IDENTIFIERS_FILE]
    for split in sorted(p.name for p in root.iterdir() if (p / "dataset.json").exists()):
        files.append(root / split / "dataset.json")
        files.extend(root / split / f"all__{name}.npy" for name in ARRAY_NAMES)
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()[:16]}"


def check_data_compatible(model: RecursiveModel, data_dir: str | Path) -> None:
    """Refuse a dataset the model cannot be evaluated or fine-tuned on as is.

    Checks vocabulary and sequence length, and for a per-puzzle embedding table the
    identifiers of the build (their ``embedding_fingerprint``): a table row means a
    puzzle only in the build it was trained with.
    """
    provenance = model.provenance
    name = provenance.pretrained or provenance.architecture or "model"
    if provenance.eval_refusal:
        raise DataError(f"{name}: {provenance.eval_refusal}")
    data_dir = Path(data_dir)
    how = provenance.data.build or "rebuild it with the recipe the model was trained with"
    found = [data_dir / split / "dataset.json" for split in ("test", "train")]
    meta_path = next((path for path in found if path.exists()), None)
    if meta_path is None:
        raise DataError(f"{data_dir}: no test/dataset.json or train/dataset.json; not a built dataset")
    data = DatasetMetadata.model_validate_json(meta_path.read_text())
    config = model.config
    for field in ("vocab_size", "seq_len"):
        if getattr(data, field) != getattr(config, field):
            raise DataError(f"{meta_path}: {field} {getattr(data, field)} does not match the model's "
                            f"{getattr(config, field)}")
    if model.puzzle_emb is None:
        return
    identifiers = read_identifiers(data_dir)
    expected = provenance.data.embedding_fingerprint
    actual = embedding_fingerprint(identifiers)
    if expected and expected != actual:
        raise DataError(f"{data_dir}: puzzle identifiers {actual} are not the build {expected} that {name}'s "
                        f"puzzle table was trained on; {how}")
    if len(identifiers) != config.num_puzzle_identifiers:
        raise DataError(f"{data_dir}: {len(identifiers)} puzzle identifiers, {name}'s puzzle table has "
                        f"{config.num_puzzle_identifiers} rows; {how}")
