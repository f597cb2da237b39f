"""The trmzoo weight format: a folder with ``config.json``, ``model.safetensors``, when the
model has one ``puzzle_emb.safetensors``, when they are known the puzzle identifiers
(``identifiers.json``), and the ``README.md`` model card.

``config.json`` (``format_version`` 2) holds the model's arguments, its parameter counts
and its :class:`~trmzoo.core.provenance.Provenance` (architecture, task, data build,
source, license, training step). The per-puzzle embedding table lives in its own file
because for ARC it is 99% of the bytes and belongs to one data build (recorded as
``embedding_fingerprint``); the names of its rows travel with it in ``identifiers.json``,
so nothing points at a folder of the machine that wrote the weights. Folders of
``format_version`` 1 (trmzoo 0.1, whose config held free-form keys and an absolute
``data_dir``) still load. Loading checks names and shapes strictly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from trmzoo.card import CARD_FILE, render_card
from trmzoo.core.model import RecursiveModel
from trmzoo.core.provenance import Provenance
from trmzoo.data.format import IDENTIFIERS_FILE, read_identifiers
from trmzoo.errors import CheckpointError
from trmzoo.factory import build_model
from trmzoo.files import atomic_write
from trmzoo.recipe import format_validation_error, model_config_cls
from trmzoo.registry import plugin_uses, require
from trmzoo.version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PUZZLE_FILE = "puzzle_emb.safetensors"
PUZZLE_KEY = "puzzle_emb.weight"
FORMAT_VERSION = 2
WEIGHT_KEYS = ("format_version", "trmzoo_version", "model_args", "parameters")
"""The keys of config.json that are not the provenance record."""


def model_state(model: RecursiveModel) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split the state dict into the network's tensors and the puzzle table."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    table = {PUZZLE_KEY: state.pop(PUZZLE_KEY)} if PUZZLE_KEY in state else {}
    return state, table


def save_pretrained(model: RecursiveModel, directory: str | Path, *, location: str | None = None) -> Path:
    """Write ``model`` as a trmzoo weight folder with its provenance and model card; every file is
    written atomically, and a weight folder's file this model has none of is removed. ``location`` is the
    folder the card's usage example names (default: ``directory``; another when the folder is built under a
    temporary name)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    network, table = model_state(model)
    meta = {"format": "pt", "trmzoo_version": __version__}
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(network, str(p), metadata=meta))
    if table:
        atomic_write(directory / PUZZLE_FILE, lambda p: save_file(table, str(p), metadata=meta))
    else:  # a folder saved into again must not keep another model's table (nor its identifiers, below)
        (directory / PUZZLE_FILE).unlink(missing_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "trmzoo_version": __version__,
        "model_args": model.config.model_dump(mode="json"),
        "parameters": dict(zip(("network", "puzzle_table"), model.parameter_counts())),
        **model.provenance.model_dump(mode="json", exclude_defaults=True, exclude={"plugins"}),
        "plugins": [use.model_dump(mode="json") for use in plugin_uses(components(model.config, model.provenance))],
    }
    identifiers = model.provenance.identifiers
    if identifiers is not None:
        atomic_write(directory / IDENTIFIERS_FILE, lambda p: p.write_text(json.dumps(identifiers)))
    else:
        (directory / IDENTIFIERS_FILE).unlink(missing_ok=True)
    atomic_write(directory / CONFIG_FILE, lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
    write_card(directory, config, network_params=config["parameters"]["network"],
               table_params=config["parameters"]["puzzle_table"], location=location or str(directory))
    return directory


def write_card(directory: str | Path, config: dict[str, Any], **card: Any) -> Path:
    """Write the model card ``README.md`` of a weight folder (see :func:`trmzoo.card.render_card`)."""
    path = Path(directory) / CARD_FILE
    text = render_card(config, **card)
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def is_weight_dir(directory: str | Path) -> bool:
    """Whether ``directory`` holds a trmzoo model (its config.json has ``model_args``), which ``--overwrite`` may
    replace; a folder of another library's ``config.json`` (a Hugging Face model) is not one."""
    try:
        return isinstance(read_config(directory).get("model_args"), dict)
    except CheckpointError:
        return False


def read_config(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    try:
        config = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{directory}: no {CONFIG_FILE}; not a trmzoo model folder") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:  # invalid JSON, or not UTF-8 at all
        raise CheckpointError(f"{path}: invalid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a JSON object; not a trmzoo model config")
    return config


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupted or truncated safetensors file ({exc})") from None


def check_safetensors(path: str | Path) -> None:
    """Cheap integrity check before use: ``safe_open`` parses the header and refuses a file that does not
    hold exactly the bytes it announces (a cut download), without reading the tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: corrupted or truncated safetensors file ({reason})") from None


def load_state_strict(model: RecursiveModel, state: dict[str, torch.Tensor], source: str, *,
                      names: dict[str, str] | None = None) -> None:
    """Copy ``state`` into ``model``, cast to the model's dtypes, once :func:`check_state` has passed."""
    expected = model.state_dict()
    check_state(expected, state, source, names=names)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def check_state(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], source: str, *,
                names: dict[str, str] | None = None) -> None:
    """Refuse ``state`` for a model whose state dict is ``expected`` (it may live on the meta device): any
    missing, unexpected or misshapen tensor, or one with NaN, is an error naming it (by ``names``, a
    converted checkpoint's own names, where given)."""
    names = names or {}

    def listed(keys: list[str]) -> str:
        shown = ", ".join(names.get(k, k) for k in keys[:5])
        return f"tensor{'s' if len(keys) > 1 else ''} {shown}{' ...' if len(keys) > 5 else ''}"

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = [f"missing {listed(missing)}"] if missing else []
        parts += [f"unexpected {listed(unexpected)}"] if unexpected else []
        raise CheckpointError(f"{source}: weights do not match the model: {'; '.join(parts)}")
    for key, tensor in state.items():
        name, want = names.get(key, key), expected[key]
        if tuple(tensor.shape) != tuple(want.shape):
            raise CheckpointError(f"{source}: {name} has shape {tuple(tensor.shape)}, the model expects {tuple(want.shape)}")
        if tensor.is_floating_point() != want.is_floating_point():
            raise CheckpointError(f"{source}: {name} holds {tensor.dtype} values, the model expects {want.dtype}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{source}: {name} holds NaN or infinite values (a damaged file, or a run that diverged)")


def components(model_args: Any, provenance: Provenance) -> dict[str, str]:
    """The registered components a model uses: kind -> name (its task too, when it records one)."""
    args = model_args if isinstance(model_args, dict) else model_args.model_dump()
    sections = {kind: args.get(kind) for kind in ("backbone", "recursion", "halting")}
    used = {kind: section.get("kind") for kind, section in sections.items() if isinstance(section, dict)}
    used["task"] = (provenance.task or {}).get("name")
    return {kind: name for kind, name in used.items() if isinstance(name, str)}


def read_provenance(directory: str | Path, config: dict[str, Any]) -> Provenance:
    """The provenance a weight folder's config.json records (either format version), with the puzzle
    identifiers of its identifiers.json, or for a version 1 folder of its ``data_dir`` while that exists."""
    directory = Path(directory)
    path = directory / CONFIG_FILE
    version = config.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version} is newer than this trmzoo reads "
                              f"({FORMAT_VERSION}); upgrade trmzoo")
    if version == 1:
        provenance = Provenance.from_v1(config)
        old_dir = config.get("data_dir")
        if provenance.identifiers is None and old_dir and (Path(old_dir) / IDENTIFIERS_FILE).is_file():
            provenance.identifiers = read_identifiers(old_dir)
    else:
        record = {k: v for k, v in config.items() if k not in WEIGHT_KEYS}
        try:
            provenance = Provenance.model_validate(record)
        except ValidationError as exc:
            raise CheckpointError(format_validation_error(exc, record, str(path))) from None
    if (directory / IDENTIFIERS_FILE).is_file():
        provenance.identifiers = read_identifiers(directory)
    return provenance


def load_pretrained_dir(directory: str | Path) -> RecursiveModel:
    """Build the model described by a weight folder's config.json and load its weights."""
    directory = Path(directory)
    config = read_config(directory)
    path = directory / CONFIG_FILE
    if not isinstance(config.get("model_args"), dict):
        raise CheckpointError(f"{path}: model_args {'is not a mapping' if 'model_args' in config else 'missing'}; "
                              "not a trmzoo model config")
    provenance = read_provenance(directory, config)
    require(components(config["model_args"], provenance), provenance.plugins, str(directory))
    try:
        args = model_config_cls().model_validate(config["model_args"])
    except ValidationError as exc:
        raise CheckpointError(format_validation_error(exc, config["model_args"], str(path), prefix="model_args.")) \
            from None
    model = build_model(args)
    state = _read_tensors(directory / WEIGHTS_FILE)
    if model.puzzle_emb is not None:
        state.update(_read_tensors(directory / PUZZLE_FILE))
    load_state_strict(model, state, str(directory))
    model.provenance = provenance
    model.eval()
    return model
