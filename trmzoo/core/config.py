"""The base of every config section and record: strict, and documented by its field docstrings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Config(BaseModel):
    """A recipe section (or a record kept with weights): an unknown key is an error naming it, and each
    field's docstring becomes its description in the JSON schema (``trmzoo recipes schema``)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
