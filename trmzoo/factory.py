"""Building models from configs and registered names."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from trmzoo.core.backbone import BackboneSpec
from trmzoo.core.model import ModelConfigBase, RecursiveModel
from trmzoo.errors import RecipeError
from trmzoo.recipe import _merge, expand_model_preset, format_validation_error, model_config_cls
from trmzoo.registry import lookup


def model_config(config: dict | ModelConfigBase, source: str = "model") -> ModelConfigBase:
    """Validate a model config dict (a ``preset`` key starts from a registered model)."""
    if isinstance(config, ModelConfigBase):
        return config
    data = expand_model_preset(dict(config))
    try:
        return model_config_cls().model_validate(data)
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, data, source)) from None


def build_model(config: dict | ModelConfigBase) -> RecursiveModel:
    """Build an untrained model from a model config."""
    config = model_config(config)
    if config.vocab_size <= 0 or config.seq_len <= 0:
        raise RecipeError("model: vocab_size and seq_len must be set (they come from the dataset when training)")
    spec = BackboneSpec(
        hidden_size=config.hidden_size,
        seq_len=config.seq_len + config.prefix_len,
        expansion=config.expansion,
        rms_norm_eps=config.rms_norm_eps,
        pos_encodings=config.pos_encodings,
        rope_theta=config.rope_theta,
    )
    backbone = lookup("backbone", config.backbone.kind)
    make_net = lambda num_layers: backbone.build(config.backbone, spec, num_layers)  # noqa: E731
    recursion = lookup("recursion", config.recursion.kind).build(
        config=config.recursion, make_net=make_net, hidden_size=config.hidden_size
    )
    halting = lookup("halting", config.halting.kind).build(config.halting)
    return RecursiveModel(config=config, recursion=recursion, halting=halting)


def create_model(name: str, **overrides: Any) -> RecursiveModel:
    """Build the registered model ``name``; keyword overrides replace config fields
    (nested sections as dicts, e.g. ``recursion={"L_cycles": 4}``)."""
    entry = lookup("model", name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    model = build_model(model_config(_merge(entry.config, overrides), source=name))
    model.meta["architecture"] = name
    return model
