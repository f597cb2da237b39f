"""Pretrained weights on the Hugging Face Hub: download, one-time conversion of official
checkpoints, and upload with a model card.

Downloads go through ``hf_hub_download`` (its cache, revisions, ``HF_HUB_OFFLINE``,
``HF_ENDPOINT``, tokens and progress bars). A checkpoint in another format (the official
pickled state dict, or any a plugin's converter reads) is converted once and kept as trmzoo safetensors under
``$HF_HOME/trmzoo/converted/<repo>/<commit>/<file>/``, so later loads are fast and
never unpickle. Every failure a user can act on is one line of ``HubError``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import tempfile
import time
import warnings
import zipfile
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import huggingface_hub
from huggingface_hub import HfApi, constants
from huggingface_hub import errors as hf_errors

from trmzoo.card import HUB_PREFIX
from trmzoo.convert import load_checkpoint
from trmzoo.core.model import RecursiveModel
from trmzoo.core.provenance import Provenance, SourceProvenance
from trmzoo.data.format import IDENTIFIERS_FILE
from trmzoo.errors import CheckpointError, HubError, LicenseWarning
from trmzoo.factory import entry_config
from trmzoo.registry import LICENSE_NOT_CHECKED, LICENSE_NOT_STATED, ModelEntry, PretrainedEntry, get_registry
from trmzoo.run import RECIPE_FILE, WEIGHTS_DIR, is_run_dir, last_evaluation
from trmzoo.version import __version__
from trmzoo.weights import (
    CONFIG_FILE, PUZZLE_FILE, WEIGHTS_FILE, check_safetensors, load_pretrained_dir, read_config, save_pretrained,
    write_card,
)

hf_hub_download = partial(huggingface_hub.hf_hub_download, library_name="trmzoo", library_version=__version__)
snapshot_download = partial(huggingface_hub.snapshot_download, library_name="trmzoo", library_version=__version__)


HUB_NAME = re.compile(r"(?!.*(--|\.\.))[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9_])?")
"""One part of a Hub repository id, by the Hub's rules: letters, digits, ``-``, ``_``, ``.``, not starting or
ending with ``-`` or ``.``, no ``--`` or ``..``, at most 96 characters."""


def split_hub_id(text: str) -> tuple[str, str | None]:
    """``"[hf-hub:]org/name[@revision]"`` -> ``("org/name", revision or None)``; a malformed id is one line
    of ``HubError`` quoting it."""
    text = text.removeprefix(HUB_PREFIX)
    repo_id, at, revision = text.partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(HUB_NAME.fullmatch(part) for part in parts) or (at and not revision.strip()):
        raise HubError(f"{text!r}: a Hub id is org/name[@revision] (letters, digits, '-', '_', '.')")
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
        if {cls.__name__ for cls in type(exc).__mro__} & {"UnsupportedProtocol", "InvalidURL", "MissingSchema"}:
            raise HubError(f"HF_ENDPOINT {constants.ENDPOINT!r} is not a URL the Hub client can use "
                           "(https://...); fix or unset it") from None
        if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
            reason = str(exc).splitlines()[0]  # it names the file: one of several in a snapshot
            raise HubError(f"{where}: the download of {what} was cut short ({reason}); try again") from None
        if isinstance(exc, json.JSONDecodeError):  # a captive portal or proxy answered instead of the Hub
            exc = "the answer was not the Hub's"
        elif not _unreachable(exc):
            raise
        raise HubError(f"{where}: cannot reach the Hub at {constants.ENDPOINT} ({exc}); connect (or set "
                       "HF_ENDPOINT to a mirror, or HF_HUB_OFFLINE=1 to use the cache) and try again") from None


def _unreachable(exc: BaseException) -> bool:
    """A failure to reach the server at all (DNS, refused, timeout), named alike by the HTTP
    libraries the hub client has used (requests, httpx, httpx2)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectError", "ConnectTimeout", "ConnectionError", "NetworkError", "TimeoutException"})


