"""Converting between the official checkpoint layout and trmzoo: round trips, refusals, the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from trmzoo.cli import cli

import trmzoo
from trmzoo.convert import convert_official, load_official_checkpoint, read_official_checkpoint, to_official
from trmzoo.core.model import RecursiveModel
from trmzoo.data.format import DatasetMetadata, embedding_fingerprint, write_identifiers
from trmzoo.errors import CheckpointError, DataError
from trmzoo.testing import tiny_batch, tiny_model
from trmzoo_direct import BASELINE
from trmzoo_hrm import HRM_ARCH
from trmzoo_trm import TRM_HIER6, TRM_SINGLEZ
from trmzoo_trm import TRM as TRM_ARCH

DATA = Path(__file__).parent / "data" / "official"
ARCHITECTURES = (TRM_ARCH, TRM_SINGLEZ, TRM_HIER6, HRM_ARCH, BASELINE)  # registered by the family plugins
pytestmark = pytest.mark.usefixtures("one_thread")
OFFICIAL_CASES = sorted(p.name for p in DATA.iterdir() if (p / "step_0").exists())

BASE = {  # the contract kit's tiny model (trmzoo.testing.tiny_model_config), narrower, with RoPE
    "vocab_size": 7, "seq_len": 9, "num_puzzle_identifiers": 2, "hidden_size": 16, "puzzle_emb_ndim": 16,
    "pos_encodings": "rope", "expansion": 4.0, "halting": {"kind": "bce", "max_steps": 4},
}
TRM = {"kind": "trm", "H_cycles": 2, "L_cycles": 2, "L_layers": 1}
VARIANTS = {
    "trm": ({"recursion": TRM}, ARCHITECTURES[0]),
    "trm_mlp": ({"recursion": TRM, "backbone": {"kind": "mlp"}, "pos_encodings": "none"}, ARCHITECTURES[0]),
    "trm_learned": ({"recursion": TRM, "pos_encodings": "learned"}, ARCHITECTURES[0]),
    "trm_act": ({"recursion": TRM, "halting": {"kind": "q_learning", "max_steps": 4}}, ARCHITECTURES[0]),
    "singlez": ({"recursion": {**TRM, "latents": "single"}}, ARCHITECTURES[1]),
    "hier6": ({"recursion": {**TRM, "L_cycles": 6, "latents": "multiscale"}}, ARCHITECTURES[2]),
    "hrm": ({"recursion": {**TRM, "H_layers": 2, "separate_nets": True, "gradient": "one_step"},
             "halting": {"kind": "q_learning", "max_steps": 4}, "puzzle_emb_len": 0, "puzzle_emb_ndim": 24},
            ARCHITECTURES[3]),
    "baseline": ({"recursion": {"kind": "direct", "layers": 2}, "puzzle_emb_len": 0,
                  "halting": {"kind": "q_learning", "bootstrap": False, "max_steps": 4},
                  "backbone": {"kind": "attention", "num_heads": 6}}, ARCHITECTURES[4]),
    "baseline_no_act": ({"recursion": {"kind": "direct", "layers": 1}, "puzzle_emb_len": 0,
                         "halting": {"kind": "fixed", "max_steps": 4}}, ARCHITECTURES[4]),
}


def _random_model(overrides: dict) -> RecursiveModel:
    model = tiny_model(seed=0, **{**BASE, **overrides})
    with torch.no_grad():  # the puzzle table and q head start at zero/constant: give them values to carry
        model.puzzle_emb.weight.normal_()
        model.q_head.weight.normal_(0, 0.3)
        model.q_head.bias.normal_()
    return model.eval()


def _same_outputs(a, b) -> None:
    batch = tiny_batch(a, batch_size=3, seed=1)
    for out_a, out_b in zip(a.rollout(batch, steps=3), b.rollout(batch, steps=3)):
        assert torch.equal(out_a.logits, out_b.logits)
        assert torch.equal(out_a.q_halt, out_b.q_halt) and torch.equal(out_a.q_continue, out_b.q_continue)


def _write_run(folder: Path, state: dict, arch: dict, *, vocab: int, seq_len: int, puzzles: int) -> Path:
    """A run folder as the official pretrain.py leaves it: step_N, all_config.yaml, and the dataset's metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "step_12")
    config = {
        "arch": arch, "data_paths": [str(folder / "data")], "data_paths_test": [], "evaluators": [],
        "global_batch_size": 8, "epochs": 10, "lr": 1e-4, "lr_min_ratio": 1.0, "lr_warmup_steps": 2,
        "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "puzzle_emb_lr": 0.01, "puzzle_emb_weight_decay": 0.1,
        "project_name": "p", "run_name": "r", "load_checkpoint": None, "checkpoint_path": str(folder), "seed": 0,
        "checkpoint_every_eval": True, "eval_interval": 5, "min_eval_interval": 0, "eval_save_outputs": [],
        "ema": True, "ema_rate": 0.999, "freeze_weights": False,
    }
    (folder / "all_config.yaml").write_text(yaml.dump(config))
    meta = DatasetMetadata(vocab_size=vocab, seq_len=seq_len, num_puzzle_identifiers=puzzles, total_groups=1,
                           mean_puzzle_examples=1.0, total_puzzles=puzzles)
    (folder / "data" / "train").mkdir(parents=True)
    (folder / "data" / "train" / "dataset.json").write_text(meta.model_dump_json())
    return folder


