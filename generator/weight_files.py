"""Find and read a checkpoint folder's weight files: one safetensors file, shards, or a pickle.

`model.safetensors`, or `model.safetensors.index.json` with the shards its `weight_map` names (as
`save_pretrained(max_shard_size=...)` and the hub publish them), or, only when the caller allows
pickles, `pytorch_model.bin`. Tensors are read one at a time from a memory map of their file
(`safetensors.safe_open`, opened per tensor so no page of a file stays mapped), so loading holds
the model's parameters plus one checkpoint tensor, never a second full copy of the weights.
bfloat16 tensors come back as `ml_dtypes.bfloat16` arrays.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path

import numpy as np

from generator.errors import ModelLoadError

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
PICKLE_NAME = "pytorch_model.bin"

Reader = Callable[[], np.ndarray]


class LazyTensors(MutableMapping):
    """Checkpoint tensors by name, each read from its file when asked for (never kept).

    Reading the same name twice reads the file twice; assigned arrays are kept as given.
    `shape(name)` answers from the files' headers when they were given (safetensors), without
    reading the tensor.
    """

    def __init__(self, readers: dict[str, Reader], shapes: dict[str, tuple] | None = None):
        self._readers = dict(readers)
        self._shapes = dict(shapes or {})

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LazyTensors:
        """Wrap arrays already in memory (a pickle's tensors)."""
        return cls({name: _constant(array) for name, array in arrays.items()})

    def renamed(self, names: dict[str, str]) -> LazyTensors:
        """Return the tensors under new names: `names` maps each new name to an existing one."""
        shapes = {new: self._shapes[old] for new, old in names.items() if old in self._shapes}
        return LazyTensors({new: self._readers[old] for new, old in names.items()}, shapes)

    def shape(self, name: str) -> tuple[int, ...]:
        """Return the shape of tensor `name`: from its header when known, else by reading it."""
        if name in self._shapes:
            return self._shapes[name]
        return tuple(int(s) for s in self[name].shape)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._readers[name]()

    def __contains__(self, name: object) -> bool:
        return name in self._readers  # Mapping's default would read the tensor

    def __setitem__(self, name: str, array: np.ndarray) -> None:
        self._readers[name] = _constant(array)
        self._shapes.pop(name, None)

    def __delitem__(self, name: str) -> None:
        del self._readers[name]
        self._shapes.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)


def _constant(array: np.ndarray) -> Reader:
    """Return a reader of an array already in memory."""
    return lambda: array


def find_weights(model_dir: Path, allow_pickle: bool = False) -> Path:
    """Return the weights file of `model_dir` (the index of a sharded one), or explain what to do.

    Raises:
        ModelLoadError: no safetensors weights (and no allowed pickle) in the folder.
    """
    for name in (WEIGHTS_NAME, INDEX_NAME):
        if (model_dir / name).is_file():
            return model_dir / name
    pickled = model_dir / PICKLE_NAME
    if pickled.is_file():
        if allow_pickle:
            return pickled
        raise ModelLoadError(
            f"{model_dir} holds only {PICKLE_NAME}; pickle checkpoints are refused: "
            f"convert it to {WEIGHTS_NAME} (model.save_pretrained(dir)) or pass --allow-pickle "
            "to read it without running its code"
        )
    raise ModelLoadError(
        f"{model_dir / WEIGHTS_NAME} does not exist; save the model weights as safetensors "
        "(model.save_pretrained(dir)) into the model folder"
    )


def weight_files(model_dir: Path, allow_pickle: bool = False) -> list[Path]:
    """Return every file the weights are read from (index first, then its shards); [] if none.

    The inputs of the weights hash: a missing or unreadable file is reported by the loader.
    """
    try:
        path = find_weights(model_dir, allow_pickle)
    except ModelLoadError:
        return []
    if path.name != INDEX_NAME:
        return [path]
    try:
        shards = sorted(set(read_index(path).values()))
    except ModelLoadError:
        return [path]
    return [path, *(model_dir / shard for shard in shards if (model_dir / shard).is_file())]


def read_index(path: Path) -> dict[str, str]:
    """Return the `weight_map` (tensor name -> shard file name) of a sharded checkpoint's index.

    Raises:
        ModelLoadError: the index is not JSON, has no weight_map, or names a file outside its folder.
    """
    try:
        index = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); download it again") from exc
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelLoadError(
            f"{path} has no weight_map of tensor names to shard files; download it again"
        )
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or Path(shard).name != shard or not shard:
            raise ModelLoadError(
                f"{path} maps {name} to {shard!r}, not a file next to the index; download it again"
            )
    return weight_map


def open_weights(path: Path) -> LazyTensors:
    """Return the tensors of a weights file (a sharded index reads its shards), read lazily.

    Args:
        path: `model.safetensors`, `model.safetensors.index.json` or `pytorch_model.bin`.

    Raises:
        ModelLoadError: a file is missing, unreadable, or a shard lacks a tensor its index names.
    """
    path = Path(path)
    if path.name.endswith(".bin"):
        from generator.models.torch_pickle import read_torch_pickle

        return LazyTensors.from_arrays(read_torch_pickle(path))
    if path.name.endswith(".index.json"):
        return _open_shards(path)
    names = safetensors_names(path)
    return LazyTensors({name: _reader(path, name) for name in names}, header_shapes(path, names))


