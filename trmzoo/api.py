"""``trmzoo.load``: one call from a name, a Hub id or a folder to a ready model."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from trmzoo import hub
from trmzoo.core.model import RecursiveModel
from trmzoo.errors import HubError, RecipeError, TrmzooError
from trmzoo.factory import make_strategy, task_of
from trmzoo.strategy import Strategy
from trmzoo.task import solve_with
from trmzoo.registry import get_registry
from trmzoo.run import WEIGHTS_DIR, is_run_dir
from trmzoo.weights import load_pretrained_dir


def load(name_or_path: str | Path, *, revision: str | None = None, token: str | None = None,
         force_download: bool = False) -> RecursiveModel:
    """Load a trained model in eval mode.

    Accepts a local weight folder (``local-dir:`` prefix optional), a run folder (its
    ``weights/``), a pretrained name or alias from ``list_models(pretrained=True)``, or
    ``hf-hub:org/repo[@revision]``. Hub files are cached; official checkpoints are
    converted once. ``revision`` pins a branch, tag or commit of a pretrained entry.
    """
    text = str(name_or_path)
    if text.startswith(hub.HUB_PREFIX):
        repo_id, pinned = hub.split_hub_id(text)
        if pinned and revision and pinned != revision:
            raise HubError(f"{text}: pins revision {pinned!r}, and revision={revision!r} was given too; give one")
        return hub.load_hub_repo(repo_id, revision=pinned or revision, token=token, force_download=force_download)
    explicit_dir = text.startswith("local-dir:")
    path = Path(text.removeprefix("local-dir:"))
    if path.is_dir():
        if revision is not None or force_download:
            raise TrmzooError(f"{path}: a local folder has no revisions and nothing to download; "
                              "revision= and force_download= are for Hub models")
        if is_run_dir(path):
            path = path / WEIGHTS_DIR
        return load_pretrained_dir(path)
    registry = get_registry()
    if not explicit_dir and text in registry.pretrained:
        model_entry, weights = registry.pretrained[text]
        return hub.load_entry(model_entry, weights, revision=revision, token=token, force_download=force_download)
    if path.exists():
        raise TrmzooError(f"{path}: a file, not a model (a run folder, a weight folder, a pretrained name or "
                          "hf-hub:org/repo)")
    if explicit_dir or "/" in text or "\\" in text or text.startswith("."):
        raise TrmzooError(f"{path}: no such model folder")
    if text in registry.model:
        raise HubError(f"{text!r} is a model without published weights; build it with trmzoo.create_model({text!r}) "
                       "or pick one of trmzoo.list_models(pretrained=True)")
    close = difflib.get_close_matches(text, list(registry.pretrained), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else " (`trmzoo list --pretrained` lists them)"
    raise HubError(f"unknown pretrained model {text!r}, and no folder of that name here{hint}")


def solve(model: RecursiveModel | str | Path, puzzle: str, *, early_exit: bool = False,
          strategy: str | Strategy | None = None, strategy_options: dict[str, Any] | None = None):
    """Solve one puzzle given as text (or a file path) in the model's task format.

    Returns a :class:`trmzoo.Solution`: the predicted tokens, the rendered ``text``, the
    supervision steps used, sigmoid(q_halt), and the answer after every step (``trace``, the
    plain rollout only). ``strategy`` / ``strategy_options`` pick an inference strategy
    (docs/test-time-scaling.md).
    """
    if not isinstance(model, RecursiveModel):
        model = load(model)
    task = task_of(model)
    built = None
    if strategy is None and strategy_options:
        raise RecipeError("strategy_options: options go with a strategy; name one with strategy=")
    if strategy is not None:
        options = {**(strategy_options or {}), "early_exit": True} if early_exit else strategy_options
        built = make_strategy(strategy, options, task=task)
    return solve_with(task, model, task.parse(puzzle), early_exit=early_exit, strategy=built)
