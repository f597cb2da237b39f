"""``trmzoo train``: deep supervision with the official persistent carry, on one or many processes.

Each optimizer step is one supervision step: samples that halted take a new
example from the loader, the others keep theirs (``schedule: carry``). The
``inner_loop`` schedule instead runs every supervision step on one batch before
taking the next, as the paper's pseudo-code describes.

A run folder (:mod:`trmzoo.run`) holds ``recipe.yaml`` (resolved), ``metrics.jsonl``, ``weights/``
(EMA weights in the trmzoo format) and ``resume.pt`` (live weights, optimizer,
EMA, RNG, carry and loader position). Every file is written to a temporary name
and renamed, so a run killed at any moment keeps its last complete checkpoint and
``--resume`` reaches, on the same machine, bit for bit the weights of a run that
was never stopped.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from trmzoo import distributed as D
from trmzoo.api import load
from trmzoo.core.model import Carry, RecursiveModel
from trmzoo.core.provenance import DataProvenance, Provenance
from trmzoo.core.supervision import IGNORE_LABEL, LOSSES, supervision_loss
from trmzoo.core.trajectories import best_trajectory, replicate, select
from trmzoo.data.format import (
    DatasetMetadata, build_dataset, build_fingerprint, check_built_with, check_dataset_task, embedding_fingerprint,
    read_identifiers, read_split,
)
from trmzoo.data.loader import Augment, TrainBatches, check_batch_split
from trmzoo.errors import CheckpointError, DataError, RecipeError, TrainingError, TrmzooError
from trmzoo.evaluation import check_evaluator_options, evaluate, make_evaluator
from trmzoo.factory import build_model, create_task, make_strategy, resolve_model_config
from trmzoo.recipe import dump_recipe, located, validate_recipe
from trmzoo.files import NewFolder, atomic_write, check_output_dir
from trmzoo.run import (
    LAUNCH_FILE, METRICS_FILE, RECIPE_FILE, RESUME_FILE, SUBMISSION_FILE, WEIGHTS_DIR, check_not_inside_run, is_replaceable_run,
    last_evaluation, new_run_dir, read_metrics,
)
from trmzoo.strategy import Strategy
from trmzoo.task import Task
from trmzoo.train.optim import AdamATan2, ParameterEMA, SparseSignSGD, lr_at, muon_with_adam_atan2
from trmzoo.registry import require
from trmzoo.weights import (
    CONFIG_FILE, PUZZLE_KEY, components, load_state_strict, read_config, read_provenance, save_pretrained,
)
from trmzoo.yamlio import read_yaml


def init_state(model: RecursiveModel, source: str) -> dict[str, torch.Tensor]:
    """The trained weights ``--init-from source`` starts ``model`` from: a puzzle table of another
    size is replaced by its mean row (``model`` may live on the meta device)."""
    state = load(source).state_dict()
    own = model.state_dict()
    key = PUZZLE_KEY
    if key in state and key in own and state[key].shape[1:] == own[key].shape[1:] \
            and state[key].shape != own[key].shape:
        state[key] = state[key].mean(dim=0, keepdim=True).expand(own[key].shape).contiguous()
    return state


def check_run_folder(run_dir: Path, *, overwrite: bool) -> bool:
    """Refuse a ``--out`` folder a new run cannot take: inside another run, or holding anything but a
    run that ``overwrite`` replaces. Returns whether the run there is replaced. Changes nothing."""
    check_not_inside_run(run_dir)
    return check_output_dir(run_dir, what="run", overwrite=overwrite, is_replaceable=is_replaceable_run,
                            hint=f"continue it with --resume {run_dir}, " if (run_dir / RESUME_FILE).exists() else "")


def check_model(recipe, task, metadata=None):
    """The recipe's model config (sizes from the dataset's ``metadata``, or without data from the ``task``) and
    its model built on the meta device (shapes only, no memory), with the run's settings checked against it:
    what a run would refuse about its model and its batch, before any data is built."""
    if metadata is not None:
        check_task_sizes(task, metadata, recipe.data.dir)
    config = resolve_model_config(recipe, metadata, task=task)
    check_training_settings(recipe, config)
    check_batch_split(recipe.train.global_batch_size, D.env_int("WORLD_SIZE", 1))  # torchrun's process count
    if recipe.train.augment:
        check_augment(task, metadata)
    with torch.device("meta"):
        return config, build_model(config)


def check_task_sizes(task: Task, metadata, data_dir) -> None:
    """The dataset holds the task's tokens: its vocabulary and length are the task's (a plugin's builder and
    its task can disagree; the run would build its model for the data and read puzzles for the task)."""
    built, reads = (metadata.vocab_size, metadata.seq_len), (task.vocab_size, task.seq_len)
    if built != reads:
        raise DataError(f"{data_dir}: dataset.json says vocab_size {built[0]}, seq_len {built[1]}, and the "
                        f"{task.name} task reads vocab_size {reads[0]}, seq_len {reads[1]}; rebuild it with "
                        f"`trmzoo data build {task.name}`, or fix the task's builder")


def check_augment(task: Task, metadata=None) -> None:
    """What ``train.augment`` needs: a task that augments, and (once the data is built) one puzzle identifier,
    since a fresh transform of a puzzle would not match the embedding of the version it was built as."""
    if type(task).augment is Task.augment:
        raise RecipeError(f"train.augment: the task {task.name!r} defines no augmentation")
    ids = 0 if metadata is None else metadata.num_puzzle_identifiers
    if ids > 1:
        raise RecipeError(f"train.augment: the dataset has {ids} puzzle identifiers; a fresh transform would not "
                          "match a puzzle's own embedding (build the augmented versions instead)")


def check_training_settings(recipe, config) -> None:
    """The training settings that must fit the model's config (also for ``--dry-run``)."""
    cfg = recipe.train
    if cfg.autocast and config.forward_dtype == "float32":
        raise RecipeError("train.autocast: needs model.forward_dtype bfloat16 (float32 needs no autocast)")
    if cfg.freeze_weights and not config.puzzle_emb_ndim:
        raise RecipeError("train.freeze_weights: the model has no puzzle embedding (model.puzzle_emb_ndim is 0)"
                          " so nothing would be trained")
    recursion = config.recursion
    for i, stage in enumerate(cfg.curriculum):  # each depth a stage sets must be one the recursion has and can change
        for key in ("H_cycles", "L_cycles"):
            if getattr(stage, key) is not None and key not in type(recursion).model_fields:
                raise RecipeError(f"train.curriculum.{i}.{key}: the recursion {recursion.kind!r} has no {key}")
        if stage.L_cycles is not None and getattr(recursion, "latents", None) == "multiscale":
            raise RecipeError(f"train.curriculum.{i}.L_cycles: multiscale latents keep one state per L cycle, "
                              "so n cannot change during training")


