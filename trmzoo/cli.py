"""The ``trmzoo`` command line. Plugins add commands through the ``register_commands`` hook.

The one error boundary of trmzoo is here (:meth:`ZooGroup.invoke`): every error a user can cause
ends in one line on stderr (``error: ...``, naming the file, setting or option) and exit status 1,
a command-line mistake in exit status 2, and anything else, a bug of trmzoo or of a plugin, in one
line saying so and how to report it, exit status 70. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import os
import re
import signal
import sys
import typing
import warnings
from pathlib import Path

import click
import yaml

from trmzoo.core.layers import fused_ops_enabled
from trmzoo.errors import DataError, TrmzooError, os_error_message
from trmzoo.files import check_output_file
from trmzoo.memory import keep_freed_memory

BUG_STATUS = 70
"""Exit status of an unexpected internal error (sysexits' EX_SOFTWARE)."""
MAX_MESSAGE = 400
"""Characters of a message kept on its one line (a longer one is cut, with the rest shown by ``--debug``)."""


def _echo_json(data) -> None:
    """Strict JSON: a NaN or infinite number (a diverged model's confidence) is written as null; arrays and
    numpy numbers as lists and numbers."""
    def strict(value):
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: strict(v) for k, v in value.items()}
        return [strict(v) for v in value] if isinstance(value, (list, tuple)) else value
    click.echo(json.dumps(strict(data), indent=2, allow_nan=False))


def one_line(text: str) -> str:
    """Another library's text (or a message quoting it) on one line of at most ``MAX_MESSAGE`` characters."""
    text = re.sub(r"\s*\n\s*", " | ", str(text).strip())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def user_message(exc: BaseException) -> str | None:
    """The one line for an error a user caused, or None for a bug. Besides trmzoo's own errors, the
    failures of the machine (I/O) and of reading input that no trmzoo code caught are the user's."""
    from pydantic import ValidationError

    from trmzoo.core.config import validation_summary
    from trmzoo.yamlio import yaml_problem

    if isinstance(exc, TrmzooError):
        return one_line(str(exc))
    if isinstance(exc, OSError):
        return os_error_message(exc)
    if isinstance(exc, UnicodeDecodeError):
        return one_line(f"cannot decode the input as {exc.encoding} text (byte {exc.start}): is it a binary file?")
    if isinstance(exc, yaml.YAMLError):
        return one_line(f"invalid YAML ({yaml_problem(exc)})")
    if isinstance(exc, ValidationError):
        return one_line(f"{exc.title}: {validation_summary(exc)}")
    if isinstance(exc, MemoryError):
        return "out of memory; use a smaller batch size or model"
    if _lost_peer(exc):
        return one_line(f"another process of this torchrun launch stopped, so this one cannot go on (that process "
                        f"printed why; torchrun names it): {type(exc).__name__}: {exc}")
    return None


def _torchrun_rank() -> str | None:
    """This process's rank when torchrun launched several, else None."""
    return None if os.environ.get("WORLD_SIZE", "1") in ("", "0", "1") else os.environ.get("RANK", "0")


def _lost_peer(exc: BaseException) -> bool:
    """A collective failed because another process of the launch is gone: its own error is what to read."""
    import torch.distributed as dist

    if _torchrun_rank() is None:
        return False
    return isinstance(exc, getattr(dist, "DistError", ())) or (
        isinstance(exc, RuntimeError) and any(word in str(exc) for word in ("gloo", "NCCL", "Connection reset")))


def report_to() -> str:
    """Where to report a bug: the ``Issues`` URL the installed package declares, else its name."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("trmzoo").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    issues = [url.split(",", 1)[1].strip() for url in urls if url.lower().startswith("issues,")]
    return issues[0] if issues else "the trmzoo issue tracker"


def bug_message(exc: BaseException) -> str:
    return one_line(f"internal error ({type(exc).__name__}: {exc}); this is a bug in trmzoo or a plugin: please "
                    f"report it to {report_to()} with `trmzoo --version` and the output of the same command run "
                    "as `trmzoo --debug ...`")


class UserError(click.ClickException):
    """An error a user caused, on its way out: one line on stderr, exit status 1. Under torchrun every
    process prints its own; those of ranks above 0 say their rank."""

    def show(self, file=None) -> None:
        rank = _torchrun_rank()
        who = f"[rank {rank}] " if rank not in (None, "", "0") else ""
        click.echo(f"error: {who}{self.format_message()}", err=True)


class InternalError(UserError):
    """An unexpected exception: one line saying it is a bug and how to report it."""

    exit_code = BUG_STATUS


class Interrupted(UserError):
    """Ctrl-C or SIGTERM: one line, the shell's status for an interrupted command."""

    exit_code = 130