# -- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_official_layout_round_trip_keeps_outputs(variant):
    overrides, official_name = VARIANTS[variant]
    model = _random_model(overrides)
    state, arch = to_official(model)
    assert arch["name"] == official_name
    assert all(k.startswith("_orig_mod.model.inner.") for k in state)
    back = convert_official(state, arch, vocab_size=7, seq_len=9)
    assert back.config == model.config
    _same_outputs(model, back)


@pytest.mark.parametrize("variant", ["trm_mlp", "hier6", "hrm", "baseline"])
def test_round_trip_through_an_official_run_folder(tmp_path, variant):
    overrides, _ = VARIANTS[variant]
    model = _random_model(overrides)
    state, arch = to_official(model, prefix="model.")  # as saved with DISABLE_COMPILE
    run = _write_run(tmp_path / "run", state, arch, vocab=7, seq_len=9, puzzles=2)
    write_identifiers(run / "data", ["<blank>", "puzzle_a"])
    loaded = load_official_checkpoint(run / "step_12", run / "all_config.yaml", data_dir=run / "data")
    assert loaded.config == model.config
    assert loaded.provenance.data.embedding_fingerprint == embedding_fingerprint(["<blank>", "puzzle_a"])
    assert loaded.provenance.identifiers == ["<blank>", "puzzle_a"]
    _same_outputs(model, loaded)


@pytest.mark.parametrize("case", OFFICIAL_CASES)
def test_official_checkpoints_convert_back_bit_for_bit(case):
    folder = DATA / case
    original = read_official_checkpoint(folder / "step_0")
    model = load_official_checkpoint(folder / "step_0", folder / "all_config.yaml", data_dir=folder)
    state, arch = to_official(model)
    assert set(state) == set(original)
    for key, tensor in original.items():
        assert torch.equal(state[key], tensor), key
    written = yaml.safe_load((folder / "all_config.yaml").read_text())["arch"]
    unused = {"num_heads"} if written.get("mlp_t") else set()  # no attention, nothing keeps the head count
    shared = (set(arch) & set(written)) - unused
    assert {k: arch[k] for k in shared} == {k: written[k] for k in shared}
    assert set(written) - set(arch) <= {"H_layers"}  # trm's ignored H_layers; every other setting is written


def test_sizes_shown_by_the_weights_need_no_dataset():
    folder = DATA / "trm_mlp_t"  # the MLP token mixer's width is seq_len + prefix
    model = load_official_checkpoint(folder / "step_0", folder / "all_config.yaml")
    assert (model.config.vocab_size, model.config.seq_len, model.config.num_puzzle_identifiers) == (11, 16, 3)


