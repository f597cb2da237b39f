"""The plugin contract: checks a plugin's own tests run against everything the plugin contributes.

Each ``check_*`` function raises ``AssertionError`` with a message saying what is
wrong and where. The quickest way to run them all is to subclass
:class:`PluginContract` in the plugin's tests::

    from trmzoo.testing import PluginContract

    class TestNQueensContract(PluginContract):
        plugin = "nqueens"  # the entry-point name
        task_options = {"nqueens": {"size": 6, "num_train": 8, "num_test": 4}}

Models in these checks are tiny (width 32, one layer, two supervision steps, fp32),
so the whole contract of a plugin runs in seconds on a CPU.
"""

from __future__ import annotations

import math
import tempfile
import typing
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

from trmzoo.api import load
from trmzoo.core.backbone import BackboneSpec
from trmzoo.convert import load_checkpoint
from trmzoo.core.model import RecursiveModel
from trmzoo.core.supervision import IGNORE_LABEL, supervision_loss
from trmzoo.data.format import read_identifiers, read_split
from trmzoo.data.loader import eval_batches
from trmzoo.errors import PuzzleError
from trmzoo.evaluation import evaluate, make_evaluator
from trmzoo.factory import (
    build_model, create_task, entry_config, make_strategy, model_config, resolve_model_config, task_of,
)
from trmzoo.plugins import plugin_failures, plugin_infos, pm
from trmzoo.recipe import load_recipe
from trmzoo.registry import get_registry
from trmzoo.task import Evaluator, Puzzle, Solution, Task
from trmzoo.weights import save_pretrained

# -- registration and schemas ----------------------------------------------------------------
def check_loaded(plugin: str) -> None:
    """The plugin's entry point was found, imported and accepted (right plugin API)."""
    failures = plugin_failures()
    assert plugin not in failures, f"plugin {plugin!r} was not loaded: {failures.get(plugin)}"
    names = [info.name for info in plugin_infos()]
    assert plugin in names, (f"no plugin {plugin!r} among the loaded ones ({', '.join(names)}); is the package "
                             "installed and its entry point in the [project.entry-points.trmzoo] table?")


def check_registered(kind: str, name: str, plugin: str | None = None) -> Any:
    """``name`` is in the ``kind`` table (and, with ``plugin``, contributed by that plugin); returns the entry."""
    reg = get_registry()
    table = getattr(reg, kind)
    assert name in table, f"no {kind} {name!r} registered (known: {', '.join(sorted(table)) or 'none'})"
    if plugin is not None:
        owner = table[name].plugin
        assert owner == plugin, f"{kind} {name!r} is registered by plugin {owner!r}, not {plugin!r}"
        assert name in reg.contributions.get(plugin, {}).get(kind, []), \
            f"{kind} {name!r} is missing from plugin {plugin!r}'s contributions"
    return table[name]


def check_config_class(config_cls: type, tag: str, name: str) -> BaseModel:
    """A recipe section class: ``tag`` is ``Literal[name]`` with that default, extra keys are refused,
    and the defaults validate. Returns the default config."""
    where = f"{config_cls.__name__} ({tag} {name!r})"
    assert isinstance(config_cls, type) and issubclass(config_cls, BaseModel), f"{where}: not a pydantic model"
    field = config_cls.model_fields.get(tag)
    assert field is not None, f"{where}: no {tag!r} field, so recipes cannot select it"
    assert typing.get_origin(field.annotation) is typing.Literal and typing.get_args(field.annotation) == (name,), \
        f"{where}: field {tag!r} must be annotated Literal[{name!r}], not {field.annotation}"
    assert field.default == name, f"{where}: field {tag!r} must default to {name!r}, not {field.default!r}"
    assert config_cls.model_config.get("extra") == "forbid", \
        f"{where}: set model_config = ConfigDict(extra='forbid') so a misspelt recipe key is an error"
    try:
        config = config_cls()
    except ValidationError as exc:
        raise AssertionError(f"{where}: the defaults do not validate: {exc}") from None
    try:
        config_cls.model_validate({tag: name, "no_such_setting_xyz": 1})
    except ValidationError:
        pass
    else:
        raise AssertionError(f"{where}: an unknown key was accepted")
    return config


