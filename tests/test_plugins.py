"""Plugin discovery through real entry points, conflicts, broken plugins and the env lists."""

import json
import textwrap

import pytest
from click.testing import CliRunner
from plugin_site import install_dist

import trmzoo
from trmzoo import plugins, registry
from trmzoo.cli import cli
from trmzoo.errors import PluginError


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
                                                         "recursive_reasoning.trm_hier6@TinyRecursiveReasoningModel_ACTV1",
                                                         "nano-trm", "nano-trm-sudoku", "cgar"}


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
    rows = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)  # the same list as when all load
    assert {row["name"]: row["loaded"] for row in rows}["zoo_test_broken"] is False
    assert next(row for row in rows if row["name"] == "zoo_test_broken")["error"].endswith("boom at import")
    assert all(row["loaded"] and row["error"] is None for row in rows if row["name"] != "zoo_test_broken")
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


def test_a_failing_register_commands_takes_the_whole_plugin_out(fresh, site):
    install_dist(site, "zoo-test-halfcmd", "zoo_test_halfcmd", textwrap.dedent(EXTRA_BACKBONE) + """
import click

@hookimpl
def register_commands(cli):
    @cli.command(name="half-zoo")
    def half():
        click.echo("half")
    raise RuntimeError("boom after one command")
""")
    from trmzoo import cli as cli_module

    assert "conv" in registry.get_registry().backbone
    with pytest.warns(UserWarning, match=r"'zoo_test_halfcmd' failed to register.*boom after one command"):
        cli_module._add_plugin_commands()
    assert "half-zoo" not in cli_module.cli.commands and "conv" not in registry.get_registry().backbone
    assert "zoo_test_halfcmd" in plugins.plugin_failures()


def test_a_component_registered_under_another_name_than_its_kind_is_skipped_by_name(fresh, site):
    install_dist(site, "zoo-test-rename", "zoo_test_rename", EXTRA_BACKBONE.replace('register("conv"', 'register("conv2"'))
    with pytest.warns(UserWarning, match=r"'zoo_test_rename' failed to register.*backbone 'conv2' is registered with "
                                         r"a config whose kind is 'conv'"):
        reg = registry.get_registry()
    assert "conv" not in reg.backbone and "conv2" not in reg.backbone and "attention" in reg.backbone


@pytest.mark.parametrize("hooks, words", [
    ("@hookimpl\ndef register_task(register):\n    pass\n", "defines 'register_task', which trmzoo has no hook of"),
    ("@hookimpl\ndef register_tasks(reg):\n    pass\n", "hooks do not fit trmzoo's: .*register_tasks.*'reg'"),
], ids=["misspelt-hook", "misnamed-argument"])
def test_a_hook_that_fits_no_spec_skips_its_plugin_and_nothing_else(fresh, site, hooks, words):
    install_dist(site, "zoo-test-typo", "zoo_test_typo", textwrap.dedent(EXTRA_BACKBONE) + hooks)
    with pytest.warns(UserWarning, match=f"'zoo_test_typo' was skipped: its? {words}"):
        reg = registry.get_registry()
    assert "trm_sudoku_mlp" in reg.model and "conv" not in reg.backbone
    assert "zoo_test_typo" in plugins.plugin_failures() and "\n" not in plugins.plugin_failures()["zoo_test_typo"]
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0 and "trm_sudoku_mlp" in result.output


ECHO_BACKBONE = """
    from typing import Literal

    from pydantic import BaseModel, ConfigDict
    from torch import nn

    from trmzoo import hookimpl
    from trmzoo.core.backbone import build_blocks

    class EchoConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: Literal["echo"] = "echo"

    @hookimpl
    def register_backbones(register):
        register("echo", EchoConfig, lambda config, spec, num_layers: build_blocks(nn.Identity, spec, num_layers))
"""


def test_a_model_or_run_whose_plugin_is_missing_names_the_plugin(fresh, site, tmp_path, monkeypatch):
    from trmzoo.testing import tiny_model_config
    from trmzoo.train.trainer import train

    install_dist(site, "zoo-test-echo", "zoo_test_echo", ECHO_BACKBONE)
    model = trmzoo.build_model(tiny_model_config(backbone={"kind": "echo"}))
    trmzoo.save_pretrained(model, tmp_path / "w")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(textwrap.dedent(f"""
        model: {{hidden_size: 16, puzzle_emb_ndim: 0, forward_dtype: float32, pos_encodings: learned,
                backbone: {{kind: echo}}, recursion: {{kind: trm, H_cycles: 1, L_cycles: 1, L_layers: 1}},
                halting: {{kind: bce, max_steps: 2}}}}
        task: {{name: maze, source: generate, size: 5, min_path_length: 2, num_train: 7, num_test: 4}}
        data: {{dir: {tmp_path / 'data'}}}
        train: {{global_batch_size: 4, max_steps: 2, device: cpu, log_interval: 1}}
    """))
    train(str(recipe), out=str(tmp_path / "run"), progress=False)

    monkeypatch.setenv("TRMZOO_DISABLE_PLUGINS", "zoo_test_echo")
    registry.reset()
    with pytest.raises(PluginError, match=r"w: this model needs plugin 'zoo_test_echo' for its backbone 'echo'; "
                                          r"TRMZOO_DISABLE_PLUGINS skips it"):
        trmzoo.load(tmp_path / "w")
    with pytest.raises(PluginError, match=r"run: this run needs plugin 'zoo_test_echo' for its backbone 'echo'"):
        train("", resume=str(tmp_path / "run"), progress=False)

    monkeypatch.delenv("TRMZOO_DISABLE_PLUGINS")
    for path in site.glob("zoo-test-echo-*.dist-info"):  # uninstall it
        for file in path.iterdir():
            file.unlink()
        path.rmdir()
    registry.reset()
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--data", str(tmp_path / "data")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "this model needs plugin 'zoo_test_echo' for its backbone 'echo'; install it: pip install zoo-test-echo" \
        in result.output
    with pytest.raises(PluginError, match=r"needs a plugin that registers the backbone 'echo'.*registered: attention"):
        trmzoo.load(_without_record(tmp_path / "w"))


def _without_record(folder):
    """The weight folder with its config.json's plugin record removed (as a trmzoo 0.1 folder has none)."""
    config = json.loads((folder / "config.json").read_text())
    config.pop("plugins")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_recipe_naming_an_unregistered_kind_says_no_plugin_registers_it(tmp_path):
    from trmzoo.errors import RecipeError
    from trmzoo.recipe import validate_recipe

    with pytest.raises(RecipeError, match=r"model\.backbone: no loaded plugin registers the backbone 'conv1d' "
                                          r"\(registered: attention, mlp\); install or enable"):
        validate_recipe({"model": {"backbone": {"kind": "conv1d"}}, "task": {"name": "sudoku"}})
