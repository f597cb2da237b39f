"""Tables of everything plugins contribute: backbones, recursions, halting policies, tasks, models, converters,
inference strategies.

The tables are filled once, lazily, by calling each plugin's hooks with a
``register`` callable bound to that plugin. Two plugins contributing the same
name is an error that names both: silently swapping a model is worse than failing.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable

from trmzoo import plugins
from trmzoo.core.provenance import PluginUse
from trmzoo.errors import PluginError, TrmzooError
from trmzoo.plugins import load_plugins, pm

@dataclass(frozen=True)
class Component:
    """A backbone, recursion or halting policy: a config model and a builder."""

    name: str
    config_cls: type
    build: Callable[..., Any]
    plugin: str


LICENSE_NOT_STATED = "not stated"
"""A ``PretrainedEntry.license`` for a Hub repository that sets no license (loading warns)."""
LICENSE_NOT_CHECKED = "not checked"
"""A ``PretrainedEntry.license`` for a repository whose license trmzoo's sources do not show (loading warns)."""


@dataclass(frozen=True)
class PretrainedEntry:
    """Published weights for a named model, with what a model card needs to say about them."""

    name: str
    hub_repo: str
    file: str
    format: str = "trmzoo"
    """``trmzoo`` (safetensors + config.json), ``official`` (an official run's ``step_N`` file, converted
    by the converter its all_config.yaml names), or the name of a registered converter that reads the file."""
    revision: str = "main"
    """A branch, tag or the 40-hex commit the entry was checked against."""
    config_file: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    """For an official checkpoint whose repository holds no all_config.yaml: its ``arch`` section."""
    task: str | None = None
    expected: dict[str, Any] = field(default_factory=dict)
    """Settings the weights were trained with that leave no trace in them (e.g. ``{"H_cycles": 3,
    "L_cycles": 4}``), compared with the checkpoint's config on conversion."""
    score: str = ""
    score_source: str = ""
    protocol: str = ""
    """How the score was measured: which test set, pass@k, supervision steps."""
    license: str = LICENSE_NOT_CHECKED
    """As the repository states it (an SPDX id), or :data:`LICENSE_NOT_STATED` / :data:`LICENSE_NOT_CHECKED`."""
    size: str = ""
    """The checkpoint file's size where known (e.g. ``"1,822,205,258 B"``)."""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    data_build: str = ""  # how to build the data whose puzzle table these weights expect
    embedding_fingerprint: str | None = None  # trmzoo.data.embedding_fingerprint of that build, when known
    eval_refusal: str = ""  # when set, evaluation refuses with this reason (kept in model.provenance)


@dataclass(frozen=True)
class ConverterEntry:
    name: str
    converter: Any  # a trmzoo.convert.Converter
    plugin: str


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config: dict
    plugin: str
    description: str = ""
    pretrained: tuple[PretrainedEntry, ...] = ()
    task: str | None = None  # the task whose vocabulary and grid length the config leaves out


@dataclass(frozen=True)
class TaskEntry:
    name: str
    task_cls: type
    plugin: str


class _Clash(PluginError):
    """Two plugins register one name: an error of the installation, not of one plugin to isolate."""


@dataclass(frozen=True)
class StrategyEntry:
    name: str
    strategy_cls: type  # a trmzoo.strategy.Strategy subclass
    plugin: str


@dataclass
class Registry:
    backbone: dict[str, Component] = field(default_factory=dict)
    recursion: dict[str, Component] = field(default_factory=dict)
    halting: dict[str, Component] = field(default_factory=dict)
    task: dict[str, TaskEntry] = field(default_factory=dict)
    model: dict[str, ModelEntry] = field(default_factory=dict)
    converter: dict[str, ConverterEntry] = field(default_factory=dict)
    strategy: dict[str, StrategyEntry] = field(default_factory=dict)
    pretrained: dict[str, tuple[ModelEntry, PretrainedEntry]] = field(default_factory=dict)
    contributions: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def _add(self, kind: str, name: str, entry: Any, plugin: str) -> None:
        table = getattr(self, kind)
        if name in table:
            other = table[name][0].plugin if kind == "pretrained" else table[name].plugin
            raise _Clash(
                f"{kind} {name!r} is registered by two plugins, {other!r} and {plugin!r}; disable one "
                f"with TRMZOO_DISABLE_PLUGINS={plugin} or TRMZOO_DISABLE_PLUGINS={other}"
            )
        table[name] = entry
        self.contributions.setdefault(plugin, {}).setdefault(kind, []).append(name)

    def drop(self, plugin: str) -> None:
        """Forget everything ``plugin`` contributed (it was isolated after a failing hook)."""
        for kind, names in self.contributions.pop(plugin, {}).items():
            for name in names:
                getattr(self, kind).pop(name, None)


_registry: Registry | None = None