def download(repo_id: str, filename: str, *, revision: str | None = None, repo_type: str = "model",
             token: str | None = None, force_download: bool = False) -> Path:
    """One file of a Hub repository (a model's, or ``repo_type="dataset"`` for a task's data) through the
    hub library's cache, offline mode and tokens; a failure is one line of ``HubError`` saying what to do."""
    with _hub_errors(repo_id, filename, revision):
        return Path(hf_hub_download(repo_id, filename, revision=revision, repo_type=repo_type, token=token,
                                    **_fetch_options(repo_id, repo_type, revision, token, force_download)))


def _fetch_options(repo_id: str, repo_type: str, revision: str | None, token: str | None,
                   force_download: bool) -> dict[str, bool]:
    """The hub library's download options: the cache alone when the Hub cannot be reached. Unreachable, the
    library retries for about 20 s before it falls back to its cache, so it is asked once first."""
    offline = not constants.HF_HUB_OFFLINE and not _reachable(repo_id, repo_type, revision, token)
    return {"force_download": force_download and not offline, "local_files_only": offline}


PROBE_TIMEOUT_S = 10.0
"""How long a probe, or a file list, waits for the Hub's answer: a server that takes the connection and
never answers would otherwise hold the command forever."""
ANSWER_KEPT_S = 60.0
"""How long the answer of one probe of a repository stands for its next files."""
_answers: dict[tuple[str, str, str, str | None], tuple[bool, float]] = {}  # (endpoint, type, id, revision)


def _reachable(repo_id: str, repo_type: str, revision: str | None, token: str | None) -> bool:
    """Whether the Hub answers at all (any answer but a failure to connect counts). The answer stands for a
    minute, so the files of one model or dataset cost one probe (up to a 10 s timeout when unreachable)."""
    key = (constants.ENDPOINT, repo_type, repo_id, revision)
    kept = _answers.get(key)
    if kept is not None and time.monotonic() - kept[1] < ANSWER_KEPT_S:
        return kept[0]
    try:
        HfApi(library_name="trmzoo", library_version=__version__).repo_info(
            repo_id, repo_type=repo_type, revision=revision, token=token, timeout=PROBE_TIMEOUT_S)
        answer = True
    except Exception as exc:
        if not _unreachable(exc):
            raise
        answer = False
    _answers[key] = (answer, time.monotonic())
    return answer


def _repo_files(repo_id: str, revision: str, token: str | None) -> tuple[str, list[str]]:
    """The commit a revision points to and the files it holds; from the cache when offline."""
    if not constants.HF_HUB_OFFLINE:
        with _hub_errors(repo_id, "the file list", revision):
            info = HfApi(library_name="trmzoo", library_version=__version__).model_info(
                repo_id, revision=revision, token=token, timeout=PROBE_TIMEOUT_S)
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


def entry_provenance(model_entry: ModelEntry, weights: PretrainedEntry, provenance: Provenance) -> Provenance:
    """``provenance`` completed with what a registered pretrained entry says of its weights."""
    data = {"embedding_fingerprint": weights.embedding_fingerprint, "build": weights.data_build}
    update: dict[str, Any] = {
        "architecture": model_entry.name,
        "pretrained": f"{model_entry.name}.{weights.name}",
        "license": weights.license,
        "data": provenance.data.model_copy(update={k: v for k, v in data.items() if v}),
    }
    if weights.task:
        update["task"] = {"name": weights.task}
    if weights.eval_refusal:
        update["eval_refusal"] = weights.eval_refusal
    return provenance.model_copy(update=update)


def _verify(path: Path, repo_id: str, filename: str) -> None:
    """Check a downloaded file before use; a damaged one is a HubError that says how to recover."""
    try:
        if filename.endswith(".safetensors"):
            check_safetensors(path)
        elif not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: truncated or not a torch checkpoint (no zip directory)")
    except CheckpointError as exc:
        raise HubError(f"{repo_id}/{filename}: unusable download ({exc}); fetch it again with "
                       "trmzoo.load(..., force_download=True), and if it fails alike, the repository's file is "
                       "damaged: tell its owner") from None