# -- models ------------------------------------------------------------------------------------
def tiny_model_config(*, vocab_size: int = 8, seq_len: int = 12, **overrides: Any) -> dict:
    """A model section small enough for a CPU test: width 32, one layer, two supervision steps, fp32.

    Sections in ``overrides`` (``backbone``, ``recursion``, ``halting``) are merged into the defaults.
    """
    config: dict[str, Any] = {
        "vocab_size": vocab_size, "seq_len": seq_len, "num_puzzle_identifiers": 3,
        "hidden_size": 32, "expansion": 2.0, "puzzle_emb_ndim": 32, "puzzle_emb_len": 2,
        "pos_encodings": "learned", "forward_dtype": "float32",
        "backbone": {"kind": "attention", "num_heads": 2},
        "recursion": {"kind": "trm", "H_cycles": 2, "L_cycles": 1, "L_layers": 1},
        "halting": {"kind": "bce", "max_steps": 2},
    }
    for key, value in overrides.items():
        if key in ("backbone", "recursion", "halting") and isinstance(value, dict) and \
                value.get("kind", config[key]["kind"]) == config[key]["kind"]:
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def tiny_model(*, seed: int | None = 0, **overrides: Any) -> RecursiveModel:
    """A model of :func:`tiny_model_config` with ``overrides``, its weights drawn after seeding ``seed``."""
    if seed is not None:
        torch.manual_seed(seed)
    return build_model(tiny_model_config(**overrides))