def _interrupt(signum, frame) -> None:
    """SIGTERM (a scheduler's or torchrun's stop) unwinds as Ctrl-C does, so nothing half-written stays."""
    raise KeyboardInterrupt


class UsageMistake(click.UsageError):
    """A command-line mistake on one line and where to read the usage (click's own takes four)."""

    def show(self, file=None) -> None:
        where = f" (see `{self.ctx.command_path} --help`)" if self.ctx is not None else ""
        click.echo(f"error: {one_line(self.format_message())}{where}", err=True)


def _one_line_usage(exc: click.UsageError) -> UsageMistake:
    return exc if isinstance(exc, UsageMistake) else UsageMistake(exc.format_message(), exc.ctx)


class ZooGroup(click.Group):
    """The command group and trmzoo's one error boundary: every error of every subcommand becomes one
    line (``--debug`` lets the traceback through)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _one_line_usage(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line_usage(exc) from None
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            if ctx.params.get("debug"):
                raise
            raise Interrupted("interrupted; nothing half-written is left (a run keeps its last checkpoint: continue "
                              "it with trmzoo train --resume RUN_DIR)") from None
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            message = user_message(exc)
            if message is not None:
                raise UserError(message) from None
            raise InternalError(bug_message(exc)) from None


def quiet_libraries() -> None:
    """Other libraries' chatter that would bury the one-line error: huggingface_hub's retry log (its
    own HTTP timeouts bound the wait, 10 s by default), a CUDA build of torch's note on a machine
    without CUDA when ``--compile`` loads its C++ extension tools, and the multi-line form of warnings."""
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"warning: {one_line(str(message))}", err=True)

    warnings.showwarning = show


@click.group(cls=ZooGroup)
@click.version_option(package_name="trmzoo")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """trmzoo: train, evaluate, load and share tiny recursive reasoning models."""


# -- training and evaluation ----------------------------------------------------------------
@cli.command()
@click.argument("recipe", required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a recipe value (YAML).")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: runs/<recipe>-<time>).")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out.")
@click.option("--resume", "resume", type=click.Path(exists=True, file_okay=False), help="Continue this run folder.")
@click.option("--init-from", help="Start from a trained model (name, hf-hub:org/repo or run folder).")
@click.option("--dry-run", is_flag=True, help="Validate the recipe and build the model without data or training.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(recipe, overrides, out, overwrite, resume, init_from, dry_run, quiet):
    """Train RECIPE (a file or the name of a shipped recipe), or continue a run with --resume."""
    from trmzoo.recipe import resolve_recipe_path
    from trmzoo.train.trainer import train as run_training

    if init_from is not None and not init_from.strip():
        raise TrmzooError("--init-from: empty; give a run folder, a weight folder, a pretrained name or hf-hub:org/repo")
    if resume:
        given = [name for name, value in (("RECIPE", recipe), ("--out", out), ("--overwrite", overwrite),
                                          ("--init-from", init_from), ("--dry-run", dry_run)) if value]
        if given:
            raise TrmzooError(f"trmzoo train --resume {resume}: continues the run with its own recipe and folder, "
                              f"so {', '.join(given)} cannot be given (change values with --set)")
        metrics = run_training("", overrides=tuple(overrides), resume=resume, progress=not quiet)
    else:
        if recipe is None:
            raise TrmzooError("trmzoo train: give a RECIPE to start a run, or --resume RUN_DIR to continue one")
        path = str(resolve_recipe_path(recipe))
        if dry_run:
            return _dry_run(path, tuple(overrides), init_from, out, overwrite)
        metrics = run_training(path, overrides=tuple(overrides), out=out, overwrite=overwrite, init_from=init_from,
                               progress=not quiet)
    if os.environ.get("RANK", "0") == "0":  # one report under torchrun
        _print_metrics(metrics)


def _dry_run(path: str, overrides: tuple[str, ...], init_from: str | None, out: str | None, overwrite: bool) -> None:
    """The checks a real run makes before it trains, without building data, reading its tokens or training:
    the recipe, the evaluation, ``--out``, the dataset's folder, ``dataset.json`` files and training
    index arrays where it is built (the model then takes its sizes, as a run does, and one global batch must
    fit in an epoch), the model, built on the meta device, and the weights of a local ``--init-from``
    against it (a pretrained name or Hub repository is not downloaded). An error of a check after the
    recipe's validation names the file or the ``--set`` flag, as validation errors do."""
    from trmzoo.recipe import load_recipe, located

    recipe = load_recipe(path, overrides)
    with located(path, overrides):
        _dry_run_checks(recipe, path, init_from, out, overwrite)


