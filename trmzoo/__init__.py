"""trmzoo: a model zoo for tiny recursive reasoning models (TRM, HRM and baselines)."""

__version__ = "0.1.0"

from trmzoo.hookspecs import hookimpl  # noqa: E402  (plugins import this first)
from trmzoo.plugins import PLUGIN_API_VERSION  # noqa: E402
from trmzoo.registry import list_models  # noqa: E402
from trmzoo.factory import build_model, create_model  # noqa: E402
from trmzoo.task import Evaluator, Puzzle, Solution, Task, TaskConfig  # noqa: E402
from trmzoo.weights import save_pretrained  # noqa: E402
from trmzoo.api import check_data_compatible, load, solve  # noqa: E402
from trmzoo.evaluate import evaluate  # noqa: E402
from trmzoo.hub import push_to_hub  # noqa: E402

__all__ = [
    "PLUGIN_API_VERSION", "Evaluator", "Puzzle", "Solution", "Task", "TaskConfig", "__version__",
    "build_model", "check_data_compatible", "create_model", "evaluate", "hookimpl", "list_models", "load",
    "push_to_hub", "save_pretrained", "solve",
]
