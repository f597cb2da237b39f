"""Plugin discovery through real entry points, conflicts, broken plugins and the env lists."""

import importlib
import json
import sys
import textwrap

import pytest
from click.testing import CliRunner

import trmzoo
from trmzoo import plugins, registry
from trmzoo.cli import cli
from trmzoo.errors import PluginError


@pytest.fixture
def fresh(monkeypatch):
    """Rediscover entry points for this test, and again afterwards."""
    monkeypatch.delenv("TRMZOO_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("TRMZOO_DISABLE_PLUGINS", raising=False)
    registry.reset()
    yield
    registry.reset()


def install_dist(root, dist_name, module_name, source, entry_name=None):
    """Write an installed distribution (a dist-info with entry_points.txt) and its module on sys.path."""
    (root / f"{module_name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist_name}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[trmzoo]\n{entry_name or module_name} = {module_name}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("zoo_test_")]:
        del sys.modules[name]


CLASH = """
    from trmzoo import hookimpl
    from pydantic import BaseModel

    class Config(BaseModel):
        kind: str = "attention"

    @hookimpl
    def register_backbones(register):
        register("attention", Config, lambda config, spec, num_layers: None)
"""

EXTRA_BACKBONE = """
    from typing import Literal
    from pydantic import BaseModel, ConfigDict
    from trmzoo import hookimpl

    class ConvConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: Literal["conv"] = "conv"
        kernel: int = 3

    @hookimpl
    def register_backbones(register):
        register("conv", ConvConfig, lambda config, spec, num_layers: None)
"""


def test_builtins_are_discovered_through_installed_entry_points(fresh):
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    for name in ("trm", "attention", "mlp"):
        assert rows[name]["distribution"] == "trmzoo"
        assert rows[name]["version"] == trmzoo.__version__
    assert rows["attention"]["contributes"] == {"backbone": ["attention"]}
    assert "trm_sudoku_mlp" in rows["trm"]["contributes"]["model"]
    assert rows["trm"]["contributes"]["recursion"] == ["trm"]
    assert rows["direct"]["contributes"]["recursion"] == ["direct"]  # each family registers its own
    assert set(rows["trm"]["contributes"]["converter"]) == {"recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1",
                                                         "recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1",
                                                         "recursive_reasoning.trm_hier6@TinyRecursiveReasoningModel_ACTV1"}


def test_third_party_dist_info_is_discovered_and_its_config_validated(fresh, site):
    install_dist(site, "zoo-test-conv", "zoo_test_conv", EXTRA_BACKBONE)
    reg = registry.get_registry()
    assert reg.backbone["conv"].plugin == "zoo_test_conv"
    from trmzoo.factory import model_config
    from trmzoo.errors import RecipeError

    assert model_config({"backbone": {"kind": "conv", "kernel": 5}}).backbone.kernel == 5
    with pytest.raises(RecipeError, match=r"backbone\.kernal: extra inputs are not permitted"):
        model_config({"backbone": {"kind": "conv", "kernal": 5}})


def test_duplicate_name_names_both_plugins_and_the_switch(fresh, site):
    install_dist(site, "zoo-test-clash", "zoo_test_clash", CLASH)
    with pytest.raises(PluginError) as err:
        registry.get_registry()
    message = str(err.value)
    assert "'zoo_test_clash'" in message and "'attention'" in message
    assert "TRMZOO_DISABLE_PLUGINS=zoo_test_clash" in message


def test_disabling_one_plugin_resolves_the_clash(fresh, site, monkeypatch):
    install_dist(site, "zoo-test-clash", "zoo_test_clash", CLASH)
    monkeypatch.setenv("TRMZOO_DISABLE_PLUGINS", "zoo_test_clash")
    assert registry.get_registry().backbone["attention"].plugin == "attention"


def test_broken_plugin_is_reported_and_isolated(fresh, site):
    install_dist(site, "zoo-test-broken", "zoo_test_broken", "raise RuntimeError('boom at import')\n")
    with pytest.warns(UserWarning, match=r"'zoo_test_broken' failed to load.*boom at import"):
        reg = registry.get_registry()
    assert "trm_sudoku_mlp" in reg.model
    assert "zoo_test_broken" in plugins.plugin_failures()
    model = trmzoo.create_model("trm_sudoku_att", hidden_size=64, backbone={"num_heads": 2})
    assert model.config.hidden_size == 64


def test_plugin_asking_for_another_api_is_refused_by_name(fresh, site):
    install_dist(site, "zoo-test-future", "zoo_test_future", "TRMZOO_PLUGIN_API = 99\n" + textwrap.dedent(EXTRA_BACKBONE))
    with pytest.warns(UserWarning, match=r"'zoo_test_future' was skipped: it needs plugin API 99"):
        reg = registry.get_registry()
    assert "conv" not in reg.backbone and "attention" in reg.backbone


def test_load_plugins_allow_list(fresh, site, monkeypatch):
    install_dist(site, "zoo-test-conv", "zoo_test_conv", EXTRA_BACKBONE)
    monkeypatch.setenv("TRMZOO_LOAD_PLUGINS", "trm,attention")
    reg = registry.get_registry()
    assert set(reg.backbone) == {"attention"}
    assert {info.name for info in plugins.plugin_infos()} == {"trm", "attention"}


def test_plugins_can_add_cli_commands(fresh, site):
    install_dist(site, "zoo-test-cmd", "zoo_test_cmd", """
        import click
        from trmzoo import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command(name="hello-zoo")
            def hello():
                click.echo("hello from a plugin")
    """)
    from trmzoo import cli as cli_module

    cli_module._add_plugin_commands()
    try:
        result = CliRunner().invoke(cli_module.cli, ["hello-zoo"])
        assert result.output.strip() == "hello from a plugin"
    finally:
        cli_module.cli.commands.pop("hello-zoo", None)