def _dry_run_checks(recipe, path: str, init_from: str | None, out: str | None, overwrite: bool) -> None:
    from trmzoo import hub
    from trmzoo.data.format import read_metadata, read_split
    from trmzoo.data.loader import TrainBatches
    from trmzoo.distributed import local_device
    from trmzoo.factory import create_task
    from trmzoo.registry import get_registry
    from trmzoo.train.trainer import (
        check_model, check_run_folder, dataset_built, evaluation_strategy, init_state, planned_steps,
    )
    from trmzoo.weights import check_state

    task = create_task(recipe.task)
    local_device(recipe.train.device)
    evaluation_strategy(recipe, task)
    if out is not None:
        check_run_folder(Path(out), overwrite=overwrite)
    local_init = False  # a local folder's weights are checked against the model below; nothing is downloaded
    if init_from and init_from.startswith(hub.HUB_PREFIX):
        hub.split_hub_id(init_from)
    elif init_from:
        local_init = init_from not in get_registry().pretrained
    data_dir = Path(recipe.data.dir)
    metadata = None
    if dataset_built(recipe, task):
        metadata, arrays = read_split(data_dir, "train", mmap=True, check_values=False)  # its index arrays only
        read_metadata(data_dir / "test" / "dataset.json")
        planned_steps(recipe, metadata)
        TrainBatches(metadata, arrays, global_batch_size=recipe.train.global_batch_size, seed=recipe.train.seed)
        data = f"data {data_dir}: built, {metadata.total_groups:,} training puzzles"
    else:
        data = f"data {data_dir}: not built yet; the run builds it"
    config, model = check_model(recipe, task, metadata)
    if local_init:  # a local folder: its weights must fit the model, as in the run
        check_state(model.state_dict(), init_state(model, init_from), f"--init-from {init_from}")
    params, _ = model.parameter_counts()
    click.echo(f"{path}: valid; model {params:,} parameters (puzzle table excluded), "
               f"task {task.name}, vocab {config.vocab_size}, seq_len {config.seq_len}; {data}")


def _print_metrics(metrics: dict[str, float]) -> None:
    parts = [f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()]
    click.echo("final evaluation: " + " ".join(parts))
    if "exact_accuracy" in metrics:
        click.echo(f"exact accuracy on {int(metrics.get('count', 0))} held-out puzzles: "
                   f"{100 * metrics['exact_accuracy']:.1f}%")


@cli.command("eval")
@click.argument("model")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), help="Dataset folder (default: the run's).")
@click.option("--early-exit", is_flag=True, help="Stop each sample once its halting signal fires.")
@click.option("--max-puzzles", type=click.IntRange(min=1), help="Evaluate only the first N test puzzles.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Task-specific evaluator option, e.g. max_augmentations=8 for ARC.")
@click.option("--strategy", help="Inference strategy (default: plain; see docs/test-time-scaling.md).")
@click.option("--strategy-option", "strategy_options", multiple=True, metavar="KEY=VALUE",
              help="Option of the strategy, e.g. k=8 (values are read as YAML).")
@click.option("--submission", type=click.Path(dir_okay=False), help="Write a submission file (ARC: Kaggle format).")
@click.option("--overwrite", is_flag=True, help="Replace the file already at --submission.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--compile", "compiled", is_flag=True,
              help="torch.compile the step for fixed weights (slower start, faster steps; a CPU needs a C++ compiler).")
