"""``trmzoo.load``: one call from a name, a Hub id or a folder to a ready model."""

from __future__ import annotations

import difflib
from pathlib import Path

from trmzoo.core.model import RecursiveModel
from trmzoo.errors import DataError, HubError, TrmzooError
from trmzoo.weights import load_pretrained_dir


def load(name_or_path: str | Path, *, revision: str | None = None, token: str | None = None,
         force_download: bool = False) -> RecursiveModel:
    """Load a trained model in eval mode.

    Accepts a local weight folder (``local-dir:`` prefix optional), a run folder (its
    ``weights/``), a pretrained name or alias from ``list_models(pretrained=True)``, or
    ``hf-hub:org/repo[@revision]``. Hub files are cached; official checkpoints are
    converted once. ``revision`` pins a branch, tag or commit of a pretrained entry.
    """
    from trmzoo import hub
    from trmzoo.registry import get_registry

    text = str(name_or_path)
    if text.startswith(hub.HUB_PREFIX):
        repo_id, pinned = hub.split_hub_id(text)
        return hub.load_hub_repo(repo_id, revision=pinned or revision, token=token, force_download=force_download)
    explicit_dir = text.startswith("local-dir:")
    path = Path(text.removeprefix("local-dir:"))
    if path.is_dir():
        if (path / "weights" / "config.json").exists():
            path = path / "weights"
        return load_pretrained_dir(path)
    registry = get_registry()
    if not explicit_dir and text in registry.pretrained:
        model_entry, weights = registry.pretrained[text]
        return hub.load_entry(model_entry, weights, revision=revision, token=token, force_download=force_download)
    if explicit_dir or "/" in text or "\\" in text or text.startswith("."):
        raise TrmzooError(f"{path}: no such model folder")
    if text in registry.model:
        raise HubError(f"{text!r} is a model without published weights; build it with trmzoo.create_model({text!r}) "
                       "or pick one of trmzoo.list_models(pretrained=True)")
    close = difflib.get_close_matches(text, list(registry.pretrained), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see trmzoo.list_models(pretrained=True)"
    raise HubError(f"unknown pretrained model {text!r}{hint}")


def check_data_compatible(model: RecursiveModel, data_dir: str | Path) -> None:
    """Refuse a dataset the model cannot be evaluated or fine-tuned on as is.

    Checks vocabulary and sequence length, and for a per-puzzle embedding table the
    identifiers of the build (their ``embedding_fingerprint``): a table row means a
    puzzle only in the build it was trained with.
    """
    from trmzoo.data import DatasetMetadata, embedding_fingerprint, read_identifiers

    name = model.meta.get("pretrained") or model.meta.get("architecture") or "model"
    if model.meta.get("eval_refusal"):
        raise DataError(f"{name}: {model.meta['eval_refusal']}")
    data_dir = Path(data_dir)
    how = model.meta.get("data_build") or "rebuild it with the recipe the model was trained with"
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
    expected = (model.meta.get("data") or {}).get("embedding_fingerprint")
    actual = embedding_fingerprint(identifiers)
    if expected and expected != actual:
        raise DataError(f"{data_dir}: puzzle identifiers {actual} are not the build {expected} that {name}'s "
                        f"puzzle table was trained on; {how}")
    if len(identifiers) != config.num_puzzle_identifiers:
        raise DataError(f"{data_dir}: {len(identifiers)} puzzle identifiers, {name}'s puzzle table has "
                        f"{config.num_puzzle_identifiers} rows; {how}")


def task_of(model: RecursiveModel):
    """The task a loaded model was trained for, built from the config it records."""
    from trmzoo.registry import lookup

    task_cfg = model.meta.get("task")
    if not task_cfg or "name" not in task_cfg:
        raise TrmzooError("this model does not record its task; it cannot read puzzles or pick an evaluator")
    entry = lookup("task", task_cfg["name"])
    return entry.task_cls(entry.task_cls.Config.model_validate(task_cfg))


def solve(model: RecursiveModel | str | Path, puzzle: str, *, early_exit: bool = False):
    """Solve one puzzle given as text (or a file path) in the model's task format.

    Returns a :class:`trmzoo.Solution`: the predicted tokens, the rendered ``text``, the
    supervision steps used, sigmoid(q_halt), and the answer after every step (``trace``).
    """
    if not isinstance(model, RecursiveModel):
        model = load(model)
    task = task_of(model)
    return task.solve(model, task.parse(puzzle), early_exit=early_exit)
