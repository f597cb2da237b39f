"""The plugin manager: entry-point discovery, allow and block lists, isolation of broken plugins.

Built-in plugins are found exactly like third-party ones, through the ``trmzoo``
entry-point group. Loading happens once, on first use.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import warnings
from dataclasses import dataclass, field

import pluggy

from trmzoo import hookspecs
from trmzoo.errors import PluginError

ENTRY_POINT_GROUP = "trmzoo"
PLUGIN_API_VERSION = 1
"""Major version of the plugin API; a plugin states the one it needs as ``TRMZOO_PLUGIN_API``."""

pm = pluggy.PluginManager("trmzoo")
pm.add_hookspecs(hookspecs)


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)


_infos: dict[str, PluginInfo] = {}
_failures: dict[str, str] = {}
_blocked: list[str] = []
_loaded = False


def _env_list(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _entry_points() -> list[metadata.EntryPoint]:
    """The group's entry points, each once (an editable and a regular install may both list one)."""
    found, seen = [], set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            found.append(ep)
    return found


def load_plugins() -> None:
    """Import and register every ``trmzoo`` entry point once, honouring the env lists.

    ``TRMZOO_LOAD_PLUGINS=a,b`` loads only those entry points; ``TRMZOO_DISABLE_PLUGINS=c``
    skips ``c``; a name in either list that no entry point has is an error naming the known
    plugins. A plugin that fails to import, or asks for another plugin API, is reported by
    name as a warning and skipped; the rest keep working.
    """
    global _loaded
    if _loaded:
        return
    allowed = _env_list("TRMZOO_LOAD_PLUGINS")
    blocked = _env_list("TRMZOO_DISABLE_PLUGINS") or []
    known = sorted({ep.name for ep in _entry_points()})
    if allowed == []:  # set to "" or ",": most likely meant to be unset; loading nothing leaves nothing to run
        raise PluginError(f"TRMZOO_LOAD_PLUGINS={os.environ['TRMZOO_LOAD_PLUGINS']!r} names no plugin; name some "
                          f"(installed: {', '.join(known) or 'none'}) or unset it to load them all")
    for var, names in (("TRMZOO_LOAD_PLUGINS", allowed or []), ("TRMZOO_DISABLE_PLUGINS", blocked)):
        unknown = [name for name in names if name not in known]
        if unknown:
            raise PluginError(f"{var}: no installed plugin is named {', '.join(map(repr, unknown))} "
                              f"(installed: {', '.join(known) or 'none'})")
    _loaded = True
    for name in blocked:
        pm.set_blocked(name)
        _blocked.append(name)
    for ep in _entry_points():
        dist = ep.dist
        if pm.is_blocked(ep.name) or (allowed is not None and ep.name not in allowed):
            continue
        if pm.has_plugin(ep.name):
            other = _infos[ep.name].distribution
            warnings.warn(
                f"trmzoo plugin entry point {ep.name!r} of {dist.metadata['Name'] if dist else '?'} is also provided "
                f"by {other}; the second one is ignored",
                stacklevel=2,
            )
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take the zoo down
            _failures[ep.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"trmzoo plugin {ep.name!r} failed to load and was skipped ({_failures[ep.name]})",
                          stacklevel=2)
            continue
        wanted = getattr(module, "TRMZOO_PLUGIN_API", PLUGIN_API_VERSION)
        if wanted != PLUGIN_API_VERSION:
            _failures[ep.name] = f"needs plugin API {wanted}, this trmzoo offers {PLUGIN_API_VERSION}"
            warnings.warn(f"trmzoo plugin {ep.name!r} was skipped: it {_failures[ep.name]}", stacklevel=2)
            continue
        problem = _register_checked(module, ep.name)
        if problem:
            _failures[ep.name] = problem
            warnings.warn(f"trmzoo plugin {ep.name!r} was skipped: {problem}", stacklevel=2)
            continue
        _infos[ep.name] = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist.metadata["Name"] if dist else None,
            version=dist.version if dist else None,
            hooks=sorted(caller.name for caller in pm.get_hookcallers(module) or []),
        )
    pm.check_pending()


def _register_checked(module, name: str) -> str:
    """Register ``module``'s hooks; what is wrong with them (a hook trmzoo does not have, arguments its spec
    does not give), with the plugin left unregistered, or "" when they fit."""
    try:
        pm.register(module, name=name)
    except pluggy.PluginValidationError as exc:
        if pm.get_plugin(name) is not None:  # the hooks checked before the failing one stay registered
            pm.unregister(plugin=module, name=name)
        return "its hooks do not fit trmzoo's: " + "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    unknown = sorted(caller.name for caller in pm.get_hookcallers(module) or [] if not caller.has_spec())
    if unknown:
        pm.unregister(plugin=module, name=name)
        return f"it defines {', '.join(map(repr, unknown))}, which trmzoo has no hook of (see trmzoo.hookspecs)"
    return ""


def isolate(name: str, exc: BaseException, hook: str) -> None:
    """Take out a plugin whose hook raised, as one failing at import is: a warning naming it, recorded in
    :func:`plugin_failures`, its hooks no longer called (the caller drops what it had contributed)."""
    _failures[name] = f"{hook} raised {type(exc).__name__}: {exc}"
    warnings.warn(f"trmzoo plugin {name!r} failed to register and was skipped ({_failures[name]})", stacklevel=2)
    _infos.pop(name, None)
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin=plugin, name=name)


def plugin_infos() -> list[PluginInfo]:
    load_plugins()
    return [_infos[name] for name in sorted(_infos)]


def plugin_failures() -> dict[str, str]:
    load_plugins()
    return dict(_failures)


def why_not_loaded(name: str, distribution: str | None = None) -> str:
    """Why the plugin ``name`` is not loaded, and what to do about it, for one-line messages."""
    load_plugins()
    if name in _failures:
        return f"it failed to load: {_failures[name]}"
    if name in _blocked:
        return "TRMZOO_DISABLE_PLUGINS skips it"
    if any(ep.name == name for ep in _entry_points()):
        return "TRMZOO_LOAD_PLUGINS leaves it out"
    return f"install it: pip install {distribution}" if distribution else "install the package that provides it"


def not_loaded() -> dict[str, str]:
    """Installed plugins that are not loaded, each with why (for messages about a name nobody registers)."""
    load_plugins()
    return {name: why_not_loaded(name) for name in sorted({ep.name for ep in _entry_points()} - set(_infos))}


def reset() -> None:
    """Forget every loaded plugin, so the next use discovers entry points again.

    Call :func:`trmzoo.registry.reset`, which also empties the tables built from these plugins."""
    global _loaded
    for name in _blocked:
        pm.unblock(name)
    for name, plugin in list(pm.list_name_plugin()):
        pm.unregister(plugin=plugin, name=name)
    _blocked.clear()
    _infos.clear()
    _failures.clear()
    _loaded = False
