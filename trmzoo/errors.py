"""Errors a user can cause. The CLI prints them as one line; anything else is a bug."""


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
