"""trmzoo: a model zoo for tiny recursive reasoning models (TRM, HRM and baselines)."""

from trmzoo.hookspecs import hookimpl  # plugins import this first
from trmzoo.version import __version__
from trmzoo.core.config import Config
from trmzoo.core.layers import use_fused_ops
from trmzoo.plugins import PLUGIN_API_VERSION
from trmzoo.registry import list_models
from trmzoo.factory import build_model, create_model
from trmzoo.task import Evaluator, Puzzle, Solution, Task, TaskConfig
from trmzoo.weights import save_pretrained
from trmzoo.api import load, solve
from trmzoo.data import check_data_compatible
from trmzoo.evaluation import evaluate
from trmzoo.hub import push_to_hub
from trmzoo.memory import keep_freed_memory

__all__ = [
    "PLUGIN_API_VERSION", "Config", "Evaluator", "Puzzle", "Solution", "Task", "TaskConfig", "__version__",
    "build_model", "check_data_compatible", "create_model", "evaluate", "hookimpl", "keep_freed_memory",
    "list_models", "load", "push_to_hub", "save_pretrained", "solve", "use_fused_ops",
]