@click.option("--json", "as_json", is_flag=True)
def eval_command(model, data_dir, early_exit, max_puzzles, options, strategy, strategy_options, submission,
                 overwrite, batch_size, device, compiled, as_json):
    """Evaluate MODEL (run folder, weight folder or pretrained name) on a test split; a pretrained name
    needs --data DIR, the data build `trmzoo info NAME` names."""
    from trmzoo.api import load
    from trmzoo.card import HUB_PREFIX
    from trmzoo.factory import task_of
    from trmzoo.evaluation import check_evaluator_options, evaluate
    from trmzoo.distributed import local_device
    from trmzoo.recipe import recipe_cls
    from trmzoo.registry import get_registry
    from trmzoo.run import RECIPE_FILE
    from trmzoo.yamlio import read_yaml

    published = get_registry().pretrained.get(model) if not Path(model).exists() else None
    if published is not None:  # before a download of up to gigabytes: is there data to evaluate it on?
        weights = published[1]
        if weights.eval_refusal:
            raise DataError(f"{model}: evaluation refused: {weights.eval_refusal}")
        _check_data_before_download(model, data_dir, weights.data_build or f"a {weights.task} dataset")
    elif model.startswith(HUB_PREFIX):
        _check_data_before_download(model, data_dir, "a built dataset of the task it was trained on")
    loaded = load(model)
    loaded.to(local_device(device, source="--device"))
    task = task_of(loaded, model)
    if data_dir is None:
        recipe_file = Path(model) / RECIPE_FILE
        if not recipe_file.exists():
            raise TrmzooError(f"{model}: not a run folder; pass --data DIR")
        data_dir = recipe_cls().model_validate(read_yaml(recipe_file)).data.dir
    evaluator_options = check_evaluator_options(task, _key_values(options, "--option"), "--option")
    if submission is not None:  # before the evaluation, which may take hours
        folder = Path(submission).parent
        if not folder.is_dir():
            raise TrmzooError(f"--submission {submission}: the folder {folder} does not exist")
        check_output_file(Path(submission), flag="--submission", overwrite=overwrite)
    if compiled:
        loaded.compile_for_inference()
    metrics = evaluate(loaded, data_dir, task, batch_size=batch_size, early_exit=early_exit, max_puzzles=max_puzzles,
                       evaluator_options=evaluator_options, submission=submission,
                       progress=not as_json, strategy=strategy,
                       strategy_options=_key_values(strategy_options, "--strategy-option"))
    if as_json:
        _echo_json({**metrics, "strategy": strategy or "plain"})  # the keys of solve --json's answer
    else:
        if strategy:
            click.echo(f"strategy: {_strategy_words(strategy, metrics['uses_verify'])}")
        _print_metrics(metrics)


def _key_values(pairs: tuple[str, ...], flag: str) -> dict:
    """``KEY=VALUE`` arguments as a dict, the values read as YAML."""
    from trmzoo.yamlio import parse_yaml, yaml_problem

    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise TrmzooError(f"{flag} {pair!r}: expected KEY=VALUE")
        try:
            values[key.strip()] = parse_yaml(value)
        except yaml.YAMLError as exc:
            raise TrmzooError(f"{flag} {key.strip()}: the value {value!r} is not valid YAML ({yaml_problem(exc)})") \
                from None
    return values


def _strategy_words(name: str, uses_verify: float) -> str:
    note = " (uses the task's verify check: knowledge of the rules a pure model does not have)"
    return name + (note if uses_verify else "")


def _check_data_before_download(name: str, data_dir: str | None, needs: str) -> None:
    """A Hub model is evaluated on ``--data``: name the data it ``needs`` when that is missing or no dataset,
    before a download of up to gigabytes (check_data_compatible compares the rest after it)."""
    from trmzoo.data.format import is_dataset_dir

    if data_dir is None:
        raise TrmzooError(f"trmzoo eval {name}: give --data DIR, the data it is evaluated on: {needs} "
                          "(checked before the download)")
    if not Path(data_dir).is_dir() or not is_dataset_dir(data_dir):
        raise DataError(f"{data_dir}: no built dataset there; {name} needs: {needs} (checked before the download)")


@cli.command()
@click.argument("model")
@click.argument("puzzle")
@click.option("--early-exit", is_flag=True, help="Stop once the model's halting signal fires.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--trace", type=click.Path(dir_okay=False), help="Draw the answer after every step to this PNG.")
@click.option("--overwrite", is_flag=True, help="Replace the file already at --trace.")
@click.option("--strategy", help="Inference strategy (default: plain; see docs/test-time-scaling.md).")
@click.option("--strategy-option", "strategy_options", multiple=True, metavar="KEY=VALUE",
              help="Option of the strategy, e.g. k=8 (values are read as YAML).")
