"""Pretrained weights on the Hugging Face Hub: download, one-time conversion of official
checkpoints, model cards and upload.

Downloads go through ``hf_hub_download`` (its cache, revisions, ``HF_HUB_OFFLINE``,
``HF_ENDPOINT``, tokens and progress bars). A checkpoint in the official pickled
format is converted once and kept as trmzoo safetensors under
``$HF_HOME/trmzoo/converted/<repo>/<commit>/<file>/``, so later loads are fast and
never unpickle. Every failure a user can act on is one line of ``HubError``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import click
import huggingface_hub
from huggingface_hub import HfApi, constants
from huggingface_hub import errors as hf_errors

import trmzoo
from trmzoo.core.model import RecursiveModel
from trmzoo.errors import CheckpointError, HubError
from trmzoo.registry import ModelEntry, PretrainedEntry
from trmzoo.weights import (
    CONFIG_FILE, PUZZLE_FILE, PUZZLE_KEY, WEIGHTS_FILE, atomic_write, check_safetensors, load_pretrained_dir, read_config,
    save_pretrained,
)

HUB_PREFIX = "hf-hub:"
CARD_FILE = "README.md"
hf_hub_download = partial(huggingface_hub.hf_hub_download, library_name="trmzoo", library_version=trmzoo.__version__)


def split_hub_id(text: str) -> tuple[str, str | None]:
    """``"[hf-hub:]org/name[@revision]"`` -> ``("org/name", revision or None)``."""
    text = text.removeprefix(HUB_PREFIX)
    repo_id, _, revision = text.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"{text!r}: a Hub id is org/name[@revision]")
    return repo_id, revision or None


@contextmanager
def _hub_errors(repo_id: str, what: str, revision: str | None = None) -> Iterator[None]:
    """Turn the hub library's exceptions into one-line ``HubError`` messages saying what to do."""
    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        yield
    except hf_errors.GatedRepoError:
        raise HubError(f"{repo_id} is gated: accept its terms at {constants.ENDPOINT}/{repo_id} and log in "
                       "(`hf auth login` or HF_TOKEN)") from None
    except hf_errors.RepositoryNotFoundError:
        raise HubError(f"{repo_id}: no such repository on {constants.ENDPOINT} (a private one needs a token: "
                       "`hf auth login` or HF_TOKEN)") from None
    except hf_errors.RevisionNotFoundError:
        raise HubError(f"{repo_id}: no revision {revision!r}") from None
    except hf_errors.RemoteEntryNotFoundError:
        raise HubError(f"{where}: no file {what!r} in the repository") from None
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled):
        if constants.HF_HUB_OFFLINE:
            raise HubError(f"{where}: {what} is not in the local cache and HF_HUB_OFFLINE is set; "
                           "unset HF_HUB_OFFLINE to download it once") from None
        raise HubError(f"{where}: cannot reach the Hub at {constants.ENDPOINT} and {what} is not in the local "
                       "cache; connect (or set HF_ENDPOINT to a mirror) and try again") from None
    except hf_errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise HubError(f"{where}: the Hub answered HTTP {status} for {what}") from None
    except Exception as exc:
        if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
            raise HubError(f"{where}: the download of {what} was cut short; try again") from None
        if not _unreachable(exc):
            raise
        raise HubError(f"{where}: cannot reach the Hub at {constants.ENDPOINT} ({exc}); connect (or set "
                       "HF_ENDPOINT to a mirror, or HF_HUB_OFFLINE=1 to use the cache) and try again") from None


