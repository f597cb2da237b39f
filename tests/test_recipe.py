"""Recipe validation: dotted paths in errors, duplicate keys, --set overrides, shipped recipes."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trmzoo.cli import cli
from trmzoo.errors import RecipeError
from trmzoo.recipe import dump_recipe, load_recipe
from trmzoo.yamlio import read_yaml

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))

BASE = """\
model:
  hidden_size: 64
  backbone:
    kind: attention
    num_heads: 4
  recursion:
    kind: trm
    H_cycles: 2
task:
  name: sudoku
train:
  global_batch_size: 8
"""


def write(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_recipe_loads_with_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, BASE))
    assert recipe.model.recursion.H_cycles == 2
    assert recipe.model.recursion.L_cycles == 6  # official default kept
    assert recipe.train.optimizer == "adam_atan2"


def test_typo_is_reported_with_its_dotted_path(tmp_path):
    path = write(tmp_path, BASE.replace("num_heads: 4", "num_head: 4"))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(err.value) == f"{path}: model.backbone.num_head: extra inputs are not permitted"


def test_wrong_type_names_path_and_expected_type(tmp_path):
    path = write(tmp_path, BASE.replace("H_cycles: 2", "H_cycles: three"))
    with pytest.raises(RecipeError, match=r"model\.recursion\.H_cycles: input should be a valid integer"):
        load_recipe(path)


def test_unknown_backbone_kind_lists_the_known_ones(tmp_path):
    path = write(tmp_path, BASE.replace("kind: attention", "kind: rnn"))
    with pytest.raises(RecipeError, match=r"model\.backbone: no loaded plugin registers the backbone 'rnn' \(registered: attention"):
        load_recipe(path)


def test_duplicate_yaml_key_is_rejected_with_its_line(tmp_path):
    path = write(tmp_path, BASE + "train:\n  seed: 3\n")
    with pytest.raises(RecipeError, match=r"line 13: duplicate key 'train' \(first at line 11\)"):
        load_recipe(path)


def test_set_overrides_values_parsed_as_yaml(tmp_path):
    recipe = load_recipe(write(tmp_path, BASE), ("train.lr=3.0e-4", "model.recursion.latents=single"))
    assert recipe.train.lr == 3.0e-4
    assert recipe.model.recursion.latents == "single"


def test_set_on_a_missing_path_is_rejected(tmp_path):
    with pytest.raises(RecipeError, match=r"^--set train\.stpes: no such setting"):
        load_recipe(write(tmp_path, BASE), ("train.stpes=10",))
    with pytest.raises(RecipeError, match=r"--set train\.lr\.x: train\.lr is a value"):
        load_recipe(write(tmp_path, BASE + "  lr: 1.0e-4\n"), ("train.lr.x=1",))


def test_preset_starts_from_a_registered_model(tmp_path):
    recipe = load_recipe(write(tmp_path, "model:\n  preset: trm_sudoku_mlp\n  hidden_size: 64\ntask:\n  name: sudoku\n"))
    assert recipe.model.backbone.kind == "mlp" and recipe.model.hidden_size == 64
    assert recipe.model.recursion.L_cycles == 6


def test_resolved_recipe_round_trips(tmp_path):
    recipe = load_recipe(write(tmp_path, BASE))
    again = load_recipe(write(tmp_path, dump_recipe(recipe), "resolved.yaml"))
    assert again == recipe


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_shipped_recipe_validates(path):
    load_recipe(path)
    assert read_yaml(path)  # non-empty


def test_recipes_cli_validate_schema_and_list(tmp_path):
    runner = CliRunner()
    good, bad = write(tmp_path, BASE, "good.yaml"), write(tmp_path, BASE.replace("H_cycles", "H_cycle"), "bad.yaml")
    result = runner.invoke(cli, ["recipes", "validate", str(good), str(bad)])
    assert result.exit_code != 0
    assert f"{good}: ok" in result.output
    assert "model.recursion.H_cycle: extra inputs are not permitted" in result.output
    schema = runner.invoke(cli, ["recipes", "schema"])
    assert schema.exit_code == 0 and '"Recipe"' in schema.output
    assert "sudoku_cpu" in runner.invoke(cli, ["recipes", "list"]).output


def test_the_schema_carries_the_field_help():
    schema = CliRunner().invoke(cli, ["recipes", "schema"])
    assert schema.exit_code == 0
    defs = json.loads(schema.output)["$defs"]
    assert defs["TrainConfig"]["properties"]["max_steps"]["description"].startswith("Total optimizer steps")
    assert "N_sup" in defs["BCEHaltingConfig"]["properties"]["max_steps"]["description"]  # inherited from HaltingConfig
    assert defs["TRMRecursionConfig"]["properties"]["L_cycles"]["description"] == "n: latent updates per round."
    assert "registered model" in defs["RecipeModelConfig"]["properties"]["preset"]["description"]
