"""Checkpoints of other code bases into trmzoo models, and back.

A :class:`Converter` turns the files of one foreign architecture into a trmzoo model
config and a state dict under trmzoo's names. Each model family's plugin contributes
the converters of its published checkpoints with the ``register_converters`` hook
(``plugins/trmzoo_trm``: the official TRM, TRM-singlez and TRM-hier6 files;
``plugins/trmzoo_hrm``: HRM; ``plugins/trmzoo_direct``: the direct baseline); the core
names none of them. It holds the interface, :class:`OfficialConverter` (the layout all
checkpoints of the official code bases share), and the drivers.

An official run folder holds ``step_N`` files (``torch.save`` of the state dict of
``torch.compile(ACTLossHead(model))``, keys prefixed ``_orig_mod.model.``) and
``all_config.yaml`` whose ``arch`` section names the model class and its settings.
The vocabulary, sequence length and puzzle count are not in that file: the official
code takes them from the dataset's ``train/dataset.json``.

Every setting the weights reveal is checked against the config, because a silent
mismatch gives a model that runs and is wrong. ``H_cycles`` (T) and ``L_cycles`` (n)
leave no trace in the weights: they are taken from the config and, when a registry
entry says what the weights were trained with (``expected``), compared with it.
"""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path
from typing import Any, Callable

import torch

from trmzoo.core.layers import swiglu_width
from trmzoo.core.model import RecursiveModel
from trmzoo.core.provenance import SourceProvenance
from trmzoo.data.format import IDENTIFIERS_FILE, DatasetMetadata, embedding_fingerprint, read_identifiers
from trmzoo.errors import CheckpointError, DataError, RecipeError
from trmzoo.factory import build_model
from trmzoo.registry import get_registry, lookup
from trmzoo.weights import load_state_strict
from trmzoo.yamlio import read_yaml

SIZES = ("vocab_size", "seq_len", "num_puzzle_identifiers")
"""What a model needs from its dataset; a converter gets each of them, or None where the caller does not know it."""
LOSS = {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}
TOP = {
    "embed_tokens.embedding_weight": "embed_tokens.weight",
    "embed_pos.embedding_weight": "embed_pos.weight",
    "puzzle_emb.weights": "puzzle_emb.weight",
    "lm_head.weight": "lm_head.weight",
    "q_head.weight": "q_head.weight",
    "q_head.bias": "q_head.bias",
}
"""Official names of the tensors outside the reasoning networks, shared by every official class."""
LAYER_KEY = re.compile(r"^(L_level|H_level)\.layers\.(\d+)\.(self_attn|mlp_t|mlp)\.(\w+)\.weight$")