# -- refusals --------------------------------------------------------------------------------
def _official(case: str = "trm"):
    folder = DATA / case
    return read_official_checkpoint(folder / "step_0"), yaml.safe_load((folder / "all_config.yaml").read_text())


def test_wrong_cycles_against_the_registry_entry_is_refused():
    folder = DATA / "trm"
    with pytest.raises(CheckpointError, match=r"arch\.L_cycles is 2 but these weights were trained with 4"):
        load_official_checkpoint(folder / "step_0", folder / "all_config.yaml", data_dir=folder,
                                 expected={"H_cycles": 3, "L_cycles": 4})
    model = load_official_checkpoint(folder / "step_0", folder / "all_config.yaml", data_dir=folder,
                                     expected={"H_cycles": 3, "L_cycles": 2})
    assert (model.config.recursion.H_cycles, model.config.recursion.L_cycles) == (3, 2)


@pytest.mark.parametrize("change, message", [
    ({"vocab_size": 12}, r"vocab_size is 12 \(from the dataset's dataset.json or --vocab-size\) but 10 in the "
                         r"weights \(embed_tokens\)"),
    ({"seq_len": 20}, None),  # rope attention: seq_len is not in the weights, nothing to compare
    ({"num_puzzle_identifiers": 5}, r"num_puzzle_identifiers is 5 \(from the dataset's dataset.json\) but 3 in"),
])
def test_sizes_that_disagree_with_the_weights_are_refused(change, message):
    state, config = _official()
    sizes = {"vocab_size": 10, "seq_len": 16, "num_puzzle_identifiers": 3, **change}
    if message is None:
        assert convert_official(state, config, **sizes).config.seq_len == 20
    else:
        with pytest.raises(CheckpointError, match=message):
            convert_official(state, config, **sizes)


@pytest.mark.parametrize("case, arch_change, message", [
    ("trm", {"hidden_size": 64}, r"hidden_size is 64 in the config but 48 in the weights"),
    ("trm", {"L_layers": 3}, r"L_layers is 3 in the config but 2 in the weights"),
    ("trm", {"mlp_t": True}, r"mlp_t=True but the weights have an attention token mixer"),
    ("trm_mlp_t", {"mlp_t": False}, r"mlp_t=False but the weights have an MLP token mixer"),
    ("trm", {"expansion": 16}, r"expansion 16.0 \(SwiGLU width\) is 1024 in the config but 512"),
    ("transformers_baseline", {"num_heads": 4}, r"qkv_proj shape for num_heads 4 is \(96, 32\) in the config but \(90"),
    ("trm_learned", {"puzzle_emb_len": 6}, r"seq_len \+ puzzle prefix is 22 \(seq_len 16 from the dataset's dataset.json or "
                                           r"--seq-len, prefix 6 from the config\) but 20 .*embed_pos"),
    ("hrm", {"H_layers": 1}, r"H_layers is 1 in the config but 2 in the weights"),
    ("trm_hier6", {"L_cycles": 4}, r"trm_hier6 needs L_cycles 6"),
    ("trm", {"name": "recursive_reasoning.trm@Other"}, r"arch.name 'recursive_reasoning.trm@Other' is not one of"),
    ("trm", {"pos_encodings": "alibi"}, r"pos_encodings 'alibi' is not rope, learned or none"),
])
def test_config_that_disagrees_with_the_weights_is_refused(case, arch_change, message):
    state, config = _official(case)
    config["arch"].update(arch_change)
    with pytest.raises(CheckpointError, match=message):
        convert_official(state, config, seq_len=16)


def test_missing_and_unexpected_tensors_are_named():
    state, config = _official()
    del state["_orig_mod.model.inner.L_level.layers.1.mlp.down_proj.weight"]
    with pytest.raises(CheckpointError, match=r"missing tensor inner\.L_level\.layers\.1\.mlp\.down_proj\.weight"):
        convert_official(state, config, seq_len=16)
    state, config = _official()
    del state["_orig_mod.model.inner.H_init"]
    with pytest.raises(CheckpointError, match=r"missing tensor inner\.H_init"):
        convert_official(state, config, seq_len=16)
    state, config = _official()
    state["_orig_mod.model.inner.H_level.layers.0.mlp.down_proj.weight"] = torch.zeros(48, 256)
    with pytest.raises(CheckpointError, match=r"unexpected tensors .*H_level\.layers\.0\.mlp\.down_proj"):
        convert_official(state, config, seq_len=16)


