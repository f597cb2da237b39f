"""The official on-disk dataset layout, read and written byte-compatibly.

A dataset folder holds one folder per split (``train``, ``test``) with
``dataset.json`` and the arrays ``all__{inputs,labels,puzzle_identifiers,
puzzle_indices,group_indices}.npy``, plus ``identifiers.json`` (puzzle id -> name)
and, for datasets trmzoo built, ``task.json`` (the task's build options) at the top. Examples belong to puzzles (``puzzle_indices`` are example offsets),
puzzles to groups (``group_indices`` are puzzle offsets; a group is one original
puzzle with all its augmented versions).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator

from trmzoo.core.model import RecursiveModel
from trmzoo.core.config import validation_summary
from trmzoo.errors import DataError
from trmzoo.files import build_dir, check_output_dir

ARRAY_NAMES = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
IDENTIFIERS_FILE = "identifiers.json"
TASK_FILE = "task.json"
ARRAY_NDIM = {"inputs": 2, "labels": 2, "puzzle_identifiers": 1, "puzzle_indices": 1, "group_indices": 1}


class DatasetMetadata(BaseModel):
    """``dataset.json``, field order as the official builders write it."""

    pad_id: int = Field(0, ge=0)
    ignore_label_id: int | None = Field(0, ge=0)
    blank_identifier_id: int = Field(0, ge=0)
    vocab_size: int = Field(ge=1)
    seq_len: int = Field(ge=1)
    num_puzzle_identifiers: int = Field(ge=1)
    total_groups: int = Field(ge=0)
    mean_puzzle_examples: float = Field(ge=0)
    total_puzzles: int = Field(ge=0)
    sets: list[str] = ["all"]
    """The sets of examples in a split; the official builders write one, ``all`` (``all__inputs.npy``...),
    the only one trmzoo reads."""

    @field_validator("sets")
    @classmethod
    def _one_set(cls, sets: list[str]) -> list[str]:
        if sets != ["all"]:
            raise ValueError(f"{sets}: trmzoo reads one set, ['all'] (its files all__inputs.npy, ...)")
        return sets


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
        for name, covered in (("puzzle_indices", len(self.inputs)), ("group_indices", len(self.puzzle_identifiers))):
            offsets = np.asarray(getattr(self, name))
            if len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != covered or np.any(np.diff(offsets) < 0):
                raise DataError(f"{where}/all__{name}.npy: offsets must rise from 0 to {covered}")
        if len(self.puzzle_indices) != len(self.puzzle_identifiers) + 1:
            raise DataError(f"{where}/all__puzzle_indices.npy: {len(self.puzzle_indices)} offsets for "
                            f"{len(self.puzzle_identifiers)} puzzles")

    def check_values(self, metadata: "DatasetMetadata", where: str) -> None:
        """Every token within the vocabulary and every puzzle id within the embedding table that
        ``metadata`` (and so a model built from it) declares, and rows of ``seq_len`` tokens."""
        if self.inputs.shape[1] != metadata.seq_len:
            raise DataError(f"{where}/all__inputs.npy: rows of {self.inputs.shape[1]} tokens, dataset.json "
                            f"says seq_len {metadata.seq_len}")
        limits = {"inputs": metadata.vocab_size, "labels": metadata.vocab_size,
                  "puzzle_identifiers": metadata.num_puzzle_identifiers}
        for name, limit in limits.items():
            values = getattr(self, name)
            if len(values) and (values.min() < 0 or values.max() >= limit):
                what = "token" if name != "puzzle_identifiers" else "puzzle id"
                bad = values.max() if values.max() >= limit else values.min()
                bound = "vocab_size" if name != "puzzle_identifiers" else "num_puzzle_identifiers"
                raise DataError(f"{where}/all__{name}.npy: {what} {int(bad)} outside 0..{limit - 1} "
                                f"(dataset.json {bound} {limit})")


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
    """Whether ``path`` holds a dataset in this format (a split's ``dataset.json``; a weight folder's
    ``identifiers.json`` alone does not make one)."""
    return any((split / "dataset.json").exists() for split in Path(path).iterdir() if split.is_dir())


def build_dataset(out_dir: str | Path, build: Callable[[Path], None], *, overwrite: bool = False,
                  task_config: BaseModel | None = None) -> Path:
    """Run a task's ``build(folder)`` so that ``out_dir`` gets the whole dataset or nothing.

    An existing dataset is replaced only with ``overwrite``, and only once the new one is
    complete; a failed or killed build leaves ``out_dir`` as it was. ``task_config`` (the
    task's build options) is recorded as ``task.json``.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, what="dataset", overwrite=overwrite, is_replaceable=is_dataset_dir)

    def build_and_record(folder: Path) -> None:
        build(folder)
        if task_config is not None:
            write_task(folder, task_config)

    build_dir(out_dir, build_and_record, what="dataset")
    return out_dir


def write_task(root: str | Path, task_config: BaseModel) -> None:
    """Record which task (and build options) a dataset was built by, so training another task on it is refused."""
    (Path(root) / TASK_FILE).write_text(json.dumps(task_config.model_dump(mode="json")) + "\n")


def read_task(root: str | Path) -> dict[str, Any] | None:
    """The task config a dataset was built with (its ``task.json``), or None when it has none (official builds)."""
    path = Path(root) / TASK_FILE
    if not path.is_file():
        return None
    try:
        task = json.loads(path.read_text())
        name = task.get("name")
    except (OSError, ValueError, AttributeError) as exc:
        raise DataError(f"{path}: unreadable ({type(exc).__name__}); rebuild the dataset") from None
    if not isinstance(name, str):
        raise DataError(f"{path}: no task name; rebuild the dataset")
    return task


def dataset_task(root: str | Path) -> str | None:
    """The task a dataset was built by, or None when it does not say (official builds)."""
    task = read_task(root)
    return None if task is None else task["name"]


def check_built_with(root: str | Path, task_config: BaseModel) -> None:
    """Refuse a dataset built with other options than the recipe's ``task`` section (those its
    ``task.json`` records), which a run would train on while recording the recipe's."""
    built, wanted = read_task(root) or {}, task_config.model_dump(mode="json")
    differ = [key for key in built if key in wanted and not _same_option(built[key], wanted[key])]
    if differ:
        said = ", ".join(f"task.{k} {_as_yaml(built[k])} (recipe: {_as_yaml(wanted[k])})" for k in differ[:4])
        flags = " ".join(f"--set task.{k}={_as_yaml(built[k])}" for k in differ)
        raise DataError(f"{root}: built with other task options ({TASK_FILE}): {said}{' ...' if len(differ) > 4 else ''}; "
                        f"train on it with {flags}, or point data.dir at a new folder")


def _same_option(built: Any, wanted: Any) -> bool:
    """Equal values, or two spellings of one existing path (``src``, ``src/``, its absolute path)."""
    if built == wanted:
        return True
    try:
        return isinstance(built, str) and isinstance(wanted, str) and os.path.samefile(built, wanted)
    except OSError:  # either names nothing here
        return False


def _as_yaml(value: Any) -> str:
    """A JSON value as a ``--set`` takes it (YAML flow style, strings bare)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def check_dataset_task(root: str | Path, task: str, whose: str) -> None:
    """Refuse a dataset another task built (``whose`` says where ``task`` came from, e.g. ``recipe task.name``)."""
    built_by = dataset_task(root)
    if built_by is not None and built_by != task:
        raise DataError(f"{root}: a {built_by} dataset ({TASK_FILE}), but the {whose} is {task}; "
                        "point at a dataset of that task")


def write_identifiers(root: str | Path, identifiers: list[str]) -> None:
    with open(Path(root) / IDENTIFIERS_FILE, "w") as f:
        json.dump(identifiers, f)


def read_split(root: str | Path, split: str, *, mmap: bool = False,
               check_values: bool = True) -> tuple[DatasetMetadata, SplitArrays]:
    """A split's metadata and arrays, checked against each other; ``check_values=False`` skips the scan
    of every token and id (with ``mmap``, only the index arrays are then read)."""
    folder = Path(root) / split
    meta_path = folder / "dataset.json"
    if not meta_path.exists():
        raise DataError(f"{folder}: no dataset.json; build the data first (`trmzoo data build TASK --out {root}`)")
    metadata = read_metadata(meta_path)
    arrays = SplitArrays(**{name: _read_array(folder / f"all__{name}.npy", ARRAY_NDIM[name], mmap)
                            for name in ARRAY_NAMES})
    arrays.check(str(folder))
    if check_values:
        arrays.check_values(metadata, str(folder))
    return metadata, arrays


def read_metadata(path: Path) -> DatasetMetadata:
    """A split's ``dataset.json``; any problem is one line naming the file and the field."""
    try:
        return DatasetMetadata.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    except ValidationError as exc:
        raise DataError(f"{path}: {validation_summary(exc)}") from None


def _read_array(path: Path, ndim: int, mmap: bool) -> np.ndarray:
    """One ``.npy`` of integers with ``ndim`` dimensions (never a pickle); any problem names the file."""
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: missing; rebuild the dataset") from None
    except (OSError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "pickle" in reason:
            reason = "not a numeric array; trmzoo never unpickles data"
        raise DataError(f"{path}: unreadable .npy ({reason})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iu":
        raise DataError(f"{path}: dtype {getattr(array, 'dtype', type(array).__name__)}, expected integers")
    if array.ndim != ndim:
        raise DataError(f"{path}: shape {array.shape}, expected {ndim} dimension{'s' if ndim > 1 else ''}")
    return array


def read_identifiers(root: str | Path) -> list[str]:
    """A dataset's (or weight folder's) puzzle identifiers: a JSON list of names, row order."""
    path = Path(root) / IDENTIFIERS_FILE
    if not path.exists():
        raise DataError(f"{root}: no {IDENTIFIERS_FILE}")
    try:
        identifiers = json.loads(path.read_bytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise DataError(f"{path}: not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(identifiers, list) or not all(isinstance(name, str) for name in identifiers):
        raise DataError(f"{path}: not a list of puzzle names")
    return identifiers


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
    needs = f"; {name} needs: {provenance.data.build}" if provenance.data.build else ""
    found = [data_dir / split / "dataset.json" for split in ("test", "train")]
    meta_path = next((path for path in found if path.exists()), None)
    if meta_path is None:
        raise DataError(f"{data_dir}: no test/dataset.json or train/dataset.json; not a built dataset{needs}")
    task = (provenance.task or {}).get("name")
    if task:
        check_dataset_task(data_dir, task, f"task of {name}")
    data = read_metadata(meta_path)
    config = model.config
    for field in ("vocab_size", "seq_len"):
        if getattr(data, field) != getattr(config, field):
            raise DataError(f"{meta_path}: {field} {getattr(data, field)} does not match the model's "
                            f"{getattr(config, field)}{needs}")
    if model.puzzle_emb is None:
        return
    if data.num_puzzle_identifiers > config.num_puzzle_identifiers:
        raise DataError(f"{meta_path}: num_puzzle_identifiers {data.num_puzzle_identifiers} does not fit {name}'s "
                        f"puzzle table of {config.num_puzzle_identifiers} rows; {how}")
    identifiers = read_identifiers(data_dir)
    expected = provenance.data.embedding_fingerprint
    actual = embedding_fingerprint(identifiers)
    if expected and expected != actual:
        raise DataError(f"{data_dir}: puzzle identifiers {actual} are not the build {expected} that {name}'s "
                        f"puzzle table was trained on; {how}")
    if len(identifiers) != config.num_puzzle_identifiers:
        raise DataError(f"{data_dir}: {len(identifiers)} puzzle identifiers, {name}'s puzzle table has "
                        f"{config.num_puzzle_identifiers} rows; {how}")
