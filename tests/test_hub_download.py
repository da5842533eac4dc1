"""Hub downloads: listed and size-checked first, then only the files the atlas reads.

The hub client (`generator.extract.source.HubClient`) is replaced by a fake that serves a
repository listing and records every download; the loader is never mocked. No network.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from generator.card import parse_card_text
from generator.errors import ModelLoadError
from generator.extract import source
from generator.models import load_model

FIXTURES = Path(__file__).parent / "fixtures"
SHARDED = FIXTURES / "tiny-llama-sharded"


class FakeHub:
    """A repository of files (path -> bytes) behind the HubClient interface."""

    def __init__(self, files: dict[str, bytes], cache: Path):
        self.files = files
        self.cache = cache
        self.downloaded: list[str] = []

    def list_files(self, repo_id, revision):
        return "0" * 40, {path: len(data) for path, data in self.files.items()}

    def download_file(self, repo_id, revision, filename):
        self.downloaded.append(filename)
        return self._write(filename)

    def download(self, repo_id, revision, files, offline):
        assert not offline
        for name in files:
            self.download_file(repo_id, revision, name)
        return self.cache / "snapshot"

    def cache_dir(self):
        return self.cache

    def _write(self, name: str) -> Path:
        target = self.cache / "snapshot" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.files[name])
        return target


def repo_of(folder: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_repo_without_safetensors_is_refused_before_any_download(tmp_path):
    hub = FakeHub(
        {
            "config.json": b"{}",
            "pytorch_model.bin": b"x" * 100,
            "tokenizer.json": b"{}",
            "README.md": b"",
        },
        tmp_path,
    )
    with pytest.raises(ModelLoadError) as info:
        source.download_from_hub("org/pickled", None, client=hub)
    message = info.value.message
    assert "'org/pickled' has no model.safetensors" in message and "pytorch_model.bin" in message
    assert hub.downloaded == []


def test_sharded_repo_downloads_only_what_the_index_names(tmp_path):
    files = repo_of(SHARDED)
    files["onnx/model.safetensors"] = b"not fetched"  # another folder: never downloaded
    files["pytorch_model.bin"] = b"not fetched"
    files["model-00009-of-00009.safetensors"] = b"a stray shard the index does not name"
    hub = FakeHub(files, tmp_path)
    folder = source.download_from_hub("org/sharded", None, client=hub)
    index = json.loads(files["model.safetensors.index.json"])
    shards = set(index["weight_map"].values())
    assert hub.downloaded[0] == "model.safetensors.index.json"  # read before the shards
    fetched = set(hub.downloaded)
    assert fetched == {
        "config.json",
        "README.md",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors.index.json",
        *shards,
    }
    loaded = load_model(folder)  # the downloaded folder loads: nothing it needs was left out
    assert loaded.config.n_layers == 2


def test_subfolder_is_downloaded_only_when_the_card_names_it(tmp_path):
    files = {**repo_of(FIXTURES / "tiny-bert", "text_encoder/"), "README.md": b"top"}
    hub = FakeHub(files, tmp_path)
    with pytest.raises(ModelLoadError, match="no config.json.*set `subfolder`"):
        source.download_from_hub("org/pipeline", None, client=hub)
    assert hub.downloaded == []
    folder = source.download_from_hub("org/pipeline", None, "text_encoder", client=hub)
    assert sorted(hub.downloaded) == sorted(files.keys() - {"README.md"})
    assert load_model(folder / "text_encoder").config.n_layers > 0


def test_download_larger_than_the_free_space_is_refused(tmp_path, monkeypatch):
    hub = FakeHub(repo_of(FIXTURES / "tiny-bert"), tmp_path)

    class Usage:
        free = 1000

    monkeypatch.setattr(source.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(ModelLoadError, match="GB is free in"):
        source.download_from_hub("org/big", None, client=hub)
    assert hub.downloaded == []


def test_gated_repo_is_one_line(tmp_path):
    from huggingface_hub.errors import GatedRepoError

    gated = GatedRepoError.__new__(GatedRepoError)  # as huggingface_hub raises it, sans HTTP
    Exception.__init__(gated, "403 gated")

    class Gated(FakeHub):
        def list_files(self, repo_id, revision):
            raise gated

    with pytest.raises(ModelLoadError, match="'org/gated' is gated: accept its conditions"):
        source.download_from_hub("org/gated", None, client=Gated({}, tmp_path))


def test_card_subfolder_selects_the_checkpoint_folder(tmp_path):
    root = tmp_path / "pipeline"
    shutil.copytree(FIXTURES / "tiny-bert", root / "text_encoder")
    text = f"---\nname: sub\nmodel: {root}\nsubfolder: text_encoder\n---\n"
    card = parse_card_text(text, tmp_path / "sub.md")
    assert source.checkpoint_folder(card) == root / "text_encoder"
    assert card.extraction_settings()["subfolder"] == "text_encoder"
    missing = parse_card_text(text.replace("text_encoder", "vae"), tmp_path / "sub.md")
    with pytest.raises(ModelLoadError, match="subfolder 'vae' not found"):
        source.checkpoint_folder(missing)
    plain = parse_card_text(f"---\nname: top\nmodel: {root}\n---\n", tmp_path / "top.md")
    assert "subfolder" not in plain.extraction_settings()  # unchanged settings without the key


@pytest.mark.parametrize("value", ["../up", "/abs", "a/../b", "~/x", "a//b", "."])
def test_subfolder_must_stay_inside_the_model(value, tmp_path):
    from generator.errors import CardError

    text = f"---\nname: sub\nmodel: {FIXTURES / 'tiny-bert'}\nsubfolder: '{value}'\n---\n"
    with pytest.raises(CardError, match="'subfolder' must be a relative folder"):
        parse_card_text(text, tmp_path / "sub.md")


def test_overview_shows_the_hub_card_metadata_when_the_checkpoint_has_one(
    default_build, tiny_build
):
    import html

    _, out, _ = default_build  # the packaged all-MiniLM-L6-v2 ships the hub's README.md
    page = html.unescape((out / "all-minilm-l6-v2" / "index.html").read_text())
    section = page.split('id="hub-card-heading"')[1].split("</section>")[0]
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th><td>([^<]*)</td>', section))
    assert rows["license"] == "apache-2.0" and rows["language"] == "en"
    assert rows["datasets"].startswith("s2orc, flax-sentence-embeddings/stackexchange_xml, ")
    _, tiny_out, _ = tiny_build  # no README.md: no section
    assert "hub-card-heading" not in (tiny_out / "tiny-bert" / "index.html").read_text()