def test_unknown_sequence_length_asks_for_the_dataset():
    state, config = _official()
    with pytest.raises(CheckpointError, match=r"seq_len is neither in all_config.yaml .*--data.*--seq-len"):
        convert_official(state, config)


def test_dataset_and_options_must_agree(tmp_path):
    folder = DATA / "trm"
    with pytest.raises(CheckpointError, match=r"vocab_size 9 was given but .*dataset.json says 10"):
        load_official_checkpoint(folder / "step_0", folder / "all_config.yaml", data_dir=folder, vocab_size=9)
    with pytest.raises(DataError, match=r"train/dataset.json: missing"):
        load_official_checkpoint(folder / "step_0", folder / "all_config.yaml", data_dir=tmp_path)


def test_unreadable_checkpoint_is_reported(tmp_path):
    bad = tmp_path / "step_1"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"step_1: not a readable torch state dict"):
        read_official_checkpoint(bad)
    with pytest.raises(CheckpointError, match=r"no such checkpoint file"):
        read_official_checkpoint(tmp_path / "step_2")


def test_models_without_an_official_counterpart_cannot_be_exported():
    model = _random_model({"recursion": {**TRM, "separate_nets": True}})  # paper ablation, no official file
    with pytest.raises(CheckpointError, match=r"no official architecture computes this model"):
        to_official(model)


# -- CLI -------------------------------------------------------------------------------------
def test_convert_command_writes_a_loadable_model(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(DATA / "hrm", folder)
    out = tmp_path / "converted"
    result = CliRunner().invoke(cli, [
        "convert", str(folder / "step_0"), "--config", str(folder / "all_config.yaml"), "--out", str(out), "--data", str(folder),
    ])
    assert result.exit_code == 0, result.output
    assert "hrm -> trmzoo" in result.output
    loaded = trmzoo.load(out)
    direct = load_official_checkpoint(folder / "step_0", folder / "all_config.yaml", data_dir=folder)
    assert loaded.config == direct.config
    assert loaded.provenance.source.converter == ARCHITECTURES[3] == loaded.meta["official_arch"]
    assert loaded.provenance.source.checkpoint == "step_0"
    _same_outputs(loaded, direct)


def test_convert_command_reports_errors_on_one_line(tmp_path):
    folder = DATA / "trm"
    result = CliRunner().invoke(cli, [
        "convert", str(folder / "step_0"), "--config", str(folder / "all_config.yaml"), "--out", str(tmp_path / "o"),
        "--vocab-size", "12", "--seq-len", "16",
    ])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert "vocab_size is 12 (from the dataset's dataset.json or --vocab-size) but 10 in the weights" in result.output
    assert not (tmp_path / "o").exists()


def test_convert_records_the_task_so_that_eval_and_solve_read_its_puzzles(tmp_path):
    official = Path(__file__).parent / "data" / "official" / "trm"
    data = tmp_path / "data"
    shutil.copytree(official, data)
    args = ["convert", str(official / "step_0"), "--config", str(official / "all_config.yaml"), "--data", str(data)]
    refused = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a"), "--task", "sudoku"])
    assert refused.exit_code == 1 and "--task sudoku: its puzzles are 81 tokens, the checkpoint reads 16" in refused.output
    assert not (tmp_path / "a").exists()
    (data / "task.json").write_text('{"name": "sudoku", "box_rows": 2, "box_cols": 2}\n')  # as trmzoo's builds say
    converted = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b")])
    assert converted.exit_code == 0, converted.output
    assert trmzoo.load(tmp_path / "b").provenance.task == {"name": "sudoku", "box_rows": 2, "box_cols": 2}
    solved = CliRunner().invoke(cli, ["solve", str(tmp_path / "b"), "1...|..3.|.4..|...2", "--json"])
    assert solved.exit_code == 0, solved.output