def planned_steps(recipe, metadata: DatasetMetadata) -> int:
    """``train.max_steps``, or the optimizer steps of ``train.epochs`` over the training split."""
    cfg = recipe.train
    steps = cfg.max_steps or int(cfg.epochs * metadata.total_groups * metadata.mean_puzzle_examples / cfg.global_batch_size)
    if steps <= 0:
        raise RecipeError("train.max_steps: the run would take 0 steps (raise train.epochs or set train.max_steps)")
    return steps


def dataset_built(recipe, task: Task) -> bool:
    """Whether the recipe's dataset is there (it must be the task's); False where a run will build it.
    Refuses, without touching anything, what a run could neither use nor build (also for ``--dry-run``)."""
    data_dir = Path(recipe.data.dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"data.dir {data_dir}: is a file, not a dataset folder")
    if (data_dir / "train" / "dataset.json").exists():
        check_dataset_task(data_dir, task.name, "recipe's task.name")
        check_built_with(data_dir, task.config)
        return True
    if not recipe.data.build:
        raise DataError(f"{data_dir}: no dataset; build it with `trmzoo data build {task.name} --out {data_dir}`")
    if data_dir.is_dir() and any(data_dir.iterdir()):
        raise DataError(f"{data_dir}: holds files but no dataset (no train/dataset.json), so it is left alone; "
                        "point data.dir at a dataset or a new folder")
    return False


def prepare_data(recipe, task: Task, *, progress: bool = True) -> Path:
    """The recipe's dataset folder, built by the task when missing and allowed."""
    data_dir = Path(recipe.data.dir)
    if not dataset_built(recipe, task):
        build_dataset(data_dir, lambda folder: task.build(folder, progress=progress), task_config=task.config)
    return data_dir