def solve(model, puzzle, early_exit, as_json, trace, overwrite, strategy, strategy_options):
    """Solve one PUZZLE (text or file, in the task's format) with MODEL."""
    from trmzoo.api import load
    from trmzoo.factory import make_strategy, task_of
    from trmzoo.plot import draw_trace, picture_path
    from trmzoo.task import Solution, solve_with

    trace = picture_path(trace) if trace else None  # a picture format matplotlib writes, checked first
    check_output_file(trace, flag="--trace", overwrite=overwrite)
    if trace is not None and not trace.parent.is_dir():
        raise TrmzooError(f"--trace {trace}: the folder {trace.parent} does not exist")
    if puzzle.strip() and Path(puzzle).is_dir():
        raise TrmzooError(f"{puzzle}: a folder; give a puzzle file, or the puzzle as text")
    loaded = load(model)
    task = task_of(loaded, model)
    parsed = task.parse(puzzle)  # a task reads text or a file path (ARC keeps the file name as task id)
    built = None
    if strategy or strategy_options:  # options without --strategy are the plain rollout's, checked as eval checks them
        options = _key_values(strategy_options, "--strategy-option")
        built = make_strategy(strategy, {**options, "early_exit": True} if early_exit else options, task=task)
        if trace and not built.traces:
            raise TrmzooError(f"--trace: strategy {strategy!r} keeps no per-step answers; only the plain rollout has a trace")
    solution = solve_with(task, loaded, parsed, early_exit=early_exit, strategy=built)
    if trace:
        draw_trace(solution, task, parsed, trace)
    if as_json:  # what a task's Solution adds (ARC: its attempts and votes) comes along
        extra = {f.name: getattr(solution, f.name) for f in dataclasses.fields(solution)
                 if f.name not in {base.name for base in dataclasses.fields(Solution)}}
        _echo_json({"solution": solution.text, "tokens": solution.tokens, "steps": solution.steps,
                    "q_halt": solution.q_halt, "valid": solution.valid, "strategy": strategy or "plain", **extra})
    else:
        if strategy:
            click.echo(f"strategy: {_strategy_words(built.name, built.uses_verify)}")
        click.echo(solution.text)
        rules = {None: "", True: "   valid: yes, it keeps every rule", False: "   valid: no, it breaks a rule"}[solution.valid]
        click.echo(f"supervision steps: {solution.steps}   confidence (sigmoid q_halt): {solution.q_halt:.3f}{rules}")
        if trace:
            click.echo(f"trace: {trace}")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="PNG path (default: RUN_DIR/curves.png, redrawn each time).")
@click.option("--overwrite", is_flag=True, help="Replace the file already at --out.")
def plot(run_dir, out, overwrite):
    """Draw RUN_DIR's training curves (loss, exact accuracy, mean steps, learning rate) to a PNG."""
    from trmzoo.plot import picture_path, plot_run

    if out is not None:
        out = picture_path(out)
        check_output_file(out, flag="--out", overwrite=overwrite)
    click.echo(plot_run(run_dir, out or Path(run_dir) / "curves.png"))


# -- the zoo ---------------------------------------------------------------------------------
@cli.command("list")
@click.argument("pattern", default="*")
@click.option("--pretrained", is_flag=True, help="List published weights instead of architectures.")
@click.option("--json", "as_json", is_flag=True)
def list_command(pattern, pretrained, as_json):
    """List registered models (shell wildcards)."""
    from trmzoo.registry import get_registry, list_models

    reg = get_registry()
    names = list_models(pattern, pretrained=pretrained)
    rows = []
    for name in names:
        if pretrained:
            entry, weights = reg.pretrained[name]
            rows.append({"name": name, "architecture": entry.name, "score": weights.score or "-",
                         "license": weights.license, "size": weights.size or "-", "hub": weights.hub_repo,
                         "revision": weights.revision, "file": weights.file, "protocol": weights.protocol})
        else:
            entry = reg.model[name]
            rows.append({"name": name, "plugin": entry.plugin, "description": entry.description})
    if as_json:
        return _echo_json(rows)
    if pretrained:  # a table: name, score, license, size (trmzoo info NAME shows the rest)
        table = [("name", "score", "license", "size")] + [(r["name"], r["score"], r["license"], r["size"]) for r in rows]
        widths = [max(len(line[i]) for line in table) for i in range(3)]
        for line in table:
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[3])
        return
    for row in rows:
        click.echo("  ".join(str(v) for v in row.values()))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json):
    """Show loaded plugins, their versions and what each contributed."""
    from trmzoo.plugins import plugin_failures, plugin_infos
    from trmzoo.registry import get_registry

    reg = get_registry()
    rows = [
        {"name": info.name, "module": info.module, "distribution": info.distribution, "version": info.version,
         "hooks": info.hooks, "contributes": reg.contributions.get(info.name, {}), "loaded": True, "error": None}
        for info in plugin_infos()
    ]
    failures = plugin_failures()
    if as_json:  # one list, whatever failed: a failed plugin is a row with loaded false and why
        return _echo_json(rows + [{"name": name, "module": None, "distribution": None, "version": None, "hooks": [],
                                   "contributes": {}, "loaded": False, "error": why} for name, why in failures.items()])
    for row in rows:
        contributed = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in row["contributes"].items())
        click.echo(f"{row['name']} ({row['distribution']} {row['version']}): {contributed or 'nothing'}")
    for name, why in failures.items():
        click.echo(f"{name}: NOT LOADED ({why})")


