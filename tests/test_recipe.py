"""Recipe validation: dotted paths in errors, duplicate keys, --set overrides, shipped recipes."""

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from trmzoo.cli import cli
from trmzoo.errors import RecipeError
from trmzoo.recipe import dump_recipe, find_recipes, load_recipe, resolve_recipe_path
from trmzoo.yamlio import read_yaml

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "recipes").glob("*.yaml")) + sorted((ROOT / "recipes" / "fast").glob("*.yaml"))

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


def test_recipes_in_sub_folders_are_named_by_their_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./recipes: the repository's are the shipped ones
    shipped, recipes = ROOT / "recipes", find_recipes()
    assert recipes["sudoku_mlp"] == shipped / "sudoku_mlp.yaml"
    assert recipes["fast/sudoku_mlp"] == shipped / "fast" / "sudoku_mlp.yaml"
    assert recipes["paper/table1_trm"] == shipped / "paper" / "table1_trm.yaml"
    assert resolve_recipe_path("fast/sudoku6_cpu") == shipped / "fast" / "sudoku6_cpu.yaml"
    runner = CliRunner()
    listed = [line.split()[0] for line in runner.invoke(cli, ["recipes", "list"]).output.splitlines()]
    assert {"sudoku_cpu", "fast/sudoku6_cpu", "paper/table1_trm"} <= set(listed)
    show = runner.invoke(cli, ["recipes", "show", "fast/sudoku6_cpu"])
    assert show.output == (shipped / "fast" / "sudoku6_cpu.yaml").read_text()
    validate = runner.invoke(cli, ["recipes", "validate", "fast/sudoku6_cpu", "paper/table1_trm"])
    assert validate.exit_code == 0, validate.output


def test_a_local_sub_folder_recipe_wins_its_name_and_hidden_folders_are_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes" / "fast").mkdir(parents=True)
    (tmp_path / "recipes" / ".ipynb_checkpoints").mkdir()
    local = write(tmp_path / "recipes" / "fast", BASE, "sudoku6_cpu.yaml")
    write(tmp_path / "recipes" / ".ipynb_checkpoints", BASE, "sudoku_cpu-checkpoint.yaml")
    recipes = find_recipes()
    assert recipes["fast/sudoku6_cpu"].samefile(local)
    assert recipes["sudoku_cpu"] == ROOT / "recipes" / "sudoku_cpu.yaml"
    assert not [name for name in recipes if "checkpoint" in name]


def test_the_schema_carries_the_field_help():
    schema = CliRunner().invoke(cli, ["recipes", "schema"])
    assert schema.exit_code == 0
    defs = json.loads(schema.output)["$defs"]
    assert defs["TrainConfig"]["properties"]["max_steps"]["description"].startswith("Total optimizer steps")
    assert "N_sup" in defs["BCEHaltingConfig"]["properties"]["max_steps"]["description"]  # inherited from HaltingConfig
    assert defs["TRMRecursionConfig"]["properties"]["L_cycles"]["description"] == "n: latent updates per round."
    assert "registered model" in defs["RecipeModelConfig"]["properties"]["preset"]["description"]


# -- the paper-scale fast recipes ------------------------------------------------------------------------------
PAPER_SCALE = [("sudoku_mlp", 1000), ("maze_att", 1000)]  # recipe, training puzzles (groups) of its data


@pytest.mark.parametrize("name, groups", PAPER_SCALE, ids=[n for n, _ in PAPER_SCALE])
def test_paper_scale_fast_recipe_carries_the_cpu_options(name, groups):
    fast = load_recipe(ROOT / "recipes" / "fast" / f"{name}.yaml")
    official = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    # The paper's model, width, batch and step count.
    assert fast.model == official.model and fast.model.hidden_size == 512 and fast.model.forward_dtype == "bfloat16"
    assert fast.train.global_batch_size == official.train.global_batch_size == 768
    assert fast.train.epochs == official.train.epochs
    steps = fast.train.epochs * groups // fast.train.global_batch_size
    assert steps == 65104
    # On-the-fly augmentation, and no stored copies in a data folder of its own.
    assert fast.train.augment and not official.train.augment
    if fast.task.name == "sudoku":
        assert fast.task.num_aug == 0 and official.task.num_aug == 1000
    else:
        assert fast.task.aug is False and official.task.aug is True
    assert fast.data.dir != official.data.dir
    # CGAR's curriculum: two shallower stages at 30% and 60% of the run, then the model's own depth.
    recursion, stages = fast.model.recursion, fast.train.curriculum
    assert [s.until_step for s in stages] == [int(0.3 * steps), int(0.6 * steps)]
    assert all(s.H_cycles < recursion.H_cycles and s.L_cycles < recursion.L_cycles for s in stages)
    assert stages[0].H_cycles == 1 and stages[1].H_cycles == 2
    assert fast.train.supervision_weight_decay == 0.7
    # A decaying learning rate above the official constant 1e-4.
    assert official.train.lr_min_ratio == 1.0 and fast.train.lr_schedule == "linear" and fast.train.lr_min_ratio < 1
    assert fast.train.lr > official.train.lr
    header = (ROOT / "recipes" / "fast" / f"{name}.yaml").read_text()
    assert "Projected GPU time" in header and "NOT A MEASUREMENT" in header and "no GPU run" in header


def test_gpu_time_to_accuracy_recipe_is_the_official_setting_on_hard_9x9():
    paper = load_recipe(ROOT / "benchmarks" / "time_to_accuracy" / "sudoku9_paper.yaml")
    official = load_recipe(ROOT / "recipes" / "sudoku_mlp.yaml")
    assert paper.model == official.model  # width 512, bf16, T=3, n=6, 16 supervision steps
    for key in ("global_batch_size", "lr", "lr_warmup_steps", "lr_min_ratio", "beta1", "beta2", "weight_decay",
                "puzzle_emb_lr", "puzzle_emb_weight_decay", "optimizer", "ema", "ema_rate", "curriculum",
                "supervision_weight_decay"):
        assert getattr(paper.train, key) == getattr(official.train, key), key
    task = paper.task
    assert (task.source, task.box_rows, task.box_cols, task.givens, task.min_difficulty) == ("generate", 3, 3, None, 1)
    assert task.num_test == 1000 and task.num_aug == 0
    assert paper.train.augment  # the official build's 1000 stored shuffles, drawn afresh instead
    script = ROOT / "benchmarks" / "gpu_time_to_accuracy.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert "sudoku9_paper.yaml" in script.read_text() and "recipes/fast/sudoku_mlp.yaml" in script.read_text()


def test_gpu_vs_official_script_runs_the_issue_cases_and_shares_the_install_step():
    script = ROOT / "benchmarks" / "gpu_vs_official.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "--device \"$DEVICE\"" in text and "sudoku_mlp arc_att" in text and "DTYPES:-bfloat16" in text
    assert "MODES:-compile" in text
    for name in ("gpu_vs_official.sh", "gpu_time_to_accuracy.sh"):  # one copy of the offline install step
        assert "source benchmarks/gpu_setup.sh" in (ROOT / "benchmarks" / name).read_text()
