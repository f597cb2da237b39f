"""Recipes: YAML files validated by pydantic models that are built after plugins load.

A recipe assembles a model, a task, a dataset and a training setup. The schema's
``backbone``, ``recursion``, ``halting`` and ``task`` sections are discriminated
unions over what plugins registered, so a plugin's config is validated like a
built-in one. Errors name the file and the dotted path.
"""

from __future__ import annotations

import copy
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model, field_validator

from trmzoo.core.config import Config, path_part
from trmzoo.core.model import DEFAULT_KINDS, ModelConfigBase
from trmzoo.errors import RecipeError, TrmzooError
from trmzoo.plugins import pm
from trmzoo.registry import get_registry, lookup
from trmzoo.yamlio import parse_yaml, read_yaml, yaml_problem


class DataConfig(Config):
    dir: str = "data/default"
    """Dataset folder in the on-disk format; built from the task's options when missing."""
    build: bool = True
    """Build the dataset with the task's builder when ``dir`` does not exist yet."""


class CurriculumStage(Config):
    """One stage of a depth curriculum (CGAR, arXiv 2511.08653): shallower recursion early in training."""

    until_step: int = Field(ge=1)
    """The stage holds for optimizer steps up to and including this one (1-based)."""
    H_cycles: int | None = Field(None, ge=1)
    """T in this stage (None: the model's)."""
    L_cycles: int | None = Field(None, ge=1)
    """n in this stage (None: the model's)."""
    max_steps: int | None = Field(None, ge=1)
    """Supervision steps N_sup in this stage (None: ``model.halting.max_steps``)."""


class TrainConfig(Config):
    global_batch_size: int = Field(768, ge=1)
    max_steps: int | None = Field(None, ge=1)
    """Total optimizer steps; when unset, derived from ``epochs`` as the official code does."""
    time_budget_s: float | None = Field(None, gt=0)
    """Also stop after this many seconds of training in this process, then save and evaluate as at
    the end (equal wall-clock comparisons; the learning-rate schedule still follows ``max_steps``)."""
    epochs: int = Field(1, ge=1)
    lr: float = Field(1.0e-4, ge=0)
    lr_warmup_steps: int = Field(2000, ge=0)
    lr_schedule: Literal["cosine", "constant", "linear"] = "cosine"
    """After the warmup: cosine or linear decay to ``lr_min_ratio`` at ``max_steps``, or constant."""
    lr_min_ratio: float = Field(1.0, ge=0, le=1)
    """Floor of the decay as a fraction of the peak; the official 1.0 makes the schedule constant after warmup."""
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    optimizer: Literal["adam_atan2", "adamw", "muon"] = "adam_atan2"
    """``muon``: torch's Muon (its AdamW-matched step size, so ``lr`` means the same) for the recursion's
    weight matrices, AdamATan2 for everything else."""
    puzzle_emb_lr: float = Field(1.0e-2, ge=0)
    puzzle_emb_weight_decay: float = Field(0.1, ge=0)
    ema: bool = True
    ema_rate: float = Field(0.999, ge=0, le=1)
    loss: Literal["stablemax", "softmax"] = "stablemax"
    augment: bool = False
    """Give every training example a fresh random symmetry of its task (the task's ``augment``) each time
    it is drawn: on-the-fly augmentation instead of, or on top of, the versions the builder stored."""
    curriculum: list[CurriculumStage] = []
    """Depth curriculum: stages by ``until_step``; after the last one the model's own depth. Evaluation and
    saved weights always use the model's depth."""
    supervision_weight_decay: float = Field(1.0, gt=0)
    """Weight the token loss of supervision step t by ``decay**(t-1)``, normalised to mean 1 over the
    steps (CGAR's decaying supervision weights); 1.0 weights all steps alike (official)."""
    parallel_latents: int = Field(1, ge=1)
    """K: each sample runs as K copies side by side, copies 2..K with Gaussian noise of std ``latent_noise``
    added to the latent z at every step; only the copy with the lowest token loss is back-propagated and
    carried on ("Speed is Confidence", arXiv 2601.19085). 1: off (official). Costs K times the compute."""
    latent_noise: float = Field(0.1, ge=0)
    """Std of the noise on the latent of the extra copies when ``parallel_latents`` > 1."""
    schedule: Literal["carry", "inner_loop"] = "carry"
    """``carry``: one supervision step per optimizer step with the persistent carry (official);
    ``inner_loop``: all supervision steps on one batch before the next (the paper's pseudo-code)."""
    freeze_weights: bool = False
    """Train only the puzzle embeddings (adapting a trained model to new puzzles)."""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    """Any seed torch's generators take (with room for the offsets added for each stream)."""
    eval_interval: int | None = Field(None, ge=1)
    """Evaluate on the test split every this many steps (and always at the end)."""
    checkpoint_interval: int | None = Field(None, ge=1)
    log_interval: int = Field(10, ge=1)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    autocast: bool = False
    """Use torch.autocast for the forward dtype instead of the official explicit casts."""
    compile: bool = False
    """``torch.compile`` the whole supervision step (``model.compile()``), for training and evaluation."""

    @field_validator("curriculum")
    @classmethod
    def _check_curriculum(cls, curriculum: list[CurriculumStage]) -> list[CurriculumStage]:
        ends = [stage.until_step for stage in curriculum]
        if ends != sorted(set(ends)):
            raise ValueError(f"the stages' until_step must increase, got {ends}")
        return curriculum


