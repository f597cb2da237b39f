"""The base of every config section and record: strict, and documented by its field docstrings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class Config(BaseModel):
    """A recipe section (or a record kept with weights): an unknown key is an error naming it, and each
    field's docstring becomes its description in the JSON schema (``trmzoo recipes schema``)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


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
