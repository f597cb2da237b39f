"""The base of every config section and record: strict, and documented by its field docstrings."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator


class Config(BaseModel):
    """A recipe section (or a record kept with weights): an unknown key is an error naming it, as are an
    infinite or NaN number and true/false where a number belongs (pydantic would take them as 1 and 0),
    and each field's docstring becomes its description in the JSON schema (``trmzoo recipes schema``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _no_yes_no_for_a_number(cls, data: object) -> object:
        """true/false where only a number fits is passed on as its YAML spelling, which the number's own
        validation refuses at the field's path (a field validator cannot run on a discriminator)."""
        if not isinstance(data, dict):
            return data
        numbers = {name for name, value in data.items() if isinstance(value, bool) and name in cls.model_fields
                   and bool not in (accepted := _types(cls.model_fields[name].annotation)) and accepted & {int, float}}
        return {**data, **{name: str(data[name]).lower() for name in numbers}} if numbers else data


def _types(annotation: object) -> set:
    """The plain types a field annotation accepts (``int | None`` -> {int, NoneType})."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        return set().union(*(_types(arg) for arg in typing.get_args(annotation)))
    return {annotation}


def path_part(key: object) -> str:
    """One segment of a dotted path in a message: as written, or quoted when a user's key holds a newline,
    spaces at its ends or nothing, so the message stays one line that shows the key."""
    text = str(key)
    return text if text and text.isprintable() and text == text.strip() else repr(text)


def validation_summary(exc: ValidationError) -> str:
    """pydantic's report (several lines per error) as ``dotted.path: what is wrong; ...`` on one line."""
    parts = []
    for err in exc.errors():
        path = ".".join(path_part(part) for part in err["loc"])
        msg = err["msg"][0].lower() + err["msg"][1:]
        parts.append(f"{path}: {msg}" if path else msg)
    return "; ".join(parts)
