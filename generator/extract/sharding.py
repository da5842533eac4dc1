"""Device mesh for extraction: batches over `data`, attention heads and MLP width over `model`.

A `jax.sharding.Mesh` with two named axes:

  * `data`  - rows of every batch are split across it (batch sizes are rounded up to a multiple
    of its size);
  * `model` - parameters are split across it by attention head and MLP hidden unit
    (Megatron-style: q/k/v and MLP-in kernels by output column, attention-out and MLP-out
    kernels by input row); embeddings and norms are replicated.

Default: every device on `data` (`model` = 1). Results are replicated back to every process;
only process 0 writes artifacts (extract/processes.py, docs/scaling.md for multi-host runs).

Pure-Python parts (`MeshShape`, parsing) import no JAX, so the card parser can use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from generator.errors import AtlasError

AXES = ("data", "model")
MAX_AXIS = 65536


class MeshError(AtlasError):
    """A mesh setting that cannot be used."""


@dataclass(frozen=True)
class MeshShape:
    """Requested mesh sizes; `data` None means every device not taken by `model`."""

    data: int | None = None
    model: int = 1

    @classmethod
    def parse(cls, text: str) -> MeshShape:
        """Parse "data=N,model=M" (either part may be left out).

        Raises:
            MeshError: unknown axis, repeated axis, or a size that is not a positive integer.
        """
        sizes: dict[str, int] = {}
        for part in (p.strip() for p in str(text).split(",")):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in AXES:
                raise MeshError(
                    f"bad mesh part {part!r}; write data=N,model=M (axes: {', '.join(AXES)})"
                )
            if name in sizes:
                raise MeshError(f"mesh axis {name!r} is given twice; give each axis once")
            if not re.fullmatch(r"\s*[0-9]+\s*", value) or not 1 <= int(value) <= MAX_AXIS:
                raise MeshError(f"mesh {name}={value.strip()!r} must be a positive integer")
            sizes[name] = int(value)
        return cls(**sizes)

    def resolve(self, n_devices: int) -> tuple[int, int]:
        """Return (data, model) sizes for `n_devices` devices.

        Raises:
            MeshError: the sizes do not multiply to the number of devices.
        """
        data = self.data if self.data is not None else n_devices // self.model
        if data < 1 or data * self.model != n_devices:
            want = f"data={self.data}," if self.data is not None else ""
            raise MeshError(
                f"mesh {want}model={self.model} does not fit {n_devices} device(s): "
                f"data x model must equal {n_devices}"
            )
        return data, self.model

    def to_dict(self) -> dict:
        """Return the requested sizes as JSON (None = all remaining devices)."""
        return {"data": self.data, "model": self.model}


# Parameter path (dotted, our names) -> which dimension goes on the `model` axis.
# Column (-1) splits q/k/v/MLP-in kernels by head / hidden unit; row (0) splits the matching
# attention-out / MLP-out kernels; biases of column-split layers split with them.
COLUMN, ROW = -1, 0
SHARDING_RULES: dict[str, tuple[tuple[str, int], ...]] = {
    "bert": (
        (r"attention\.self\.(query|key|value)\.kernel$", COLUMN),
        (r"attention\.self\.(query|key|value)\.bias$", COLUMN),
        (r"attention\.output\.dense\.kernel$", ROW),
        (r"intermediate\.dense\.(kernel|bias)$", COLUMN),
        (r"layer\.\d+\.output\.dense\.kernel$", ROW),
    ),
    "albert": (  # the shared blocks split like BERT's (every application uses the split)
        (r"attention\.(query|key|value)\.(kernel|bias)$", COLUMN),
        (r"attention\.dense\.kernel$", ROW),
        (r"albert_layers\.\d+\.ffn\.(kernel|bias)$", COLUMN),
        (r"albert_layers\.\d+\.ffn_output\.kernel$", ROW),
    ),
    "t5": (
        (r"(SelfAttention|EncDecAttention)\.(q|k|v)\.kernel$", COLUMN),
        (r"(SelfAttention|EncDecAttention)\.o\.kernel$", ROW),
        (r"relative_attention_bias\.embedding$", COLUMN),  # [bucket, head]
        (r"DenseReluDense\.(wi|wi_0|wi_1)\.kernel$", COLUMN),
        (r"DenseReluDense\.wo\.kernel$", ROW),
    ),
    "xlnet": (  # q/k/v/r and the per-head score biases [head * d_head] split by head
        (r"rel_attn\.(q|k|v|r)\.kernel$", COLUMN),
        (r"rel_attn\.(r_w_bias|r_r_bias|r_s_bias)\.bias$", COLUMN),
        (r"rel_attn\.seg_embed\.embedding$", COLUMN),  # [2, head * d_head]
        (r"rel_attn\.o\.kernel$", ROW),
        (r"ff\.layer_1\.(kernel|bias)$", COLUMN),
        (r"ff\.layer_2\.kernel$", ROW),
    ),
}


def register_sharding_rules(family: str, rules: tuple[tuple[str, int], ...]) -> None:
    """Declare how a model family's parameters split over the `model` axis."""
    SHARDING_RULES[family] = rules