# -- recipes -----------------------------------------------------------------------------------
@cli.group()
def recipes():
    """List, show, validate recipes and print their JSON schema."""


@recipes.command("list")
def recipes_list():
    from trmzoo.recipe import find_recipes

    found = find_recipes()
    width = max(map(len, found), default=0)  # sub-folder names ("paper/table1_trm") run long
    for name, path in found.items():
        first = next(iter(path.read_text().splitlines()), "")
        click.echo(f"{name:{width}s}  {first.lstrip('# ').strip()}")


@recipes.command("show")
@click.argument("name")
def recipes_show(name):
    """Print a recipe (a file, or the name of a shipped one) as it is written."""
    from trmzoo.recipe import resolve_recipe_path
    from trmzoo.yamlio import read_yaml

    path = resolve_recipe_path(name)
    read_yaml(path)  # a file that is no YAML mapping (binary, not a recipe at all) is named and refused
    click.echo(path.read_text(encoding="utf-8"), nl=False)


@recipes.command("validate")
@click.argument("files", nargs=-1, required=True)
def recipes_validate(files):
    from trmzoo.recipe import load_recipe, resolve_recipe_path

    bad = []
    for file in files:
        try:
            load_recipe(resolve_recipe_path(file))
            click.echo(f"{file}: ok")
        except TrmzooError as exc:
            click.echo(str(exc), err=True)
            bad.append(file)
    if bad:
        raise TrmzooError(f"{len(bad)} of {len(files)} recipes are invalid")


@recipes.command("schema")
def recipes_schema():
    from trmzoo.recipe import recipe_cls

    _echo_json(recipe_cls().model_json_schema())


# -- data ---------------------------------------------------------------------------------------
@cli.group()
def data():
    """Build datasets in the on-disk format."""


@data.command("build", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("task_name")
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset in --out (once the new one is built).")
@click.pass_context
def data_build(ctx, task_name, out, overwrite):
    """Build TASK_NAME's dataset into --out; any other --option sets a field of the task's config
    (e.g. --num-aug 1000, --subsets training evaluation)."""
    from pydantic import ValidationError

    from trmzoo.data.format import build_dataset, build_fingerprint, embedding_fingerprint, read_identifiers
    from trmzoo.recipe import format_validation_error
    from trmzoo.registry import lookup
    from trmzoo.run import check_not_inside_run

    task_cls = lookup("task", task_name).task_cls
    options = _parse_task_options(task_cls.Config, ctx.args)
    check_not_inside_run(out)
    try:
        config = task_cls.Config.model_validate({"name": task_name, **options})
    except ValidationError as exc:
        raise TrmzooError(format_validation_error(exc, options, f"trmzoo data build {task_name}")) from None
    task = task_cls(config)
    build_dataset(out, lambda folder: task.build(folder, progress=True), overwrite=overwrite, task_config=config)
    click.echo(f"built {task_name} into {out}: build {build_fingerprint(out)}, "
               f"embedding {embedding_fingerprint(read_identifiers(out))}")


def _parse_task_options(config_cls, args: list[str]) -> dict:
    """``--key value ...`` or ``--key=value`` for the fields of a task's config; a yes/no field may stand alone."""
    fields = {k: f for k, f in config_cls.model_fields.items() if k != "name"}
    values: dict[str, list] = {}
    spelled: dict[str, str] = {}
    key = None
    for arg in args:
        if arg.startswith("--"):
            name, inline, value = arg.partition("=")
            key = name[2:].replace("-", "_")
            if key not in fields:
                raise TrmzooError(f"{name}: no such option for this task (options: "
                                  f"{', '.join('--' + k.replace('_', '-') for k in fields)})")
            if key in values:
                raise TrmzooError(f"{name}: given twice; give it once")
            values[key], spelled[key] = [], name
            if inline:
                values[key].append(yaml.safe_load(value))
        elif key is None:
            raise TrmzooError(f"{arg}: expected an --option before a value")
        else:
            values[key].append(yaml.safe_load(arg))
    options = {}
    for key, given in values.items():
        annotation = fields[key].annotation
        if typing.get_origin(annotation) is list or annotation is list:
            options[key] = given
        elif len(given) == 1:
            options[key] = given[0]
        elif not given and (annotation is bool or bool in typing.get_args(annotation)):
            options[key] = True
        elif not given:
            raise TrmzooError(f"{spelled[key]}: needs a value")
        else:
            raise TrmzooError(f"{spelled[key]}: takes one value, got {len(given)}: {' '.join(map(str, given))}")
    return options


# -- conversion and the Hub ---------------------------------------------------------------------
@cli.command("convert")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The run folder's all_config.yaml.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the trmzoo model to.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False),
              help="The dataset folder the run trained on (sizes from train/dataset.json).")
