"""Read a PyTorch `pytorch_model.bin` state dict into numpy WITHOUT running its code and without torch.

A `torch.save` file is a zip archive: `NAME/data.pkl` (a pickle describing the tensors) and one
`NAME/data/KEY` member of raw little-endian bytes per storage. Unpickling normally lets the file
call any Python function; here `find_class` admits only the names a plain state dict uses
(OrderedDict, the tensor-rebuild helpers and the typed storage classes) and maps each to a numpy
equivalent, so a malicious file fails to load instead of running code.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np

from generator.errors import ModelLoadError

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stand-in for a `torch.*Storage` class: only its element dtype matters."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


def _rebuild_tensor(storage, offset, size, stride, *_ignored) -> np.ndarray:
    """Rebuild a tensor view of a storage as a contiguous numpy array."""
    itemsize = storage.dtype.itemsize
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if size and (min(size) > 0):
        last = int(offset) + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if int(offset) < 0 or last >= storage.size or min(stride) < 0:
            raise pickle.UnpicklingError("tensor view reaches outside its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[int(offset) :] if storage.size else storage,
        shape=size,
        strides=tuple(s * itemsize for s in stride),
        writeable=False,
    )
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, requires_grad, backward_hooks, *_ignored) -> np.ndarray:
    """A saved nn.Parameter is its data."""
    return data


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle._Unpickler):
    """Unpickler that resolves only the globals in `ALLOWED` and reads storages from the zip.

    It is the pure-Python unpickler (whose opcodes can be overridden) so that BUILD, which sets
    an object's attributes, is allowed only on the state dict itself (an OrderedDict carrying
    `_metadata`), never on the allowed functions or storage types.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, archive: zipfile.ZipFile, root: str):
        super().__init__(file)
        self.archive, self.root = archive, root
        self.storages: dict[str, np.ndarray] = {}

    def load_build(self):
        if type(self.stack[-2]) is not collections.OrderedDict:
            raise pickle.UnpicklingError(f"refusing to set the state of {type(self.stack[-2])}")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return ALLOWED[(module, name)]

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) == 5 and saved_id[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id")
        _, storage_type, key, _location, numel = saved_id
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("unexpected storage type")
        key = str(key)
        if key not in self.storages:
            data = self.archive.read(f"{self.root}/data/{key}")
            array = np.frombuffer(data, dtype=storage_type.dtype.newbyteorder("<"))
            if array.size < int(numel):
                raise pickle.UnpicklingError(f"storage {key} is shorter than declared")
            self.storages[key] = array
        return self.storages[key]


def read_torch_pickle(path: Path) -> dict[str, np.ndarray]:
    """Read a zip-format `torch.save` state dict into numpy arrays, executing no code.

    Args:
        path: the `pytorch_model.bin` file.

    Returns:
        Tensor name -> array in the file's dtypes (bfloat16 as ml_dtypes.bfloat16).

    Raises:
        ModelLoadError: the file is not a zip-format state dict of plain tensors, or it asks
            for anything else (arbitrary code, custom classes).
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(
            f"{path} is not a zip-format PyTorch checkpoint (legacy or damaged); "
            "convert it to model.safetensors"
        ) from exc
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ModelLoadError(
                f"{path} holds no single data.pkl; convert it to model.safetensors"
            )
        root = pickles[0][: -len("/data.pkl")]
        byteorder = f"{root}/byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise ModelLoadError(f"{path} is big-endian; convert it to model.safetensors")
        try:
            with archive.open(pickles[0]) as handle:
                state = _RestrictedUnpickler(handle, archive, root).load()
        except (pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(
                f"{path} cannot be read safely ({reason}); convert it to model.safetensors"
            ) from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()
    ):
        raise ModelLoadError(
            f"{path} is not a state dict of tensors; convert it to model.safetensors"
        )
    return dict(state)
