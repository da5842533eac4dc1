"""Artifact store: `ARTIFACTS/NAME/manifest.json`, `.npy` arrays and `analyses/*.json` tables.

Everything is readable with numpy and json alone (see docs/artifacts.md). Arrays are written
into a staging folder that is swapped in only when the whole extraction succeeded; the manifest
records, per array, its path, shape, dtype, named axes and SHA-256, so a corrupted or partial
artifact is detected before anything is rendered from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generator.errors import ArtifactError
from generator.hashing import file_sha256
from generator.schema import check_array, declared_array

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


BFLOAT16 = "bfloat16"


def storable(array: np.ndarray) -> np.ndarray:
    """Return `array` as numpy can save it: bfloat16 becomes its raw uint16 bits."""
    return array.view(np.uint16) if array.dtype.name == BFLOAT16 else array


def widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """Turn stored bfloat16 bits (uint16) into float32 with numpy alone."""
    return (np.asarray(bits).astype(np.uint32) << 16).view(np.float32)


def load_entry(root: Path, entry: dict, mmap: bool) -> np.ndarray:
    """Load the array of a manifest `entry` under `root` (memory-mapped when `mmap`, except
    bfloat16, which comes back widened to float32)."""
    mode = "r" if mmap and entry["dtype"] != BFLOAT16 else None
    array = np.load(root / entry["path"], mmap_mode=mode, allow_pickle=False)
    return widen_bfloat16(array) if entry["dtype"] == BFLOAT16 else array


def dump_json(value: object) -> str:
    """Serialise deterministically: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


@dataclass
class ArtifactWriter:
    """Collect arrays and tables for one model inside a staging folder."""

    root: Path
    arrays: dict[str, dict] = field(default_factory=dict)

    def _register(self, name: str, path: Path, axes: tuple[str, ...], shape, dtype) -> None:
        """Record the array in the manifest; refuse one that generator/schema.py does not declare."""
        if len(axes) != len(shape):
            raise ValueError(f"array '{name}' has {len(shape)} dims but {len(axes)} axis names")
        check_array(name, axes, np.dtype(dtype).name)
        self.arrays[name] = {
            "path": str(path.relative_to(self.root)),
            "shape": [int(s) for s in shape],
            "dtype": np.dtype(dtype).name,
            "axes": list(axes),
        }

    def _path(self, name: str) -> Path:
        path = self.root / f"{name}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_array(self, name: str, array: np.ndarray, axes: tuple[str, ...]) -> None:
        """Store `array` as NAME.npy with its named axes."""
        array = np.asarray(array)
        if array.dtype == object:
            raise ValueError(f"array '{name}' has dtype object; store strings as fixed-width str")
        path = self._path(name)
        np.save(path, storable(array), allow_pickle=False)
        self._register(name, path, axes, array.shape, array.dtype)

    def open_array(self, name: str, shape, dtype, axes: tuple[str, ...]) -> np.memmap:
        """Create NAME.npy on disk and return a writable memory map to stream results into.

        For bfloat16 the map holds uint16 bits: assign `storable(values)`.
        """
        path = self._path(name)
        self._register(name, path, axes, shape, dtype)
        on_disk = np.uint16 if np.dtype(dtype).name == BFLOAT16 else np.dtype(dtype)
        return np.lib.format.open_memmap(path, mode="w+", dtype=on_disk, shape=shape)

    def read_array(self, name: str) -> np.ndarray:
        """Read back an array written by `write_array` as `Artifacts.array` will (not mapped)."""
        return load_entry(self.root, self.arrays[name], mmap=False)

    def finish(self, manifest: dict) -> dict:
        """Hash every array file and write manifest.json; return the manifest written."""
        for entry in self.arrays.values():
            entry["sha256"] = file_sha256(self.root / entry["path"])
        full = {"format_version": FORMAT_VERSION, **manifest, "arrays": self.arrays}
        (self.root / MANIFEST).write_text(dump_json(full), encoding="utf-8")
        return full


@dataclass(frozen=True)
class Artifacts:
    """Read access to a finished artifact folder."""

    root: Path
    manifest: dict

    def array(self, name: str, mmap: bool = True) -> np.ndarray:
        """Load one array by name (memory-mapped by default; bfloat16 comes back as float32).

        `name` must be declared in generator/schema.py (a ValueError says so otherwise).
        """
        declared_array(name)
        entry = self.manifest["arrays"].get(name)
        if entry is None:
            raise ArtifactError(
                f"artifact '{name}' is not in {self.root / MANIFEST}; rebuild with --force"
            )
        return load_entry(self.root, entry, mmap)

    def has(self, name: str) -> bool:
        """Return True when the manifest lists array `name`."""
        return name in self.manifest["arrays"]

    def axes(self, name: str) -> list[str]:
        """Return the named axes of array `name`."""
        return self.manifest["arrays"][name]["axes"]


def read_manifest(root: Path) -> dict | None:
    """Return the manifest of an artifact folder, or None when absent or unreadable."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        return None
    return manifest


def damaged_arrays(root: Path, manifest: dict) -> list[str]:
    """Return the names of arrays whose file is missing or whose bytes no longer match."""
    damaged = []
    for name, entry in manifest.get("arrays", {}).items():
        path = root / entry["path"]
        if not path.is_file() or file_sha256(path) != entry.get("sha256"):
            damaged.append(name)
    return damaged


def open_artifacts(root: Path) -> Artifacts:
    """Open a finished artifact folder, verifying every array against its recorded hash."""
    manifest = read_manifest(root)
    if manifest is None:
        raise ArtifactError(f"no readable manifest in {root}; run `modelatlas extract` first")
    damaged = damaged_arrays(root, manifest)
    if damaged:
        raise ArtifactError(
            f"artifacts in {root} are damaged ({', '.join(damaged[:3])}); rebuild with --force"
        )
    return Artifacts(root, manifest)