def _collect(reg: Registry, hook_name: str, make_register: Callable[[str], Callable]) -> None:
    """Call every plugin's ``hook_name``; a plugin whose hook raises is isolated (a warning, none of its
    contributions kept), like one that fails at import. A name two plugins register stays an error."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            impl.function(register=make_register(impl.plugin_name))
        except _Clash:
            raise
        except Exception as exc:
            plugins.isolate(impl.plugin_name, exc, hook_name)
            reg.drop(impl.plugin_name)


def _check_tag(plugin: str, kind: str, name: str, config_cls: Any, tag: str) -> None:
    """A recipe selects a component by its config's ``tag`` field (``kind: attention``), whose default must
    be the name it is registered under; otherwise recipes name one and lookups the other."""
    field = getattr(config_cls, "model_fields", {}).get(tag)
    if field is not None and field.default != name:
        raise PluginError(f"plugin {plugin!r}: {kind} {name!r} is registered with a config whose {tag} is "
                          f"{field.default!r}; register it as {field.default!r} or set its {tag} to {name!r}")


def get_registry() -> Registry:
    """Load plugins and fill the tables on first use."""
    global _registry
    if _registry is not None:
        return _registry
    load_plugins()
    reg = Registry()

    def component(kind: str):
        def bind(plugin: str):
            def register(name: str, config_cls: type, build: Callable) -> None:
                _check_tag(plugin, kind, name, config_cls, "kind")
                reg._add(kind, name, Component(name, config_cls, build, plugin), plugin)

            return register

        return bind

    def task_register(plugin: str):
        def register(name: str, task_cls: type) -> None:
            _check_tag(plugin, "task", name, getattr(task_cls, "Config", None), "name")
            reg._add("task", name, TaskEntry(name, task_cls, plugin), plugin)

        return register

    def converter_register(plugin: str):
        def register(name: str, converter: Any) -> None:
            reg._add("converter", name, ConverterEntry(name, converter, plugin), plugin)

        return register

    def model_register(plugin: str):
        def register(name: str, config: dict, *, description: str = "", task: str | None = None,
                     pretrained=()) -> None:
            entry = ModelEntry(name, dict(config), plugin, description, tuple(pretrained), task)
            reg._add("model", name, entry, plugin)
            for weights in entry.pretrained:
                for alias in (f"{name}.{weights.name}", *weights.aliases):
                    reg._add("pretrained", alias, (entry, weights), plugin)

        return register

    def strategy_register(plugin: str):
        def register(name: str, strategy_cls: type) -> None:
            if getattr(strategy_cls, "uses_verify", False) and "verify" not in name:
                raise PluginError(f"plugin {plugin!r}: strategy {name!r} uses the task's verify check, so its "
                                  "name must say 'verify'")
            reg._add("strategy", name, StrategyEntry(name, strategy_cls, plugin), plugin)

        return register

    _collect(reg, "register_backbones", component("backbone"))
    _collect(reg, "register_recursions", component("recursion"))
    _collect(reg, "register_halting_policies", component("halting"))
    _collect(reg, "register_tasks", task_register)
    _collect(reg, "register_models", model_register)
    _collect(reg, "register_converters", converter_register)
    _collect(reg, "register_strategies", strategy_register)
    _registry = reg
    return reg


def reset() -> None:
    """Forget the tables and the loaded plugins, so the next lookup discovers entry points again (for tests)."""
    global _registry
    _registry = None
    plugins.reset()


def lookup(kind: str, name: str) -> Any:
    """Find ``name`` in a table, or fail with the closest names as a hint."""
    table = getattr(get_registry(), kind)
    if not isinstance(name, str):
        raise TrmzooError(f"{kind} {name!r}: not a name (see `trmzoo list` and `trmzoo plugins`)")
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, list(table), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(table)) or 'none'}"
    missing = plugins.not_loaded()  # it may be theirs
    if missing:
        hint += "; installed but not loaded: " + ", ".join(f"{name} ({why})" for name, why in missing.items())
    raise TrmzooError(f"unknown {kind} {name!r}{hint}")


COMPONENT_WORDS = {"backbone": "backbone", "recursion": "recursion", "halting": "halting policy", "task": "task"}


def plugin_uses(components: dict[str, str]) -> list[PluginUse]:
    """Which plugin registered each of ``components`` (kind -> name), for a weight folder's record."""
    reg = get_registry()
    distributions = {info.name: info.distribution for info in plugins.plugin_infos()}
    uses = []
    for kind, name in components.items():
        entry = getattr(reg, kind).get(name)
        if entry is not None:
            uses.append(PluginUse(kind=kind, name=name, plugin=entry.plugin, distribution=distributions.get(entry.plugin)))
    return uses


def require(components: dict[str, str], recorded: list[PluginUse], where: str, what: str = "model") -> None:
    """Refuse, on one line, a model or run whose component no loaded plugin registers, naming the plugin it
    needs when ``recorded`` knows it (and why that plugin is not loaded)."""
    reg = get_registry()
    for kind, name in components.items():
        table = getattr(reg, kind)
        if name in table:
            continue
        word = COMPONENT_WORDS[kind]
        use = next((u for u in recorded if u.kind == kind and u.name == name), None)
        if use is not None:
            raise PluginError(f"{where}: this {what} needs plugin {use.plugin!r} for its {word} {name!r}; "
                              f"{plugins.why_not_loaded(use.plugin, use.distribution)}")
        raise PluginError(f"{where}: this {what} needs a plugin that registers the {word} {name!r}, and none of the "
                          f"loaded ones does (registered: {', '.join(sorted(table)) or 'none'})")


def list_models(pattern: str | list[str] = "*", pretrained: bool = False) -> list[str]:
    """Names of registered models matching shell wildcards; with ``pretrained``, the weight names."""
    reg = get_registry()
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names = reg.pretrained if pretrained else reg.model
    return sorted(n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns))