@click.option("--vocab-size", type=click.IntRange(min=1), help="Token vocabulary, when no --data is given.")
@click.option("--seq-len", type=click.IntRange(min=1), help="Grid tokens without the puzzle prefix, when no --data is given.")
@click.option("--task", "task_name", help="The task it was trained on (sudoku, maze, arc), so eval and solve read "
              "its puzzles (default: the one --data's task.json records, if any).")
@click.option("--overwrite", is_flag=True, help="Replace the model folder already in --out.")
def convert(checkpoint, config_path, out, data_dir, vocab_size, seq_len, task_name, overwrite) -> None:
    """Convert an official TRM/HRM checkpoint (a step_N file) to a trmzoo model folder."""
    from trmzoo.convert import load_official_checkpoint
    from trmzoo.data.format import read_task
    from trmzoo.files import build_dir, check_output_dir
    from trmzoo.registry import lookup
    from trmzoo.run import check_not_inside_run
    from trmzoo.weights import is_weight_dir, save_pretrained

    out = Path(out)
    check_not_inside_run(out)
    check_output_dir(out, what="model", overwrite=overwrite, is_replaceable=is_weight_dir)
    task_cls = lookup("task", task_name).task_cls if task_name is not None else None
    model = load_official_checkpoint(checkpoint, config_path, data_dir=data_dir, vocab_size=vocab_size, seq_len=seq_len)
    if task_cls is not None:
        length = task_cls(task_cls.Config()).seq_len  # the official builds are the tasks' defaults
        if length != model.config.seq_len:
            raise TrmzooError(f"--task {task_name}: its puzzles are {length} tokens, the checkpoint reads "
                              f"{model.config.seq_len}")
        model.provenance.task = {"name": task_name}
    elif data_dir is not None and (built := read_task(data_dir)) is not None:  # a dataset trmzoo built says its task
        model.provenance.task = built
    build_dir(out, lambda folder: save_pretrained(model, folder, location=str(out)), what="model")
    cfg = model.config
    click.echo(
        f"{out}: {model.provenance.source.converter.split('@')[0]} -> trmzoo (hidden {cfg.hidden_size},"
        f" vocab {cfg.vocab_size}, seq_len {cfg.seq_len}, {cfg.num_puzzle_identifiers} puzzle ids)"
    )


@cli.command("push")
@click.argument("source", metavar="RUN_DIR|MODEL")
@click.argument("repo_id", metavar="ORG/NAME")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--revision", default=None, help="Branch to upload to (created if missing).")
@click.option("--token", default=None, envvar="HF_TOKEN", help="Hub token (default: the logged-in one).")
@click.option("--license", "license_", default=None,
              help="The weights' license for the card, an SPDX id (default: the one the weights record, else mit).")
def push(source: str, repo_id: str, private: bool, revision: str | None, token: str | None,
         license_: str | None) -> None:
    """Upload a run folder's weights (or a weight folder, or a pretrained name) with a model card."""
    from trmzoo.api import load
    from trmzoo.hub import push_to_hub

    if revision is not None and not revision.strip():
        raise TrmzooError("--revision: empty; give a branch name, or leave the option out for main")
    target = source if Path(source).is_dir() else load(source)
    url = push_to_hub(target, repo_id, private=private, revision=revision, token=token, license=license_)
    click.echo(f"pushed to {url}")


@cli.command("info")
@click.argument("name")
def info(name: str) -> None:
    """Show the card of a pretrained entry, a registered model, or a trained model (a run, a weight
    folder, hf-hub:org/repo)."""
    click.echo(_describe(name))


