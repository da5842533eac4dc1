"""Parse and validate model cards: `model_cards/NAME.md` = YAML front matter + Markdown prose.

Every problem in a card is collected first and reported in one `CardError` whose message is a
single line: `<card path>: <n> problem(s): <p1>; <p2>; ...`.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from generator.analysis_names import ANALYSES, selected_analyses, unknown_analyses
from generator.errors import CardError
from generator.extract.sharding import AXES, MAX_AXIS, MeshShape
from generator.paths import PACKAGE_PREFIX, is_package_path, resolve_package_path
from generator.textcheck import unusable_character

TASKS = (
    "embedding",
    "embedding-centroid",
    "masked-lm",
    "causal-lm",
    "permutation-lm",
    "classification",
    "seq2seq",
)
POOLINGS = ("mean", "cls", "last")
DTYPES = ("float32", "bfloat16")
STORE_DTYPES = ("float32", "float16", "bfloat16")

MAX_LENGTH_RANGE = (8, 8192)
SHOWCASE_RANGE = (1, 64)
HEAD_SAMPLE_RANGE = (8, 4096)  # corpus texts of head importance (default: a FLOP budget)
TARGETS = ("greedy", "field")  # decoder text of encoder-decoder models
MAX_TARGET_LENGTH_RANGE = (1, 512)
DEFAULT_MAX_TARGET_LENGTH = 32
GENERATION_STEPS_RANGE = (0, 256)  # greedy time steps of the attention page; 0: none
DEFAULT_GENERATION_STEPS = 16

SLUG = re.compile(r"[a-z0-9][a-z0-9._-]*")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+", re.ASCII)
CHECKPOINT_KEYS = ("name", "model")


@dataclass(frozen=True)
class Checkpoint:
    """One extra checkpoint to compare with the card's model (e.g. a training epoch)."""

    name: str
    model: str


@dataclass(frozen=True)
class ModelCard:
    """The validated settings and prose of one model card."""

    path: Path
    name: str
    title: str
    model: str
    revision: str | None = None
    subfolder: str | None = None
    corpus: str | None = None
    text_field: str = "text"
    label_field: str | None = None
    split_field: str | None = None
    max_length: int = 128
    showcase: int = 8
    showcase_texts: tuple[int | str, ...] = ()
    head_sample: int | None = None
    pooling: str = "mean"
    task: str | None = None
    checkpoints: tuple[Checkpoint, ...] = ()
    analyses: tuple[str, ...] | None = None
    dtype: str = "float32"
    store_dtype: str = "float32"
    target_field: str | None = None
    target: str | None = None
    max_target_length: int = DEFAULT_MAX_TARGET_LENGTH
    generation_steps: int = DEFAULT_GENERATION_STEPS
    mesh: MeshShape | None = None
    prose: str = ""

    @property
    def folder(self) -> Path:
        """Return the folder holding the card; relative paths in the card start here."""
        return self.path.parent

    def model_path(self) -> Path | None:
        """Return the local model folder (local or `package:` form), or None for a hub id."""
        return self._located(self.model, "model", model=True)

    def checkpoint_model_path(self, checkpoint: Checkpoint) -> Path | None:
        """Return the local folder of `checkpoint`'s model, or None for a hub id."""
        return self._located(checkpoint.model, f"checkpoint '{checkpoint.name}' model", model=True)

    def corpus_path(self) -> Path | None:
        """Return the resolved corpus file, or None when the card names no corpus."""
        if self.corpus is None:
            return None
        return self._located(self.corpus, "corpus", model=False)

    def target_mode(self) -> str:
        """Return where an encoder-decoder's decoder text comes from: "field" or "greedy"."""
        return "field" if self.target_field is not None else (self.target or "greedy")

    def extraction_settings(self) -> dict[str, Any]:
        """Return every setting that changes extracted artifacts, as a JSON-able dict.

        Paths are given as written in the card so the hash survives moving the project; hash
        the files' contents separately.

        Returns:
            A dict of plain JSON types, suitable for a cache key.
        """
        return {
            "model": self.model,
            "revision": self.revision,
            **({"subfolder": self.subfolder} if self.subfolder is not None else {}),
            "corpus": self.corpus,
            "text_field": self.text_field,
            "label_field": self.label_field,
            "split_field": self.split_field,
            "max_length": self.max_length,
            "showcase": self.showcase,
            **({"showcase_texts": list(self.showcase_texts)} if self.showcase_texts else {}),
            **({"head_sample": self.head_sample} if self.head_sample is not None else {}),
            "checkpoints": [{"name": c.name, "model": c.model} for c in self.checkpoints],
            "dtype": self.dtype,
            "store_dtype": self.store_dtype,
            "task": self.task,
            "target": self.target_mode(),
            "target_field": self.target_field,
            "max_target_length": self.max_target_length,
            "generation_steps": self.generation_steps,
            "analyses": list(self.selected_analyses),
            "pooling": self.pooling,
        }

    @property
    def selected_analyses(self) -> tuple[str, ...]:
        """The analyses this card runs (all when `analyses` is omitted), in run order."""
        return selected_analyses(self.analyses)

    def _located(self, value: str, key: str, *, model: bool) -> Path | None:
        """Resolve a path setting, raising CardError if it no longer resolves."""
        if model and _is_hub_id(value, self.folder):
            return None
        try:
            return _resolve(value, self.folder, key)
        except _PathProblem as problem:
            raise _card_error(self.path, [str(problem)]) from None


