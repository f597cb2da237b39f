"""The converters of TRM checkpoints from other code bases (nano-trm's Lightning files, CGAR's
pytorch_model.bin): files of the same structure as the published ones, converted, give the outputs the
source code's math gives (tests/foreign_checkpoints.py)."""

from __future__ import annotations

import argparse

import pytest
import torch
import yaml

from trmzoo.convert import convert_checkpoint, load_checkpoint
from trmzoo.errors import CheckpointError, TrmzooError
from trmzoo.registry import lookup

from foreign_checkpoints import (
    NANO, OFFICIAL, nano_hparams, nano_trm_checkpoint, official_arch, official_state, reference_rollout, saved_bytes,
)

pytestmark = pytest.mark.usefixtures("one_thread")
SUDOKU = dict(use_mlp_t=True, pos_emb_type="null", puzzle_emb_dim=0, puzzle_emb_len=0)
MAZE_LIKE = dict(use_mlp_t=False, pos_emb_type="1d", puzzle_emb_dim=16, puzzle_emb_len=2, num_puzzles=3,
                 vocab_size=6, seq_len=16, L_cycles=4)


def _write(tmp_path, obj, name="last.ckpt"):
    path = tmp_path / name
    path.write_bytes(saved_bytes(obj))
    return path


def _batch(vocab: int, seq_len: int, puzzles: int, low: int = 0):
    gen = torch.Generator().manual_seed(3)
    return {"inputs": torch.randint(low, vocab, (3, seq_len), generator=gen),
            "puzzle_identifiers": torch.randint(0, puzzles, (3,), generator=gen)}


def _compare(model, batch, reference, *, keep=None, atol=1e-4):
    """fp32 agreement within the project's 1e-4 (kernels on differently laid-out tensors round differently)."""
    outs = model.rollout(batch, steps=3)
    for out, (logits, q_halt) in zip(outs, reference):
        logits = logits if keep is None else logits[..., keep]
        torch.testing.assert_close(out.logits, logits, atol=atol, rtol=atol)
        torch.testing.assert_close(out.q_halt, q_halt, atol=atol, rtol=atol)


def _nano_reference(ckpt, inputs, puzzle_ids, *, ema=True):
    hp = ckpt["hyper_parameters"]
    tensors = {**ckpt["state_dict"], **(ckpt["callbacks"]["EMACallback"]["shadow"] if ema else {})}
    return reference_rollout(
        tensors, NANO, hidden=hp["hidden_size"], heads=hp["num_heads"], layers=hp["num_layers"],
        H_cycles=hp["H_cycles"], L_cycles=hp["L_cycles"], prefix=hp["puzzle_emb_len"] if hp["puzzle_emb_dim"] else 0,
        rope=hp["pos_emb_type"] == "1d", mlp_t=hp["use_mlp_t"], dtype=tensors["z_H_init"].dtype, inputs=inputs,
        puzzle_ids=puzzle_ids, steps=3)


@pytest.mark.parametrize("changes", [SUDOKU, MAZE_LIKE], ids=["mlp_no_puzzle_table", "attention_rope_table"])
def test_nano_trm_lightning_checkpoint_converts_to_the_ema_outputs(tmp_path, changes):
    hp = nano_hparams(**changes, forward_dtype=torch.float32)
    ckpt = nano_trm_checkpoint(hp, dtype=torch.float32)
    model = load_checkpoint(_write(tmp_path, ckpt), converter="nano-trm", expected={"H_cycles": hp["H_cycles"]})
    assert model.config.recursion.L_cycles == hp["L_cycles"] and model.config.vocab_size == hp["vocab_size"]
    assert model.provenance.source.converter == "nano-trm" and model.provenance.source.checkpoint == "last.ckpt"
    batch = _batch(hp["vocab_size"], hp["seq_len"], hp["num_puzzles"])
    _compare(model, batch, _nano_reference(ckpt, batch["inputs"], batch["puzzle_identifiers"]))

    del ckpt["callbacks"]["EMACallback"]  # without the EMA callback, the raw weights
    raw = load_checkpoint(_write(tmp_path, ckpt, "raw.ckpt"), converter="nano-trm")
    _compare(raw, batch, _nano_reference(ckpt, batch["inputs"], batch["puzzle_identifiers"], ema=False))


def test_nano_trm_sudoku_drops_the_separator_token_and_keeps_the_gpu_dtype(tmp_path):
    hp = nano_hparams(**SUDOKU)
    ckpt = nano_trm_checkpoint(hp)  # a GPU run: bf16 initial states, forward_dtype left to the device
    model = load_checkpoint(_write(tmp_path, ckpt), converter="nano-trm-sudoku")
    assert model.config.vocab_size == 11 and model.config.forward_dtype == "bfloat16"
    assert model.config.puzzle_emb_ndim == 0 and model.config.backbone.kind == "mlp"

    ours = _batch(11, 81, 1, low=1)  # trmzoo's Sudoku tokens: 1 blank, 2..10 digits
    nano_inputs = ours["inputs"] + 1  # nano-trm's: 2 blank, 3..11 digits
    hp32 = nano_hparams(**SUDOKU, forward_dtype=torch.float32)
    ckpt32 = nano_trm_checkpoint(hp32, dtype=torch.float32)
    model32 = load_checkpoint(_write(tmp_path, ckpt32, "fp32.ckpt"), converter="nano-trm-sudoku")
    keep = [0] + list(range(2, 12))
    _compare(model32, ours, _nano_reference(ckpt32, nano_inputs, ours["puzzle_identifiers"]), keep=keep)

    converter = lookup("converter", "nano-trm-sudoku").converter
    tensors, settings = converter.read(tmp_path / "last.ckpt", None)
    with pytest.raises(CheckpointError, match="vocab_size is 11 .*dropped.* but the model needs 10"):
        convert_checkpoint(converter, tensors, settings, sizes={"vocab_size": 10})