def _describe(name: str) -> str:
    """The card of a pretrained entry (by name or alias), a registered model, or a model ``load`` reads
    (a run or weight folder, ``hf-hub:``), as text."""
    from trmzoo.card import HUB_PREFIX
    from trmzoo.factory import create_model
    from trmzoo.registry import get_registry, lookup

    registry = get_registry()
    if name not in registry.pretrained and name not in registry.model:
        if name.startswith((HUB_PREFIX, "local-dir:")) or "/" in name or Path(name).exists():
            return _describe_trained(name)
        close = difflib.get_close_matches(name, [*registry.model, *registry.pretrained], n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "`trmzoo list` and `trmzoo list --pretrained` list them"
        raise TrmzooError(f"{name!r}: no registered model, pretrained name or folder of that name; {hint}")
    if name in registry.pretrained:
        model_entry, weights = registry.pretrained[name]
        settings = f"in the entry (no all_config.yaml): {json.dumps(weights.settings)}" if weights.settings else ""
        evaluate = f"refused: {weights.eval_refusal}" if weights.eval_refusal else \
            f"trmzoo eval {name} --data DIR, DIR being the data build above"
        rows = [
            ("weights", f"{model_entry.name}.{weights.name}"), ("aliases", ", ".join(weights.aliases)),
            ("model", model_entry.name), ("source", f"{HUB_PREFIX}{weights.hub_repo}@{weights.revision}"),
            ("file", weights.file), ("size", weights.size or "not known"), ("config", weights.config_file or settings),
            ("format", weights.format), ("task", weights.task or ""),
            ("trained", ", ".join(f"{k}={v}" for k, v in weights.expected.items())),
            ("score", f"{weights.score} ({weights.score_source})" if weights.score else weights.score_source),
            ("protocol", weights.protocol), ("license", weights.license), ("data", weights.data_build),
            ("evaluate", evaluate), ("notes", weights.notes),
        ]
        return _card(rows)
    entry = lookup("model", name)
    model = create_model(name)
    weights = [f"{name}.{w.name}" for w in entry.pretrained]
    rows = [("model", name), ("about", entry.description), ("plugin", entry.plugin), ("parameters", _parameters(model)),
            ("weights", ", ".join(weights) or "none published"), ("config", json.dumps(entry.config))]
    return _card(rows)


def _describe_trained(name: str) -> str:
    """What a trained model is, from its config.json (its weights are loaded to count them)."""
    from trmzoo.api import load

    model = load(name)
    config, record = model.config, model.provenance
    task = dict(record.task or {})
    source = record.source
    rows = [
        ("model", name), ("preset", record.architecture or ""), ("weights", record.pretrained or ""),
        ("task", ", ".join([str(task.pop("name", "not recorded"))] + [f"{k}={v}" for k, v in task.items()
                                                                        if v is not None])),
        ("step", "" if record.step is None else str(record.step)),
        ("parameters", _parameters(model)),
        ("shape", f"hidden_size={config.hidden_size}, expansion={config.expansion}, seq_len={config.seq_len}, "
                  f"vocab_size={config.vocab_size}"),
        ("network", ", ".join(f"{part}: {_settings(getattr(config, part))}" for part in ("backbone", "recursion", "halting"))),
        ("dtype", config.forward_dtype),
        ("source", "" if source is None else " ".join(str(v) for v in (source.repo, source.revision, source.file) if v)),
        ("license", record.license or ""), ("data", record.data.build), ("evaluate", record.eval_refusal and
                                                                         f"refused: {record.eval_refusal}"),
    ]
    return _card(rows)


def _card(rows: list[tuple[str, str]]) -> str:
    """``info``'s layout: one ``key  value`` line per row that has a value."""
    return "\n".join(f"{key:<11}{value}" for key, value in rows if value)


def _parameters(model) -> str:
    network, table = model.parameter_counts()
    return (f"{network:,} (puzzle table of {table:,} for {model.config.num_puzzle_identifiers} puzzle id(s) "
            "not counted)")


def _settings(section) -> str:
    values = section.model_dump()
    kind = values.pop("kind", "?")
    return f"{kind}({', '.join(f'{k}={v}' for k, v in values.items())})"


def _add_plugin_commands() -> None:
    """Each plugin's ``register_commands``; one that raises is isolated like a plugin failing at import:
    the commands it added and everything it registered are taken out."""
    from trmzoo.plugins import isolate, pm
    from trmzoo.registry import get_registry

    registry = get_registry()
    for impl in pm.hook.register_commands.get_hookimpls():
        before = set(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:
            for name in set(cli.commands) - before:
                cli.commands.pop(name)
            isolate(impl.plugin_name, exc, "register_commands")
            registry.drop(impl.plugin_name)


def main() -> None:
    """Entry point: keep freed memory for reuse (a process of steps), load plugin commands, run the CLI."""
    quiet_libraries()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        keep_freed_memory()
        fused_ops_enabled()  # a mistyped TRMZOO_FUSED_OPS fails here, not at the first step
        _add_plugin_commands()
    except TrmzooError as exc:  # e.g. a mistyped variable, or two plugins clash: nothing can run until it is fixed
        if "--debug" in sys.argv:
            raise
        click.echo(f"error: {one_line(str(exc))}", err=True)
        sys.exit(1)
    cli.main(prog_name="trmzoo")