class EvalConfig(Config):
    batch_size: int | None = Field(None, ge=1)
    """Test batch size (default: the training global batch size)."""
    max_puzzles: int | None = Field(None, ge=1)
    """Evaluate only the first puzzles of the test split (ARC: all versions of the first tasks)."""
    evaluator_options: dict[str, Any] = {}
    """Task-specific evaluator options (ARC: ``max_augmentations``); an option the task's evaluator does
    not take is an error."""
    early_exit: bool = False
    """Stop each sample once its halting signal fires instead of running all steps (the plain strategy's option)."""
    strategy: str | None = None
    """Inference strategy of the evaluations (None: the plain rollout; docs/test-time-scaling.md)."""
    strategy_options: dict[str, Any] = {}
    """Options of ``strategy``, validated by the strategy (an unknown one is an error)."""
    use_ema: bool = True


def _union(configs: list[type], tag: str):
    if not configs:
        return Any
    if len(configs) == 1:
        return configs[0]
    return Annotated[Union[tuple(configs)], Field(discriminator=tag)]


_built: tuple[object, tuple[type, type]] | None = None
"""The schemas and the registry they were built from (by identity: a new registry may reuse an old id())."""


def _schemas() -> tuple[type, type]:
    global _built
    reg = get_registry()
    if _built is not None and _built[0] is reg:
        return _built[1]
    backbones = [c.config_cls for c in reg.backbone.values()]
    recursions = [c.config_cls for c in reg.recursion.values()]
    haltings = [c.config_cls for c in reg.halting.values()]
    tasks = [t.task_cls.Config for t in reg.task.values()]

    def default(table, name):
        return table[name].config_cls() if name in table else ...

    model_cls = create_model(
        "ModelConfig",
        __base__=ModelConfigBase,
        backbone=(_union(backbones, "kind"), default(reg.backbone, DEFAULT_KINDS["backbone"])),
        recursion=(_union(recursions, "kind"), default(reg.recursion, DEFAULT_KINDS["recursion"])),
        halting=(_union(haltings, "kind"), default(reg.halting, DEFAULT_KINDS["halting"])),
    )
    recipe_model_cls = create_model(
        "RecipeModelConfig",
        __base__=model_cls,
        preset=(str | None, Field(None, description=(
            "Start from this registered model's config; the other keys override it. Kept after validation, so "
            "a trained model names the architecture it started from."))),
    )
    recipe_cls = create_model(
        "Recipe",
        __base__=Config,
        model=(recipe_model_cls, ...),
        task=(_union(tasks, "name"), ...),
        data=(DataConfig, DataConfig()),
        train=(TrainConfig, TrainConfig()),
        eval=(EvalConfig, EvalConfig()),
    )
    _built = (reg, (model_cls, recipe_cls))
    return model_cls, recipe_cls


def model_config_cls() -> type[ModelConfigBase]:
    return _schemas()[0]


def recipe_cls() -> type[BaseModel]:
    return _schemas()[1]


