"""The hooks a trmzoo plugin may implement.

Every hook receives a ``register`` callable bound to the calling plugin, so the
registry can name both plugins when two contribute the same name. A plugin module
implements any subset of these functions, decorated with ``trmzoo.hookimpl``.
"""

import pluggy

hookspec = pluggy.HookspecMarker("trmzoo")
hookimpl = pluggy.HookimplMarker("trmzoo")


@hookspec
def register_backbones(register):
    """Contribute tiny networks applied at every recursion step.

    Call ``register(name, config_cls, build)``: ``config_cls`` is a pydantic model
    whose ``kind`` field is ``Literal[name]``; ``build(config, spec, num_layers)``
    returns an ``nn.Module`` mapping ``(hidden, injection) -> hidden`` (see
    ``trmzoo.core.backbone.BackboneSpec`` for what ``spec`` carries).
    """


@hookspec
def register_recursions(register):
    """Contribute recursion schemes: how the answer y and latent z are updated.

    Call ``register(name, config_cls, build)``: ``build(config, make_net, hidden_size)``
    returns a ``trmzoo.core.recursion.Recursion``; ``make_net(num_layers)`` builds
    one backbone network of the model's chosen kind.
    """


@hookspec
def register_halting_policies(register):
    """Contribute halting policies: when a sample stops and how halting is trained.

    Call ``register(name, config_cls, build)``: ``build(config)`` returns a
    ``trmzoo.core.halting.HaltingPolicy``.
    """


@hookspec
def register_tasks(register):
    """Contribute puzzle tasks: data building, tokens, augmentation, evaluation, solving.

    Call ``register(name, task_cls)`` with a subclass of ``trmzoo.Task`` whose
    ``Config`` pydantic model has ``name: Literal[name]``.
    """


@hookspec
def register_models(register):
    """Contribute named model configurations, optionally with pretrained weights.

    Call ``register(name, config, *, description="", task=None, pretrained=())``:
    ``config`` is a dict valid as a recipe's ``model`` section; ``task`` names the task
    whose default vocabulary and grid length complete it (they are the task's facts);
    ``pretrained`` is a sequence of ``trmzoo.registry.PretrainedEntry`` (weights on the
    Hub, with their card).
    """


@hookspec
def register_converters(register):
    """Contribute converters of checkpoints written by other code bases (a model family's published weights).

    Call ``register(name, converter)``: ``converter`` is a ``trmzoo.convert.Converter``;
    ``name`` is what the checkpoint's config calls the architecture (the official
    all_config.yaml's ``arch.name``) or a format name a ``PretrainedEntry.format`` gives.
    """


@hookspec
def register_strategies(register):
    """Contribute inference strategies: how a trained model turns puzzles into answers at test time.

    Call ``register(name, strategy_cls)`` with a subclass of ``trmzoo.strategy.Strategy`` whose
    ``Config`` (a ``trmzoo.strategy.StrategyConfig``) holds its options. A strategy that sets
    ``uses_verify`` must have ``verify`` in its name. Selected with ``trmzoo eval --strategy name``.
    """


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``trmzoo`` command group ``cli``."""
