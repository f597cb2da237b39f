"""Every registered pretrained entry against its repository's real layout on the local fake Hub.

``LAYOUTS`` lists each published repository's files as trmzoo's sources describe them (root files or
subfolders, config names, companion files, pinned commits), independently of the entries, and which
entry loads which file. Each file is a tiny checkpoint of the same structure (the same format, key
prefixes, nesting and dtypes, the task's real vocabulary and length) except where an entry fixes the
full settings itself. Each entry then downloads, converts, loads, runs and loads again offline; a
wrong path, config name or revision in an entry fails here without a network.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import constants

import trmzoo
from trmzoo import hub
from trmzoo.data import DatasetMetadata, SplitArrays, write_identifiers, write_split
from trmzoo.errors import HubError, LicenseWarning
from trmzoo.registry import LICENSE_NOT_CHECKED, LICENSE_NOT_STATED, get_registry

from foreign_checkpoints import nano_hparams, nano_trm_checkpoint, official_arch, official_state, saved_bytes

pytestmark = pytest.mark.usefixtures("one_thread")
SIZES = {"sudoku": (11, 81, 1), "maze": (6, 900, 1), "arc": (12, 900, 3)}  # vocab, grid cells, puzzle rows
HRM_CLASS = "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1"
ARC_ATT = dict(mlp_t=False, pos_encodings="rope", H_cycles=3, L_cycles=4)
SUDOKU_ATT = dict(mlp_t=False, pos_encodings="rope")
HRM_ARCH = dict(name=HRM_CLASS, H_cycles=2, L_cycles=2, H_layers=4, L_layers=4, mlp_t=False, pos_encodings="rope")
# what the HRM repository's own all_config.yaml says (sapientinc's checkpoints): its class name, no mlp_t
HRM_REPO_ARCH = {**{k: v for k, v in HRM_ARCH.items() if k != "mlp_t"},
                 "name": "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1"}
NANO_MAZE = dict(use_mlp_t=False, pos_emb_type="1d", puzzle_emb_dim=16, puzzle_emb_len=16, H_cycles=3, L_cycles=4,
                 vocab_size=6, seq_len=900, max_grid_size=30)
COMPANIONS = {"losses.py": b"# official losses.py\n", "trm.py": b"# official trm.py\n"}


@cache
def official_files(task: str, arch_changes: tuple, *, hrm: bool = False, seed: int = 0) -> tuple[bytes, bytes]:
    """A tiny official ``step_N`` file (``_orig_mod.model.inner.`` keys) and its all_config.yaml."""
    vocab, seq_len, puzzles = SIZES[task]
    arch = official_arch(**dict(arch_changes))
    state = official_state(arch, vocab=vocab, seq_len=seq_len, puzzles=puzzles, hrm=hrm, seed=seed)
    config = {"arch": arch, "data_paths": [f"data/{task}"], "global_batch_size": 768, "ema": not hrm}
    return saved_bytes(state), yaml.safe_dump(config).encode()


@cache
def full_width_file(name: str) -> bytes:
    """An official file at the full settings an entry gives itself (its repository has no all_config.yaml)."""
    model_entry, weights = get_registry().pretrained[name]
    vocab, seq_len, puzzles = SIZES[weights.task]
    return saved_bytes(official_state(weights.settings, vocab=vocab, seq_len=seq_len, puzzles=puzzles))


def sanjin(arch: dict, task: str, step: str) -> dict:
    weights, config = official_files(task, tuple(arch.items()))
    return {step: weights, "all_config.yaml": config, **COMPANIONS, "README.md": b"---\nlicense: apache-2.0\n---\n"}


def layout(repo: str) -> tuple[str | None, dict[str, bytes], dict[str, str]]:
    """(pinned commit, files, entry -> the file it loads) of a published repository."""
    if repo == "arcprize/trm_arc_prize_verification":
        files = {}
        for folder, step in (("arc_v1_public", "step_518071"), ("arc_v2_public", "step_723914")):
            weights, config = official_files("arc", tuple(ARC_ATT.items()), seed=len(files))
            files.update({f"{folder}/{step}": weights, f"{folder}/all_config.yaml": config,
                          **{f"{folder}/{k}": v for k, v in COMPANIONS.items()}})
        return ("55ced5dd59de74c52f53d47aa2898232b5a15b7a", files,
                {"trm_arc_att.arc1_step518071": "arc_v1_public/step_518071",
                 "trm_arc_att.arc2_step723914": "arc_v2_public/step_723914"})
    if repo == "alphaXiv/trm-model-arc-agi-1":
        name = "trm_arc_att.arc1_alphaxiv_step259320"
        return None, {"step_259320_arc_ag1_attn_type_h3l4": full_width_file(name),
                      "step_259320_arc_ag1_attn_type_h3l6": b"the second run (not registered)",
                      "README.md": b"---\nlicense: mit\n---\n"}, {name: "step_259320_arc_ag1_attn_type_h3l4"}
    if repo == "Trelis/TRM-ARC-AGI-II":
        name = "trm_arc_att.arc2_trelis"
        steps = [f"step_{65000 * i}" for i in range(1, 11)]
        files = {step: b"an earlier step (not loaded)" for step in steps[:-1]}
        files.update({f"{step}_submission.json": b"{}" for step in steps})  # names not in trmzoo's sources
        files[steps[-1]] = full_width_file(name)
        return None, files, {name: steps[-1]}
    if repo == "Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-mlp":
        return ("256f32fcbe7123e8bf8c449410773a5ad311dbc5", sanjin({}, "sudoku", "step_16275"),
                {"trm_sudoku_mlp.sudoku_extreme_sanjin2024": "step_16275"})
    if repo == "Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-att":
        return None, sanjin(SUDOKU_ATT, "sudoku", "step_21700"), {"trm_sudoku_att.sudoku_extreme_sanjin2024": "step_21700"}
    if repo == "Sanjin2024/TinyRecursiveModel-Maze-Hard":
        return None, sanjin(ARC_ATT, "maze", "step_9765"), {"trm_maze_att.maze_hard_sanjin2024": "step_9765"}
    if repo == "MaximeILL/GAR_ckpts":
        weights, config = official_files("sudoku", ())
        return None, {"TRM-MLP-Sudoku-Extreme.pt": weights, "TRM-MLP-Sudoku-Extreme.yaml": config,
                      "TRM-Att-PPBench.pt": b"PPBench (not a trmzoo task)", "TRM-Att-PPBench.yaml": b"arch: {}\n"}, \
            {"trm_sudoku_mlp.sudoku_extreme_gar": "TRM-MLP-Sudoku-Extreme.pt"}
    if repo == "Kaleemullah/trm-cgar-sudoku":
        weights, config = official_files("sudoku", ())
        return None, {"pytorch_model.bin": weights, "config.yaml": config, "README.md": b"# CGAR\n"}, \
            {"trm_sudoku_mlp.sudoku_extreme_cgar": "pytorch_model.bin"}
    if repo == "andrw3000/bigr-checkpoints":
        files = {"sudoku_extreme/checkpoints/last.ckpt": saved_bytes(nano_trm_checkpoint(nano_hparams())),
                 "maze_hard/checkpoints/last.ckpt": saved_bytes(nano_trm_checkpoint(nano_hparams(**NANO_MAZE))),
                 "ppbench/checkpoints/last.ckpt": b"PPBench (not a trmzoo task)"}
        files.update({f"sudoku_extreme/checkpoints/epoch_{i:03d}.ckpt": b"an epoch checkpoint" for i in range(20)})
        return None, files, {"trm_sudoku_mlp.sudoku_extreme_bigr": "sudoku_extreme/checkpoints/last.ckpt",
                             "trm_maze_att.maze_hard_bigr": "maze_hard/checkpoints/last.ckpt"}
    if repo == "alphaXiv/trm-model-maze":
        name = "trm_maze_att.maze_hard_alphaxiv"
        return None, {"maze_hard_step_32550": full_width_file(name)}, {name: "maze_hard_step_32550"}
    if repo.startswith("sapientinc/HRM-checkpoint-"):
        task, entry = {"sudoku-extreme": ("sudoku", "hrm_sudoku.sudoku_extreme"),
                       "maze-30x30-hard": ("maze", "hrm_maze.maze_30x30_hard"),
                       "ARC-2": ("arc", "hrm_arc.arc2")}[repo.removeprefix("sapientinc/HRM-checkpoint-")]
        weights, config = official_files(task, tuple(HRM_REPO_ARCH.items()), hrm=True)
        return None, {"checkpoint": weights, "all_config.yaml": config}, {entry: "checkpoint"}
    if repo == "ThomasHeim/HRM-Reproduction-Checkpoints":
        weights, config = official_files("sudoku", tuple(HRM_ARCH.items()), hrm=True)
        files, loads = {"readme.md": b"# HRM reproduction\n"}, {}
        for run, every, name in (("original-hrm", 2604, "sudoku_extreme_heim_original"),
                                 ("augmented-hrm", 1302, "sudoku_extreme_heim_augmented")):
            folder = f"sudoku-extreme/{run}"
            files.update({f"{folder}/step_{every * i}": b"an earlier step" for i in range(1, 52080 // every)})
            files.update({f"{folder}/step_52080": weights, f"{folder}/all_config.yaml": config})
            loads[f"hrm_sudoku.{name}"] = f"{folder}/step_52080"
        return None, files, loads
    raise KeyError(f"{repo}: no layout in this test; add the repository's files as its sources list them")


REPOS = sorted({w.hub_repo for _, w in get_registry().pretrained.values()})
ENTRIES = sorted(n for n, (m, w) in get_registry().pretrained.items() if n == f"{m.name}.{w.name}")


def _serve(fake_hub, repo: str) -> dict[str, str]:
    sha, files, loads = layout(repo)
    fake_hub.add_files(repo, files, sha=sha)
    return loads


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_downloads_its_exact_files_converts_loads_and_works_offline(fake_hub, monkeypatch, name):
    model_entry, weights = get_registry().pretrained[name]
    loads = _serve(fake_hub, weights.hub_repo)
    unlicensed = weights.license in (LICENSE_NOT_STATED, LICENSE_NOT_CHECKED)
    with pytest.warns(LicenseWarning, match=weights.hub_repo) if unlicensed else _no_license_warning():
        model = trmzoo.load(name)
    assert model.provenance.source.file == loads[name]
    assert model.provenance.source.repo == weights.hub_repo and model.provenance.pretrained == name
    assert model.provenance.task == {"name": weights.task} and model.provenance.license == weights.license
    recursion = model.config.recursion
    for key in ("H_cycles", "L_cycles"):
        assert getattr(recursion, key) == weights.expected[key], key
    assert model.config.vocab_size == SIZES[weights.task][0] and model.config.seq_len == SIZES[weights.task][1]
    if model.config.hidden_size < 512:  # tiny: run it (the full-width files of settings entries only load)
        batch = {"inputs": torch.ones(1, model.config.seq_len, dtype=torch.long),
                 "puzzle_identifiers": torch.zeros(1, dtype=torch.long)}
        assert torch.isfinite(model.rollout(batch, steps=1)[-1].logits).all()

    fake_hub.requests.clear()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.warns(LicenseWarning) if unlicensed else _no_license_warning():
        again = trmzoo.load(name)
    assert not fake_hub.requests  # offline: nothing asked of the Hub
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[key]), key


def test_every_repository_layout_names_only_registered_entries():
    registered = set(ENTRIES)
    for repo in REPOS:
        for name in layout(repo)[2]:
            assert name in registered, (repo, name)


def test_a_wrong_file_name_or_revision_in_an_entry_fails_offline_with_the_repository_files(fake_hub):
    name = "trm_sudoku_mlp.sudoku_extreme_sanjin2024"
    model_entry, weights = get_registry().pretrained[name]
    _serve(fake_hub, weights.hub_repo)
    with pytest.raises(HubError, match="no file 'step_16276'"):
        hub.load_entry(model_entry, dataclasses.replace(weights, file="step_16276"))
    with pytest.raises(HubError, match="no revision"):
        hub.load_entry(model_entry, dataclasses.replace(weights, revision="0" * 40))


class _no_license_warning:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._caught = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        assert not [w for w in self._caught if issubclass(w.category, LicenseWarning)]


def test_the_docs_table_lists_every_entry():
    text = (Path(__file__).parents[1] / "docs" / "pretrained.md").read_text()
    for name in ENTRIES:
        _, weights = get_registry().pretrained[name]
        assert f"`{name}`" in text and weights.hub_repo in text, name


def _sudoku_data(root: Path, seq_len: int = 81) -> Path:
    """A built Sudoku dataset of two test puzzles (the official encoding) with its identifiers."""
    tokens = np.random.default_rng(0).integers(1, 11, (2, seq_len)).astype(np.uint8)
    arrays = SplitArrays(inputs=tokens, labels=tokens, puzzle_identifiers=np.zeros(2, np.int32),
                         puzzle_indices=np.arange(3, dtype=np.int32), group_indices=np.arange(3, dtype=np.int32))
    meta = DatasetMetadata(vocab_size=11, seq_len=seq_len, num_puzzle_identifiers=1, total_groups=2,
                           mean_puzzle_examples=1.0, total_puzzles=2)
    write_split(root, "test", arrays, meta)
    write_identifiers(root, ["<blank>"])
    return root


def test_eval_a_published_checkpoint_in_one_command_naming_the_data_build_it_needs(fake_hub, tmp_path):
    from click.testing import CliRunner

    from trmzoo.cli import cli

    name = "trm-sudoku-mlp-5m"
    _, weights = get_registry().pretrained[name]
    _serve(fake_hub, weights.hub_repo)
    fake_hub.requests.clear()
    for args, where in (([], "give --data DIR"), (["--data", str(tmp_path / "nowhere")], "no built dataset there")):
        result = CliRunner().invoke(cli, ["eval", name, *args])
        assert result.exit_code != 0 and where in result.output, result.output
        assert "trmzoo data build sudoku --source hub" in result.output
    assert not fake_hub.requests  # refused before any download

    four = _sudoku_data(tmp_path / "4x4", seq_len=16)
    result = CliRunner().invoke(cli, ["eval", name, "--data", str(four)])
    assert result.exit_code != 0 and "seq_len 16 does not match the model's 81" in result.output
    assert "trmzoo data build sudoku --source hub" in result.output

    result = CliRunner().invoke(cli, ["eval", name, "--data", str(_sudoku_data(tmp_path / "nine")), "--json",
                                      "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{"):])
    assert 0.0 <= metrics["exact_accuracy"] <= 1.0 and metrics["mean_steps"] == 16


def test_a_converted_checkpoint_pushed_names_its_base_model_and_license(fake_hub):
    from huggingface_hub import ModelCard

    name = "trm_sudoku_mlp.sudoku_extreme_sanjin2024"
    _, weights = get_registry().pretrained[name]
    _serve(fake_hub, weights.hub_repo)
    trmzoo.push_to_hub(trmzoo.load(name), "me/converted")
    card = ModelCard(fake_hub.commits[-1]["files"]["README.md"].decode())
    assert card.data.base_model == weights.hub_repo and card.data.license == "apache-2.0"
    assert card.data.library_name == "trmzoo" and "sudoku" in card.data.tags