def test_nano_trm_refusals_are_one_line_and_name_the_setting(tmp_path):
    cases = {
        "hyper_parameters.use_conv_swiglu is true": nano_hparams(**SUDOKU, use_conv_swiglu=True),
        "pos_emb_type '2d'": nano_hparams(**{**MAZE_LIKE, "pos_emb_type": "2d"}),
        "puzzle_emb_len is 0 with puzzle_emb_dim 16": nano_hparams(**{**MAZE_LIKE, "puzzle_emb_len": 0}),
    }
    for message, hp in cases.items():
        with pytest.raises(CheckpointError, match=message) as info:
            load_checkpoint(_write(tmp_path, nano_trm_checkpoint(hp)), converter="nano-trm")
        assert "\n" not in str(info.value)
    ckpt = nano_trm_checkpoint(nano_hparams(**SUDOKU, H_cycles=2))
    with pytest.raises(CheckpointError, match="hyper_parameters.H_cycles is 2 but these weights were trained with 3"):
        load_checkpoint(_write(tmp_path, ckpt), converter="nano-trm", expected={"H_cycles": 3})
    with pytest.raises(CheckpointError, match="not a PyTorch Lightning checkpoint"):
        load_checkpoint(_write(tmp_path, ckpt["state_dict"]), converter="nano-trm")
    ckpt["hyper_parameters"]["args"] = argparse.Namespace(lr=1)  # an object only a full unpickler builds
    with pytest.raises(CheckpointError, match="not a PyTorch Lightning checkpoint: it holds pickled objects besides"):
        load_checkpoint(_write(tmp_path, ckpt), converter="nano-trm")


def _cgar_files(tmp_path, state, arch, config_layout="all_config"):
    config = {"arch": arch, "global_batch_size": 768, "lr": 1e-4, "weight_decay": 1.0, "epochs": 50000,
              "supervision_decay": 0.7} if config_layout == "all_config" else arch
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return _write(tmp_path, state, "pytorch_model.bin"), tmp_path / "config.yaml"


@pytest.mark.parametrize("layout", ["compiled_prefix", "bare", "wrapped"])
def test_cgar_pytorch_model_bin_converts_to_the_same_outputs(tmp_path, layout):
    arch = official_arch(forward_dtype="float32", puzzle_emb_len=2)
    prefix = {"compiled_prefix": "_orig_mod.model.", "bare": "", "wrapped": "model."}[layout]
    state = official_state(arch, vocab=11, seq_len=81, prefix=prefix)
    saved = {"model_state_dict": state, "step": 65100} if layout == "wrapped" else state
    model = load_checkpoint(*_cgar_files(tmp_path, saved, arch, "all_config" if layout != "bare" else "flat"),
                            converter="cgar", expected={"H_cycles": 3, "L_cycles": 6})
    tensors = {k.removeprefix(prefix + "inner."): v for k, v in state.items()}
    batch = _batch(11, 81, 1)
    reference = reference_rollout(tensors, OFFICIAL, hidden=16, heads=2, layers=2, H_cycles=3, L_cycles=6, prefix=2,
                                  rope=False, mlp_t=True, dtype=torch.float32, inputs=batch["inputs"],
                                  puzzle_ids=batch["puzzle_identifiers"], steps=3)
    _compare(model, batch, reference)
    assert model.provenance.source.converter == "cgar"


def test_cgar_refusals(tmp_path):
    arch = official_arch()
    state = official_state(arch, vocab=11, seq_len=81)
    with pytest.raises(CheckpointError, match="arch.L_cycles is 6 but these weights were trained with 4"):
        load_checkpoint(*_cgar_files(tmp_path, state, arch), converter="cgar", expected={"L_cycles": 4})
    with pytest.raises(CheckpointError, match="not a state dict of tensors .*holds epoch"):
        load_checkpoint(*_cgar_files(tmp_path, {"epoch": 3, "weights": [1]}, arch), converter="cgar")
    with pytest.raises(TrmzooError, match="no arch settings"):
        load_checkpoint(*_cgar_files(tmp_path, state, {"lr": 1}, "flat"), converter="cgar")
    with pytest.raises(CheckpointError, match="needs its config.yaml"):
        load_checkpoint(_write(tmp_path, state, "pytorch_model.bin"), converter="cgar")