KEYS = tuple(f.name for f in fields(ModelCard) if f.name not in ("path", "prose"))


def find_cards(folder: str | Path = "model_cards") -> list[Path]:
    """List the model cards in `folder`.

    Args:
        folder: the folder to search (not recursive).

    Returns:
        The `*.md` files in `folder`, sorted, without `README.md`.

    Raises:
        CardError: when `folder` is not an existing folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise _card_error(
            folder,
            [f"card folder not found: {folder}; run from the project root or pass card paths"],
        )
    return sorted(p for p in folder.glob("*.md") if p.is_file() and p.name.lower() != "readme.md")


def load_card(path: str | Path) -> ModelCard:
    """Read and validate the model card at `path`.

    Args:
        path: a `model_cards/NAME.md` file.

    Returns:
        The validated card.

    Raises:
        CardError: listing every problem found, on one line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        problem = f"card not found: {path}; pass the path of a model_cards/NAME.md file"
        raise _card_error(path, [problem]) from None
    except IsADirectoryError:
        problem = f"{path} is a folder; pass the path of a model_cards/NAME.md file"
        raise _card_error(path, [problem]) from None
    except UnicodeDecodeError as exc:
        problem = f"card is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
        raise _card_error(path, [problem]) from None
    except (OSError, ValueError) as exc:
        problem = f"cannot read card: {getattr(exc, 'strerror', None) or exc}; check the file"
        raise _card_error(path, [problem]) from None
    return parse_card_text(text, path)


def parse_card_text(text: str, path: Path) -> ModelCard:
    """Parse and validate the text of a model card.

    Args:
        text: the whole card file: `---`, YAML settings, `---`, Markdown prose.
        path: where the card lives; relative paths in the card are resolved from its folder.

    Returns:
        The validated card.

    Raises:
        CardError: listing every problem found, on one line.
    """
    path = Path(path)
    absolute = Path(os.path.abspath(path))
    problems: list[str] = []
    data, prose = _split_front_matter(text, problems)
    if data is None:
        raise _card_error(path, problems)
    values = _validate(data, absolute.parent, problems)
    if problems:
        raise _card_error(path, problems)
    return ModelCard(path=absolute, prose=prose, **values)


# --- front matter -------------------------------------------------------------------------------


