"""Assembling what a recipe or a saved model names: models from configs and registered names, tasks from
their configs, and a model config with the dataset's sizes filled in."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from trmzoo.core.backbone import BackboneSpec
from trmzoo.core.model import ModelConfigBase, RecursiveModel
from trmzoo.errors import RecipeError, TrmzooError
from trmzoo.recipe import _merge, expand_model_preset, format_validation_error, model_config_cls
from trmzoo.registry import ModelEntry, get_registry, lookup, require
from trmzoo.strategy import PlainStrategy, Strategy
from trmzoo.task import Task, TaskConfig


def model_config(config: dict | ModelConfigBase, source: str = "model") -> ModelConfigBase:
    """Validate a model config dict (a ``preset`` key starts from a registered model)."""
    if isinstance(config, ModelConfigBase):
        return config
    data = expand_model_preset(dict(config), f"{source}.preset")
    try:
        return model_config_cls().model_validate(data)
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, data, source)) from None


def build_model(config: dict | ModelConfigBase) -> RecursiveModel:
    """Build an untrained model from a model config."""
    config = model_config(config)
    if config.vocab_size <= 0 or config.seq_len <= 0:
        raise RecipeError("model: vocab_size and seq_len must be set (they come from the dataset when training)")
    spec = BackboneSpec.from_config(config)
    backbone = lookup("backbone", config.backbone.kind)
    make_net = lambda num_layers: backbone.build(config.backbone, spec, num_layers)  # noqa: E731
    recursion = lookup("recursion", config.recursion.kind).build(
        config=config.recursion, make_net=make_net, hidden_size=config.hidden_size
    )
    halting = lookup("halting", config.halting.kind).build(config.halting)
    return RecursiveModel(config=config, recursion=recursion, halting=halting)


def entry_task(entry: ModelEntry) -> Task | None:
    """The task a registered model names, with its default config (None where it names none)."""
    if entry.task is None:
        return None
    task_cls = lookup("task", entry.task).task_cls
    return task_cls(task_cls.Config())


def entry_config(entry: ModelEntry) -> dict[str, Any]:
    """A registered model's config, with the vocabulary and grid length of the task it names."""
    task = entry_task(entry)
    if task is None:
        return dict(entry.config)
    return {"vocab_size": task.vocab_size, "seq_len": task.seq_len, **entry.config}


def create_model(name: str, **overrides: Any) -> RecursiveModel:
    """Build the registered model ``name``; keyword overrides replace config fields
    (nested sections as dicts, e.g. ``recursion={"L_cycles": 4}``). The model records the task its
    entry names, so it reads that task's puzzles, unless the overrides change its sizes."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    entry = lookup("model", name)
    model = build_model(model_config(_merge(entry_config(entry), overrides), source=name))
    model.provenance.architecture = name
    task = entry_task(entry)
    if task is not None and (task.vocab_size, task.seq_len) == (model.config.vocab_size, model.config.seq_len):
        model.provenance.task = {"name": task.name}  # its puzzles, not a data build it was trained on
    return model


def create_task(config: TaskConfig) -> Task:
    """The registered task that ``config`` (a recipe's ``task`` section) names."""
    return lookup("task", config.name).task_cls(config)


def task_of(model: RecursiveModel, where: str = "model") -> Task:
    """The task a loaded model was trained for, built from the config it records (``where`` names the
    model in messages: a folder or a pretrained name)."""
    task_cfg = model.provenance.task
    if not task_cfg or "name" not in task_cfg:
        raise TrmzooError(f"{where}: does not record its task; it cannot read puzzles or pick an evaluator")
    require({"task": task_cfg["name"]}, model.provenance.plugins, where)
    entry = lookup("task", task_cfg["name"])
    task = entry.task_cls(entry.task_cls.Config.model_validate(task_cfg))
    try:
        length = task.seq_len
    except NotImplementedError:  # a task that states no sizes
        return task
    if length != model.config.seq_len:
        raise TrmzooError(f"{where}: its recorded task ({task.name}, sequences of {length}) does not fit the model, "
                          f"which reads {model.config.seq_len}; its config.json is inconsistent")
    return task


def resolve_model_config(recipe: Any, metadata: Any = None, task: Task | None = None) -> ModelConfigBase:
    """The recipe's model config with the dataset's vocabulary, length and puzzle count filled in
    (from the dataset's ``metadata``, or without data from the ``task``'s sizes)."""
    data = recipe.model.model_dump(exclude={"preset"})
    sizes = (
        {"vocab_size": metadata.vocab_size, "seq_len": metadata.seq_len,
         "num_puzzle_identifiers": metadata.num_puzzle_identifiers}
        if metadata is not None else {"vocab_size": task.vocab_size, "seq_len": task.seq_len}
    )
    for key, value in sizes.items():
        given = data.get(key)
        if key != "num_puzzle_identifiers" and given not in (0, None, value):
            raise RecipeError(f"model.{key}: the recipe says {given} but the dataset has {value}")
        data[key] = value
    return model_config(data)


def make_strategy(name: str | Strategy | None, options: dict[str, Any] | None = None, *, task: Task | None = None,
                  source: str = "--strategy-option", name_source: str = "--strategy") -> Strategy:
    """The registered inference strategy ``name`` with its validated ``options`` (None: the plain rollout).

    A built strategy is returned as it is (with no options given)."""
    if isinstance(name, Strategy):
        if options:
            raise RecipeError(f"{source}: options go with a strategy name, not with a built strategy")
        return name
    if name is None or name == "plain" and "plain" not in get_registry().strategy:
        cls, name = PlainStrategy, "plain"
    else:
        try:
            cls = lookup("strategy", name).strategy_cls
        except TrmzooError as exc:
            raise RecipeError(f"{name_source}: {exc}") from None
    if cls.uses_verify and task is not None and not task.offers_verify:
        raise RecipeError(f"strategy {name!r} uses the task's verify check, and the {task.name} task offers none")
    if (options or {}).get("early_exit") and "early_exit" not in cls.Config.model_fields:
        raise RecipeError(f"early exit (--early-exit): the {name!r} strategy has none; it goes with the plain rollout")
    try:
        config = cls.Config.model_validate(dict(options or {}))
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, options, f"{source} of strategy {name!r}")) from None
    return cls(config, task=task, name=name)
