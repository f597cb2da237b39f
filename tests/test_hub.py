"""Downloads, conversion, caching and uploads against a local fake Hub server (tests/fakehub.py)."""

from __future__ import annotations

import io
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

import trmzoo
from trmzoo import hub, testing
from trmzoo.convert import to_official
from trmzoo.core.provenance import DataProvenance, Provenance
from trmzoo.data import DatasetMetadata, SplitArrays, embedding_fingerprint, write_identifiers, write_split
from trmzoo.errors import CheckpointError, DataError, HubError
from trmzoo.registry import ModelEntry, PretrainedEntry, get_registry


def test_fake_hub_serves_downloads_revisions_and_records_uploads(fake_hub, tmp_path, monkeypatch):
    first = fake_hub.add_file("org/m", "a.txt", b"one")
    fake_hub.add_file("org/m", "a.txt", b"two")
    fake_hub.add_file("org/d", "x.csv", b"1,2", repo_type="dataset")
    assert open(hf_hub_download("org/m", "a.txt"), "rb").read() == b"two"
    assert open(hf_hub_download("org/m", "a.txt", revision=first), "rb").read() == b"one"
    assert open(hf_hub_download("org/d", "x.csv", repo_type="dataset"), "rb").read() == b"1,2"
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("org/m", "missing.txt")

    folder = tmp_path / "up"
    folder.mkdir()
    (folder / "w.bin").write_bytes(bytes(range(256)) * 10)
    api = HfApi(library_name="trmzoo")
    api.create_repo("me/new", exist_ok=True)
    api.upload_folder(repo_id="me/new", folder_path=str(folder), commit_message="Add")
    assert fake_hub.commits[-1]["files"] == {"w.bin": bytes(range(256)) * 10}
    assert fake_hub.files("me/new") == {"w.bin": bytes(range(256)) * 10}

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert open(hf_hub_download("org/m", "a.txt"), "rb").read() == b"two"
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download("org/d", "other.csv", repo_type="dataset")


# -- trmzoo on top of the fake Hub ----------------------------------------------------------------

TINY = {  # the contract kit's tiny model, narrower, with RoPE and the default 16 supervision steps
    "vocab_size": 6, "seq_len": 4, "hidden_size": 16, "puzzle_emb_ndim": 16, "puzzle_emb_len": 1,
    "pos_encodings": "rope", "expansion": 4.0, "halting": {"max_steps": 16},
}
IDS = ["<blank>", "a", "b"]


def tiny_model(seed: int = 0):
    model = testing.tiny_model(seed=seed, **TINY)
    with torch.no_grad():  # make every tensor, the puzzle table included, differ from a fresh model
        for tensor in model.state_dict().values():
            tensor.copy_(torch.randn_like(tensor) * 0.1)
    model.provenance = Provenance(architecture="tiny", task={"name": "sudoku"}, data=DataProvenance(
        embedding_fingerprint=embedding_fingerprint(IDS), build_fingerprint="sha256:0"))
    return model.eval()


def outputs(model) -> torch.Tensor:
    batch = {"inputs": torch.tensor([[1, 2, 3, 4], [5, 4, 3, 2]]), "puzzle_identifiers": torch.tensor([1, 2])}
    out = model.rollout(batch, steps=2)[-1]
    return torch.cat([out.logits.flatten(), out.q_halt.flatten()])


def official_files(model) -> tuple[bytes, bytes]:
    state, arch = to_official(model)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue(), yaml.safe_dump({"arch": arch}).encode()


def test_load_hf_hub_repo_downloads_caches_pins_and_works_offline(fake_hub, tmp_path, monkeypatch):
    original, newer = tiny_model(0), tiny_model(1)
    trmzoo.save_pretrained(original, tmp_path / "v1")
    trmzoo.save_pretrained(newer, tmp_path / "v2")
    first = fake_hub.add_folder("org/tiny", tmp_path / "v1")
    fake_hub.add_folder("org/tiny", tmp_path / "v2")

    latest = trmzoo.load("hf-hub:org/tiny")
    assert torch.equal(outputs(latest), outputs(newer))
    assert latest.provenance.source.revision == fake_hub.head("org/tiny")
    pinned = trmzoo.load(f"hf-hub:org/tiny@{first}")
    assert torch.equal(outputs(pinned), outputs(original))
    assert not pinned.training

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    fake_hub.close()
    assert torch.equal(outputs(trmzoo.load("hf-hub:org/tiny")), outputs(newer))
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        trmzoo.load("hf-hub:org/other")


