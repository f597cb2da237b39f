"""Convert checkpoints of the official TRM code (SamsungSAILMontreal/TinyRecursiveModels) to trmzoo and back.

An official run folder holds ``step_N`` files (``torch.save`` of the state dict of
``torch.compile(ACTLossHead(model))``, keys prefixed ``_orig_mod.model.``) and
``all_config.yaml`` whose ``arch`` section names the model class and its settings.
The vocabulary, sequence length and puzzle count are not in that file: the official
code takes them from the dataset's ``train/dataset.json``.

Every setting the weights reveal is checked against the config, because a silent
mismatch gives a model that runs and is wrong. ``H_cycles`` (T) and ``L_cycles`` (n)
leave no trace in the weights: they are taken from the config and, when a registry
entry says what the weights were trained with, compared with it.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from trmzoo.core.layers import swiglu_width
from trmzoo.core.model import RecursiveModel
from trmzoo.data.format import DatasetMetadata, embedding_fingerprint, read_identifiers
from trmzoo.errors import CheckpointError, DataError, RecipeError
from trmzoo.factory import build_model
from trmzoo.yamlio import read_yaml

TRM = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
TRM_SINGLEZ = "recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1"
TRM_HIER6 = "recursive_reasoning.trm_hier6@TinyRecursiveReasoningModel_ACTV1"
HRM = "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1"
BASELINE = "recursive_reasoning.transformers_baseline@Model_ACTV2"
ARCHITECTURES = (TRM, TRM_SINGLEZ, TRM_HIER6, HRM, BASELINE)
HIER6_LATENTS = 6  # trm_hier6 hard-codes six latent features
LOSS = {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}

# Which official network becomes which trmzoo network.
LEVELS = {
    TRM: {"L_level": "recursion.net"},
    TRM_SINGLEZ: {"L_level": "recursion.net"},
    TRM_HIER6: {"L_level": "recursion.net"},
    HRM: {"L_level": "recursion.net", "H_level": "recursion.y_net"},
    BASELINE: {"H_level": "recursion.net"},
}
# Which official initial-state buffer becomes which trmzoo buffer.
INITS = {
    TRM: {"H_init": "recursion.y_init", "L_init": "recursion.z_init"},
    TRM_SINGLEZ: {"L_init": "recursion.z_init"},
    TRM_HIER6: {"H_init": "recursion.y_init", **{f"L{i + 1}_init": f"recursion.z_init.{i}" for i in range(6)}},
    HRM: {"H_init": "recursion.y_init", "L_init": "recursion.z_init"},
    BASELINE: {"H_init": "recursion.y_init"},
}
TOP = {
    "embed_tokens.embedding_weight": "embed_tokens.weight",
    "embed_pos.embedding_weight": "embed_pos.weight",
    "puzzle_emb.weights": "puzzle_emb.weight",
    "lm_head.weight": "lm_head.weight",
    "q_head.weight": "q_head.weight",
    "q_head.bias": "q_head.bias",
}
LAYER_KEY = re.compile(r"^(L_level|H_level)\.layers\.(\d+)\.(self_attn|mlp_t|mlp)\.(\w+)\.weight$")


# -- configs ---------------------------------------------------------------------------------
def _get(arch: dict, key: str, source: str, default: Any = ...) -> Any:
    if key in arch and arch[key] is not None:
        return arch[key]
    if default is ...:
        raise CheckpointError(f"{source}: arch.{key} is missing")
    return default


def official_to_config(arch: dict, *, vocab_size: int, seq_len: int, num_puzzle_identifiers: int,
                       source: str = "config") -> dict:
    """The trmzoo model config equivalent to an official ``arch`` section."""
    name = arch.get("name")
    if name not in ARCHITECTURES:
        raise CheckpointError(f"{source}: arch.name {name!r} is not one of {', '.join(ARCHITECTURES)}")
    get = lambda key, default=...: _get(arch, key, source, default)  # noqa: E731
    hidden = int(get("hidden_size"))
    ndim = int(get("puzzle_emb_ndim", 0))
    # Only the TRM files know puzzle_emb_len; HRM and the baseline always use ceil(ndim / hidden) slots.
    emb_len = int(get("puzzle_emb_len", 16)) if name in (TRM, TRM_SINGLEZ, TRM_HIER6) else 0
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
    mlp_t = bool(get("mlp_t", False)) and name != BASELINE
    halting = {"max_steps": int(get("halt_max_steps")), "exploration_prob": float(get("halt_exploration_prob"))}

    if name == BASELINE:
        recursion = {"kind": "direct", "layers": int(get("H_layers"))}
        if get("act_enabled", True):  # halts on q_halt > q_continue; q_continue is never trained
            halting.update(kind="q_learning", bootstrap=False)
        else:
            halting.update(kind="fixed", exploration_prob=0.0)
    else:
        recursion = {"kind": "trm", "H_cycles": int(get("H_cycles")), "L_cycles": int(get("L_cycles")),
                     "L_layers": int(get("L_layers"))}
        if name == HRM:
            recursion.update(H_layers=int(get("H_layers")), separate_nets=True, gradient="one_step")
            halting["kind"] = "q_learning"
        else:
            halting["kind"] = "bce" if get("no_ACT_continue", True) else "q_learning"
        if name == TRM_SINGLEZ:
            recursion["latents"] = "single"
        if name == TRM_HIER6:
            if recursion["L_cycles"] != HIER6_LATENTS:
                raise CheckpointError(
                    f"{source}: trm_hier6 needs L_cycles {HIER6_LATENTS} (it keeps six latents),"
                    f" got {recursion['L_cycles']}"
                )
            recursion["latents"] = "multiscale"
    return {
        "vocab_size": vocab_size, "seq_len": seq_len, "num_puzzle_identifiers": num_puzzle_identifiers,
        "hidden_size": hidden, "expansion": float(get("expansion")), "puzzle_emb_ndim": ndim,
        "puzzle_emb_len": emb_len, "pos_encodings": pos, "rope_theta": float(get("rope_theta", 10000.0)),
        "rms_norm_eps": float(get("rms_norm_eps", 1e-5)), "forward_dtype": dtype,
        "backbone": {"kind": "mlp"} if mlp_t else {"kind": "attention", "num_heads": int(get("num_heads"))},
        "recursion": recursion, "halting": halting,
    }


def config_to_official(model: RecursiveModel) -> dict:
    """The official ``arch`` section of ``model`` (raises when no official class computes it)."""
    cfg = model.config
    rec, halt = cfg.recursion, cfg.halting
    fail = lambda why: CheckpointError(f"no official architecture computes this model: {why}")  # noqa: E731
    if cfg.backbone.kind not in ("attention", "mlp"):
        raise fail(f"backbone {cfg.backbone.kind!r}")
    arch: dict[str, Any] = {
        "loss": dict(LOSS), "hidden_size": cfg.hidden_size, "expansion": cfg.expansion,
        "num_heads": getattr(cfg.backbone, "num_heads", 1), "puzzle_emb_ndim": cfg.puzzle_emb_ndim,
        "pos_encodings": cfg.pos_encodings, "rope_theta": cfg.rope_theta, "rms_norm_eps": cfg.rms_norm_eps,
        "forward_dtype": cfg.forward_dtype, "halt_max_steps": halt.max_steps,
        "halt_exploration_prob": halt.exploration_prob, "mlp_t": cfg.backbone.kind == "mlp",
    }
    ceil_len = -(cfg.puzzle_emb_ndim // -cfg.hidden_size)
    if rec.kind == "direct":
        if cfg.backbone.kind != "attention" or cfg.pos_encodings == "none" or cfg.prefix_len != ceil_len:
            raise fail("the direct baseline needs attention, rope or learned positions, ceil(ndim/hidden) prefix slots")
        if halt.kind == "q_learning" and not halt.bootstrap:
            act_enabled = True
        elif halt.kind == "fixed":
            act_enabled = False
        else:
            raise fail(f"the direct baseline has no {halt.kind} halting with this setting")
        del arch["mlp_t"]
        return {"name": BASELINE, **arch, "H_cycles": 1, "H_layers": rec.layers, "act_enabled": act_enabled}
    if rec.kind != "trm":
        raise fail(f"recursion {rec.kind!r}")
    arch.update(H_cycles=rec.H_cycles, L_cycles=rec.L_cycles, L_layers=rec.L_layers)
    if rec.separate_nets or rec.gradient == "one_step":
        hrm_like = rec.separate_nets and rec.gradient == "one_step" and rec.latents == "yz"
        if not hrm_like or halt.kind != "q_learning" or not halt.bootstrap or cfg.prefix_len != ceil_len:
            raise fail("separate nets and the one-step gradient exist only together, as HRM")
        return {"name": HRM, **arch, "H_layers": rec.H_layers or rec.L_layers}
    if halt.kind == "bce":
        no_act_continue = True
    elif halt.kind == "q_learning" and halt.bootstrap:
        no_act_continue = False
    else:
        raise fail(f"TRM has no {halt.kind} halting with this setting")
    name = {"yz": TRM, "single": TRM_SINGLEZ, "multiscale": TRM_HIER6}[rec.latents]
    if name == TRM_HIER6 and rec.L_cycles != HIER6_LATENTS:
        raise fail(f"trm_hier6 keeps six latents, the model has {rec.L_cycles}")
    return {"name": name, **arch, "H_layers": 0, "puzzle_emb_len": cfg.puzzle_emb_len,
            "no_ACT_continue": no_act_continue}


# -- state dicts -----------------------------------------------------------------------------
def _strip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``_orig_mod.`` / ``model.`` / ``inner.`` prefixes of the official wrappers."""
    out = {}
    for key, value in state.items():
        for prefix in ("_orig_mod.", "model.", "inner."):
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def _our_key(arch: str, key: str) -> str | None:
    """trmzoo name of an official key (after :func:`_strip`), or None when unknown."""
    if key in TOP:
        return TOP[key]
    if key in INITS[arch]:
        return INITS[arch][key]
    match = LAYER_KEY.match(key)
    if match and match.group(1) in LEVELS[arch]:
        level, index, part, proj = match.groups()
        part = "mixer" if part in ("self_attn", "mlp_t") else part
        return f"{LEVELS[arch][level]}.layers.{index}.{part}.{proj}.weight"
    return None