def _open_shards(index_path: Path) -> LazyTensors:
    """Map every tensor of a sharded checkpoint's index to a reader of its shard."""
    weight_map = read_index(index_path)
    by_shard: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        by_shard.setdefault(shard, []).append(name)
    folder = index_path.parent
    readers: dict[str, Reader] = {}
    shapes: dict[str, tuple] = {}
    for shard, names in by_shard.items():
        shard_path = folder / shard
        if not shard_path.is_file():
            raise ModelLoadError(
                f"{index_path} names shard {shard}, which is missing from {folder}; download "
                "every shard the index names"
            )
        missing = sorted(set(names) - set(safetensors_names(shard_path)))
        if missing:
            raise ModelLoadError(
                f"{shard_path} lacks {len(missing)} tensor(s) its index names ({missing[0]}, ...);"
                " download the shard again"
            )
        readers.update({name: _reader(shard_path, name) for name in names})
        shapes.update(header_shapes(shard_path, names))
    return LazyTensors(readers, shapes)


def safetensors_names(path: Path) -> list[str]:
    """Return the tensor names of a safetensors file (reads only its header)."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise ModelLoadError(f"{path} does not exist; save the model with safetensors")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return list(handle.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise unreadable(path, exc) from exc


def _reader(path: Path, name: str) -> Reader:
    """Return a function that reads tensor `name` of `path` from a memory map."""
    return lambda: read_tensor(path, name)


def read_tensor(path: Path, name: str) -> np.ndarray:
    """Read one tensor of a safetensors file through a memory map closed right after.

    Raises:
        ModelLoadError: the file is truncated or not a safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return handle.get_tensor(name)
    except TypeError as exc:
        if "data type" not in str(exc):  # an older safetensors lacks bfloat16: map it ourselves
            raise unreadable(path, exc) from exc
        return _read_tensor_directly(path, name)
    except (SafetensorError, OSError, ValueError) as exc:
        raise unreadable(path, exc) from exc


def unreadable(path: Path, exc: Exception) -> ModelLoadError:
    """Return the error for a weights file that cannot be read."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ModelLoadError(
        f"{path} is not a readable safetensors file ({reason}); "
        "it may be truncated or corrupt: download or export it again"
    )


_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "bfloat16",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def safetensors_header(path: Path) -> tuple[int, dict]:
    """Return (header length, header JSON: name -> dtype, shape, data_offsets) of a safetensors file."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        return length, json.loads(handle.read(length))


def header_shapes(path: Path, names: list[str]) -> dict[str, tuple]:
    """Return the shapes of `names` as a safetensors file's header states them ({} if unreadable).

    safe_open has checked the header against the file already (`safetensors_names`).
    """
    try:
        header = safetensors_header(path)[1]
        return {name: tuple(int(s) for s in header[name]["shape"]) for name in names}
    except (struct.error, ValueError, KeyError, TypeError, OSError):
        return {}


def tensor_sizes(model_dir: Path) -> list[int] | None:
    """Return the entry count of every checkpoint tensor, from the safetensors headers alone.

    None when the weights are not safetensors files or a header cannot be read (the loader
    reports that itself).
    """
    files = [p for p in weight_files(Path(model_dir)) if p.suffix == ".safetensors"]
    if not files:
        return None
    sizes = []
    try:
        for path in files:
            header = safetensors_header(path)[1]
            shapes = (info["shape"] for key, info in header.items() if key != "__metadata__")
            sizes.extend(int(np.prod(shape, dtype=np.int64)) for shape in shapes)
    except (struct.error, ValueError, KeyError, TypeError, OSError):
        return None
    return sizes


def _read_tensor_directly(path: Path, name: str) -> np.ndarray:
    """Read one tensor with numpy's memmap + ml_dtypes (for dtypes numpy lacks, e.g. BF16)."""
    import ml_dtypes

    try:
        length, header = safetensors_header(path)
        info = header[name]
        code = _SAFETENSORS_DTYPES[info["dtype"]]
        dtype = np.dtype(ml_dtypes.bfloat16) if code == "bfloat16" else np.dtype(code)
        begin, end = (8 + length + int(o) for o in info["data_offsets"])
        shape = tuple(int(s) for s in info["shape"])
        if end > Path(path).stat().st_size or end - begin != dtype.itemsize * int(np.prod(shape)):
            raise ValueError(f"tensor {name} does not fit the file")
        mapped = np.memmap(path, dtype=dtype, mode="r", offset=begin, shape=shape)
        return np.array(mapped)  # a copy: the map closes with `mapped`
    except (struct.error, ValueError, KeyError, TypeError, OSError) as exc:
        raise unreadable(path, exc) from exc