def official_entry(**changes) -> tuple[ModelEntry, PretrainedEntry]:
    weights = dict(name="t", hub_repo="org/official", file="*step_*", config_file="*all_config.yaml",
                   format="official", task="sudoku", expected={"H_cycles": 2, "L_cycles": 1}, license="MIT",
                   data_build="build it with: trmzoo build tiny")
    weights.update(changes)
    return ModelEntry("tiny", {"vocab_size": 6, "seq_len": 4}, "test"), PretrainedEntry(**weights)


def test_official_checkpoint_converts_once_then_loads_from_the_converted_cache(fake_hub, monkeypatch):
    model = tiny_model(2)
    checkpoint, config = official_files(model)
    stale_checkpoint, stale_config = official_files(tiny_model(3))
    fake_hub.add_file("org/official", "run/all_config.yaml", config)
    fake_hub.add_file("org/official", "run/step_40", checkpoint)
    fake_hub.add_file("org/official", "run/step_40_all_preds.0", b"predictions, not weights")
    fake_hub.add_file("org/official", "old/all_config.yaml", stale_config)
    fake_hub.add_file("org/official", "old/step_7", stale_checkpoint)
    entry = official_entry()

    loaded = hub.load_entry(*entry)
    assert torch.equal(outputs(loaded), outputs(model))
    assert loaded.provenance.source.file == "run/step_40"
    assert loaded.provenance.pretrained == "tiny.t" and loaded.provenance.task == {"name": "sudoku"}
    sha = fake_hub.head("org/official")
    converted = Path(constants.HF_HOME) / "trmzoo" / "converted" / "org--official" / sha / "run--step_40"
    assert (converted / "model.safetensors").exists() and (converted / "puzzle_emb.safetensors").exists()

    fake_hub.requests.clear()
    again = hub.load_entry(*entry)
    assert torch.equal(outputs(again), outputs(model))
    assert not any("resolve" in path for _, path in fake_hub.requests)  # nothing downloaded, nothing unpickled

    # Offline, with the pickled checkpoint gone from the hub cache, the converted copy still serves.
    snapshot = next(p for p in (Path(constants.HF_HOME) / "hub").rglob("step_40") if "snapshots" in str(p))
    snapshot.unlink()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert torch.equal(outputs(hub.load_entry(*entry)), outputs(model))


def test_one_probe_of_the_hub_stands_for_the_files_of_a_repository(fake_hub, monkeypatch):
    fake_hub.add_files("org/data", {"train.csv": b"1,2\n", "test.csv": b"3,4\n"}, repo_type="dataset")

    def probes() -> int:
        return sum(path.startswith("/api/datasets/org/data") for _, path in fake_hub.requests)

    assert hub.download("org/data", "train.csv", repo_type="dataset").read_bytes() == b"1,2\n"
    assert hub.download("org/data", "test.csv", repo_type="dataset").read_bytes() == b"3,4\n"
    assert probes() == 1
    monkeypatch.setattr(hub, "ANSWER_KEPT_S", 0.0)  # an answer older than this is asked again
    assert hub.download("org/data", "test.csv", repo_type="dataset").read_bytes() == b"3,4\n"
    assert probes() == 2