def tiny_batch(model: RecursiveModel, batch_size: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tokens, labels and puzzle ids that fit ``model``'s config."""
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    shape = (batch_size, cfg.seq_len)
    return {
        "inputs": torch.randint(1, cfg.vocab_size, shape, generator=g, dtype=torch.int32),
        "labels": torch.randint(1, cfg.vocab_size, shape, generator=g, dtype=torch.int32),
        "puzzle_identifiers": torch.randint(0, cfg.num_puzzle_identifiers, (batch_size,), generator=g,
                                            dtype=torch.int32),
    }


def check_training_step(model: RecursiveModel, batch: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """One supervision step, backward and an AdamW step: the loss is finite, every parameter gets a
    finite gradient, the backbone's gradients are not all zero, and the weights move."""
    batch = batch if batch is not None else tiny_batch(model)
    model.train()
    carry = model.initial_carry(batch)
    carry, out = model.step(carry, batch)
    assert out.logits.shape == (*batch["inputs"].shape, model.config.vocab_size), \
        f"logits have shape {tuple(out.logits.shape)}, expected {(*batch['inputs'].shape, model.config.vocab_size)}"
    loss, metrics = supervision_loss(out, carry.data["labels"], model.halting, "softmax")
    assert torch.isfinite(loss), f"the training loss is {float(loss)}"
    model.zero_grad(set_to_none=True)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"parameter {name} gets no gradient from the training loss"
        assert torch.isfinite(param.grad).all(), f"parameter {name} has a non-finite gradient"
    net = [(n, p) for n, p in model.named_parameters() if n.startswith("recursion.")]
    assert net, "the recursion holds no trainable parameters"
    assert any(p.grad.abs().sum() > 0 for _, p in net), "every backbone gradient is zero"
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    moved = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert moved, "an optimizer step changed no parameter"
    return {"loss": float(loss.detach()), **{k: float(v) for k, v in metrics.items()}}


def check_save_load(model: RecursiveModel, directory: str | Path,
                    batch: dict[str, torch.Tensor] | None = None) -> RecursiveModel:
    """``trmzoo.save_pretrained`` then ``trmzoo.load`` gives a model with identical outputs."""
    batch = batch if batch is not None else tiny_batch(model, seed=1)
    model.eval()
    save_pretrained(model, directory)
    loaded = load(directory)
    assert type(loaded.recursion) is type(model.recursion), "the loaded model has another recursion class"
    mine, theirs = model.rollout(batch), loaded.rollout(batch)
    assert len(mine) == len(theirs), f"{len(mine)} steps before saving, {len(theirs)} after loading"
    for step, (a, b) in enumerate(zip(mine, theirs), start=1):
        assert torch.equal(a.logits, b.logits), f"step {step}: logits differ after save and load"
        assert torch.equal(a.q_halt, b.q_halt), f"step {step}: halting logits differ after save and load"
    return loaded


def check_model_config(config: dict, directory: str | Path) -> RecursiveModel:
    """Build a model from ``config``, train it one step, then save and reload it."""
    model = build_model(config)
    check_training_step(model)
    check_save_load(model, directory)
    return model


def check_backbone(name: str, directory: str | Path, *, plugin: str | None = None,
                   config: dict | None = None, **model_overrides: Any) -> None:
    """Registration, config schema, the raw network's shapes, then training and save/load in a tiny model."""
    entry = check_registered("backbone", name, plugin)
    check_config_class(entry.config_cls, "kind", name)
    full = tiny_model_config(backbone={"kind": name, **(config or {})}, **model_overrides)
    cfg = model_config(full)
    spec = BackboneSpec.from_config(cfg)
    net = entry.build(cfg.backbone, spec, 2)
    assert isinstance(net, torch.nn.Module), f"backbone {name!r}: build returned {type(net).__name__}, not a Module"
    hidden = torch.randn(2, spec.seq_len, spec.hidden_size, requires_grad=True)
    out = net(hidden, torch.randn(2, spec.seq_len, spec.hidden_size))
    assert out.shape == hidden.shape, f"backbone {name!r}: maps {tuple(hidden.shape)} to {tuple(out.shape)}"
    assert torch.isfinite(out).all(), f"backbone {name!r}: non-finite output"
    out.square().mean().backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0, f"backbone {name!r}: no gradient reaches its input"
    check_model_config(full, directory)


def check_component(kind: str, name: str, directory: str | Path, *, plugin: str | None = None,
                    config: dict | None = None, **model_overrides: Any) -> None:
    """A recursion or halting policy: registration, schema, then training and save/load in a tiny model."""
    entry = check_registered(kind, name, plugin)
    check_config_class(entry.config_cls, "kind", name)
    check_model_config(tiny_model_config(**{kind: {"kind": name, **(config or {})}}, **model_overrides), directory)


def check_model_entry(name: str, plugin: str | None = None) -> None:
    """A named model's config validates and builds (shapes only, on the meta device)."""
    entry = check_registered("model", name, plugin)
    with torch.device("meta"):
        model = build_model(model_config(entry_config(entry), source=f"model {name!r}"))
    assert model.parameter_counts()[0] > 0, f"model {name!r} has no parameters"


def check_recipes(plugin: str) -> list[Path]:
    """Every recipe in the plugin's ``recipes/`` folder validates and its model builds (on the meta device)."""
    module = pm.get_plugin(plugin)
    assert module is not None, f"plugin {plugin!r} is not loaded"
    folder = Path(module.__file__).resolve().parent / "recipes"
    paths = sorted(folder.glob("*.yaml"))
    for path in paths:
        recipe = load_recipe(path)
        config = resolve_model_config(recipe, task=create_task(recipe.task))
        with torch.device("meta"):
            build_model(config)
    return paths


# -- tasks -------------------------------------------------------------------------------------
def check_dataset(task: Task, directory: Path) -> None:
    """Both splits exist in the on-disk format and agree with the task's vocabulary and length."""
    identifiers = read_identifiers(directory)
    for split in ("train", "test"):
        meta, arrays = read_split(directory, split)
        where = f"{directory}/{split}"
        assert meta.vocab_size == task.vocab_size and meta.seq_len == task.seq_len, \
            f"{where}: dataset.json says vocab {meta.vocab_size}, seq_len {meta.seq_len}; " \
            f"the task says {task.vocab_size}, {task.seq_len}"
        assert len(arrays.inputs) > 0, f"{where}: no examples"
        assert arrays.inputs.shape[1:] == (task.seq_len,), f"{where}: inputs have shape {arrays.inputs.shape}"
        for key in ("inputs", "labels"):
            tokens = np.asarray(getattr(arrays, key))
            assert tokens.min() >= 0 and tokens.max() < task.vocab_size, \
                f"{where}: {key} hold tokens outside 0..{task.vocab_size - 1}"
        assert len(identifiers) == meta.num_puzzle_identifiers, \
            f"{directory}/identifiers.json has {len(identifiers)} names for {meta.num_puzzle_identifiers} identifiers"
        assert np.asarray(arrays.puzzle_identifiers).max() < meta.num_puzzle_identifiers, \
            f"{where}: a puzzle identifier is out of range"


def check_augment_invert(task: Task, inputs: np.ndarray, labels: np.ndarray, draws: int = 8, seed: int = 0) -> None:
    """``invert(augment(x))`` gives back ``x`` for inputs and labels, over several random draws."""
    for i in range(draws):
        x, y = np.array(inputs[i % len(inputs)]), np.array(labels[i % len(labels)])
        ax, ay, params = task.augment(x.copy(), y.copy(), np.random.default_rng(seed + i))
        assert np.shape(ax) == x.shape and np.shape(ay) == y.shape, \
            f"augment changed the shape {x.shape} to {np.shape(ax)} (draw {i}, params {params!r})"
        assert np.array_equal(task.invert(ax, params), x), f"invert(augment(inputs)) != inputs (params {params!r})"
        assert np.array_equal(task.invert(ay, params), y), f"invert(augment(labels)) != labels (params {params!r})"


def check_evaluator_perfect(task: Task, directory: Path, metric: str = "exact_accuracy",
                            options: dict | None = None) -> dict[str, float]:
    """Fed the labels as predictions (any token where a label is ignored) on the rows the evaluator asks
    for, in batches as trmzoo sends them, ``metric`` is exactly 1 and every result is a finite number;
    ``write_submission``, when the evaluator has it, writes its file."""
    meta, arrays = read_split(directory, "test")
    evaluator = make_evaluator(task, directory, options=options)
    for batch, real in eval_batches(meta, arrays, batch_size=64, rows=evaluator.example_indices()):
        batch = {k: v[:real].numpy() for k, v in batch.items()}
        labels = batch["labels"]
        preds = np.where(labels == IGNORE_LABEL, meta.pad_id, labels).astype(np.int64)
        evaluator.update(batch, preds, np.full(real, 10.0, np.float32))
    result = evaluator.result()
    assert isinstance(result, dict) and metric in result, f"the evaluator reports no {metric} (only {', '.join(result)})"
    assert result[metric] == 1.0, f"perfect predictions score {metric} {result[metric]}"
    for key, value in result.items():
        assert isinstance(value, (int, float)) and math.isfinite(value), f"result {key!r} is {value!r}, not a finite number"
    if hasattr(evaluator, "write_submission"):
        with tempfile.TemporaryDirectory() as tmp:
            written = Path(evaluator.write_submission(Path(tmp) / "submission.json"))
            assert written.is_file() and written.stat().st_size, "write_submission wrote no file"
    return result


def check_evaluator(task: Task, directory: Path, metric: str = "exact_accuracy",
                    options: dict | None = None) -> dict[str, float]:
    """``task.evaluator`` as trmzoo calls it (``max_puzzles`` None and 1, and ``options``): an
    ``Evaluator`` whose ``example_indices()`` is None or in-range test rows (no more of them with
    ``max_puzzles=1``), then :func:`check_evaluator_perfect`."""
    _, arrays = read_split(directory, "test")
    counts = {}
    for max_puzzles in (None, 1):
        evaluator = make_evaluator(task, directory, max_puzzles=max_puzzles, options=options)
        assert isinstance(evaluator, Evaluator), f"task.evaluator returned {type(evaluator).__name__}, not an Evaluator"
        rows = evaluator.example_indices()
        if rows is None:
            continue
        rows = np.asarray(rows)
        assert rows.ndim == 1 and (len(rows) == 0 or np.issubdtype(rows.dtype, np.integer)), \
            f"example_indices() gave {rows.dtype} of shape {rows.shape}, not a list of row indices"
        assert len(rows) == 0 or (rows.min() >= 0 and rows.max() < len(arrays.inputs)), \
            f"example_indices() points outside the {len(arrays.inputs)} test examples"
        counts[max_puzzles] = len(rows)
    if len(counts) == 2:
        assert counts[1] <= counts[None], f"max_puzzles=1 asks for {counts[1]} rows, more than all ({counts[None]})"
    return check_evaluator_perfect(task, directory, metric, options)


def check_evaluate(task: Task, directory: Path, metric: str = "exact_accuracy", options: dict | None = None,
                   num_puzzle_identifiers: int = 1) -> dict[str, float]:
    """``trmzoo.evaluate`` of an untrained tiny model, as ``trmzoo eval`` and training run it, with and
    without ``max_puzzles``: the metrics hold ``metric`` and a ``mean_steps`` within the step limit."""
    model = build_model(tiny_model_config(vocab_size=task.vocab_size, seq_len=task.seq_len,
                                          num_puzzle_identifiers=num_puzzle_identifiers))
    for max_puzzles in (1, None):
        metrics = evaluate(model, directory, task, batch_size=8, max_puzzles=max_puzzles, evaluator_options=options)
        assert metric in metrics, f"evaluate() gave no {metric} (only {', '.join(metrics)})"
        assert 1 <= metrics["mean_steps"] <= model.halting.max_steps, f"mean_steps is {metrics['mean_steps']}"
    return metrics


def check_parse_render(task: Task, texts: list[str], *, roundtrip: bool = True) -> list[Puzzle]:
    """``parse`` reads each text and garbage is refused with a one-line PuzzleError; with ``roundtrip``,
    ``render`` draws each puzzle back into text that parses to the same tokens."""
    puzzles = []
    for text in texts:
        puzzle = task.parse(text)
        assert np.shape(puzzle.inputs) == (task.seq_len,), \
            f"parse gave inputs of shape {np.shape(puzzle.inputs)}, expected ({task.seq_len},)"
        if roundtrip:
            drawn = task.render(puzzle.inputs, puzzle)
            again = task.parse(drawn)
            assert np.array_equal(again.inputs, puzzle.inputs), \
                f"parse(render(puzzle)) differs from the puzzle:\n{drawn}"
        puzzles.append(puzzle)
    try:
        task.parse("?? not a puzzle ??")
    except PuzzleError as exc:
        assert "\n" not in str(exc) and str(exc), f"the PuzzleError message is not one line: {exc!r}"
    else:
        raise AssertionError("parse accepted '?? not a puzzle ??' instead of raising PuzzleError")
    return puzzles


def check_solve(task: Task, puzzle: Puzzle, num_puzzle_identifiers: int = 1, data_dir: Path | None = None) -> Solution:
    """The path of ``trmzoo solve``: an untrained tiny model recording the task's config (and, with
    ``data_dir``, the build's puzzle identifiers) is saved and loaded, the task is rebuilt from what it
    records, and ``solve`` gives a Solution of the task's shape and drawing; ``cell_text`` draws every token."""
    config = tiny_model_config(vocab_size=task.vocab_size, seq_len=task.seq_len,
                               num_puzzle_identifiers=num_puzzle_identifiers)
    model = build_model(config)
    model.provenance.task = task.config.model_dump(mode="json")
    if data_dir is not None:
        model.provenance.identifiers = read_identifiers(data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        model = load(tmp)
    rebuilt = task_of(model)
    assert type(rebuilt) is type(task) and rebuilt.config == task.config, \
        f"the task rebuilt from the saved config is {rebuilt.config!r}, not {task.config!r}"
    solution = rebuilt.solve(model, puzzle)
    assert isinstance(solution, Solution), f"solve returned {type(solution).__name__}, not a Solution"
    with_strategy = rebuilt.solve(model, puzzle, early_exit=False, strategy=make_strategy(None, task=rebuilt))
    assert np.array_equal(with_strategy.tokens, solution.tokens), \
        "solve with the plain strategy (what `trmzoo solve --strategy plain` passes) gave another answer"
    assert np.shape(solution.tokens) == (task.seq_len,), \
        f"the solution has tokens of shape {np.shape(solution.tokens)}, expected ({task.seq_len},)"
    assert 0 <= int(np.min(solution.tokens)) and int(np.max(solution.tokens)) < task.vocab_size, \
        "the solution holds tokens outside the vocabulary"
    assert isinstance(solution.text, str) and solution.text, "the solution has no text drawing"
    assert 1 <= solution.steps <= model.halting.max_steps, f"the solution used {solution.steps} steps"
    assert 0.0 <= solution.q_halt <= 1.0 and math.isfinite(solution.q_halt), f"q_halt is {solution.q_halt}"
    assert len(solution.trace) == len(solution.q_trace) >= 1, "the solution has no answer per supervision step"
    assert solution.valid == rebuilt.keeps_rules(puzzle, solution.tokens), \
        f"the solution says valid={solution.valid}, the task's verify says {rebuilt.keeps_rules(puzzle, solution.tokens)}"
    for token in range(task.vocab_size):
        assert isinstance(task.cell_text(token), str), f"cell_text({token}) is not a string"
    return solution


def check_converter(name: str, checkpoint: str | Path, config: str | Path | None = None, *,
                    reference: RecursiveModel, **sizes: int) -> RecursiveModel:
    """The registered converter ``name`` turns ``checkpoint`` (and its ``config`` file) into the model
    ``reference`` it was written from: the same config and identical outputs at every step."""
    check_registered("converter", name)
    model = load_checkpoint(checkpoint, config, converter=name, **sizes)
    assert model.config == reference.config, f"converted config {model.config!r} is not {reference.config!r}"
    assert model.provenance.source is not None and model.provenance.source.converter == name, \
        "the converted model does not record its converter"
    batch = tiny_batch(reference, seed=2)
    reference.eval()
    for step, (a, b) in enumerate(zip(reference.rollout(batch), model.rollout(batch)), start=1):
        assert torch.equal(a.logits, b.logits) and torch.equal(a.q_halt, b.q_halt), f"step {step}: outputs differ"
    return model


def make_task(name: str, options: dict | None = None) -> Task:
    """The registered task ``name`` with build ``options`` (a recipe's ``task`` section without its name)."""
    task_cls = check_registered("task", name).task_cls
    return task_cls(task_cls.Config.model_validate({"name": name, **(options or {})}))


def check_strategy(name: str, plugin: str | None = None, *, options: dict | None = None, task: Task | None = None,
                   model: RecursiveModel | None = None) -> None:
    """An inference strategy: registration, its options' schema, and one batch answered with what
    ``trmzoo.evaluate`` reads (``Answers`` of the batch's shapes, tokens in the vocabulary, finite
    confidences, steps within what ran, and a spend of at least one supervision step per sample). ``task``
    is the task it is given (some strategies read its symmetries or ``verify``); ``model`` one that fits
    the task (default: a tiny model of the task's sizes, or of any)."""
    from trmzoo.strategy import Answers, Strategy, StrategyConfig

    entry = check_registered("strategy", name, plugin)
    assert isinstance(entry.strategy_cls, type) and issubclass(entry.strategy_cls, Strategy), \
        f"strategy {name!r}: {entry.strategy_cls} is not a trmzoo.strategy.Strategy"
    assert issubclass(entry.strategy_cls.Config, StrategyConfig), \
        f"strategy {name!r}: its Config is not a trmzoo.strategy.StrategyConfig"
    if model is None:
        sizes = {} if task is None else {"vocab_size": task.vocab_size, "seq_len": task.seq_len}
        model = tiny_model(**sizes).eval()
    batch = tiny_batch(model, batch_size=3)
    with torch.no_grad():
        answers = make_strategy(name, options, task=task).run(model, batch)
    assert isinstance(answers, Answers), f"strategy {name!r}: run returned {type(answers).__name__}, not Answers"
    rows, length = batch["inputs"].shape
    assert tuple(answers.preds.shape) == (rows, length) and not answers.preds.is_floating_point(), \
        f"strategy {name!r}: preds {answers.preds.dtype} {tuple(answers.preds.shape)}, expected integers ({rows}, {length})"
    assert 0 <= int(answers.preds.min()) and int(answers.preds.max()) < model.config.vocab_size, \
        f"strategy {name!r}: answers hold tokens outside the vocabulary"
    assert tuple(answers.q_halt.shape) == (rows,) and bool(torch.isfinite(answers.q_halt.float()).all()), \
        f"strategy {name!r}: q_halt {tuple(answers.q_halt.shape)}, expected ({rows},) finite values"
    assert tuple(answers.steps.shape) == (rows,) and int(answers.steps.min()) >= 1, \
        f"strategy {name!r}: steps {answers.steps.tolist()}, expected one count of at least 1 per sample"
    assert isinstance(answers.sample_steps, int) and answers.sample_steps >= rows, \
        f"strategy {name!r}: sample_steps {answers.sample_steps!r}, expected a whole number of at least {rows}"


def check_task(name: str, directory: str | Path, *, plugin: str | None = None, options: dict | None = None,
               puzzles: list[str] | None = None, metric: str = "exact_accuracy", roundtrip: bool = True,
               evaluator_options: dict | None = None) -> None:
    """Everything about a task: registration and schema, a tiny build, augment/invert, the evaluator and
    ``trmzoo.evaluate``, parse/render and solving. ``options`` make the build tiny; ``puzzles`` are texts
    in the task's format (default: the test split's first inputs, drawn with ``render``); ``metric`` is
    the evaluator's accuracy that perfect predictions must bring to 1; ``roundtrip=False`` for a task
    whose ``render`` draws answers in a format ``parse`` does not read (then ``puzzles`` are needed);
    ``evaluator_options`` go to ``Task.evaluator`` as ``--option`` would send them."""
    task_cls = check_registered("task", name, plugin).task_cls
    assert isinstance(task_cls, type) and issubclass(task_cls, Task), f"task {name!r}: {task_cls} is not a trmzoo.Task"
    assert task_cls.name == name, f"task {name!r}: its class says name = {task_cls.name!r}"
    check_config_class(task_cls.Config, "name", name)
    task = make_task(name, options)
    assert task.vocab_size > 0 and task.seq_len > 0, f"task {name!r}: vocab {task.vocab_size}, seq_len {task.seq_len}"
    directory = Path(directory)
    task.build(directory, progress=False)
    check_dataset(task, directory)
    meta, train = read_split(directory, "train")
    check_augment_invert(task, train.inputs, train.labels)
    check_evaluator(task, directory, metric, evaluator_options)
    check_evaluate(task, directory, metric, evaluator_options, meta.num_puzzle_identifiers)
    if puzzles is None:
        _, test = read_split(directory, "test")
        puzzles = [task.render(x, Puzzle(inputs=np.array(x))) for x in test.inputs[:3]]
    parsed = check_parse_render(task, puzzles, roundtrip=roundtrip)
    check_solve(task, parsed[0], meta.num_puzzle_identifiers, directory)


# -- the whole plugin ------------------------------------------------------------------------------
class PluginContract:
    """Subclass as ``Test...`` in a plugin's tests; pytest runs one test per kind of contribution.

    ``plugin``: the entry-point name. ``task_options``: build options per task name (keep builds
    tiny). ``puzzles``: texts per task name for the parse/render check. ``metrics``: the accuracy
    an evaluator reports, per task name (default ``exact_accuracy``). ``evaluator_options``:
    options per task name for its evaluator. ``component_options``: config sections per contributed
    backbone, recursion or halting name. ``model_overrides``: extra tiny-model settings per component
    name (e.g. ``{"pos_encodings": "none"}``). ``strategy_options``: options per contributed strategy;
    ``strategy_tasks``: the task name a strategy is given (built with ``task_options``), where it needs one.
    """

    plugin: str = ""
    task_options: dict[str, dict] = {}
    puzzles: dict[str, list[str]] = {}
    metrics: dict[str, str] = {}
    component_options: dict[str, dict] = {}
    model_overrides: dict[str, dict] = {}
    evaluator_options: dict[str, dict] = {}
    strategy_options: dict[str, dict] = {}
    strategy_tasks: dict[str, str] = {}

    def _names(self, kind: str) -> list[str]:
        import pytest

        names = get_registry().contributions.get(self.plugin, {}).get(kind, [])
        if not names:
            pytest.skip(f"plugin {self.plugin!r} contributes no {kind}")
        return names

    def test_loaded(self):
        check_loaded(self.plugin)
        assert get_registry().contributions.get(self.plugin), f"plugin {self.plugin!r} registered nothing"

    def test_backbones(self, tmp_path):
        for name in self._names("backbone"):
            check_backbone(name, tmp_path / name, plugin=self.plugin, config=self.component_options.get(name),
                           **self.model_overrides.get(name, {}))

    def test_recursions(self, tmp_path):
        for name in self._names("recursion"):
            check_component("recursion", name, tmp_path / name, plugin=self.plugin,
                            config=self.component_options.get(name), **self.model_overrides.get(name, {}))

    def test_halting_policies(self, tmp_path):
        for name in self._names("halting"):
            check_component("halting", name, tmp_path / name, plugin=self.plugin,
                            config=self.component_options.get(name), **self.model_overrides.get(name, {}))

    def test_tasks(self, tmp_path):
        for name in self._names("task"):
            check_task(name, tmp_path / name, plugin=self.plugin, options=self.task_options.get(name),
                       puzzles=self.puzzles.get(name), metric=self.metrics.get(name, "exact_accuracy"),
                       evaluator_options=self.evaluator_options.get(name))

    def test_models(self):
        for name in self._names("model"):
            check_model_entry(name, self.plugin)

    def test_strategies(self):
        for name in self._names("strategy"):
            task = self.strategy_tasks.get(name)
            check_strategy(name, self.plugin, options=self.strategy_options.get(name),
                           task=make_task(task, self.task_options.get(task)) if task else None)

    def test_recipes(self):
        import pytest

        check_loaded(self.plugin)
        if not check_recipes(self.plugin):
            pytest.skip(f"plugin {self.plugin!r} ships no recipes/ folder")
