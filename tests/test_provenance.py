"""The provenance record: what a trained, converted or loaded model says of itself, kept in config.json.

tests/data/weights-v1 is a weight folder written by trmzoo 0.1 (config.json ``format_version`` 1,
with its free-form keys and the absolute ``data_dir`` of the machine that trained it): a 6-step
run of tests/data/recipes/maze_tiny.yaml.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import trmzoo
from trmzoo.core.provenance import Provenance
from trmzoo.data import embedding_fingerprint, read_identifiers, write_identifiers
from trmzoo.errors import CheckpointError
from trmzoo.run import WEIGHTS_DIR
from trmzoo.testing import tiny_batch, tiny_model_config
from trmzoo.train.trainer import train

DATA = Path(__file__).parent / "data"
OLD = DATA / "weights-v1"
RECIPE = DATA / "recipes" / "maze_tiny.yaml"
pytestmark = pytest.mark.usefixtures("one_thread")


def strings(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def test_a_format_version_1_folder_still_loads_and_saves_as_version_2(tmp_path):
    old = json.loads((OLD / "config.json").read_text())
    assert old["format_version"] == 1 and old["data_dir"].startswith("/")  # as trmzoo 0.1 wrote it
    model = trmzoo.load(OLD)
    saved = {**load_file(OLD / "model.safetensors"), **load_file(OLD / "puzzle_emb.safetensors")}
    state = model.state_dict()
    assert set(state) == set(saved) and all(torch.equal(state[k], saved[k]) for k in saved)
    record = model.provenance
    assert record.task == old["task"] and record.step == 6
    assert record.data.build_fingerprint == old["data"]["build_fingerprint"]
    assert record.data.embedding_fingerprint == old["data"]["embedding_fingerprint"]
    assert record.architecture is None  # 0.1 wrote "custom" for every trained model
    assert record.identifiers is None  # its data_dir is gone from this machine
    assert model.meta["task"] == old["task"] and model.meta["step"] == 6  # the 0.1 view, read-only
    with pytest.raises(TypeError):
        model.meta["step"] = 7  # type: ignore[index]

    trmzoo.save_pretrained(model, tmp_path / "v2")
    config = json.loads((tmp_path / "v2" / "config.json").read_text())
    assert config["format_version"] == 2 and "data_dir" not in config
    assert config["task"] == old["task"] and config["step"] == 6 and config["data"] == old["data"]
    again = trmzoo.load(tmp_path / "v2")
    batch = tiny_batch(model)
    assert torch.equal(model.rollout(batch)[-1].logits, again.rollout(batch)[-1].logits)


def test_a_version_1_folder_takes_its_identifiers_from_its_data_dir_while_it_exists(tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(OLD, folder)
    data = tmp_path / "data"
    data.mkdir()
    write_identifiers(data, ["<blank>"])
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "data_dir": str(data)}))
    assert trmzoo.load(folder).provenance.identifiers == ["<blank>"]
    trmzoo.save_pretrained(trmzoo.load(folder), tmp_path / "v2")
    assert read_identifiers(tmp_path / "v2") == ["<blank>"]  # now kept in the weight folder


@pytest.mark.parametrize("change, message", [
    ({"format_version": 3}, r"format_version 3 is newer than this trmzoo reads \(2\); upgrade trmzoo"),
    ({"licence": "MIT"}, r"config.json: licence: extra inputs are not permitted"),
    ({"data": {"embedding_fingerprint": 7}}, r"config.json: data.embedding_fingerprint: input should be a valid string"),
])
def test_a_malformed_config_is_refused_on_one_line(tmp_path, change, message):
    model = trmzoo.build_model(tiny_model_config())
    trmzoo.save_pretrained(model, tmp_path / "w")
    config = json.loads((tmp_path / "w" / "config.json").read_text())
    (tmp_path / "w" / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(CheckpointError, match=message) as info:
        trmzoo.load(tmp_path / "w")
    assert "\n" not in str(info.value)


def test_the_record_round_trips_through_the_weight_folder(tmp_path):
    model = trmzoo.create_model("trm_sudoku_mlp", hidden_size=32, expansion=2.0, puzzle_emb_ndim=32,
                                recursion={"L_layers": 1}, forward_dtype="float32")
    model.provenance = model.provenance.model_copy(update={
        "task": {"name": "sudoku"}, "license": "MIT", "step": 3, "identifiers": ["<blank>"],
        "data": model.provenance.data.model_copy(update={"embedding_fingerprint": embedding_fingerprint(["<blank>"])}),
    })
    trmzoo.save_pretrained(model, tmp_path / "w")
    loaded = trmzoo.load(tmp_path / "w").provenance
    assert loaded.model_copy(update={"plugins": []}) == model.provenance
    assert {(u.kind, u.name, u.plugin, u.distribution) for u in loaded.plugins} == {
        ("backbone", "mlp", "mlp", "trmzoo"), ("recursion", "trm", "trm", "trmzoo"),
        ("halting", "bce", "trm", "trmzoo"), ("task", "sudoku", "sudoku", "trmzoo")}  # who provided what
    config = json.loads((tmp_path / "w" / "config.json").read_text())
    assert config["architecture"] == "trm_sudoku_mlp" and "identifiers" not in config
    assert Provenance.model_validate({k: v for k, v in config.items()
                                      if k not in ("format_version", "trmzoo_version", "model_args", "parameters")})


@pytest.mark.slow
def test_a_trained_model_names_its_architecture_and_records_no_path(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    overrides = ("model.preset=trm_maze_att", "train.max_steps=4", "train.log_interval=2", f"data.dir={data}")
    train(str(RECIPE), overrides=overrides, out=str(run), progress=False)
    config = json.loads((run / WEIGHTS_DIR / "config.json").read_text())
    assert config["architecture"] == "trm_maze_att"  # the preset survives validation
    assert "preset" not in config["model_args"]
    assert not [s for s in strings(config) if s.startswith("/") or str(tmp_path) in s], config
    assert read_identifiers(run / WEIGHTS_DIR) == read_identifiers(data)
    assert "trm_maze_att" in (run / WEIGHTS_DIR / "README.md").read_text()

    train("", overrides=("train.max_steps=6",), resume=str(run), progress=False)
    assert json.loads((run / WEIGHTS_DIR / "config.json").read_text())["architecture"] == "trm_maze_att"

    shutil.rmtree(data)  # the weight folder needs nothing outside itself
    loaded = trmzoo.load(run)
    assert loaded.provenance.identifiers == ["<blank>"] and loaded.provenance.task["name"] == "maze"
    assert loaded.provenance.step == 6


def test_a_cut_or_padded_safetensors_file_is_refused_before_use(tmp_path):
    from trmzoo.weights import check_safetensors

    trmzoo.save_pretrained(trmzoo.build_model(tiny_model_config()), tmp_path / "w")
    path = tmp_path / "w" / "model.safetensors"
    check_safetensors(path)
    whole = path.read_bytes()
    for damaged in (whole[:-16], whole + b"\0" * 16):
        path.write_bytes(damaged)
        with pytest.raises(CheckpointError, match=r"model.safetensors: corrupted or truncated safetensors file"):
            check_safetensors(path)