def apply_override(data: dict, assignment: str, source: str = "--set") -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to the raw recipe dict."""
    if "=" not in assignment:
        raise RecipeError(f"{source} {assignment!r}: expected KEY.PATH=VALUE")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(part.strip() for part in parts):
        raise RecipeError(f"{source} {assignment!r}: {key.strip() or 'the key'} is not a dotted path such as train.lr")
    try:
        value = parse_yaml(raw)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{source} {key.strip()}: the value {raw!r} is not valid YAML ({yaml_problem(exc)})") from None
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise RecipeError(f"{source} {key}: {'.'.join(parts[: i + 1])} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _merge(base: dict, extra: dict) -> dict:
    """Deep-merge ``extra`` into ``base``. A section naming another ``kind`` replaces the
    base section instead: the fields of one backbone or halting policy mean nothing to another."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        old = merged.get(key)
        nested = isinstance(value, dict) and isinstance(old, dict) and key != "task"
        if nested and value.get("kind", old.get("kind")) == old.get("kind"):
            merged[key] = _merge(old, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def expand_model_preset(model: dict, where: str = "model.preset") -> dict:
    """``model.preset: NAME`` starts from a registered model's config; other keys override it. ``where``
    names the preset in an error (the recipe file's path to it, or the ``--set`` that gave it)."""
    if not isinstance(model, dict) or "preset" not in model:
        return model
    rest = {k: v for k, v in model.items() if k != "preset"}
    if model["preset"] is None:
        return rest
    if not isinstance(model["preset"], str):
        raise RecipeError(f"{where}: {model['preset']!r} is not a model name (see `trmzoo list`)")
    try:
        preset = lookup("model", model["preset"]).config
    except TrmzooError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    return _merge(preset, rest)


def _dotted(loc: tuple, data: Any) -> str:
    """Dotted path of a pydantic error location, without the union tag segments pydantic inserts."""
    return _walk(loc, data)[0]


def _walk(loc: tuple, data: Any) -> tuple[str, str | None]:
    """(the dotted path of ``loc``, the last union tag it passed: the kind whose schema judged the value)."""
    parts, node, tag = [], data, None
    for item in loc:
        if isinstance(node, dict) and item not in node and any(node.get(t) == item for t in ("kind", "name")):
            tag = str(item)
            continue  # the discriminator tag
        parts.append(path_part(item))
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts), tag


def _error_text(err: dict, path: str) -> str:
    msg = err["msg"]
    text = f"{msg[0].lower()}{msg[1:]}".removeprefix("value error, ")
    tag = err["loc"][-1] if err["loc"] else None
    if err["type"] == "union_tag_invalid" or (err["type"] == "literal_error" and tag in ("kind", "name")):
        # a kind (or task name) no loaded plugin registered (with one plugin left there is no union)
        union = err["type"] == "union_tag_invalid"
        kind = (path if union else path.rsplit(".", 1)[0]).rsplit(".", 1)[-1] or "component"
        given = err["ctx"]["tag"] if union else err["input"]
        known = (err["ctx"]["expected_tags"] if union else err["ctx"]["expected"]).replace(chr(39), "")
        text = (f"no loaded plugin registers the {kind} {given!r} (registered: {known}); install or enable the "
                "plugin that provides it")
    return text


def format_validation_error(exc: ValidationError, data: Any, source: str, prefix: str = "") -> str:
    """pydantic's errors as one line: ``source: dotted.path: what is wrong; ...`` (``prefix`` goes before
    each path, for a section validated on its own)."""
    messages = []
    for err in exc.errors():
        path = prefix + _dotted(err["loc"], data)
        text = _error_text(err, path)
        messages.append(f"{path}: {text}" if path else text)
    return f"{source}: " + "; ".join(messages)


def _overridden(path: str, override_keys: set[str]) -> str | None:
    """The ``--set`` key that gave the value at ``path`` (the path itself, or a section above it)."""
    return next((key for key in override_keys if path == key or path.startswith(key + ".")), None)