def _split_front_matter(text: str, problems: list[str]) -> tuple[dict | None, str]:
    """Split `text` into its front-matter mapping and prose; None plus a problem on failure."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        problems.append(
            "no front matter: start the file with a '---' line, then the YAML settings"
            " (name, model, ...), then a '---' line"
        )
        return None, ""
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        problems.append("front matter has no closing '---' line: add one after the settings")
        return None, ""
    prose = "\n".join(lines[end + 1 :]).strip("\n")
    prose = prose if prose.strip() else ""
    try:
        data = _load_front_matter("\n".join(lines[1:end]))
    except _DuplicateKey as exc:
        problems.append(str(exc))
        return None, prose
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problems.append(
            f"invalid YAML in the front matter{where}: {exc.problem or exc.context}"
            " (fix the syntax there)"
        )
        return None, prose
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        problems.append(f"invalid YAML in the front matter: {_short(str(exc), 80)}")
        return None, prose
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(
            f"front matter must be a mapping of 'key: value' settings, got {_got(data)}"
        )
        return None, prose
    return data, prose


def _load_front_matter(text: str) -> Any:
    """Parse YAML with the safe loader, refusing repeated keys (what yaml.safe_load does, plus)."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class _DuplicateKey(yaml.YAMLError):
    """A mapping of the front matter names one key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe YAML loader, refusing a key that a mapping repeats (YAML keeps the last one)."""

    def construct_mapping(self, node, deep=False):
        """Build the mapping; raise naming the key and both of its lines when one repeats."""
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            line = key_node.start_mark.line + 2  # + the opening '---', 1-based
            if first is not None:
                raise _DuplicateKey(
                    f"key {_short(key, 40)} is set twice in the front matter (lines {first}"
                    f" and {line}): keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# --- validation ---------------------------------------------------------------------------------


def _validate(data: dict, folder: Path, problems: list[str]) -> dict[str, Any]:
    """Check every key of `data`; return ModelCard keyword arguments, appending problems."""
    for key in data:
        if key not in KEYS:
            problems.append(_unknown_key(key))
    values: dict[str, Any] = {}
    name = _string(data, "name", problems, required=True)
    if name is not None and not SLUG.fullmatch(name):
        problems.append(
            f"'name' must be a slug (lowercase letters, digits, '.', '_', '-', starting with a"
            f" letter or digit), got {_short(name)}"
        )
    values["name"] = name
    title = _string(data, "title", problems)
    values["title"] = title if title is not None else (name or "")
    model = _string(data, "model", problems, required=True)
    if model is not None:
        _check_model(model, folder, "model", problems)
    values["model"] = model
    values["revision"] = _string(data, "revision", problems, nullable=True)
    values["subfolder"] = _subfolder(data, problems)
    corpus = _string(data, "corpus", problems, nullable=True)
    if corpus is not None:
        _check_corpus(corpus, folder, problems)
    values["corpus"] = corpus
    values["text_field"] = _string(data, "text_field", problems, default="text")
    for key in ("label_field", "split_field"):
        values[key] = _string(data, key, problems, nullable=True)
        if values[key] is not None and corpus is not None and corpus.lower().endswith(".txt"):
            problems.append(
                f"'{key}' needs a .jsonl or .csv corpus (a .txt corpus holds only text):"
                f" remove '{key}' or convert the corpus"
            )
    values["max_length"] = _integer(data, "max_length", MAX_LENGTH_RANGE, 128, problems)
    values["showcase"] = _integer(data, "showcase", SHOWCASE_RANGE, 8, problems)
    values["generation_steps"] = _integer(
        data, "generation_steps", GENERATION_STEPS_RANGE, DEFAULT_GENERATION_STEPS, problems
    )
    values["showcase_texts"] = _showcase_texts(data, corpus, values["showcase"], problems)
    values["head_sample"] = _integer(data, "head_sample", HEAD_SAMPLE_RANGE, None, problems)
    values["pooling"] = _choice(data, "pooling", POOLINGS, "mean", problems)
    values["task"] = _choice(data, "task", TASKS, None, problems, nullable=True)
    values["checkpoints"] = _checkpoints(data, folder, problems)
    values["analyses"] = _analyses(data, problems)
    values["dtype"] = _choice(data, "dtype", DTYPES, "float32", problems)
    values["store_dtype"] = _choice(data, "store_dtype", STORE_DTYPES, "float32", problems)
    _seq2seq_keys(data, corpus, values, problems)
    values["mesh"] = _mesh(data, problems)
    return values


def _subfolder(data: dict, problems: list[str]) -> str | None:
    """Return the validated `subfolder` (a relative folder inside the model's folder or repo)."""
    value = _string(data, "subfolder", problems, nullable=True)
    if value is None:
        return None
    parts = value.replace("\\", "/").strip("/").split("/")
    if value.startswith(("/", "\\", "~")) or any(part in ("", ".", "..") for part in parts):
        problems.append(
            f"'subfolder' must be a relative folder inside the model's folder or hub repository"
            f" (like text_encoder), got {_short(value)}"
        )
        return None
    return "/".join(parts)


def _seq2seq_keys(data: dict, corpus: str | None, values: dict, problems: list[str]) -> None:
    """Validate target_field, target and max_target_length (encoder-decoder models only)."""
    field = _string(data, "target_field", problems, nullable=True)
    if field is not None and corpus is not None and corpus.lower().endswith(".txt"):
        problems.append(
            "'target_field' needs a .jsonl or .csv corpus (a .txt corpus holds only text):"
            " remove 'target_field' or convert the corpus"
        )
    target = _choice(data, "target", TARGETS, None, problems, nullable=True)
    if target == "field" and field is None:
        problems.append(
            "'target: field' needs 'target_field': name the corpus field holding each target"
        )
    if target == "greedy" and field is not None:
        problems.append(
            "'target: greedy' contradicts 'target_field': remove one (greedy decodes the"
            " model's own output, target_field reads targets from the corpus)"
        )
    values["target_field"] = field
    values["target"] = target
    values["max_target_length"] = _integer(
        data, "max_target_length", MAX_TARGET_LENGTH_RANGE, DEFAULT_MAX_TARGET_LENGTH, problems
    )


def _showcase_texts(
    data: dict, corpus: str | None, count: int, problems: list[str]
) -> tuple[int | str, ...]:
    """Return the validated `showcase_texts` (corpus row ids and texts), appending problems."""
    raw = data.get("showcase_texts")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        problems.append(
            f"'showcase_texts' must be a list of texts or corpus row ids, got {_got(raw)}"
        )
        return ()
    if corpus is None:
        problems.append("'showcase_texts' needs a 'corpus': add one or remove 'showcase_texts'")
    if len(raw) > count:
        problems.append(
            f"'showcase_texts' lists {len(raw)} texts but 'showcase' is {count}:"
            f" raise 'showcase' to at least {len(raw)} or list fewer texts"
        )
    found: list[int | str] = []
    for index, item in enumerate(raw):
        shown = f"'showcase_texts[{index}]'"
        if isinstance(item, int) and not isinstance(item, bool):
            if item < 0:
                problems.append(f"{shown} must be a corpus row id (0 or more), got {item}")
                continue
        elif not isinstance(item, str):
            problems.append(f"{shown} must be a text or a corpus row id, got {_got(item)}")
            continue
        elif not item.strip():
            problems.append(f"{shown} is an empty text: give the text or remove the entry")
            continue
        elif unusable_character(item):
            problems.append(f"{shown} has {unusable_character(item)}: remove it")
            continue
        if item in found:
            problems.append(f"{shown} repeats {_short(item)}: list each text once")
            continue
        found.append(item)
    return tuple(found)


def _mesh(data: dict, problems: list[str]) -> MeshShape | None:
    """Return the validated `mesh: {data: N, model: M}` setting, or None (appending problems)."""
    raw = data.get("mesh")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        problems.append(f"'mesh' must be a mapping like {{data: 4, model: 2}}, got {_got(raw)}")
        return None
    sizes: dict[str, int] = {}
    for key, value in raw.items():
        if key not in AXES:
            shown = _short(key) if isinstance(key, str) else repr(key)
            problems.append(f"'mesh' has unknown axis {shown}: use data and/or model")
        elif isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_AXIS:
            problems.append(f"'mesh.{key}' must be a positive integer, got {_got(value)}")
        else:
            sizes[key] = value
    if len(sizes) != len(raw):
        return None
    return MeshShape(**sizes)


def _unknown_key(key: Any) -> str:
    """Describe an unknown key, suggesting the nearest known one."""
    text = f"unknown key {_short(key) if isinstance(key, str) else repr(key)}"
    close = difflib.get_close_matches(str(key), KEYS, n=1) if isinstance(key, str) else []
    if close:
        return f"{text} (did you mean '{close[0]}'?)"
    return f"{text} (known keys: {', '.join(KEYS)})"


def _string(
    data: dict,
    key: str,
    problems: list[str],
    *,
    required: bool = False,
    nullable: bool = False,
    default: str | None = None,
    label: str = "",
) -> str | None:
    """Return the non-empty string at `key`, or `default` (appending a problem if invalid)."""
    shown = f"{label}{key}"
    if key not in data:
        if required:
            problems.append(f"missing required key '{shown}': add '{key}: ...'")
        return default
    value = data[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        hint = " (quote it)" if isinstance(value, (bool, int, float)) else ""
        problems.append(f"'{shown}' must be a string{hint}, got {_got(value)}")
        return default
    if not value.strip():
        problems.append(f"'{shown}' is an empty string: give a value or remove the key")
        return default
    bad = unusable_character(value)
    if bad:
        problems.append(f"'{shown}' has {bad}: remove it")
        return default
    return value


def _integer(
    data: dict, key: str, bounds: tuple[int, int], default: int, problems: list[str]
) -> int:
    """Return the integer at `key` within `bounds`, or `default` (appending a problem)."""
    if key not in data:
        return default
    value = data[key]
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"'{key}' must be an integer from {low} to {high}, got {_got(value)}")
        return default
    if not low <= value <= high:
        problems.append(f"'{key}' must be from {low} to {high}, got {_short(value)}")
        return default
    return value


def _choice(
    data: dict,
    key: str,
    allowed: tuple[str, ...],
    default: str | None,
    problems: list[str],
    *,
    nullable: bool = False,
) -> str | None:
    """Return the value at `key` if it is one of `allowed`, else `default` (with a problem)."""
    if key not in data:
        return default
    value = data[key]
    if value is None and nullable:
        return None
    if value in allowed and isinstance(value, str):
        return value
    close = difflib.get_close_matches(value, allowed, n=1) if isinstance(value, str) else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    problems.append(f"'{key}' must be one of {', '.join(allowed)}, got {_got(value)}{hint}")
    return default


def _checkpoints(data: dict, folder: Path, problems: list[str]) -> tuple[Checkpoint, ...]:
    """Return the validated `checkpoints` list (appending problems)."""
    raw = data.get("checkpoints")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(
            f"'checkpoints' must be a list of mappings with keys name and model, got {_got(raw)}"
        )
        return ()
    found: list[Checkpoint] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        label = f"checkpoints[{index}]"
        if not isinstance(item, dict):
            problems.append(
                f"'{label}' must be a mapping with keys name and model, got {_got(item)}"
            )
            continue
        extra = [k for k in item if k not in CHECKPOINT_KEYS]
        if extra:
            names = ", ".join(_short(k) if isinstance(k, str) else repr(k) for k in extra)
            problems.append(f"'{label}' has unknown key(s) {names}: only name and model allowed")
        name = _string(item, "name", problems, required=True, label=f"{label}.")
        model = _string(item, "model", problems, required=True, label=f"{label}.")
        if name is not None:
            if not SLUG.fullmatch(name):
                problems.append(
                    f"'{label}.name' must be a slug (lowercase letters, digits, '.', '_', '-'),"
                    f" got {_short(name)}"
                )
            elif name in seen:
                problems.append(f"'{label}.name' repeats checkpoint name '{name}': make it unique")
            seen.add(name)
        if model is not None:
            _check_model(model, folder, f"{label}.model", problems)
        if name is not None and model is not None:
            found.append(Checkpoint(name=name, model=model))
    return tuple(found)


def _analyses(data: dict, problems: list[str]) -> tuple[str, ...] | None:
    """Return the validated `analyses` list, or None for all that apply (appending problems)."""
    raw = data.get("analyses")
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        what = "an empty list" if isinstance(raw, list) else _got(raw)
        problems.append(
            f"'analyses' must be a non-empty list of analysis names (or omitted for all that"
            f" apply), got {what}"
        )
        return None
    bad = [i for i, item in enumerate(raw) if not isinstance(item, str) or not item.strip()]
    for index in bad:
        problems.append(f"'analyses[{index}]' must be an analysis name, got {_got(raw[index])}")
    names = [item for item in raw if isinstance(item, str) and item.strip()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"'analyses' lists {', '.join(repeated)} more than once: list each once")
    unknown = unknown_analyses(tuple(names))
    if unknown:
        problems.append(
            f"'analyses' names {', '.join(repr(n) for n in unknown)}, which "
            f"{'is not an analysis' if len(unknown) == 1 else 'are not analyses'}; "
            f"valid: {', '.join(ANALYSES)}"
        )
    return None if bad or unknown else tuple(dict.fromkeys(names))


# --- paths --------------------------------------------------------------------------------------


class _PathProblem(Exception):
    """A path setting that does not resolve; the message is the problem text."""


def _is_hub_id(value: str, folder: Path) -> bool:
    """Return True when `value` reads as a hub id `org/name` and is not a local path."""
    if not HUB_ID.fullmatch(value):
        return False
    return not _exists(folder / value)


def _exists(path: Path) -> bool:
    """Return whether `path` exists, treating unrepresentable paths as missing."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _resolve(value: str, folder: Path, key: str) -> Path:
    """Resolve a local or `package:` path setting; raise _PathProblem when it cannot be."""
    if is_package_path(value):
        module, _, subdir = value[len(PACKAGE_PREFIX) :].strip("/").partition("/")
        if module and not module.isidentifier():
            raise _PathProblem(
                f"'{key}' package {_short(module)} is not a top-level module name:"
                " write package:MODULE/SUBDIR"
            )
        if ".." in Path(subdir).parts:
            raise _PathProblem(
                f"{key} path '{value}' leaves its package: name a path inside the package"
            )
        try:
            return resolve_package_path(value)
        except (FileNotFoundError, ImportError, ValueError) as exc:
            raise _PathProblem(f"'{key}' {exc}") from None
    path = Path(value)
    with contextlib.suppress(RuntimeError):
        path = path.expanduser()
    if path.is_absolute():
        return path
    target = Path(os.path.normpath(folder / path))
    try:
        cwd = Path(os.getcwd())
    except OSError:
        cwd = folder
    if not (target.is_relative_to(folder) or target.is_relative_to(cwd)):
        raise _PathProblem(f"{key} path '{value}' leaves the card's folder; use an absolute path")
    return target


def _check_model(value: str, folder: Path, key: str, problems: list[str]) -> None:
    """Append a problem unless `value` is a hub id or an existing local model folder."""
    if _is_hub_id(value, folder):
        return
    try:
        target = _resolve(value, folder, key)
    except _PathProblem as problem:
        problems.append(str(problem))
        return
    if not _exists(target):
        problems.append(
            f"'{key}' folder {_short(value)} not found (looked at {target}): give an existing"
            " model folder, package:MODULE/SUBDIR or a hub id like org/name"
        )
    elif not target.is_dir():
        problems.append(
            f"'{key}' {_short(value)} is a file, not a folder: give the folder that holds the"
            " model's config and weights"
        )


def _check_corpus(value: str, folder: Path, problems: list[str]) -> None:
    """Append a problem unless `value` resolves to an existing corpus file."""
    try:
        target = _resolve(value, folder, "corpus")
    except _PathProblem as problem:
        problems.append(str(problem))
        return
    if not _exists(target):
        problems.append(
            f"'corpus' file {_short(value)} not found (looked at {target}): give an existing"
            " .txt, .jsonl or .csv file"
        )
    elif target.is_dir():
        problems.append(
            f"'corpus' {_short(value)} is a folder: give a .txt, .jsonl or .csv file inside it"
        )


# --- messages -----------------------------------------------------------------------------------


def _card_error(path: str | Path, problems: list[str]) -> CardError:
    """Build the one-line CardError that lists `problems`."""
    lines = [" ".join(str(p).split("\n")) for p in problems]
    return CardError(f"{path}: {len(lines)} problem(s): {'; '.join(lines)}")


def _short(value: Any, limit: int = 60) -> str:
    """Return a one-line repr of `value`, cut to about `limit` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _got(value: Any) -> str:
    """Describe what a setting holds, for a 'got ...' clause."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({_short(value)})"
    if isinstance(value, str):
        return f"the string {_short(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({_short(str(value))})"