def model_axis_dim(family: str, name: str) -> int | None:
    """Return the dimension of parameter `name` that is split over `model`, or None."""
    for pattern, dim in SHARDING_RULES.get(family, ()):
        if re.search(pattern, name):
            return dim
    return None


def check_model_axis(config, model: int) -> None:
    """Refuse a `model` axis that does not divide the heads and the MLP width."""
    if model == 1:
        return
    if config.family not in SHARDING_RULES:
        raise MeshError(
            f"the {config.family} family has no model-axis sharding rules; use mesh model=1"
        )
    for what, size in (("attention heads", config.n_heads), ("MLP width", config.d_mlp)):
        if size % model:
            raise MeshError(
                f"mesh model={model} does not divide the model's {size} {what}; "
                f"choose a model axis size that divides {size}"
            )


# --- JAX side -----------------------------------------------------------------------------------


def make_mesh(shape: MeshShape | None = None, devices=None):
    """Build the ("data", "model") mesh over `devices` (default: every device of every process).

    Uses `jax.make_mesh`, which lays the axes out along the physical interconnect on TPU and
    GPU (model-axis neighbours share the fastest links).
    """
    import jax
    from jax.sharding import AxisType

    devices = list(jax.devices() if devices is None else devices)
    data, model = (shape or MeshShape()).resolve(len(devices))
    return jax.make_mesh(
        (data, model), AXES, axis_types=(AxisType.Auto, AxisType.Auto), devices=devices
    )


def describe(mesh) -> dict:
    """Return the mesh for the manifest: axis sizes, device count and kind, processes."""
    import jax

    devices = mesh.devices.flatten()
    return {
        "data": int(mesh.shape["data"]),
        "model": int(mesh.shape["model"]),
        "devices": len(devices),
        "platform": str(devices[0].platform),
        "processes": int(jax.process_count()),
    }


def data_size(mesh) -> int:
    """Return the size of the `data` axis (batch sizes must be a multiple of it)."""
    return int(mesh.shape["data"]) if mesh is not None else 1


def round_up(rows: int, multiple: int) -> int:
    """Round `rows` up to a multiple of `multiple`."""
    return -(-int(rows) // int(multiple)) * int(multiple)


def _global_array(value: np.ndarray, sharding):
    """Make a global array from a value every process holds in full."""
    import jax

    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def place_batch(mesh, *arrays: np.ndarray):
    """Place [batch, ...] host arrays on the mesh, rows split over `data`.

    Every process passes the same full arrays (each reads the whole corpus); each contributes
    the rows of its own devices.
    """
    from jax.sharding import NamedSharding, PartitionSpec

    for array in arrays:
        if array.shape[0] % data_size(mesh):
            raise MeshError(
                f"batch of {array.shape[0]} rows does not split over data={data_size(mesh)}"
            )
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    return tuple(_global_array(a, sharding) for a in arrays)


def replicated(mesh):
    """Return the sharding that keeps a full copy on every device (for step outputs)."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec())


def parameter_spec(family: str, name: str, ndim: int):
    """Return the PartitionSpec of one parameter: split over `model` by the family's rules."""
    from jax.sharding import PartitionSpec

    dim = model_axis_dim(family, name)
    if dim is None:
        return PartitionSpec()
    axes = [None] * ndim
    axes[dim] = "model"
    return PartitionSpec(*axes)


def shard_params(state, mesh, family: str):
    """Return the nnx parameter `state` with every array placed on `mesh` by the family rules."""
    from flax import nnx
    from jax.sharding import NamedSharding

    flat = []
    for path, variable in nnx.to_flat_state(state):
        name = ".".join(str(part) for part in path)
        value = np.asarray(variable.get_value())
        spec = parameter_spec(family, name, value.ndim)
        flat.append((path, variable.replace(_global_array(value, NamedSharding(mesh, spec)))))
    return nnx.from_flat_state(flat)


def fetch(tree):
    """Bring step outputs (replicated on the mesh) to host numpy arrays, on every process."""
    import jax

    return jax.device_get(tree)