def validate_recipe(data: dict, source: str = "recipe", overrides: tuple[str, ...] = ()) -> BaseModel:
    """Validate a recipe's raw data after its ``--set`` overrides; an error names ``--set PATH`` when that
    value came from an override, else ``source`` (the file) and the dotted path."""
    data = copy.deepcopy(data)
    for assignment in overrides:
        apply_override(data, assignment)
    override_keys = {a.split("=", 1)[0].strip() for a in overrides}
    if isinstance(data.get("model"), dict) and data["model"].get("preset") is not None:
        key = _overridden("model.preset", override_keys)
        where = f"--set {key}" if key else f"{source}: model.preset"
        data["model"] = {**expand_model_preset(data["model"], where), "preset": data["model"]["preset"]}
    try:
        return recipe_cls().model_validate(data)
    except ValidationError as exc:
        from_file, from_set = [], []
        for err in exc.errors():
            path, tag = _walk(err["loc"], data)
            key = _overridden(path, override_keys)
            if key is None:  # a section's own check may concern a value set inside it
                inside = sorted(k for k in override_keys if not path or k.startswith(path + "."))
                also = f" (with --set {', --set '.join(inside)})" if inside else ""
                from_file.append(f"{path}: {_error_text(err, path)}{also}" if path else _error_text(err, path) + also)
            elif err["type"] == "extra_forbidden" and path == key:
                section = path.rsplit(".", 2)[-2] if "." in path else ""
                kind = f" (the {tag} {section} has no {path.rsplit('.', 1)[-1]})" if tag and section else ""
                from_set.append(f"--set {path}: no such setting in the recipe schema{kind}")
            else:
                from_set.append(f"--set {key}: {path + ': ' if path != key else ''}{_error_text(err, path)}")
        parts = from_set + ([f"{source}: " + "; ".join(from_file)] if from_file else [])
        raise RecipeError("; ".join(parts)) from None


SECTION_PATH = re.compile(r"((?:model|train|task|eval|data)(?:\.\w+)+): ")
"""A message that starts with a dotted recipe path (``model.backbone.num_heads: ...``)."""


@contextmanager
def located(source: str, overrides: tuple[str, ...] = ()) -> Iterator[None]:
    """Name the place of a recipe error raised by a check made after validation (building the model, the
    run's settings against it): the ``--set`` flag that gave the value, else ``source``, the file."""
    try:
        yield
    except RecipeError as exc:
        text, match = str(exc), SECTION_PATH.match(str(exc))
        if match is None or text.startswith((source, "--set ")):
            raise
        key = _overridden(match.group(1), {a.split("=", 1)[0].strip() for a in overrides})
        if key is None:
            raise RecipeError(f"{source}: {text}") from None
        raise RecipeError(f"--set {text}" if key == match.group(1) else f"--set {key}: {text}") from None


def load_recipe(path: str | Path, overrides: tuple[str, ...] = ()) -> BaseModel:
    """Read, override and validate a recipe file."""
    return validate_recipe(read_yaml(path), str(path), overrides)


def dump_recipe(recipe: BaseModel) -> str:
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)


SHIPPED_RECIPES = Path(__file__).resolve().parent / "recipes"
"""Where a built wheel installs the repository's recipes/ (package data of ``trmzoo.recipes``)."""
SOURCE_RECIPES = Path(__file__).resolve().parents[1] / "recipes"
"""The recipes/ folder of a source checkout (and so of an editable install)."""


def recipe_dirs() -> list[Path]:
    """Where named recipes are looked up: ./recipes, the shipped recipes, plugins' recipes/."""
    dirs = [Path.cwd() / "recipes", SHIPPED_RECIPES if SHIPPED_RECIPES.is_dir() else SOURCE_RECIPES]
    for _, plugin in pm.list_name_plugin():
        if plugin is not None and getattr(plugin, "__file__", None):
            dirs.append(Path(plugin.__file__).resolve().parent / "recipes")
    unique = []
    for d in dirs:
        if d.is_dir() and d not in unique:
            unique.append(d)
    return unique


def find_recipes() -> dict[str, Path]:
    """Named recipes, the first directory of recipe_dirs() winning a name.

    A recipe in a sub-folder is named by its relative path ("fast/sudoku_mlp"), so that it neither
    hides nor is hidden by a top-level one ("sudoku_mlp"). Hidden folders (.ipynb_checkpoints) hold
    copies, not recipes, and are skipped.
    """
    found: dict[str, Path] = {}
    get_registry()
    for d in recipe_dirs():
        names = {path.relative_to(d).with_suffix("").as_posix(): path for path in d.rglob("*.yaml")}
        for name in sorted(names, key=lambda n: (n.count("/"), n)):  # top-level recipes first
            if not any(part.startswith(".") for part in name.split("/")):
                found.setdefault(name, names[name])
    return found


def resolve_recipe_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    recipes = find_recipes()
    if name_or_path in recipes:
        return recipes[name_or_path]
    raise RecipeError(f"{name_or_path}: no such recipe file or named recipe (see `trmzoo recipes list`)")
