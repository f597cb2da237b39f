"""Where a model's weights come from: the typed record a model carries and its weight folder keeps.

A model built by ``create_model``, trained by ``trmzoo train``, converted from an official
checkpoint or loaded from the Hub carries a :class:`Provenance` as ``model.provenance``.
``save_pretrained`` writes it into ``config.json`` (beside ``format_version`` and the model's
arguments) and the puzzle identifiers into ``identifiers.json`` of the same folder, so a
weight folder never points at a path of the machine that wrote it. Evaluation and ARC
solving read it: which task, which data build the puzzle table belongs to, whether
evaluation is refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from trmzoo.core.config import Config


class DataProvenance(Config):
    """The data build the weights were trained on."""

    build_fingerprint: str | None = None
    """Hash of every file of the build (``trmzoo.data.build_fingerprint``)."""
    embedding_fingerprint: str | None = None
    """Hash of the ordered puzzle identifiers: the only thing the puzzle table's rows depend on."""
    build: str = ""
    """How to build that data, for messages when another build is given."""


class SourceProvenance(Config):
    """Where converted or downloaded weights came from."""

    repo: str | None = None
    """Hugging Face Hub repository."""
    revision: str | None = None
    """The commit the files were read at."""
    file: str | None = None
    """The file in the repository (a checkpoint, or a trmzoo config.json)."""
    checkpoint: str | None = None
    """Name of the foreign checkpoint file that was converted."""
    converter: str | None = None
    """The registered converter that converted it (for official checkpoints, the official ``arch.name``)."""


class PluginUse(Config):
    """A component a model uses and the plugin that registered it."""

    kind: str
    """``backbone``, ``recursion``, ``halting`` or ``task``."""
    name: str
    plugin: str
    """The entry-point name of the plugin."""
    distribution: str | None = None
    """The package that installs it (for ``pip install``)."""


class Provenance(Config):
    """What a model is and where its weights come from; kept in ``config.json``."""

    architecture: str | None = None
    """The registered model the config started from (``create_model`` name or recipe ``model.preset``);
    None for a config written from scratch."""
    pretrained: str | None = None
    """The registered weights (``<model>.<weights>``) these are."""
    task: dict[str, Any] | None = None
    """The task's config (a recipe's ``task`` section): how puzzles are read, drawn and scored."""
    data: DataProvenance = DataProvenance()
    source: SourceProvenance | None = None
    license: str | None = None
    eval_refusal: str = ""
    """When set, evaluation refuses with this reason (the data build cannot be reproduced)."""
    step: int | None = Field(None, ge=0)
    """The training step the weights were saved at."""
    plugins: list[PluginUse] = []
    """Which plugin registered each component (written on save), so a missing one can be named."""
    identifiers: list[str] | None = Field(default=None, exclude=True)
    """Names of the puzzle-table rows (``identifiers.json`` of the build); kept beside config.json in
    the weight folder, not in it."""

    def v1(self) -> dict[str, Any]:
        """The keys trmzoo 0.1 kept in its ``model.meta`` dict and config.json (format_version 1)."""
        legacy: dict[str, Any] = self.model_dump(mode="json", exclude_none=True,
                                                 exclude={"data": {"build"}, "source": {"checkpoint", "converter"}})
        legacy["identifiers"] = self.identifiers
        legacy["data_build"] = self.data.build
        if self.source is not None:
            legacy.update(source_checkpoint=self.source.checkpoint, official_arch=self.source.converter)
        return {k: v for k, v in legacy.items() if v not in (None, "", {})}

    @classmethod
    def from_v1(cls, config: dict[str, Any]) -> Provenance:
        """The record of a trmzoo 0.1 config.json (format_version 1), whose keys were free-form.

        Its absolute ``data_dir`` is not kept (the caller reads the identifiers from it while it exists),
        and its ``architecture: custom`` (what every trained model recorded) means none."""
        data = config.get("data") or {}
        source = config.get("source") or {}
        official = {k: config.get(v) for k, v in (("checkpoint", "source_checkpoint"), ("converter", "official_arch"))}
        architecture = config.get("architecture")
        return cls(
            architecture=None if architecture == "custom" else architecture, pretrained=config.get("pretrained"), task=config.get("task"),
            data=DataProvenance(build_fingerprint=data.get("build_fingerprint"),
                                embedding_fingerprint=data.get("embedding_fingerprint"),
                                build=config.get("data_build") or ""),
            source=SourceProvenance(**{k: source.get(k) for k in ("repo", "revision", "file")}, **official)
            if source or any(official.values()) else None,
            license=config.get("license"), eval_refusal=config.get("eval_refusal") or "", step=config.get("step"),
            identifiers=config.get("identifiers"),
        )