def test_official_checkpoint_refuses_wrong_cycles_and_damaged_or_missing_files(fake_hub):
    checkpoint, config = official_files(tiny_model(4))
    fake_hub.add_file("org/official", "all_config.yaml", config)
    fake_hub.add_file("org/official", "step_9", checkpoint)
    with pytest.raises(CheckpointError, match="L_cycles"):
        hub.load_entry(*official_entry(expected={"H_cycles": 2, "L_cycles": 6}))
    with pytest.raises(HubError, match="no file matches 'checkpoint_\\*'.*step_9"):
        hub.load_entry(*official_entry(file="checkpoint_*"))

    fake_hub.add_file("org/broken", "all_config.yaml", config)
    fake_hub.add_file("org/broken", "step_9", checkpoint[: len(checkpoint) // 2])
    with pytest.raises(HubError, match="org/broken/step_9: unusable download.*force_download"):
        hub.load_entry(*official_entry(hub_repo="org/broken"))


def test_hub_errors_are_one_line_and_say_what_to_do(fake_hub, tmp_path, monkeypatch):
    trmzoo.save_pretrained(tiny_model(5), tmp_path / "w")
    fake_hub.add_folder("org/tiny", tmp_path / "w")
    fake_hub.add_folder("org/gated", tmp_path / "w")
    fake_hub.gate("org/gated")
    fake_hub.add_folder("org/cut", tmp_path / "w")
    fake_hub.truncate("org/cut", "model.safetensors", 100)
    fake_hub.add_folder("org/bad", tmp_path / "w")
    damaged = bytearray((tmp_path / "w" / "model.safetensors").read_bytes())
    damaged[:8] = (10**9).to_bytes(8, "little")
    fake_hub.add_file("org/bad", "model.safetensors", bytes(damaged))

    cases = {
        "hf-hub:org/gated": "gated: accept its terms",
        "hf-hub:org/nothing": "no such repository",
        "hf-hub:org/tiny@v9": "no revision 'v9'",
        "hf-hub:org/cut": "cut short .*model.safetensors",
        "hf-hub:org/bad": "org/bad/model.safetensors: unusable download .*force_download=True",
        "trm-arc-7": "unknown pretrained model 'trm-arc-7', and no folder of that name here; did you mean trm-arc-7m",
        "trm_maze_mlp": "without published weights",
        "hf-hub:justaname": "org/name",
    }
    for name, message in cases.items():
        with pytest.raises(HubError, match=message) as info:
            trmzoo.load(name)
        assert "\n" not in str(info.value)

    with pytest.raises(HubError, match="no file 'model.safetensors'"):
        fake_hub.add_file("org/partial", "config.json", (tmp_path / "w" / "config.json").read_bytes())
        trmzoo.load("hf-hub:org/partial")

    fake_hub.portal = True  # the network answers, but not as the Hub
    with pytest.raises(HubError, match="cannot reach the Hub"):
        trmzoo.load("hf-hub:org/uncached")


@pytest.mark.slow  # the hub library retries a refused connection with backoff for about 20 s
def test_no_network_and_not_cached_says_how_to_fetch(fake_hub, monkeypatch):
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")
    with pytest.raises(HubError, match="cannot reach the Hub at http://127.0.0.1:9 .* connect"):
        trmzoo.load("hf-hub:org/uncached")


def test_a_hub_that_takes_the_connection_and_never_answers_does_not_hold_a_load(fake_hub, monkeypatch, tmp_path):
    trmzoo.save_pretrained(tiny_model(2), tmp_path / "w")
    trmzoo.push_to_hub(tmp_path / "w", "me/cached")
    expected = outputs(trmzoo.load("hf-hub:me/cached"))  # now in the cache
    silent = socket.create_server(("127.0.0.1", 0))  # listens, accepts (the kernel does), never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hub, "PROBE_TIMEOUT_S", 1.0)
    monkeypatch.setattr(hub, "_answers", {})
    results = {}

    def load_both():
        results["cached"] = outputs(trmzoo.load("hf-hub:me/cached"))
        with pytest.raises(HubError, match="cannot reach the Hub") as refused:
            trmzoo.load("hf-hub:me/uncached")
        results["uncached"] = str(refused.value)

    worker = threading.Thread(target=load_both, daemon=True)
    worker.start()
    worker.join(120)
    silent.close()
    assert not worker.is_alive(), "a load waited on a Hub that never answers"
    assert torch.equal(results["cached"], expected) and "\n" not in results["uncached"]


def test_an_endpoint_that_is_no_url_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "ENDPOINT", "notaurl")
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", "notaurl/{repo_id}/resolve/{revision}/{filename}")
    with pytest.raises(HubError, match="^HF_ENDPOINT 'notaurl' is not a URL .*fix or unset it$"):
        trmzoo.load("hf-hub:org/x")


def test_push_uploads_weights_and_a_model_card_then_loads_back(fake_hub, tmp_path):
    model = tiny_model(6)
    run = tmp_path / "run"
    model.provenance.step = 12
    model.provenance.identifiers = list(IDS)
    trmzoo.save_pretrained(model, run / "weights")
    (run / "recipe.yaml").write_text("task:\n  name: sudoku\ntrain:\n  lr: 0.0001\n")
    (run / "metrics.jsonl").write_text(
        json.dumps({"step": 6, "eval/exact_accuracy": 0.25}) + "\n"
        + json.dumps({"step": 12, "train/loss": 1.5}) + "\n"
        + json.dumps({"step": 12, "eval/exact_accuracy": 0.5, "eval/token_accuracy": 0.75}) + "\n"
    )
    trmzoo.push_to_hub(run, "me/tiny", private=True)

    pushed = fake_hub.commits[-1]
    assert set(pushed["files"]) == {"config.json", "model.safetensors", "puzzle_emb.safetensors", "identifiers.json",
                                    "README.md"}
    assert fake_hub.repos[("model", "me/tiny")].private
    card = pushed["files"]["README.md"].decode()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "trmzoo" and front["license"] == "mit"
    assert "sudoku" in front["tags"] and front["datasets"] == ["sapientinc/sudoku-extreme"]
    network = sum(p.numel() for p in model.parameters())
    assert f"network (learned parameters): {network:,}" in card
    assert f"puzzle embedding table: {3 * 16:,}" in card
    assert "| exact_accuracy | 0.5 |" in card and "| exact_accuracy | 0.25 |" not in card
    assert "lr: 0.0001" in card and embedding_fingerprint(IDS) in card and "arXiv:2510.04871" in card
    assert torch.equal(outputs(trmzoo.load("hf-hub:me/tiny")), outputs(model))

    assert trmzoo.load("hf-hub:me/tiny").provenance.identifiers == model.provenance.identifiers

    trmzoo.push_to_hub(model, "me/tiny", revision="dev")
    assert fake_hub.commits[-1]["revision"] == "dev"
    assert set(fake_hub.files("me/tiny", revision="dev")) >= {"config.json", "README.md"}

    bare = trmzoo.build_model(testing.tiny_model_config(vocab_size=6, seq_len=4, puzzle_emb_ndim=0))
    trmzoo.push_to_hub(bare, "me/tiny")  # no table, no identifiers: the old ones must not stay beside it
    assert set(fake_hub.files("me/tiny")) == {"config.json", "model.safetensors", "README.md"}
    assert torch.equal(outputs(trmzoo.load("hf-hub:me/tiny")), outputs(bare))
    with pytest.raises(HubError, match="push to a revision with revision='v2'"):
        trmzoo.push_to_hub(bare, "me/tiny@v2")
    trmzoo.push_to_hub(bare, "hf-hub:me/other")
    assert "config.json" in fake_hub.files("me/other")


def build_data(root, identifiers, vocab_size=6, seq_len=4):
    arrays = SplitArrays(
        inputs=np.ones((2, seq_len), np.uint8), labels=np.ones((2, seq_len), np.uint8),
        puzzle_identifiers=np.array([1, 2], np.int32), puzzle_indices=np.array([0, 1, 2], np.int32),
        group_indices=np.array([0, 2], np.int32),
    )
    meta = DatasetMetadata(vocab_size=vocab_size, seq_len=seq_len, num_puzzle_identifiers=len(identifiers),
                           total_groups=1, mean_puzzle_examples=1.0, total_puzzles=2)
    write_split(root, "test", arrays, meta)
    write_identifiers(root, identifiers)
    return root


def test_check_data_compatible_refuses_other_builds_with_how_to_build(tmp_path):
    model = tiny_model(7)
    model.provenance.data.build = "build it with: trmzoo build tiny"
    trmzoo.check_data_compatible(model, build_data(tmp_path / "same", IDS))
    with pytest.raises(DataError, match="not the build .* build it with: trmzoo build tiny"):
        trmzoo.check_data_compatible(model, build_data(tmp_path / "reordered", ["<blank>", "b", "a"]))
    with pytest.raises(DataError, match="seq_len 9 does not match the model's 4"):
        trmzoo.check_data_compatible(model, build_data(tmp_path / "long", IDS, seq_len=9))
    model.provenance.eval_refusal = "no evaluation here"
    with pytest.raises(DataError, match="no evaluation here"):
        trmzoo.check_data_compatible(model, tmp_path / "same")


def test_registered_pretrained_entries_fit_their_models():
    registry = get_registry()
    names = trmzoo.list_models(pretrained=True)
    for alias in ("trm-arc-7m", "trm-arc2-7m", "trm-sudoku-mlp-5m", "trm-sudoku-att-7m", "trm-maze-7m"):
        assert alias in names
    for name in names:
        model_entry, weights = registry.pretrained[name]
        recursion = model_entry.config.get("recursion", {})
        for key in ("H_cycles", "L_cycles"):
            if key in weights.expected and key in recursion:
                assert weights.expected[key] == recursion[key], (name, key)
        if weights.format == "official":
            assert weights.config_file or weights.settings, name
        assert weights.license and weights.task and weights.score_source, name
        assert weights.data_build or weights.eval_refusal, name  # `trmzoo eval` names the build it needs
        assert "*" not in weights.file or "not in trmzoo's sources" in weights.notes or "file names" in weights.notes, \
            name  # a pattern only where the file names are not known, saying so


def test_hrm_arc_entry_loads_but_refuses_evaluation():
    model_entry, weights = get_registry().pretrained["hrm-arc2-27m"]
    provenance = hub.entry_provenance(model_entry, weights, Provenance())
    assert provenance.task == {"name": "arc"} and "cannot be rebuilt" in provenance.eval_refusal


def test_push_and_info_commands(fake_hub, tmp_path):
    from click.testing import CliRunner

    from trmzoo.cli import cli

    trmzoo.save_pretrained(tiny_model(8), tmp_path / "run" / "weights")
    result = CliRunner().invoke(cli, ["push", str(tmp_path / "run"), "me/cli", "--revision", "v1",
                                      "--license", "apache-2.0"])
    assert result.exit_code == 0, result.output
    assert fake_hub.commits[-1]["revision"] == "v1" and "README.md" in fake_hub.commits[-1]["files"]
    assert "license: apache-2.0" in fake_hub.commits[-1]["files"]["README.md"].decode()
    with pytest.warns(UserWarning, match="me/cli: the repository was there already and is public"):
        trmzoo.push_to_hub(tmp_path / "run", "me/cli", private=True)
    assert not fake_hub.repos[("model", "me/cli")].private
    result = CliRunner().invoke(cli, ["push", str(tmp_path / "run"), "me/cli", "--revision", ""])
    assert result.exit_code == 1 and "--revision: empty" in result.output

    result = CliRunner().invoke(cli, ["info", "hf-hub:me/cli@v1"])  # a trained model: what its config.json says
    assert result.exit_code == 0, result.output
    card = result.output[result.output.index("model      hf-hub:me/cli@v1"):]  # after the download's progress
    shown = dict(line.split(None, 1) for line in card.splitlines() if line.strip())
    model = trmzoo.load(tmp_path / "run")
    assert shown["shape"] == f"hidden_size={model.config.hidden_size}, expansion={model.config.expansion}, " \
                             f"seq_len={model.config.seq_len}, vocab_size={model.config.vocab_size}"
    assert shown["parameters"].startswith(f"{model.parameter_counts()[0]:,} ") and shown["dtype"] == "float32"
    assert shown["preset"] == "tiny" and shown["source"].startswith("me/cli ") and "num_heads=2" in shown["network"]
    assert CliRunner().invoke(cli, ["info", str(tmp_path / "run")]).output.startswith(f"model      {tmp_path / 'run'}")
    result = CliRunner().invoke(cli, ["info", "trm_sudoku_ml"])
    assert result.exit_code == 1 and "did you mean trm_sudoku_mlp" in result.output
    result = CliRunner().invoke(cli, ["info", "trm-arc-7m"])
    assert result.exit_code == 0 and "arcprize/trm_arc_prize_verification" in result.output
    assert "H_cycles=3, L_cycles=4" in result.output
    result = CliRunner().invoke(cli, ["list", "--pretrained"])
    row = next(line for line in result.output.splitlines() if line.startswith("trm_sudoku_mlp.sudoku_extreme_cgar "))
    assert "86.02%" in row and "not checked" in row and row.endswith("20.1 MB")
    result = CliRunner().invoke(cli, ["info", "trm_sudoku_mlp.sudoku_extreme_bigr"])
    for shown in ("andrw3000/bigr-checkpoints", "sudoku_extreme/checkpoints/last.ckpt", "nano-trm-sudoku", "74 MB",
                  "cc-by-4.0", "protocol", "trmzoo data build sudoku --source hub", "trmzoo eval"):
        assert shown in result.output, shown
    result = CliRunner().invoke(cli, ["info", "trm_sudoku_mlp"])
    assert "5,028,866" in result.output  # the official count, puzzle table excluded
    result = CliRunner().invoke(cli, ["push", str(tmp_path / "nowhere"), "me/cli"])
    assert result.exit_code != 0 and "nowhere: no such model folder" in result.output


def test_the_card_renderer_is_pure_and_takes_more_front_matter():
    from huggingface_hub import EvalResult, ModelCard

    from trmzoo.card import render_card

    config = {"architecture": "trm_sudoku_mlp", "task": {"name": "sudoku"}, "license": "MIT",
              "data": {"embedding_fingerprint": "sha256:0"}}
    result = EvalResult(task_type="other", dataset_type="sapientinc/sudoku-extreme", dataset_name="Sudoku-Extreme",
                        metric_type="exact_accuracy", metric_value=0.87)
    text = render_card(config, network_params=5_028_866, table_params=512, repo_id="me/trm",
                       card_fields={"base_model": "org/base", "model_name": "trm", "eval_results": [result]})
    card = ModelCard(text)
    assert card.data.library_name == "trmzoo" and card.data.base_model == "org/base"
    assert card.data.eval_results[0].metric_value == 0.87 and card.data.tags[-2:] == ["sudoku", "trm_sudoku_mlp"]
    assert "network (learned parameters): 5,028,866" in text and 'trmzoo.load("hf-hub:me/trm")' in text


def test_a_pushed_card_parses_with_huggingface_hub_and_holds_the_model_index(fake_hub, tmp_path):
    from huggingface_hub import ModelCard

    run = tmp_path / "run"
    trmzoo.save_pretrained(tiny_model(9), run / "weights")
    (run / "metrics.jsonl").write_text(json.dumps(
        {"step": 12, "eval/exact_accuracy": 0.5, "eval/token_accuracy": 0.75, "eval/count": 4.0}) + "\n")
    trmzoo.push_to_hub(run, "me/indexed")
    text = fake_hub.commits[-1]["files"]["README.md"].decode()
    data = ModelCard(text).data
    assert data.library_name == "trmzoo" and data.pipeline_tag == "other" and data.license == "mit"
    assert {"tiny-recursive-model", "sudoku"} <= set(data.tags) and data.datasets == ["sapientinc/sudoku-extreme"]
    assert data.base_model is None  # trained here, not converted
    scores = {result.metric_type: result for result in data.eval_results}
    assert set(scores) == {"exact_accuracy", "token_accuracy"}  # scores, not counts
    exact = scores["exact_accuracy"]
    assert exact.metric_value == 0.5 and exact.dataset_type == "sapientinc/sudoku-extreme"
    assert exact.dataset_split == "test" and exact.dataset_revision == "sha256:0"
    index = yaml.safe_load(text.split("---")[1])["model-index"]
    assert index[0]["name"] == "indexed" and index[0]["results"][0]["metrics"][0]["value"] == 0.5


def test_the_card_names_a_benchmark_only_for_data_that_came_from_it():
    from trmzoo.card import card_data

    metrics = {"eval/exact_accuracy": 0.5}
    generated = card_data({"task": {"name": "sudoku", "source": "generate", "box_rows": 2}}, metrics=metrics)
    assert generated.datasets is None and generated.eval_results[0].dataset_type == "sudoku"
    hub_data = card_data({"task": {"name": "sudoku", "source": "hub", "hub_repo": "me/sudoku-hard"}}, metrics=metrics)
    assert hub_data.datasets == ["me/sudoku-hard"] and hub_data.eval_results[0].dataset_type == "me/sudoku-hard"
    assert card_data({"task": {"name": "maze"}}).datasets == ["sapientinc/maze-30x30-hard-1k"]  # says no source
