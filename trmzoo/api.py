"""``trmzoo.load``: one call from a name, a Hub id or a folder to a ready model."""

from __future__ import annotations

from pathlib import Path

from trmzoo.core.model import RecursiveModel
from trmzoo.errors import TrmzooError
from trmzoo.weights import load_pretrained_dir


def load(name_or_path: str | Path) -> RecursiveModel:
    """Load a trained model in eval mode from a local folder (``local-dir:`` prefix optional),
    a run folder (its ``weights/``), a pretrained name, or ``hf-hub:org/repo[@revision]``."""
    text = str(name_or_path)
    if text.startswith("local-dir:"):
        text = text[len("local-dir:"):]
    path = Path(text)
    if path.is_dir():
        if (path / "weights" / "config.json").exists():
            path = path / "weights"
        return load_pretrained_dir(path)
    raise TrmzooError(f"{text}: no such model folder")