def evaluation_strategy(recipe, task: Task) -> Strategy:
    """The recipe's evaluation, checked before a run touches data or files (and by ``--dry-run``): its
    evaluator options, and its strategy, returned built."""
    check_evaluator_options(task, recipe.eval.evaluator_options, "eval.evaluator_options")
    options = {**recipe.eval.strategy_options, **({"early_exit": True} if recipe.eval.early_exit else {})}
    return make_strategy(recipe.eval.strategy, options, task=task, source="eval.strategy_options",
                         name_source="eval.strategy")


@dataclass
class TrainState:
    step: int
    carry: Carry | None
    log_window: dict[str, float] = field(default_factory=dict)
    """Metric sums since the last log record, so a resumed run logs what an unstopped one does."""


class Trainer:
    """Owns one run: model, optimizers, EMA, loader, carry and the run folder."""

    def __init__(self, recipe, run_dir: Path, *, init_from: str | None = None, progress: bool = True) -> None:
        self.recipe, self.run_dir, self.progress = recipe, Path(run_dir), progress
        cfg = recipe.train
        self.device = D.local_device(cfg.device)
        self.dist = D.init_distributed(self.device)
        self.task = create_task(recipe.task)
        self.strategy = evaluation_strategy(recipe, self.task)  # refused before any training
        if self.dist.is_main:
            prepare_data(recipe, self.task, progress=progress)
        D.barrier(self.dist)
        self.data_dir = Path(recipe.data.dir)
        self.metadata, arrays = read_split(self.data_dir, "train", mmap=True)
        config, _ = check_model(recipe, self.task, self.metadata)  # the data's sizes, before the seed is set
        read_split(self.data_dir, "test", mmap=True)  # a damaged test split fails now, not after the training
        evaluator = make_evaluator(self.task, self.data_dir, max_puzzles=1, options=recipe.eval.evaluator_options)
        self.writes_submission = hasattr(evaluator, "write_submission")
        """Whether each evaluation writes the task's submission file (ARC) into the run folder."""
        torch.manual_seed(cfg.seed)
        self.autocast_dtype = None
        if cfg.autocast:
            self.autocast_dtype = getattr(torch, config.forward_dtype)
            config = config.model_copy(update={"forward_dtype": "float32"})
        self.model = build_model(config).to(self.device)
        self.model.provenance = self._provenance()
        if init_from:
            self._init_from(init_from)
        D.broadcast_state(self.model, self.dist)
        self.loader = TrainBatches(
            self.metadata, arrays, global_batch_size=cfg.global_batch_size, seed=cfg.seed,
            rank=self.dist.rank, world_size=self.dist.world_size,
            augment=self._augmenter() if cfg.augment else None,
        )
        self.max_steps = planned_steps(recipe, self.metadata)
        self.optimizer = None
        if cfg.freeze_weights:
            for p in self.model.parameters():
                p.requires_grad_(False)
        else:
            params = list(self.model.parameters())
            betas = (cfg.beta1, cfg.beta2)
            if cfg.optimizer == "adam_atan2":
                self.optimizer = AdamATan2(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
            elif cfg.optimizer == "muon":
                self.optimizer = muon_with_adam_atan2(self.model, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
            else:
                self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
        self.sparse = (
            SparseSignSGD(self.model.puzzle_emb, lr=cfg.puzzle_emb_lr, weight_decay=cfg.puzzle_emb_weight_decay)
            if self.model.puzzle_emb is not None else None
        )
        self.ema = ParameterEMA(self.model, decay=cfg.ema_rate) if cfg.ema and not cfg.freeze_weights else None
        # Batch-dependent random draws (halting exploration) come from one seed shared by all processes.
        self.explore_rng = torch.Generator().manual_seed(cfg.seed + 1)
        self.state = TrainState(step=0, carry=None)
        self.new_folder: NewFolder | None = None
        """The run folder as this command made it, put back as it was if the run fails before its first checkpoint."""
        self.tensorboard = None
        if cfg.compile:
            self.model.compile()  # the whole supervision step, training and evaluation

    # -- set-up ------------------------------------------------------------------------------
    def _augmenter(self) -> Augment:
        """On-the-fly augmentation through the task's ``augment``, one fresh transform per row."""
        task = self.task  # check_model made sure it augments and the data fits

        def augment(inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
            new_inputs, new_labels = np.empty_like(inputs), np.empty_like(labels)
            for row in range(len(inputs)):
                new_inputs[row], new_labels[row], _ = task.augment(inputs[row], labels[row], rng)
            return new_inputs, new_labels

        return augment

    @contextmanager
    def _stage(self, step: int):
        """The recursion depth and supervision steps of the curriculum stage holding at ``step``."""
        stage = next((s for s in self.recipe.train.curriculum if step <= s.until_step), None)
        if stage is None:
            yield
            return
        recursion, halting = self.model.recursion, self.model.halting
        config, max_steps = recursion.config, halting.max_steps
        depth = {k: getattr(stage, k) for k in ("H_cycles", "L_cycles") if getattr(stage, k) is not None}
        recursion.config = config.model_copy(update=depth)
        halting.max_steps = stage.max_steps or max_steps
        try:
            yield
        finally:
            recursion.config, halting.max_steps = config, max_steps

    def _step_weights(self, steps: torch.Tensor) -> torch.Tensor | None:
        """Per-sample token-loss weights from each sample's supervision step (None: all alike)."""
        decay = self.recipe.train.supervision_weight_decay
        if decay == 1.0:
            return None
        n = self.model.halting.max_steps
        mean = sum(decay**k for k in range(n)) / n
        return decay ** (steps.clamp(max=n) - 1).to(torch.float64) / mean

    def _provenance(self) -> Provenance:
        """What the trained weights say of themselves: the recipe's preset, its task, the data build and
        its puzzle identifiers (kept in the weight folder, so no path of this machine is recorded)."""
        identifiers = read_identifiers(self.data_dir)
        return Provenance(
            architecture=self.recipe.model.preset,
            task=self.recipe.task.model_dump(mode="json"),
            data=DataProvenance(build_fingerprint=build_fingerprint(self.data_dir),
                                embedding_fingerprint=embedding_fingerprint(identifiers)),
            identifiers=identifiers,
        )

    def _init_from(self, source: str) -> None:
        load_state_strict(self.model, init_state(self.model, source), f"--init-from {source}")

    # -- one step ----------------------------------------------------------------------------
    def _explore(self, size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Exploration draws for the whole global batch, then this process's slice; None where a
        sample gets one supervision step only (``halting.max_steps: 1``): there is nothing to explore."""
        if self.model.halting.max_steps < 2:
            return None
        g = self.recipe.train.global_batch_size
        uniform = torch.rand(g, generator=self.explore_rng)
        minimum = torch.randint(2, self.model.halting.max_steps + 1, (g,), generator=self.explore_rng, dtype=torch.int32)
        lo = self.dist.rank * size
        return uniform[lo : lo + size].to(self.device), minimum[lo : lo + size].to(self.device)

    def _rng_untouched(self):
        """Evaluating and saving leave the random generators as they were, so they cannot
        change the training that follows."""
        return torch.random.fork_rng(devices=[self.device.index or 0] if self.device.type == "cuda" else [])

    def _forward_context(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _position(self) -> dict[str, Any]:
        """Everything besides weights and optimizer states that the next step depends on."""
        carry = self.state.carry
        return {
            "step": self.state.step,
            "loader": dict(self.loader.position),
            "explore_rng": self.explore_rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "carry": None if carry is None else {f.name: getattr(carry, f.name) for f in fields(Carry)},
            "log_window": dict(self.state.log_window),
        }

    def train_step(self) -> dict[str, torch.Tensor]:
        """One optimizer step (one supervision step); returns its metrics summed over the global batch."""
        schedule = self.recipe.train.schedule
        before = self._position()
        carry = self.state.carry
        if schedule == "carry" or carry is None:
            batch = self._next_batch()
            if carry is None:
                carry = self.model.initial_carry(batch)
        else:  # inner_loop: the same examples until every one of them halted
            batch = carry.data
        with self._stage(self.state.step + 1):
            carry, metrics = self._optimizer_step(carry, batch, before)
        if schedule == "inner_loop":
            running = D.all_reduce_sum({"running": (~carry.halted).sum()}, self.dist)["running"]
            if running == 0:  # every sample of the global batch halted: all processes take new batches together
                carry = None
            else:
                carry.halted = torch.zeros_like(carry.halted)
        self.state.carry = carry
        return metrics

    def _optimizer_step(self, carry: Carry, batch: dict[str, torch.Tensor], before: dict[str, Any]):
        cfg = self.recipe.train
        self.model.train()
        with self._forward_context():
            explore = self._explore(batch["inputs"].shape[0])
            if cfg.parallel_latents > 1:
                carry, out = self._parallel_step(carry, batch, explore)
            else:
                carry, out = self.model.step(carry, batch, explore=explore)
            loss, metrics = supervision_loss(out, carry.data["labels"], self.model.halting, cfg.loss,
                                             weights=self._step_weights(out.steps))
        metrics = D.all_reduce_sum({**metrics, "loss": loss.detach()}, self.dist)
        if not math.isfinite(float(metrics["loss"])):
            self.save(before)  # nothing was updated yet: the state before this step is the last good one
            raise TrainingError(
                f"step {self.state.step + 1}: the loss is {float(metrics['loss'])}; the state before it is saved in "
                f"{self.run_dir} (lower train.lr, then --resume {self.run_dir} --set train.lr=...)"
            )
        (loss / cfg.global_batch_size).backward()
        D.all_reduce_grads(self.model, self.dist)
        step = self.state.step + 1
        min_ratio = 1.0 if cfg.lr_schedule == "constant" else cfg.lr_min_ratio
        schedule = dict(warmup_steps=cfg.lr_warmup_steps, total_steps=self.max_steps, min_ratio=min_ratio,
                        shape="linear" if cfg.lr_schedule == "linear" else "cosine")
        lr = lr_at(step, base_lr=cfg.lr, **schedule)
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        if self.sparse is not None:
            self.sparse.lr = lr_at(step, base_lr=cfg.puzzle_emb_lr, **schedule)
            self.sparse.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.state.step = step
        metrics["lr"] = torch.tensor(lr if self.optimizer is not None else self.sparse.lr)  # frozen: the table's
        return carry, metrics

    def _parallel_step(self, carry: Carry, batch: dict[str, torch.Tensor], explore):
        """One supervision step of K noisy copies of every sample (trajectory-major rows); returns the
        carry and output of each sample's lowest-loss copy, so only that copy gets gradients."""
        cfg = self.recipe.train
        k, size = cfg.parallel_latents, batch["inputs"].shape[0]
        start = replicate(self.model.begin(carry, batch), k)
        if start.z is not None and cfg.latent_noise > 0:
            # drawn for the whole global batch, this process's rows kept: N processes train like one
            shape = (k - 1, cfg.global_batch_size, *start.z.shape[1:])
            lo = self.dist.rank * size
            noise = torch.randn(shape, device=start.z.device, dtype=start.z.dtype)[:, lo : lo + size].flatten(0, 1)
            start.z = torch.cat((start.z[:size], start.z[size:] + cfg.latent_noise * noise))
        carry, out = self.model.step(start, start.data, explore=replicate(explore, k))
        with torch.no_grad():
            labels = carry.data["labels"]
            mask = labels != IGNORE_LABEL
            token_loss = LOSSES[cfg.loss](out.logits, labels, mask).sum(-1) / mask.sum(-1).clamp_min(1)
            winner = best_trajectory(-token_loss, k)
        return select(carry, winner), select(out, winner)

    def _next_batch(self) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in next(self.loader).items()}

    # -- the loop ----------------------------------------------------------------------------
    def _out_of_time(self, deadline: float | None) -> bool:
        """Whether ``train.time_budget_s`` is spent; all processes agree, so they stop at the same step."""
        if deadline is None:
            return False
        late = torch.tensor(float(time.perf_counter() >= deadline), device=self.device)
        return bool(D.all_reduce_sum({"late": late}, self.dist)["late"] > 0)

    def fit(self) -> dict[str, float]:
        """Train to ``max_steps`` (from wherever the state is), save, and return the final evaluation (a
        finished run resumed as it is returns its own, without saving or evaluating again)."""
        cfg = self.recipe.train
        done = last_evaluation(self.run_dir) if self.state.step >= self.max_steps else {}
        if done.get("step") == self.state.step:
            return {k.removeprefix("eval/"): v for k, v in done.items() if k.startswith("eval/")}
        self.tensorboard = self._open_tensorboard()
        bar = tqdm(total=self.max_steps, initial=self.state.step, disable=not (self.progress and self.dist.is_main),
                   desc="train", dynamic_ncols=True)
        started, timed_steps = time.perf_counter(), 0  # the speed counts this process's steps only
        deadline = None if cfg.time_budget_s is None else started + cfg.time_budget_s
        try:
            out_of_time = self._out_of_time(deadline)
            while self.state.step < self.max_steps and not out_of_time:
                self._accumulate(self.state.log_window, self.train_step())
                timed_steps += 1
                bar.update(1)
                step = self.state.step
                out_of_time = self._out_of_time(deadline)
                if step % cfg.log_interval == 0 or step == self.max_steps or out_of_time:  # the last steps logged too
                    record = self._summarise(self.state.log_window)
                    record["samples_per_s"] = timed_steps * cfg.global_batch_size / max(
                        time.perf_counter() - started, 1e-9)
                    self.log({"step": step, **record})
                    bar.set_postfix(loss=f"{record['loss']:.3f}", exact=f"{record.get('exact_accuracy', 0):.3f}")
                    self.state.log_window, started, timed_steps = {}, time.perf_counter(), 0
                if cfg.eval_interval and step % cfg.eval_interval == 0 and step < self.max_steps:
                    self.evaluate()
                if cfg.checkpoint_interval and step % cfg.checkpoint_interval == 0 and step < self.max_steps:
                    self.save()
            bar.close()
            self.save()
            return self.evaluate()
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()

    @staticmethod
    def _accumulate(window: dict[str, float], metrics: dict[str, torch.Tensor]) -> None:
        for key, value in metrics.items():
            window[key] = window.get(key, 0.0) + float(value)
        window["_updates"] = window.get("_updates", 0.0) + 1

    def _summarise(self, window: dict[str, float]) -> dict[str, float]:
        updates = max(window.get("_updates", 1.0), 1.0)
        count = window.get("count", 0.0)
        record = {
            "loss": window.get("loss", 0.0) / updates / self.recipe.train.global_batch_size,
            "lr": window.get("lr", 0.0) / updates,
        }
        for key in ("accuracy", "exact_accuracy", "q_halt_accuracy", "steps"):
            if count:
                record[key] = window.get(key, 0.0) / count
        return record

    def evaluate(self) -> dict[str, float]:
        """The task's metrics on the test split, with the EMA weights unless told otherwise."""
        cfg = self.recipe.eval
        use_ema = self.ema is not None and cfg.use_ema
        if use_ema:
            self.ema.swap(self.model)
        try:
            # without autocast: the saved model (fp32 weights, forward_dtype float32) is what `trmzoo eval` scores
            with self._rng_untouched():
                metrics = evaluate(
                    self.model, self.data_dir, self.task,
                    batch_size=cfg.batch_size or self.recipe.train.global_batch_size,
                    max_puzzles=cfg.max_puzzles, evaluator_options=cfg.evaluator_options,
                    submission=self.run_dir / SUBMISSION_FILE if self.writes_submission else None,
                    progress=self.progress, dist=self.dist,
                    strategy=self.strategy,
                )
        finally:
            if use_ema:
                self.ema.swap(self.model)
        self.log({"step": self.state.step, **{f"eval/{k}": v for k, v in metrics.items()}})
        return metrics

    # -- files ------------------------------------------------------------------------------
    def _open_tensorboard(self):
        """A TensorBoard writer in RUN_DIR/tensorboard when TensorBoard is installed (rank 0 only)."""
        if not self.dist.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        # purge_step drops events a killed run wrote after the checkpoint it resumes from
        return SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.state.step + 1 if self.state.step else None)

    def log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        with open(self.run_dir / METRICS_FILE, "a") as f:
            f.write(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in record.items()}) + "\n")
        if self.tensorboard is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, record["step"])

    def save(self, position: dict[str, Any] | None = None) -> None:
        """Write EMA weights to ``weights/`` and the full resume state to ``resume.pt`` (rank 0),
        each file under a temporary name then renamed; ``position`` defaults to the current one."""
        position = dict(position or self._position())
        position["carry"] = self._global_carry(position["carry"])
        if self.dist.is_main:
            if self.ema is not None:
                self.ema.swap(self.model)
            try:
                self.model.provenance.step = position["step"]
                with self._rng_untouched():
                    save_pretrained(self.model, self.run_dir / WEIGHTS_DIR)
            finally:
                if self.ema is not None:
                    self.ema.swap(self.model)
            resume = {
                **position,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else {},
                "ema": self.ema.state_dict() if self.ema is not None else {},
            }
            atomic_write(self.run_dir / RESUME_FILE, lambda tmp: torch.save(resume, tmp))
            if self.new_folder is not None:  # the run's first checkpoint: the run folder is final
                self.new_folder.keep()
        D.barrier(self.dist)

    def _global_carry(self, carry: dict[str, Any] | None) -> dict[str, Any] | None:
        """Every process's carry rows in rank order (all processes take part): the carry of the whole
        global batch, as one process would hold it, so ``resume.pt`` does not depend on the process count."""
        if carry is None or self.dist.world_size == 1:
            return carry

        def gather(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            if t.dtype == torch.bool:  # gloo gathers no bool tensors
                return D.all_gather_rows(t.to(torch.uint8)).bool()
            return D.all_gather_rows(t)

        return {k: {n: gather(t) for n, t in v.items()} if k == "data" else gather(v) for k, v in carry.items()}

    def _local_carry(self, carry: dict[str, Any], path: Path) -> Carry:
        """This process's rows of the global batch's carry."""
        rows = carry["steps"].shape[0]
        if rows != self.recipe.train.global_batch_size:
            raise CheckpointError(f"{path}: its carry holds {rows} samples, train.global_batch_size is "
                                  f"{self.recipe.train.global_batch_size}")
        local = rows // self.dist.world_size
        lo = self.dist.rank * local

        def take(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[lo : lo + local].to(self.device)

        return Carry(**{k: {n: take(t) for n, t in v.items()} if k == "data" else take(v) for k, v in carry.items()})

    def restore(self) -> None:
        """Continue from ``resume.pt``: weights, optimizer, EMA, RNGs, carry and loader position."""
        path = self.run_dir / RESUME_FILE
        try:
            resume = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"{self.run_dir}: no {RESUME_FILE} to resume from (the run saved no checkpoint)") from None
        except Exception as exc:  # a foreign or damaged file (a killed save never replaces the old one)
            raise CheckpointError(f"{path}: cannot read the resume state ({exc})") from None
        if isinstance(resume, dict) and isinstance(resume.get("step"), int) and resume["step"] > self.max_steps:
            raise RecipeError(f"train.max_steps: {self.max_steps} is below step {resume['step']}, which {self.run_dir} "
                              "has reached; raise it to train further (the run is left as it was)")
        try:
            self.model.load_state_dict(resume["model"])
            if self.optimizer is not None:
                self.optimizer.load_state_dict(resume["optimizer"])
            if self.ema is not None:
                self.ema.load_state_dict(resume["ema"])
            self.explore_rng.set_state(resume["explore_rng"])
            torch.set_rng_state(resume["torch_rng"])
            if resume["cuda_rng"] is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(resume["cuda_rng"], self.device)
            self.loader.seek(resume["loader"])
            carry = resume["carry"]
        except (KeyError, RuntimeError, ValueError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            detail = next((line for line in lines if "size mismatch" in line or "key(s)" in line), lines[0])
            raise CheckpointError(f"{path}: does not match this run's recipe ({detail[:300]})") from None
        if carry is not None:
            carry = self._local_carry(carry, path)
        self.state = TrainState(step=resume["step"], carry=carry, log_window=dict(resume.get("log_window", {})))
        if self.dist.is_main:
            self._forget_after(self.state.step)
        D.barrier(self.dist)

    def _forget_after(self, step: int) -> None:
        """Drop what a killed run wrote after its last checkpoint: later metrics and stray temporaries."""
        for stray in [*self.run_dir.glob(f".{RESUME_FILE}.tmp*"), *self.run_dir.glob(f"{WEIGHTS_DIR}/.*.tmp*")]:
            stray.unlink(missing_ok=True)
        metrics = self.run_dir / METRICS_FILE
        if metrics.exists():
            kept = [json.dumps(r) + "\n" for r in read_metrics(self.run_dir) if r.get("step", 0) <= step]
            atomic_write(metrics, lambda tmp: tmp.write_text("".join(kept)))


def _require_run_plugins(run_dir: Path, raw: dict[str, Any]) -> None:
    """A run to resume needs the plugins its saved weights record; name the one missing."""
    weights = run_dir / WEIGHTS_DIR
    if not (weights / CONFIG_FILE).exists():
        return
    provenance = read_provenance(weights, read_config(weights))
    require(components(raw.get("model") or {}, provenance), provenance.plugins, str(run_dir), what="run")


STATE_SETTINGS = ("optimizer", "ema", "freeze_weights")
"""Training settings a resume cannot change: the checkpoint holds the optimizer and EMA states they made."""


def train(
    recipe_path: str, *, overrides: tuple[str, ...] = (), out: str | None = None, resume: str | None = None,
    overwrite: bool = False, init_from: str | None = None, progress: bool = True,
) -> dict[str, float]:
    """Run a recipe end to end (or continue ``resume``); returns the final evaluation metrics.

    A new run needs a free ``out`` folder (missing or empty) unless ``overwrite`` replaces the run
    there. Nothing in the folder changes until every check has passed: a refused ``--resume`` leaves
    the run as it was. A worker group that torchrun restarted (``--max-restarts``) continues the run
    its launch started from the last checkpoint.
    """
    if resume:
        run_dir = Path(resume)
        raw = read_yaml(run_dir / RECIPE_FILE)
        _require_run_plugins(run_dir, raw)
        recipe = validate_recipe(raw, str(run_dir / RECIPE_FILE), overrides)
        saved = validate_recipe(raw, str(run_dir / RECIPE_FILE)).train if overrides else recipe.train
        for key in STATE_SETTINGS:  # what the checkpoint's optimizer and EMA states were made by
            if getattr(saved, key) != getattr(recipe.train, key):
                raise RecipeError(f"--set train.{key}: the run was trained with {getattr(saved, key)}, and its "
                                  f"checkpoint's states carry over to nothing else; start a new run with "
                                  f"--init-from {run_dir}")
    else:
        recipe = validate_recipe(read_yaml(recipe_path), recipe_path, overrides)
        run_dir = Path(out) if out else _restarted_launch_folder(recipe_path) or new_run_dir(recipe_path)
        if _started_by_this_launch(run_dir):
            resume = _continue_after_restart(run_dir, recipe)
            overwrite = resume is None  # killed before its first checkpoint: start again in its own folder
        else:
            overwrite = check_run_folder(run_dir, overwrite=overwrite)
    source = str(run_dir / RECIPE_FILE) if resume else recipe_path
    with located(source, overrides):
        check_model(recipe, create_task(recipe.task))
        trainer = Trainer(recipe, run_dir, init_from=init_from, progress=progress)
    if resume:
        try:
            trainer.restore()
        except TrmzooError as exc:
            if not overrides:
                raise
            raise type(exc)(f"{exc} (with --set {', --set '.join(overrides)})") from None
    try:
        if trainer.dist.is_main:  # on --resume, records the overrides given
            if not resume:
                trainer.new_folder = NewFolder(run_dir, replace=overwrite)
                if D.elastic_run_id() is not None:
                    launch = json.dumps({"torchelastic_run_id": D.elastic_run_id()})
                    atomic_write(run_dir / LAUNCH_FILE, lambda tmp: tmp.write_text(launch + "\n"))
            atomic_write(run_dir / RECIPE_FILE, lambda tmp: tmp.write_text(dump_recipe(recipe)))
        D.barrier(trainer.dist)
        metrics = trainer.fit()
    except BaseException:  # an error or Ctrl-C before the first checkpoint: --out as it was
        if trainer.new_folder is not None:
            trainer.new_folder.undo()
        raise
    D.shutdown(trainer.dist)  # on an error, torchrun ends the other processes instead
    return metrics


def _restarted_launch_folder(recipe_path: str) -> Path | None:
    """The default run folder (``runs/<recipe>-<time>``) this torchrun launch started, when this process is a
    restart of it: the time in the name is the first attempt's, so the folder is found by its launch.json."""
    if D.elastic_restart_id() is None:
        return None
    return next((folder for folder in sorted(Path("runs").glob(f"{Path(recipe_path).stem}-*"))
                 if _started_by_this_launch(folder)), None)


def _started_by_this_launch(run_dir: Path) -> bool:
    """Whether this process is a torchrun restart and ``run_dir`` was started by the same launch."""
    launch = D.elastic_restart_id()
    try:
        return launch is not None and json.loads((run_dir / LAUNCH_FILE).read_text())["torchelastic_run_id"] == launch
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _continue_after_restart(run_dir: Path, recipe) -> str | None:
    """The run folder to resume after a torchrun restart (None: no checkpoint yet), if it holds the same recipe."""
    if not (run_dir / RESUME_FILE).exists():
        return None
    saved = validate_recipe(read_yaml(run_dir / RECIPE_FILE), str(run_dir / RECIPE_FILE))
    if dump_recipe(saved) != dump_recipe(recipe):
        raise TrmzooError(f"{run_dir}: holds this launch's run with another recipe; it is left as it was")
    return str(run_dir)