def _unreachable(exc: BaseException) -> bool:
    """A failure to reach the server at all (DNS, refused, timeout), named alike by the HTTP
    libraries the hub client has used (requests, httpx, httpx2)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectError", "ConnectTimeout", "ConnectionError", "NetworkError", "TimeoutException"})


def _download(repo_id: str, filename: str, revision: str | None, token: str | None = None,
              force_download: bool = False) -> Path:
    with _hub_errors(repo_id, filename, revision):
        return Path(hf_hub_download(repo_id, filename, revision=revision, token=token,
                                    force_download=force_download))


def _snapshot_of(path: Path, filename: str) -> Path:
    """The ``snapshots/<commit>`` folder a downloaded file sits in."""
    for _ in Path(filename).parts:
        path = path.parent
    return path


def _repo_files(repo_id: str, revision: str, token: str | None) -> tuple[str, list[str]]:
    """The commit a revision points to and the files it holds; from the cache when offline."""
    if not constants.HF_HUB_OFFLINE:
        with _hub_errors(repo_id, "the file list", revision):
            info = HfApi(library_name="trmzoo", library_version=trmzoo.__version__).model_info(
                repo_id, revision=revision, token=token)
        ref = _converted_root(repo_id, "refs") / revision  # remembered for offline use of converted weights
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(info.sha)
        return info.sha, [s.rfilename for s in info.siblings or []]
    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    refs = [folder / "refs" / revision, _converted_root(repo_id, "refs") / revision]
    sha = next((r.read_text().strip() for r in refs if r.is_file()), revision)
    snapshot = folder / "snapshots" / sha
    converted = _converted_root(repo_id, sha)
    if not snapshot.is_dir() and not converted.is_dir():
        raise HubError(f"{repo_id}@{revision} is not in the local cache and HF_HUB_OFFLINE is set; "
                       "unset HF_HUB_OFFLINE to download it once")
    files = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}
    for done in converted.glob(f"*/{CONFIG_FILE}"):
        files.add(json.loads(done.read_text()).get("source", {}).get("file", ""))
    return sha, sorted(f for f in files if f)


def _step(path: str) -> tuple[int, int, str]:
    """Sort key: official checkpoint files (``step_N``, ``checkpoint``) last, higher steps later."""
    name = path.rsplit("/", 1)[-1]
    match = re.fullmatch(r"step_(\d+)", name)
    return (1 if match or name == "checkpoint" else 0, int(match.group(1)) if match else 0, path)


def _resolve(pattern: str, files: list[str], repo_id: str, near: str | None = None) -> str:
    """The repository file matching a glob pattern: the one beside ``near`` first, then the highest step."""
    if not any(ch in pattern for ch in "*?["):
        return pattern
    matches = [f for f in files if fnmatch.fnmatch(f, pattern)]
    if near is not None:
        folder = near.rpartition("/")[0]
        matches = [f for f in matches if f.rpartition("/")[0] == folder] or matches
    if not matches:
        raise HubError(f"{repo_id}: no file matches {pattern!r} (it holds {', '.join(files[:8]) or 'no files'}"
                       f"{' ...' if len(files) > 8 else ''}); load a file explicitly or report the entry")
    return max(matches, key=_step)


def _converted_root(repo_id: str, sha: str) -> Path:
    return Path(constants.HF_HOME) / "trmzoo" / "converted" / repo_id.replace("/", "--") / sha


def entry_meta(model_entry: ModelEntry, weights: PretrainedEntry) -> dict[str, Any]:
    """What a model loaded from a pretrained entry carries in ``model.meta``."""
    meta: dict[str, Any] = {
        "architecture": model_entry.name,
        "pretrained": f"{model_entry.name}.{weights.name}",
        "license": weights.license,
    }
    if weights.task:
        meta["task"] = {"name": weights.task}
    if weights.embedding_fingerprint:
        meta["data"] = {"embedding_fingerprint": weights.embedding_fingerprint}
    if weights.data_build:
        meta["data_build"] = weights.data_build
    if weights.eval_refusal:
        meta["eval_refusal"] = weights.eval_refusal
    return meta


def _verify(path: Path, repo_id: str, filename: str) -> None:
    """Check a downloaded file before use; a damaged one is a HubError that says how to recover."""
    try:
        if filename.endswith(".safetensors"):
            check_safetensors(path)
        elif not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: truncated or not a torch checkpoint (no zip directory)")
    except CheckpointError as exc:
        raise HubError(f"{repo_id}/{filename}: unusable download ({exc}); fetch it again with "
                       "trmzoo.load(..., force_download=True)") from None


def load_hub_repo(repo_id: str, *, revision: str | None = None, token: str | None = None,
                  force_download: bool = False, config_file: str = CONFIG_FILE) -> RecursiveModel:
    """Load a repository in the trmzoo weight format (config.json + safetensors)."""
    config_path = _download(repo_id, config_file, revision, token, force_download)
    sha = _snapshot_of(config_path, config_file).name  # pin the other files to the same commit
    prefix = config_file[: -len(CONFIG_FILE)]
    config = read_config(config_path.parent)
    if "model_args" not in config:
        raise HubError(f"{repo_id}: {config_file} is not a trmzoo config (no model_args); official-format "
                       "checkpoints load through a registered name, see trmzoo.list_models(pretrained=True)")
    names = [WEIGHTS_FILE] + ([PUZZLE_FILE] if config["model_args"].get("puzzle_emb_ndim", 1) else [])
    for name in names:
        _verify(_download(repo_id, prefix + name, sha, token, force_download), repo_id, prefix + name)
    model = load_pretrained_dir(config_path.parent)
    model.meta.setdefault("source", {"repo": repo_id, "revision": sha, "file": config_file})
    return model


def load_entry(model_entry: ModelEntry, weights: PretrainedEntry, *, revision: str | None = None,
               token: str | None = None, force_download: bool = False) -> RecursiveModel:
    """Load a registered pretrained entry, converting an official checkpoint on first use."""
    repo_id = weights.hub_repo
    revision = revision or weights.revision
    if weights.format not in ("trmzoo", "official"):
        raise HubError(f"{model_entry.name}.{weights.name}: unknown weight format {weights.format!r}")
    if weights.format == "trmzoo" and not any(ch in weights.file for ch in "*?["):
        model = load_hub_repo(repo_id, revision=revision, token=token, force_download=force_download,
                              config_file=weights.file)
    else:
        sha, files = _repo_files(repo_id, revision, token)
        filename = _resolve(weights.file, files, repo_id)
        if weights.format == "trmzoo":
            model = load_hub_repo(repo_id, revision=sha, token=token, force_download=force_download,
                                  config_file=filename)
        else:
            model = _load_official(model_entry, weights, sha, files, filename, token, force_download)
    model.meta.update(entry_meta(model_entry, weights))
    return model


def _load_official(model_entry: ModelEntry, weights: PretrainedEntry, sha: str, files: list[str], filename: str,
                   token: str | None, force_download: bool) -> RecursiveModel:
    """Convert once, keep the result as safetensors keyed by the commit, and load that from then on."""
    repo_id = weights.hub_repo
    target = _converted_root(repo_id, sha) / filename.replace("/", "--")
    if (target / CONFIG_FILE).exists() and not force_download:
        return load_pretrained_dir(target)
    from trmzoo.convert import load_official_checkpoint

    if not weights.config_file:
        raise HubError(f"{model_entry.name}.{weights.name}: an official checkpoint needs its all_config.yaml")
    config_name = _resolve(weights.config_file, files, repo_id, near=filename)
    config_path = _download(repo_id, config_name, sha, token, force_download)
    checkpoint = _download(repo_id, filename, sha, token, force_download)
    _verify(checkpoint, repo_id, filename)
    expected = {"H_cycles": weights.H_cycles, "L_cycles": weights.L_cycles}
    model = load_official_checkpoint(checkpoint, config_path, vocab_size=model_entry.config.get("vocab_size"),
                                     seq_len=model_entry.config.get("seq_len"), expected=expected)
    model.meta.update(entry_meta(model_entry, weights))
    model.meta["source"] = {"repo": repo_id, "revision": sha, "file": filename}
    save_pretrained(model, target)
    return model


# -- model cards and upload --------------------------------------------------------------------

TRM_CITATION = """@article{jolicoeur2025trm,
  title   = {Less is More: Recursive Reasoning with Tiny Networks},
  author  = {Jolicoeur-Martineau, Alexia},
  journal = {arXiv preprint arXiv:2510.04871},
  year    = {2025}
}"""

TASK_DATASETS = {"sudoku": ["sapientinc/sudoku-extreme"], "maze": ["sapientinc/maze-30x30-hard-1k"]}


def count_parameters(directory: str | Path) -> tuple[int, int]:
    """(learned network parameters, puzzle-table values) of a weight folder.

    The network is rebuilt on the meta device (no memory, no random draws); the table
    size comes from the safetensors header, so nothing large is read.
    """
    import torch
    from safetensors import safe_open

    from trmzoo.factory import build_model

    directory = Path(directory)
    args = read_config(directory)["model_args"]
    with torch.device("meta"):
        network = build_model({**args, "num_puzzle_identifiers": 1})
    count = sum(p.numel() for p in network.parameters())
    table = 0
    if (directory / PUZZLE_FILE).exists():
        with safe_open(str(directory / PUZZLE_FILE), framework="pt") as f:
            rows, width = f.get_slice(PUZZLE_KEY).get_shape()
            table = rows * width
    return count, table


def _last_eval(metrics_path: Path) -> dict[str, Any]:
    last: dict[str, Any] = {}
    if metrics_path.exists():
        for line in metrics_path.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            if any(k.startswith("eval/") for k in record):
                last = record
    return last


def model_card(directory: str | Path, *, repo_id: str | None = None, recipe: str | None = None,
               metrics: dict[str, Any] | None = None, license: str | None = None) -> str:
    """A README model card for a weight folder: YAML front matter the Hub indexes, then the facts.

    ``license`` defaults to the one recorded in config.json, else MIT (trmzoo's own).
    """
    directory = Path(directory)
    config = read_config(directory)
    license = license or config.get("license") or "mit"
    task = config.get("task") or {}
    task_name = task.get("name", "") if isinstance(task, dict) else str(task)
    architecture = config.get("architecture") or "custom"
    data = config.get("data") or {}
    network, table = count_parameters(directory)
    tags = ["trmzoo", "tiny-recursive-model", "recursive-reasoning"] + [t for t in (task_name, architecture) if t]
    spdx = "other" if " " in license else license.lower()  # free text ("see model card") is not an identifier
    front = ["---", "library_name: trmzoo", f"license: {spdx}", "tags:", *[f"- {t}" for t in tags]]
    datasets = TASK_DATASETS.get(task_name, [])
    if datasets:
        front += ["datasets:", *[f"- {d}" for d in datasets]]
    front.append("---")
    name = repo_id or architecture
    body = [
        f"# {name}", "",
        f"A tiny recursive reasoning model (`{architecture}`{f', task `{task_name}`' if task_name else ''}) "
        "in the trmzoo weight format (config.json, model.safetensors, puzzle_emb.safetensors).", "",
        "## Usage", "", "```python", "import trmzoo", "",
        f'model = trmzoo.load("{HUB_PREFIX}{repo_id}")' if repo_id else f'model = trmzoo.load("{directory}")',
        "```", "",
    ]
    if metrics:
        step = f" (step {metrics['step']})" if "step" in metrics else ""
        body += ["## Metrics", "", f"Last evaluation{step}:", "", "| metric | value |", "|---|---|"]
        body += [f"| {k.removeprefix('eval/')} | {v} |" for k, v in metrics.items() if k.startswith("eval/")]
        body.append("")
    if recipe:
        body += ["## Training recipe", "", "```yaml", recipe.rstrip(), "```", ""]
    body += ["## Data", ""]
    body += [f"- task: `{task_name or 'unknown'}`"]
    for key in ("build_fingerprint", "embedding_fingerprint"):
        if data.get(key):
            body.append(f"- {key.replace('_', ' ')}: `{data[key]}`")
    if table:
        body.append("- the puzzle embedding table only fits the data build with this embedding fingerprint")
    body += ["", "## Parameters", "",
             f"- network (learned parameters): {network:,}", f"- puzzle embedding table: {table:,}",
             f"- total: {network + table:,}", "",
             "## License", "", f"{license}", "",
             "## Citation", "", "```bibtex", TRM_CITATION, "```", ""]
    return "\n".join(front + [""] + body)


def write_model_card(directory: str | Path, **kwargs: Any) -> Path:
    """Write ``README.md`` into a weight folder (see :func:`model_card`)."""
    path = Path(directory) / CARD_FILE
    text = model_card(directory, **kwargs)
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def _stage(source: RecursiveModel | str | Path, folder: Path) -> tuple[str | None, dict[str, Any]]:
    """Copy the weights of a model, weight folder or run folder into ``folder``; return its recipe and metrics."""
    if isinstance(source, RecursiveModel):
        save_pretrained(source, folder)
        return None, {}
    path = Path(source)
    run = path if (path / "weights" / CONFIG_FILE).exists() else None
    weights = path / "weights" if run else path
    if not (weights / CONFIG_FILE).exists():
        raise HubError(f"{path}: neither a run folder (weights/{CONFIG_FILE}) nor a weight folder ({CONFIG_FILE})")
    for name in (CONFIG_FILE, WEIGHTS_FILE, PUZZLE_FILE):
        if (weights / name).exists():
            shutil.copy2(weights / name, folder / name)
    if run is None:
        return None, {}
    recipe = run / "recipe.yaml"
    return (recipe.read_text() if recipe.exists() else None), _last_eval(run / "metrics.jsonl")


def push_to_hub(model_or_run_dir: RecursiveModel | str | Path, repo_id: str, *, private: bool = False,
                revision: str | None = None, token: str | None = None, license: str | None = None,
                commit_message: str = "Upload trmzoo model") -> str:
    """Upload weights with a model card to ``repo_id`` (created if needed); returns the commit URL."""
    split_hub_id(repo_id)
    api = HfApi(library_name="trmzoo", library_version=trmzoo.__version__, token=token)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recipe, metrics = _stage(model_or_run_dir, folder)
        write_model_card(folder, repo_id=repo_id, recipe=recipe, metrics=metrics, license=license)
        with _hub_errors(repo_id, "the upload", revision):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                                     commit_message=commit_message)
    return str(info)


# -- command line ------------------------------------------------------------------------------

def describe(name: str) -> str:
    """The card of a pretrained entry (by name or alias) or of a registered model, as text."""
    from trmzoo.factory import create_model
    from trmzoo.registry import get_registry, lookup

    registry = get_registry()
    if name in registry.pretrained:
        model_entry, weights = registry.pretrained[name]
        rows = [
            ("weights", f"{model_entry.name}.{weights.name}"), ("aliases", ", ".join(weights.aliases)),
            ("model", model_entry.name), ("source", f"{HUB_PREFIX}{weights.hub_repo}@{weights.revision}"),
            ("file", weights.file), ("config", weights.config_file or ""), ("format", weights.format),
            ("task", weights.task or ""),
            ("cycles", f"H_cycles={weights.H_cycles}, L_cycles={weights.L_cycles}" if weights.H_cycles else ""),
            ("score", f"{weights.score} ({weights.score_source})" if weights.score else weights.score_source),
            ("license", weights.license), ("data", weights.data_build), ("notes", weights.notes),
            ("evaluation", f"refused: {weights.eval_refusal}" if weights.eval_refusal else ""),
        ]
        return "\n".join(f"{key:<11}{value}" for key, value in rows if value)
    entry = lookup("model", name)
    model = create_model(name)
    table = model.puzzle_emb.weight.numel() if model.puzzle_emb is not None else 0
    network = sum(p.numel() for p in model.parameters())
    weights = [f"{name}.{w.name}" for w in entry.pretrained]
    rows = [("model", name), ("about", entry.description), ("plugin", entry.plugin),
            ("parameters", f"{network:,} (puzzle table of {table:,} for {model.config.num_puzzle_identifiers} "
                           "puzzle id(s) not counted)"),
            ("weights", ", ".join(weights) or "none published"), ("config", json.dumps(entry.config))]
    return "\n".join(f"{key:<11}{value}" for key, value in rows if value)


@click.command("push")
@click.argument("source", metavar="RUN_DIR|MODEL")
@click.argument("repo_id", metavar="ORG/NAME")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--revision", default=None, help="Branch to upload to (created if missing).")
@click.option("--token", default=None, envvar="HF_TOKEN", help="Hub token (default: the logged-in one).")
def push_command(source: str, repo_id: str, private: bool, revision: str | None, token: str | None) -> None:
    """Upload a run folder's weights (or a weight folder, or a pretrained name) with a model card."""
    from trmzoo.api import load

    target = source if Path(source).is_dir() else load(source)
    url = push_to_hub(target, repo_id, private=private, revision=revision, token=token)
    click.echo(f"pushed to {url}")


@click.command("info")
@click.argument("name")
def info_command(name: str) -> None:
    """Show the card of a pretrained entry or a registered model."""
    click.echo(describe(name))