def load_hub_repo(repo_id: str, *, revision: str | None = None, token: str | None = None,
                  force_download: bool = False, config_file: str = CONFIG_FILE) -> RecursiveModel:
    """Load a repository (or a folder of one, named by its ``config_file``) in the trmzoo weight format:
    one ``snapshot_download`` of the folder's files, all at the commit ``revision`` points to."""
    prefix = config_file[: -len(CONFIG_FILE)]
    wanted = [prefix + name for name in (CONFIG_FILE, WEIGHTS_FILE, PUZZLE_FILE, IDENTIFIERS_FILE)]
    with _hub_errors(repo_id, config_file, revision):
        snapshot = Path(snapshot_download(repo_id, revision=revision, token=token, allow_patterns=wanted,
                                          **_fetch_options(repo_id, "model", revision, token, force_download)))
    folder = snapshot / prefix
    where = f"{repo_id}@{revision}" if revision else repo_id
    if not (folder / CONFIG_FILE).is_file():
        raise HubError(f"{where}: no file {config_file!r} in the repository")
    config = read_config(folder)
    if "model_args" not in config:
        raise HubError(f"{repo_id}: {config_file} is not a trmzoo config (no model_args); official-format "
                       "checkpoints load through a registered name, see trmzoo.list_models(pretrained=True)")
    names = [WEIGHTS_FILE] + ([PUZZLE_FILE] if config["model_args"].get("puzzle_emb_ndim", 1) else [])
    for name in names:
        if not (folder / name).is_file():
            raise HubError(f"{where}: no file {prefix + name!r} in the repository")
        _verify(folder / name, repo_id, prefix + name)
    model = load_pretrained_dir(folder)
    if model.provenance.source is None:
        model.provenance.source = SourceProvenance(repo=repo_id, revision=snapshot.name, file=config_file)
    return model


def load_entry(model_entry: ModelEntry, weights: PretrainedEntry, *, revision: str | None = None,
               token: str | None = None, force_download: bool = False) -> RecursiveModel:
    """Load a registered pretrained entry, converting a checkpoint of another format on first use."""
    repo_id = weights.hub_repo
    revision = revision or weights.revision
    formats = ["trmzoo", "official", *get_registry().converter]
    if weights.format not in formats:
        raise HubError(f"{model_entry.name}.{weights.name}: unknown weight format {weights.format!r} "
                       f"(known: {', '.join(formats)})")
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
            model = _load_converted(model_entry, weights, sha, files, filename, token, force_download)
    model.provenance = entry_provenance(model_entry, weights, model.provenance)
    _warn_license(f"{model_entry.name}.{weights.name}", weights)
    return model


def _warn_license(name: str, weights: PretrainedEntry) -> None:
    """Say so when the weights come without a license anyone could check."""
    page = f"{constants.ENDPOINT}/{weights.hub_repo}"
    if weights.license == LICENSE_NOT_STATED:
        warnings.warn(f"{name}: {weights.hub_repo} states no license, so using or sharing these weights may not be "
                      f"permitted; ask the uploader ({page})", LicenseWarning, stacklevel=3)
    elif weights.license == LICENSE_NOT_CHECKED:
        warnings.warn(f"{name}: trmzoo could not check the license of {weights.hub_repo}; read {page} before using "
                      "or sharing these weights", LicenseWarning, stacklevel=3)


