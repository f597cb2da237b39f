"""Errors a user can cause. The CLI prints them as one line; anything else is a bug."""

import errno
import os


class TrmzooError(Exception):
    """Base class: the message is complete and fit to show a user on one line."""


class PluginError(TrmzooError):
    """A plugin clashes with another, asks for another API, or contributes something malformed."""


class RecipeError(TrmzooError):
    """A recipe file or override is invalid; the message names the file and the dotted path."""


class PuzzleError(TrmzooError):
    """A single puzzle given by a user cannot be read; the message names the position."""


class DataError(TrmzooError):
    """A dataset on disk is missing, malformed or does not match the model."""


class CheckpointError(TrmzooError):
    """Weights do not match a model, or a checkpoint cannot be read or converted."""


class HubError(TrmzooError):
    """A download or upload failed in a way the user can act on."""


class TrainingError(TrmzooError):
    """Training cannot go on (a non-finite loss); the last good state was saved."""


OS_REASONS = {
    errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.ENOENT: "no such file or folder",
    errno.EISDIR: "is a folder, not a file", errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EDQUOT: "disk quota exceeded", errno.ENAMETOOLONG: "name too long",
}


def os_error_message(exc: OSError) -> str:
    """An I/O failure as ``PATH: what went wrong`` (the path is what the user can act on)."""
    reason = OS_REASONS.get(exc.errno) or exc.strerror or type(exc).__name__
    where = exc.filename
    if where is None:
        return f"{reason} ({exc})" if str(exc) and str(exc) != reason else reason
    return f"{where}: {reason}"


_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def env_switch(name: str, *, default: bool) -> bool:
    """An on/off environment variable (1/true/yes/on or 0/false/no/off, any case; unset or empty: ``default``).
    Any other value is an error naming the variable, so a typo does not silently keep the default."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in _ON + _OFF:
        raise TrmzooError(f"{name}={os.environ[name]!r}: expected one of {', '.join(_ON + _OFF)}")
    return value in _ON


class LicenseWarning(UserWarning):
    """Published weights whose repository states no license (or whose license trmzoo could not check)."""