class Converter:
    """How the checkpoints of one foreign architecture become trmzoo models (and, optionally, back).

    Register an instance with the ``register_converters`` hook under the name a checkpoint's
    config gives the architecture (the official ``arch.name``), or under a format name that a
    ``PretrainedEntry.format`` refers to. trmzoo builds the model from the config
    :meth:`convert` returns and loads the state strictly (a missing, unexpected or misshapen
    tensor is an error naming it by :meth:`foreign_names`).
    """

    name: str = ""
    settings_name = "arch"
    """What messages call the settings :meth:`read` returns (``arch``: all_config.yaml's section)."""

    def read(self, checkpoint: Path, config: Path | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The checkpoint's tensors and its architecture settings. The default reads an official
        ``step_N`` file (a ``torch.save`` state dict, never unpickling objects) and the ``arch``
        section of its all_config.yaml; override for other formats."""
        if config is None:
            raise CheckpointError(f"{checkpoint}: a {self.name} checkpoint needs its all_config.yaml")
        return read_official_checkpoint(checkpoint), read_official_arch(config)

    def convert(self, tensors: dict[str, torch.Tensor], settings: dict[str, Any], sizes: dict[str, int | None],
                source: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(model config, state dict)``: a dict valid as a recipe's ``model`` section and the
        tensors under trmzoo's names. ``sizes`` holds each of :data:`SIZES` or None: infer
        those from the tensors or refuse. Check every setting the tensors reveal and raise a
        one-line ``CheckpointError`` naming it (``source`` says where)."""
        raise NotImplementedError

    def foreign_names(self, model: RecursiveModel) -> dict[str, str]:
        """trmzoo tensor name -> the checkpoint's name, for messages and the way back."""
        return {}

    def describe(self, model: RecursiveModel) -> dict[str, Any] | None:
        """The foreign settings that compute ``model``; None when the model is not of this
        architecture. A converter without a way back keeps this default."""
        return None

    def export(self, model: RecursiveModel, prefix: str) -> dict[str, torch.Tensor]:
        """The checkpoint's tensors for a model :meth:`describe` accepted."""
        raise NotImplementedError


def not_computed(why: str) -> CheckpointError:
    """The error of :meth:`Converter.describe` for a model of its family that no foreign file computes."""
    return CheckpointError(f"no official architecture computes this model: {why}")


# -- the official layout -----------------------------------------------------------------------
WHOLE_SETTINGS = {"hidden_size", "num_heads", "puzzle_emb_ndim", "puzzle_emb_len", "halt_max_steps", "H_cycles",
                  "L_cycles", "H_layers", "L_layers", "vocab_size", "seq_len", "num_puzzle_identifiers"}
"""Official settings that are counts: the official config refuses a fraction, which ``int()`` would cut."""


def _get(arch: dict, key: str, source: str, default: Any = ...) -> Any:
    if key in arch and arch[key] is not None:
        value = arch[key]
        if isinstance(value, float) and math.isfinite(value) and not value.is_integer() and key in WHOLE_SETTINGS:
            raise ValueError(f"arch.{key} {value} is not a whole number")  # int() would cut it; named with the config
        return value
    if default is ...:
        raise CheckpointError(f"{source}: arch.{key} is missing")
    return default


def strip_prefixes(state: dict[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Drop the ``_orig_mod.`` / ``model.`` / ``inner.`` prefixes of the official wrappers."""
    out, origin = {}, {}
    for name, value in state.items():
        key = name
        for prefix in ("_orig_mod.", "model.", "inner."):
            key = key.removeprefix(prefix)
        if key in out:
            raise CheckpointError(f"{source}: {origin[key]!r} and {name!r} are one tensor once the wrappers' "
                                  "prefixes are dropped; keep one of them")
        out[key], origin[key] = value, name
    return out


class OfficialConverter(Converter):
    """The layout every class of the official code bases shares (TinyRecursiveModels, HRM).

    Tensors are named as in :data:`TOP` plus ``{L,H}_level.layers.N.{self_attn,mlp_t,mlp}.*``;
    the settings are all_config.yaml's ``arch``. A family's subclass says which official
    level becomes which trmzoo network (``levels``), which initial-state buffer becomes
    which (``inits``), translates its recursion and halting (:meth:`recursion`), names the
    layer count of each level (:meth:`layer_settings`) and says which models it computes
    (:meth:`describe`).
    """

    levels: dict[str, str] = {}
    """Official level (``L_level``, ``H_level``) -> trmzoo network (``recursion.net``, ...)."""
    inits: dict[str, str] = {}
    """Official initial-state buffer (``H_init``, ``L_init``) -> trmzoo buffer."""
    has_puzzle_emb_len = False
    """Whether the class reads ``arch.puzzle_emb_len`` (TRM); the others use ceil(ndim / hidden) slots."""
    has_mlp_t = True
    """Whether ``arch.mlp_t`` can choose the MLP token mixer."""

    def __init__(self, name: str) -> None:
        self.name = name

    # -- family hooks ----------------------------------------------------------------------------
    def recursion(self, get: Callable[..., Any], halting: dict[str, Any], source: str) -> dict[str, Any]:
        """The recursion section for the settings ``get(key, default)`` reads; set ``halting["kind"]``
        (and its options) in place."""
        raise NotImplementedError

    def layer_settings(self, config: dict[str, Any]) -> dict[str, tuple[str, int | None]]:
        """Official level -> (the setting naming its layer count, its value in ``config``)."""
        raise NotImplementedError

    # -- settings -> config ----------------------------------------------------------------------
    def prefix_len(self, arch: dict, source: str) -> int:
        hidden = int(_get(arch, "hidden_size", source))
        ndim = int(_get(arch, "puzzle_emb_ndim", source, 0))
        emb_len = int(_get(arch, "puzzle_emb_len", source, 16)) if self.has_puzzle_emb_len else 0
        return (emb_len or -(ndim // -hidden)) if ndim else 0

    def model_config(self, arch: dict, sizes: dict[str, int], source: str) -> dict[str, Any]:
        """The trmzoo model config equivalent to an official ``arch`` section."""
        get = lambda key, default=...: _get(arch, key, source, default)  # noqa: E731
        hidden = int(get("hidden_size"))
        ndim = int(get("puzzle_emb_ndim", 0))
        emb_len = int(get("puzzle_emb_len", 16)) if self.has_puzzle_emb_len else 0
        if ndim == 0 and emb_len:
            raise CheckpointError(
                f"{source}: puzzle_emb_ndim 0 with puzzle_emb_len {emb_len} is not a working official setting"
            )
        pos = get("pos_encodings")
        if pos not in ("rope", "learned", "none"):
            raise CheckpointError(f"{source}: arch.pos_encodings {pos!r} is not rope, learned or none")
        dtype = get("forward_dtype", "bfloat16")
        if dtype not in ("float32", "bfloat16"):
            raise CheckpointError(f"{source}: arch.forward_dtype {dtype!r} is not supported (float32 or bfloat16)")
        mlp_t = bool(get("mlp_t", False)) and self.has_mlp_t
        halting = {"max_steps": int(get("halt_max_steps")), "exploration_prob": float(get("halt_exploration_prob"))}
        recursion = self.recursion(get, halting, source)
        return {
            **sizes, "hidden_size": hidden, "expansion": float(get("expansion")), "puzzle_emb_ndim": ndim,
            "puzzle_emb_len": emb_len, "pos_encodings": pos, "rope_theta": float(get("rope_theta", 10000.0)),
            "rms_norm_eps": float(get("rms_norm_eps", 1e-5)), "forward_dtype": dtype,
            "backbone": {"kind": "mlp"} if mlp_t else {"kind": "attention", "num_heads": int(get("num_heads"))},
            "recursion": recursion, "halting": halting,
        }

    def convert(self, tensors, settings, sizes, source):
        weights = strip_prefixes(tensors, source)
        prefix = self.prefix_len(settings, source)
        inferred = _infer_sizes(weights, prefix)
        resolved = {}
        for key in SIZES:
            value = sizes.get(key)
            if value is None:
                value = inferred.get(key, 1 if key == "num_puzzle_identifiers" else None)
            if value is None:
                raise CheckpointError(
                    f"{source}: {key} is neither in all_config.yaml nor shown by the weights;"
                    f" give the dataset folder (--data) or --{key.replace('_', '-')}"
                )
            resolved[key] = int(value)
        config = self.model_config(settings, resolved, source)
        self.check_revealed(config, weights, prefix, source, given={key for key in SIZES if sizes.get(key) is not None})
        return config, self.state_dict(weights, source)

    # -- tensors -----------------------------------------------------------------------------------
    def our_key(self, key: str) -> str | None:
        """trmzoo name of an official key (after :func:`strip_prefixes`), or None when unknown."""
        if key in TOP:
            return TOP[key]
        if key in self.inits:
            return self.inits[key]
        match = LAYER_KEY.match(key)
        if match and match.group(1) in self.levels:
            level, index, part, proj = match.groups()
            part = "mixer" if part in ("self_attn", "mlp_t") else part
            return f"{self.levels[level]}.layers.{index}.{part}.{proj}.weight"
        return None

    def state_dict(self, weights: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
        """The key map (the checkpoint filter): official tensors under trmzoo names."""
        state, unknown = {}, []
        for key, tensor in weights.items():
            target = self.our_key(key)
            if target is None:
                unknown.append(key)
            else:
                state[target] = tensor
        if unknown:
            listed = ", ".join(sorted(unknown)[:5])
            raise CheckpointError(f"{source}: unexpected tensors for {self.name.split('@')[0]}: {listed}")
        return state

    def check_revealed(self, config: dict, weights: dict[str, torch.Tensor], prefix: int, source: str, *,
                       given: set[str] = frozenset()) -> None:
        """Compare each setting the tensors reveal with the config, naming the setting on mismatch and where
        its value came from: the config, or ``given`` sizes (a dataset's ``dataset.json`` or the options)."""
        hidden = config["hidden_size"]
        total = config["seq_len"] + prefix

        def need(key: str) -> torch.Tensor:
            if key not in weights:
                raise CheckpointError(f"{source}: missing tensor inner.{key}")
            return weights[key]

        def origin(key: str) -> str:
            option = {"vocab_size": " or --vocab-size", "seq_len": " or --seq-len"}.get(key, "")
            return f"from the dataset's dataset.json{option}" if key in given else "from the config"

        def check(setting: str, expected: Any, found: Any, where: str, source_of: str | None = None) -> None:
            if expected != found:
                source_of = source_of or ("in the config" if setting not in given else f"({origin(setting)})")
                raise CheckpointError(f"{source}: {setting} is {expected} {source_of} but {found} in the weights "
                                      f"({where})")

        total_origin = f"(seq_len {config['seq_len']} {origin('seq_len')}, prefix {prefix} from the config)"

        embed = need("embed_tokens.embedding_weight")
        check("hidden_size", hidden, embed.shape[1], "embed_tokens")
        check("vocab_size", config["vocab_size"], embed.shape[0], "embed_tokens")
        check("vocab_size", config["vocab_size"], need("lm_head.weight").shape[0], "lm_head")
        for key in self.inits:
            check("hidden_size", hidden, need(key).shape[-1], key)
        counts = {level: 0 for level in self.levels}
        for key in weights:
            match = LAYER_KEY.match(key)
            if match and match.group(1) in counts:
                counts[match.group(1)] = max(counts[match.group(1)], int(match.group(2)) + 1)
        settings = self.layer_settings(config)
        for level, count in counts.items():
            setting, value = settings[level]
            check(setting, value, count, f"{level}.layers")
        mlp_t = config["backbone"]["kind"] == "mlp"
        heads = config["backbone"].get("num_heads")
        width = swiglu_width(hidden, config["expansion"])
        for key, tensor in weights.items():
            match = LAYER_KEY.match(key)
            if not match:
                continue
            part, proj = match.group(3), match.group(4)
            if part in ("self_attn", "mlp_t") and (part == "mlp_t") != mlp_t:
                raise CheckpointError(
                    f"{source}: the config says mlp_t={mlp_t} but the weights have"
                    f" {'an MLP' if part == 'mlp_t' else 'an attention'} token mixer ({key})"
                )
            if part == "self_attn":
                head_dim = hidden // heads
                shape = (3 * heads * head_dim, hidden) if proj == "qkv_proj" else (hidden, heads * head_dim)
                check(f"the {proj} shape for num_heads {heads}", shape, tuple(tensor.shape), key)
            elif part == "mlp_t":
                found = tensor.shape[1 if proj == "gate_up_proj" else 0]
                check("seq_len + puzzle prefix", total, found, key, total_origin)
            elif proj == "gate_up_proj":
                check(f"expansion {config['expansion']} (SwiGLU width)", 2 * width, tensor.shape[0], key)
        if config["puzzle_emb_ndim"]:
            table = need("puzzle_emb.weights")
            check("puzzle_emb_ndim", config["puzzle_emb_ndim"], table.shape[1], "puzzle_emb.weights")
            check("num_puzzle_identifiers", config["num_puzzle_identifiers"], table.shape[0], "puzzle_emb.weights")
        if config["pos_encodings"] == "learned":
            found = need("embed_pos.embedding_weight").shape[0]
            check("seq_len + puzzle prefix", total, found, "embed_pos", total_origin)

    def foreign_names(self, model):
        mixer = "mlp_t" if model.config.backbone.kind == "mlp" else "self_attn"
        names = {ours: f"inner.{theirs}" for theirs, ours in TOP.items()}
        names.update({ours: f"inner.{theirs}" for theirs, ours in self.inits.items()})
        for key in model.state_dict():
            for level, ours in self.levels.items():
                if key.startswith(ours + ".layers."):
                    rest = key[len(ours) + 1:].replace(".mixer.", f".{mixer}.")
                    names[key] = f"inner.{level}.{rest}"
        return names

    # -- the way back ------------------------------------------------------------------------------
    def common_arch(self, model: RecursiveModel) -> dict[str, Any]:
        """The ``arch`` settings every official class has, for :meth:`describe`."""
        cfg = model.config
        return {
            "loss": dict(LOSS), "hidden_size": cfg.hidden_size, "expansion": cfg.expansion,
            "num_heads": getattr(cfg.backbone, "num_heads", 1), "puzzle_emb_ndim": cfg.puzzle_emb_ndim,
            "pos_encodings": cfg.pos_encodings, "rope_theta": cfg.rope_theta, "rms_norm_eps": cfg.rms_norm_eps,
            "forward_dtype": cfg.forward_dtype, "halt_max_steps": cfg.halting.max_steps,
            "halt_exploration_prob": cfg.halting.exploration_prob, "mlp_t": cfg.backbone.kind == "mlp",
        }

    def export(self, model, prefix):
        names = self.foreign_names(model)
        init_dtype = getattr(torch, model.config.forward_dtype)  # the official inits live in the forward dtype
        state = {}
        for key, tensor in model.state_dict().items():
            tensor = tensor.detach().cpu().clone()
            if key in ("recursion.y_init", "recursion.z_init"):
                tensor = tensor.to(init_dtype)
            state[prefix + names[key]] = tensor
        return state


def _infer_sizes(weights: dict[str, torch.Tensor], prefix: int) -> dict[str, int]:
    """Sizes the tensors reveal, for those the caller did not give."""
    sizes = {}
    if "embed_tokens.embedding_weight" in weights:
        sizes["vocab_size"] = weights["embed_tokens.embedding_weight"].shape[0]
    if "puzzle_emb.weights" in weights:
        sizes["num_puzzle_identifiers"] = weights["puzzle_emb.weights"].shape[0]
    if "embed_pos.embedding_weight" in weights:
        sizes["seq_len"] = weights["embed_pos.embedding_weight"].shape[0] - prefix
    for key, tensor in weights.items():
        if key.endswith("mlp_t.gate_up_proj.weight"):
            sizes["seq_len"] = tensor.shape[1] - prefix
    return sizes


# -- drivers ---------------------------------------------------------------------------------------
def official_converter(name: Any, source: str = "config") -> Converter:
    """The converter registered for an official ``arch.name``."""
    table = get_registry().converter
    if name not in table:
        raise CheckpointError(f"{source}: arch.name {name!r} is not one of {', '.join(table) or 'the registered ones'}")
    return table[name].converter


def convert_checkpoint(converter: Converter, tensors: dict[str, torch.Tensor], settings: dict[str, Any], *,
                       sizes: dict[str, int | None] | None = None, source: str = "checkpoint") -> RecursiveModel:
    """Build the model ``converter`` describes for ``settings`` and load ``tensors`` into it strictly."""
    config, state = converter.convert(tensors, settings, {k: (sizes or {}).get(k) for k in SIZES}, source)
    try:
        model = build_model(config)
    except RecipeError as exc:
        raise CheckpointError(f"{source}: the config does not describe a valid model ({exc})") from None
    load_state_strict(model, state, source, names=converter.foreign_names(model))
    model.provenance.source = SourceProvenance(converter=converter.name)
    model.eval()
    return model


def convert_official(
    state_dict: dict[str, torch.Tensor],
    config: dict,
    *,
    vocab_size: int | None = None,
    seq_len: int | None = None,
    num_puzzle_identifiers: int | None = None,
    source: str = "checkpoint",
) -> RecursiveModel:
    """Build the trmzoo model for an official ``arch`` section (``config``, or a whole
    all_config.yaml dict) and load the official ``state_dict`` into it.

    Sizes not given are taken from the weights where they show (vocabulary, puzzle rows,
    and the sequence length with learned positions or an MLP token mixer).
    """
    arch = config.get("arch", config)
    sizes = {"vocab_size": vocab_size, "seq_len": seq_len, "num_puzzle_identifiers": num_puzzle_identifiers}
    return convert_checkpoint(official_converter(arch.get("name"), source), state_dict, arch, sizes=sizes,
                              source=source)


def _describing(model: RecursiveModel) -> tuple[Converter, dict[str, Any]]:
    for entry in get_registry().converter.values():
        arch = entry.converter.describe(model)
        if arch is not None:
            return entry.converter, arch
    cfg = model.config
    raise not_computed(f"recursion {cfg.recursion.kind!r}, backbone {cfg.backbone.kind!r}, "
                       f"halting {cfg.halting.kind!r}")


def config_to_official(model: RecursiveModel) -> dict[str, Any]:
    """The official ``arch`` section of ``model`` (raises when no official class computes it)."""
    return _describing(model)[1]


def official_names(model: RecursiveModel, name: str) -> dict[str, str]:
    """trmzoo key -> official key (without the wrapper prefix) for every tensor of ``model``."""
    return official_converter(name).foreign_names(model)


def to_official(model: RecursiveModel, *, prefix: str = "_orig_mod.model.") -> tuple[dict[str, torch.Tensor], dict]:
    """The official state dict (keys as a compiled official run saves them) and ``arch`` section of ``model``."""
    converter, arch = _describing(model)
    return converter.export(model, prefix), arch


# -- files -----------------------------------------------------------------------------------------
def _dataset_sizes(data_dir: str | Path) -> dict[str, int]:
    path = Path(data_dir) / "train" / "dataset.json"
    try:
        meta = DatasetMetadata.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing; --data must be the dataset folder the checkpoint was trained on") from None
    except ValueError as exc:
        raise DataError(f"{path}: not a dataset.json ({exc.__class__.__name__})") from None
    return {"vocab_size": meta.vocab_size, "seq_len": meta.seq_len,
            "num_puzzle_identifiers": meta.num_puzzle_identifiers}


def read_torch_file(path: str | Path, what: str = "torch state dict") -> Any:
    """``torch.load(weights_only=True)`` with errors a user can act on: a pickle from the Hub is
    never allowed to build arbitrary objects."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except pickle.UnpicklingError as exc:  # torch's text suggests weights_only=False, which trmzoo never uses
        if "Unsupported global" not in str(exc):
            raise CheckpointError(f"{path}: not a readable {what} (not a torch file, or a damaged one)") from None
        raise CheckpointError(f"{path}: not a {what}: it holds pickled objects besides tensors, which trmzoo "
                              "never unpickles") from None
    except Exception as exc:  # torch.load raises what its unpickler meets in a file that is no checkpoint
        # a KeyError's text is only the key it missed (a text file: the code of its first byte)
        reason = str(exc).splitlines()[0] if str(exc) and not isinstance(exc, KeyError) else "not a torch file"
        raise CheckpointError(f"{path}: not a readable {what} ({reason})") from None


def is_state_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values())


def read_official_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """An official ``step_N`` file: a state dict of tensors, read with ``weights_only=True``."""
    state = read_torch_file(path)
    if not is_state_dict(state):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return state


def read_official_arch(path: str | Path) -> dict[str, Any]:
    """The ``arch`` section of an official all_config.yaml."""
    arch = read_yaml(path, what="not an official all_config.yaml (no mapping at the top)").get("arch")
    if not isinstance(arch, dict):
        raise CheckpointError(f"{path}: no arch section; not an official all_config.yaml")
    return arch


def load_checkpoint(
    path: str | Path,
    config_path: str | Path | None = None,
    *,
    converter: str | None = None,
    data_dir: str | Path | None = None,
    vocab_size: int | None = None,
    seq_len: int | None = None,
    expected: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> RecursiveModel:
    """Convert a checkpoint file of another code base into a trmzoo model.

    ``converter`` names a registered converter; None means an official run's ``step_N`` file,
    whose all_config.yaml (``config_path``) names the architecture, or whose ``arch`` section is
    given as ``settings`` (for a repository that publishes it on its card only). Sizes come from
    ``data_dir/train/dataset.json`` and/or the options (which must agree). ``expected`` (e.g.
    ``{"H_cycles": 3, "L_cycles": 4}`` from a registry entry) is compared with the settings:
    n and T are not in the weights, and a wrong n runs fine while ARC accuracy falls from
    about 40% to under 4%.
    """
    path = Path(path)
    config_path = Path(config_path) if config_path is not None else None
    if settings is not None:
        chosen = official_converter(settings.get("name"), f"{path}'s settings")
        tensors = read_official_checkpoint(path)
    else:
        if converter is not None:
            chosen = lookup("converter", converter).converter
        elif config_path is None:
            raise CheckpointError(f"{path}: an official checkpoint needs its all_config.yaml")
        else:
            chosen = official_converter(read_official_arch(config_path).get("name"), str(config_path))
        tensors, settings = chosen.read(path, config_path)
    where = config_path or path
    for key, value in (expected or {}).items():
        if value is not None and settings.get(key) != value:
            raise CheckpointError(
                f"{where}: {chosen.settings_name}.{key} is {settings.get(key)} but these weights were trained with "
                f"{value}; {key} leaves no trace in the weights and a wrong value silently ruins accuracy"
            )
    sizes: dict[str, int | None] = {"vocab_size": vocab_size, "seq_len": seq_len, "num_puzzle_identifiers": None}
    if data_dir is not None:
        for key, value in _dataset_sizes(data_dir).items():
            if sizes[key] is not None and sizes[key] != value:
                raise CheckpointError(f"{key} {sizes[key]} was given but {data_dir}/train/dataset.json says {value}")
            sizes[key] = value
    try:
        model = convert_checkpoint(chosen, tensors, settings, sizes=sizes, source=str(path))
    except (TypeError, ValueError, OverflowError) as exc:  # a setting of the wrong type: ``hidden_size: x``, ``.inf``
        raise CheckpointError(f"{where}: a setting has a value of the wrong type ({str(exc).splitlines()[0]})") from None
    model.provenance.source.checkpoint = path.name
    if data_dir is not None and (Path(data_dir) / IDENTIFIERS_FILE).exists():
        identifiers = read_identifiers(data_dir)
        model.provenance.identifiers = identifiers
        model.provenance.data.embedding_fingerprint = embedding_fingerprint(identifiers)
    return model


def load_official_checkpoint(path: str | Path, all_config_yaml_path: str | Path, **options: Any) -> RecursiveModel:
    """Load an official ``step_N`` file with its run's ``all_config.yaml`` (see :func:`load_checkpoint`)."""
    return load_checkpoint(path, all_config_yaml_path, **options)
