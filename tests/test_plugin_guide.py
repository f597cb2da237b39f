"""The worked examples of docs/plugin-guide.md work as written: each plugin module in the guide is
installed as a plugin (a real dist-info on sys.path) and passes the contract kit, and the dataset
writer writes a build that reads back in the on-disk format."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import trmzoo
from plugin_site import install_dist
from trmzoo import testing
from trmzoo.data import read_identifiers, read_split

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugin-guide.md"
pytestmark = pytest.mark.usefixtures("one_thread")


def examples(kind: str) -> dict[str, str]:
    """The ```python blocks the guide marks with ``<!-- guide-<kind>: name -->``, by name."""
    pattern = rf"<!-- guide-{kind}: (\w+) -->\n```python\n(.*?)\n```"
    return dict(re.findall(pattern, GUIDE.read_text(), re.DOTALL))


def test_the_guide_marks_its_worked_examples():
    assert set(examples("plugin")) == {"zoo_damped", "zoo_patient", "zoo_lightning"}
    assert set(examples("example")) == {"reverse_dataset"}


def test_the_recursion_example_passes_the_contract(fresh, site, tmp_path):
    install_dist(site, "zoo-damped", "zoo_damped", examples("plugin")["zoo_damped"])
    testing.check_component("recursion", "damped", tmp_path, plugin="zoo_damped", config={"damping": 0.7})


def test_the_halting_example_passes_the_contract(fresh, site, tmp_path):
    install_dist(site, "zoo-patient", "zoo_patient", examples("plugin")["zoo_patient"])
    testing.check_component("halting", "patient", tmp_path, plugin="zoo_patient")
    model = trmzoo.build_model(testing.tiny_model_config(halting={"kind": "patient", "max_steps": 2}))
    assert model.halting.needs_target  # the model runs the second pass whose logits reach target()


def test_the_converter_example_converts_a_lightning_checkpoint(fresh, site, tmp_path):
    install_dist(site, "zoo-lightning", "zoo_lightning", examples("plugin")["zoo_lightning"])
    torch.manual_seed(0)
    model = trmzoo.build_model(testing.tiny_model_config())
    with torch.no_grad():
        model.puzzle_emb.weight.normal_()
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "epoch": 3,
                "hyper_parameters": {"model": model.config.model_dump(mode="json"), "lr": 1e-3}}, checkpoint)
    testing.check_converter("lightning-trmzoo", checkpoint, reference=model)
    torch.save({"state_dict": {}}, tmp_path / "empty.ckpt")
    with pytest.raises(trmzoo.errors.CheckpointError, match=r"empty.ckpt: no hyper_parameters.model"):
        trmzoo.convert.load_checkpoint(tmp_path / "empty.ckpt", converter="lightning-trmzoo")


def test_the_dataset_writer_example_writes_the_on_disk_format(tmp_path):
    source = tmp_path / "reverse_dataset.py"
    source.write_text(examples("example")["reverse_dataset"])
    spec = importlib.util.spec_from_file_location("reverse_dataset", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_reverse_dataset(tmp_path / "data")
    assert read_identifiers(tmp_path / "data") == ["<blank>"]
    for split, count in (("train", 64), ("test", 16)):
        meta, arrays = read_split(tmp_path / "data", split)
        assert (meta.vocab_size, meta.seq_len, meta.total_groups, meta.total_puzzles) == (11, 8, count, count)
        assert arrays.inputs.shape == (count, 8) and arrays.inputs.dtype == np.uint8
        assert np.array_equal(arrays.labels, arrays.inputs[:, ::-1])
        assert arrays.puzzle_indices[-1] == count and arrays.group_indices[-1] == count