def _load_converted(model_entry: ModelEntry, weights: PretrainedEntry, sha: str, files: list[str], filename: str,
                    token: str | None, force_download: bool) -> RecursiveModel:
    """Convert once, keep the result as safetensors keyed by the commit, and load that from then on."""
    repo_id = weights.hub_repo
    target = _converted_root(repo_id, sha) / filename.replace("/", "--")
    if (target / CONFIG_FILE).exists() and not force_download:
        return load_pretrained_dir(target)
    official = weights.format == "official"
    if official and not (weights.config_file or weights.settings):
        raise HubError(f"{model_entry.name}.{weights.name}: an official checkpoint needs its all_config.yaml "
                       "(or the entry's settings)")
    config_path = None
    if weights.config_file:
        config_name = _resolve(weights.config_file, files, repo_id, near=filename)
        config_path = download(repo_id, config_name, revision=sha, token=token, force_download=force_download)
    checkpoint = download(repo_id, filename, revision=sha, token=token, force_download=force_download)
    _verify(checkpoint, repo_id, filename)
    sizes = entry_config(model_entry)
    model = load_checkpoint(checkpoint, config_path, converter=None if official else weights.format,
                            vocab_size=sizes.get("vocab_size"), seq_len=sizes.get("seq_len"), expected=weights.expected,
                            settings=weights.settings if official and not config_path else None)
    model.provenance = entry_provenance(model_entry, weights, model.provenance)
    model.provenance.source = model.provenance.source.model_copy(update={"repo": repo_id, "revision": sha,
                                                                         "file": filename})
    save_pretrained(model, target)
    return model


# -- upload ----------------------------------------------------------------------------------

PUSHED_FILES = (CONFIG_FILE, WEIGHTS_FILE, PUZZLE_FILE, IDENTIFIERS_FILE)
"""A weight folder's files that a push uploads (with the card), and deletes from the repository where the
pushed model has none: another model's table or identifiers must not stay beside it."""


def _stage(source: RecursiveModel | str | Path, folder: Path) -> dict[str, Any]:
    """Put the weights of a model, weight folder or run folder into ``folder``; return what its
    card shows besides config.json (parameter counts, and a run's recipe and last evaluation)."""
    if isinstance(source, RecursiveModel):
        save_pretrained(source, folder)
        network, table = source.parameter_counts()
        return {"network_params": network, "table_params": table}
    path = Path(source)
    run = path if is_run_dir(path) else None
    weights = path / WEIGHTS_DIR if run else path
    if not (weights / CONFIG_FILE).exists():
        raise HubError(f"{path}: neither a run folder ({WEIGHTS_DIR}/{CONFIG_FILE}) nor a weight folder ({CONFIG_FILE})")
    network, table = load_pretrained_dir(weights).parameter_counts()  # a damaged folder fails here, not online
    for name in PUSHED_FILES:
        if (weights / name).exists():
            shutil.copy2(weights / name, folder / name)
    card: dict[str, Any] = {"network_params": network, "table_params": table}
    if run is not None:
        recipe = run / RECIPE_FILE
        card.update(recipe=recipe.read_text() if recipe.exists() else None, metrics=last_evaluation(run))
    return card


def push_to_hub(model_or_run_dir: RecursiveModel | str | Path, repo_id: str, *, private: bool = False,
                revision: str | None = None, token: str | None = None, license: str | None = None,
                commit_message: str = "Upload trmzoo model") -> str:
    """Upload weights with a model card to ``repo_id`` (``org/name``, created if needed); returns the commit URL.
    A revision goes in ``revision``: ``org/name@rev`` would be ambiguous beside it."""
    repo_id, at = split_hub_id(repo_id)
    if at is not None:
        raise HubError(f"{repo_id}@{at}: push to a revision with revision={at!r} (--revision {at}), not in the id")
    api = HfApi(library_name="trmzoo", library_version=__version__, token=token)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        card = _stage(model_or_run_dir, folder)
        write_card(folder, read_config(folder), repo_id=repo_id, license=license, **card)
        with _hub_errors(repo_id, "the upload", revision):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if private and not api.repo_info(repo_id, timeout=PROBE_TIMEOUT_S).private:
                warnings.warn(f"{repo_id}: the repository was there already and is public; private= makes new "
                              "repositories private only (change its visibility in its settings on the Hub)")
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                                     commit_message=commit_message, delete_patterns=list(PUSHED_FILES))
    return str(info)
