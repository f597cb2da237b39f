"""Downloads, conversion, caching and uploads against a local fake Hub server (tests/fakehub.py)."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError


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
