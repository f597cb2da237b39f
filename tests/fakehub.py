"""A local stand-in for the Hugging Face Hub, for tests that must not touch the network.

It is a real HTTP server on 127.0.0.1 speaking the part of the Hub protocol that
``huggingface_hub`` uses to download, list and upload files, so the hub library runs
end to end (cache, revisions, offline mode) instead of being mocked.

Usage::

    hub = FakeHub()                                   # starts serving at once
    hub.add_file("org/name", "config.json", b"{}")    # a model repo, branch main
    hub.add_file("org/data", "train.csv", data, repo_type="dataset")
    hub.add_folder("org/other", some_dir)             # every file under some_dir
    hub.add_files("org/x", {"a/b": data}, sha=SHA40)  # one commit of several files, a pinned sha
    hub.url                                           # http://127.0.0.1:PORT
    hub.commits                                       # uploads received: list of dicts
    hub.files("org/name")                             # {path: bytes} at the head of main
    hub.close()

Each ``add_file`` makes a new commit (40-hex sha) on the branch, so a test can pin a
revision with ``hub.head("org/name")``. ``hub.gate("org/name")`` makes downloads
answer 403 GatedRepo; ``hub.truncate("org/name", "file", n)`` makes it serve only the
first ``n`` bytes of a file under the full-size headers (a cut download);
``hub.portal = True`` makes every request get a plain HTML page, as behind a captive
portal or a broken proxy: the network answers, but not as the Hub.

The ``fake_hub`` fixture starts one per test and points the hub library at it
(``HF_ENDPOINT``), with its cache, home and token paths in ``tmp_path`` and Xet off.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest

import trmzoo.hub

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class _Repo:
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit sha
    snapshots: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> files
    private: bool = False
    gated: bool = False
    truncated: dict[str, int] = field(default_factory=dict)

    def commit(self, branch: str, files: dict[str, bytes], deleted: tuple[str, ...] = (), sha: str | None = None) -> str:
        parent = self.snapshots.get(self.branches.get(branch, ""), {})
        snapshot = {**{k: v for k, v in parent.items() if k not in deleted}, **files}
        sha = sha or hashlib.sha1(f"{len(self.snapshots)}:{sorted(snapshot)}:{branch}".encode()).hexdigest()
        self.snapshots[sha] = snapshot
        self.branches[branch] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.snapshots else None


class FakeHub:
    """Serves repos held in memory; see the module docstring."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.commits: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.portal = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeHub":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- filling repos ------------------------------------------------------------------------
    def _repo(self, repo_id: str, repo_type: str, create: bool = True) -> _Repo | None:
        key = (repo_type, repo_id)
        if key not in self.repos and create:
            self.repos[key] = _Repo()
        return self.repos.get(key)

    def add_file(self, repo_id: str, path: str, data: bytes, *, repo_type: str = "model",
                 revision: str = "main") -> str:
        """Commit one file; returns the new commit sha."""
        with self._lock:
            return self._repo(repo_id, repo_type).commit(revision, {path: bytes(data)})

    def add_folder(self, repo_id: str, folder: str | Path, *, repo_type: str = "model",
                   revision: str = "main") -> str:
        """Commit every file under ``folder`` in one commit; returns its sha."""
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.add_files(repo_id, files, repo_type=repo_type, revision=revision)

    def add_files(self, repo_id: str, files: dict[str, bytes], *, repo_type: str = "model", revision: str = "main",
                  sha: str | None = None) -> str:
        """Commit ``files`` (path -> bytes) in one commit, under the 40-hex ``sha`` when given (a
        published repository's pinned commit); returns the commit's sha."""
        with self._lock:
            return self._repo(repo_id, repo_type).commit(revision, {k: bytes(v) for k, v in files.items()}, sha=sha)

    def head(self, repo_id: str, *, repo_type: str = "model", revision: str = "main") -> str:
        return self.repos[(repo_type, repo_id)].branches[revision]

    def files(self, repo_id: str, *, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[(repo_type, repo_id)]
        return dict(repo.snapshots[repo.resolve(revision)])

    def gate(self, repo_id: str, *, repo_type: str = "model") -> None:
        self._repo(repo_id, repo_type).gated = True

    def truncate(self, repo_id: str, path: str, size: int, *, repo_type: str = "model") -> None:
        self._repo(repo_id, repo_type).truncated[path] = size


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        # -- plumbing -------------------------------------------------------------------------
        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, length: int | None = None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, obj, status: int = 200, headers: dict | None = None) -> None:
            self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message,
                                      "Content-Type": "application/json"})

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _split_repo(self, parts: list[str]) -> tuple[str, list[str]]:
            return "/".join(parts[:2]), parts[2:]

        def _find(self, repo_type: str, repo_id: str, revision: str | None = None):
            repo = hub.repos.get((repo_type, repo_id))
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                return None, None
            if repo.gated and self.command in ("GET", "HEAD"):
                self._error(403, "GatedRepo", f"Access to {repo_id} is restricted")
                return None, None
            if revision is None:
                return repo, None
            sha = repo.resolve(revision)
            if sha is None:
                self._error(404, "RevisionNotFound", f"Revision {revision} not found")
                return None, None
            return repo, sha

        # -- routing --------------------------------------------------------------------------
        def do_HEAD(self) -> None:
            self._route()

        def do_GET(self) -> None:
            self._route()

        def do_POST(self) -> None:
            self._route()

        def _route(self) -> None:
            url = urlparse(self.path)
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            hub.requests.append((self.command, url.path))
            if hub.portal:
                return self._send(200, b"<html>sign in to the network</html>", {"Content-Type": "text/html"})
            with hub._lock:
                if parts[:2] == ["api", "repos"] and parts[2:3] == ["create"]:
                    return self._create_repo()
                if parts[:2] == ["api", "validate-yaml"]:  # model card check before a README upload
                    self._body()
                    return self._json({"errors": [], "warnings": []})
                if parts[0] == "api" and len(parts) > 1 and parts[1] in REPO_TYPES:
                    repo_id, rest = self._split_repo(parts[2:])
                    return self._api(REPO_TYPES[parts[1]], repo_id, rest, parse_qs(url.query))
                repo_type = "model"
                if parts[0] in ("datasets", "spaces"):
                    repo_type, parts = REPO_TYPES[parts[0]], parts[1:]
                repo_id, rest = self._split_repo(parts)
                if rest[:1] == ["resolve"] and len(rest) >= 3:
                    return self._resolve(repo_type, repo_id, rest[1], "/".join(rest[2:]))
                self._error(404, "NotFound", f"no route for {url.path}")

        def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
            repo, sha = self._find(repo_type, repo_id, revision)
            if repo is None:
                return
            data = repo.snapshots[sha].get(path)
            if data is None:
                return self._error(404, "EntryNotFound", f"{path} not found in {repo_id}@{revision}")
            headers = {"X-Repo-Commit": sha, "ETag": f'"{_sha(data)}"', "Content-Type": "application/octet-stream"}
            served = data[: repo.truncated[path]] if path in repo.truncated else data
            self._send(200, served, headers, length=len(data) if self.command == "HEAD" else len(served))

        def _api(self, repo_type: str, repo_id: str, rest: list[str], query: dict) -> None:
            action = rest[0] if rest else ""
            revision = unquote(rest[1]) if len(rest) > 1 else "main"
            if action in ("", "revision"):
                repo, sha = self._find(repo_type, repo_id, revision)
                if repo is not None:
                    siblings = [{"rfilename": p} for p in sorted(repo.snapshots[sha])]
                    self._json({"id": repo_id, "sha": sha, "private": repo.private, "siblings": siblings})
            elif action == "tree":
                repo, sha = self._find(repo_type, repo_id, revision)
                if repo is None:
                    return
                prefix = "/".join(rest[2:]).strip("/")
                entries = [{"type": "file", "path": p, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                           for p, d in sorted(repo.snapshots[sha].items())
                           if not prefix or p.startswith(prefix + "/")]
                self._json(entries)
            elif action == "preupload" and self.command == "POST":
                if self._find(repo_type, repo_id)[0] is None:
                    return
                files = json.loads(self._body()).get("files", [])
                self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                      for f in files]})
            elif action == "branch" and self.command == "POST":
                start = json.loads(self._body() or b"{}").get("startingPoint", "main")
                repo, sha = self._find(repo_type, repo_id, start)
                if repo is not None:
                    repo.branches.setdefault(revision, sha)
                    self._json({})
            elif action == "commit" and self.command == "POST":
                self._commit(repo_type, repo_id, revision)
            else:
                self._error(404, "NotFound", f"no API route {action!r}")

        def _create_repo(self) -> None:
            payload = json.loads(self._body())
            repo_type = payload.get("type") or "model"
            repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
            repo = hub._repo(repo_id, repo_type)
            if not repo.branches:  # a new repo; an existing one keeps its visibility
                repo.private = bool(payload.get("private")) or payload.get("visibility") == "private"
                repo.commit("main", {})
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            self._json({"url": f"{hub.url}/{prefix}{repo_id}", "name": repo_id})

        def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
            repo = hub.repos.get((repo_type, repo_id))
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            header, files, deleted = {}, {}, []
            for line in self._body().decode().splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                value = item["value"]
                if item["key"] == "header":
                    header = value
                elif item["key"] == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif item["key"] in ("deletedFile", "deletedFolder"):
                    deleted.append(value["path"])
                else:
                    return self._error(400, "BadRequest", f"unsupported commit item {item['key']!r}")
            sha = repo.commit(revision, files, tuple(deleted))
            hub.commits.append({"repo_id": repo_id, "repo_type": repo_type, "revision": revision,
                                "summary": header.get("summary", ""), "files": files, "deleted": deleted})
            self._json({"commitOid": sha, "commitUrl": f"{hub.url}/{repo_id}/commit/{sha}",
                        "success": True, "pullRequestUrl": None})

    return Handler


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A running :class:`FakeHub` with the hub library pointed at it and its cache in ``tmp_path``."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    with FakeHub() as hub:
        # Every path the hub library derived from HF_HOME at import moves under tmp_path.
        for name, value in list(vars(constants).items()):
            if name.isupper() and isinstance(value, str) and value.startswith(constants.HF_HOME + os.sep):
                monkeypatch.setattr(constants, name, str(home) + value[len(constants.HF_HOME):])
        settings = {
            "ENDPOINT": hub.url, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
            "HF_TOKEN_PATH": str(home / "token"), "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
            "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_XET": True, "HF_HUB_DISABLE_TELEMETRY": True,
        }
        for name, value in settings.items():
            monkeypatch.setattr(constants, name, value)
        for var, value in {"HF_ENDPOINT": hub.url, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
                           "HF_TOKEN_PATH": str(home / "token"), "HF_HUB_DISABLE_XET": "1",
                           "HF_HUB_OFFLINE": "0"}.items():
            monkeypatch.setenv(var, value)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(trmzoo.hub, "_answers", {})  # no probe answered for another hub on this port
        yield hub