def _layer_counts(keys, arch: str) -> dict[str, int]:
    counts = {level: 0 for level in LEVELS[arch]}
    for key in keys:
        match = LAYER_KEY.match(key)
        if match and match.group(1) in counts:
            counts[match.group(1)] = max(counts[match.group(1)], int(match.group(2)) + 1)
    return counts


def _check_revealed(name: str, config: dict, weights: dict[str, torch.Tensor], prefix: int, source: str) -> None:
    """Compare each setting the tensors reveal with the config, naming the setting on mismatch."""
    hidden = config["hidden_size"]
    total = config["seq_len"] + prefix

    def need(key: str) -> torch.Tensor:
        if key not in weights:
            raise CheckpointError(f"{source}: missing tensor inner.{key}")
        return weights[key]

    def check(setting: str, expected: Any, found: Any, where: str) -> None:
        if expected != found:
            raise CheckpointError(
                f"{source}: {setting} is {expected} in the config but {found} in the weights ({where})"
            )

    embed = need("embed_tokens.embedding_weight")
    check("hidden_size", hidden, embed.shape[1], "embed_tokens")
    check("vocab_size", config["vocab_size"], embed.shape[0], "embed_tokens")
    check("vocab_size", config["vocab_size"], need("lm_head.weight").shape[0], "lm_head")
    for key in INITS[name]:
        check("hidden_size", hidden, need(key).shape[-1], key)
    layers = {"L_level": config["recursion"].get("L_layers"), "H_level": config["recursion"].get("H_layers")}
    if name == BASELINE:
        layers["H_level"] = config["recursion"]["layers"]
    for level, count in _layer_counts(weights, name).items():
        check(f"{'H' if level == 'H_level' else 'L'}_layers", layers[level], count, f"{level}.layers")
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
            check("seq_len + puzzle prefix", total, tensor.shape[1 if proj == "gate_up_proj" else 0], key)
        elif proj == "gate_up_proj":
            check(f"expansion {config['expansion']} (SwiGLU width)", 2 * width, tensor.shape[0], key)
    if config["puzzle_emb_ndim"]:
        table = need("puzzle_emb.weights")
        check("puzzle_emb_ndim", config["puzzle_emb_ndim"], table.shape[1], "puzzle_emb.weights")
        check("num_puzzle_identifiers", config["num_puzzle_identifiers"], table.shape[0], "puzzle_emb.weights")
    if config["pos_encodings"] == "learned":
        check("seq_len + puzzle prefix", total, need("embed_pos.embedding_weight").shape[0], "embed_pos")


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
    weights = _strip(state_dict)
    name = arch.get("name")
    if name not in ARCHITECTURES:
        raise CheckpointError(f"{source}: arch.name {name!r} is not one of {', '.join(ARCHITECTURES)}")
    hidden = int(_get(arch, "hidden_size", source))
    ndim = int(_get(arch, "puzzle_emb_ndim", source, 0))
    emb_len = int(_get(arch, "puzzle_emb_len", source, 16)) if name in (TRM, TRM_SINGLEZ, TRM_HIER6) else 0
    prefix = (emb_len or -(ndim // -hidden)) if ndim else 0
    inferred = _infer_sizes(weights, prefix)
    given = {"vocab_size": vocab_size, "seq_len": seq_len, "num_puzzle_identifiers": num_puzzle_identifiers}
    sizes = {}
    for key, value in given.items():
        if value is None:
            value = inferred.get(key, 1 if key == "num_puzzle_identifiers" else None)
        if value is None:
            raise CheckpointError(
                f"{source}: {key} is neither in all_config.yaml nor shown by the weights;"
                f" give the dataset folder (--data) or --{key.replace('_', '-')}"
            )
        sizes[key] = int(value)
    ours = official_to_config(arch, **sizes, source=source)
    _check_revealed(name, ours, weights, prefix, source)
    try:
        model = build_model(ours)
    except RecipeError as exc:
        raise CheckpointError(f"{source}: the config does not describe a valid model ({exc})") from None

    state: dict[str, torch.Tensor] = {}
    hier: dict[int, torch.Tensor] = {}
    unknown = []
    for key, tensor in weights.items():
        target = _our_key(name, key)
        if target is None:
            unknown.append(key)
        elif target.startswith("recursion.z_init.") and name == TRM_HIER6:
            hier[int(target.rsplit(".", 1)[1])] = tensor
        else:
            state[target] = tensor
    if unknown:
        listed = ", ".join(sorted(unknown)[:5])
        raise CheckpointError(f"{source}: unexpected tensors for {name.split('@')[0]}: {listed}")
    if hier:
        missing = [f"L{i + 1}_init" for i in range(HIER6_LATENTS) if i not in hier]
        if missing:
            raise CheckpointError(f"{source}: missing tensor inner.{missing[0]}")
        state["recursion.z_init"] = torch.stack([hier[i] for i in range(HIER6_LATENTS)])
    expected = model.state_dict()
    reverse = official_names(model, name)
    for key in expected:
        if key not in state:
            raise CheckpointError(f"{source}: missing tensor {reverse.get(key, key)}")
        if tuple(state[key].shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{source}: {reverse.get(key, key)} has shape {tuple(state[key].shape)},"
                f" the config implies {tuple(expected[key].shape)}"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    model.meta["official_arch"] = name
    model.eval()
    return model


def official_names(model: RecursiveModel, name: str) -> dict[str, str]:
    """trmzoo key -> official key (without the wrapper prefix) for every tensor of ``model``."""
    mixer = "mlp_t" if model.config.backbone.kind == "mlp" else "self_attn"
    names = {ours: f"inner.{theirs}" for theirs, ours in TOP.items()}
    names.update({ours: f"inner.{theirs}" for theirs, ours in INITS[name].items()})
    for key in model.state_dict():
        for level, ours in LEVELS[name].items():
            if key.startswith(ours + ".layers."):
                rest = key[len(ours) + 1:].replace(".mixer.", f".{mixer}.")
                names[key] = f"inner.{level}.{rest}"
    return names


def to_official(model: RecursiveModel, *, prefix: str = "_orig_mod.model.") -> tuple[dict[str, torch.Tensor], dict]:
    """The official state dict (keys as a compiled official run saves them) and ``arch`` section of ``model``."""
    arch = config_to_official(model)
    name = arch["name"]
    names = official_names(model, name)
    init_dtype = getattr(torch, model.config.forward_dtype)  # the official inits live in the forward dtype
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().clone()
        if key == "recursion.z_init" and name == TRM_HIER6:
            for i in range(HIER6_LATENTS):
                state[f"{prefix}inner.L{i + 1}_init"] = tensor[i].to(init_dtype)
            continue
        if key in ("recursion.y_init", "recursion.z_init"):
            tensor = tensor.to(init_dtype)
        state[prefix + names[key]] = tensor
    return state, arch


# -- run folders -----------------------------------------------------------------------------
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


def read_official_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)`` with errors a user can act on."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise CheckpointError(f"{path}: not a readable torch state dict ({reason})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return state


def load_official_checkpoint(
    path: str | Path,
    all_config_yaml_path: str | Path,
    *,
    data_dir: str | Path | None = None,
    vocab_size: int | None = None,
    seq_len: int | None = None,
    expected: dict | None = None,
) -> RecursiveModel:
    """Load an official ``step_N`` file with its run's ``all_config.yaml``.

    Sizes come from ``data_dir/train/dataset.json`` and/or the options (which must agree).
    ``expected`` (e.g. ``{"H_cycles": 3, "L_cycles": 4}`` from a registry entry) is
    compared with the config: n and T are not in the weights, and a wrong n runs fine
    while ARC accuracy falls from about 40% to under 4%.
    """
    config = read_yaml(all_config_yaml_path, what="not an official all_config.yaml (no mapping at the top)")
    arch = config.get("arch")
    if not isinstance(arch, dict):
        raise CheckpointError(f"{all_config_yaml_path}: no arch section; not an official all_config.yaml")
    for key, value in (expected or {}).items():
        if value is not None and arch.get(key) != value:
            raise CheckpointError(
                f"{all_config_yaml_path}: arch.{key} is {arch.get(key)} but these weights were trained with {value};"
                f" {key} leaves no trace in the weights and a wrong value silently ruins accuracy"
            )
    sizes: dict[str, int | None] = {"vocab_size": vocab_size, "seq_len": seq_len, "num_puzzle_identifiers": None}
    if data_dir is not None:
        for key, value in _dataset_sizes(data_dir).items():
            if sizes[key] is not None and sizes[key] != value:
                raise CheckpointError(f"{key} {sizes[key]} was given but {data_dir}/train/dataset.json says {value}")
            sizes[key] = value
    model = convert_official(read_official_checkpoint(path), arch, **sizes, source=str(path))
    model.meta["source_checkpoint"] = Path(path).name
    if data_dir is not None and (Path(data_dir) / "identifiers.json").exists():
        model.meta["data"] = {"embedding_fingerprint": embedding_fingerprint(read_identifiers(data_dir))}
    return model
