"""Tiny random checkpoints of every supported family, with PyTorch reference outputs.

Called by make_fixtures.py (run it in .venv-ref, the only environment with PyTorch). Writes:

    tests/fixtures/NAME/                   tiny random checkpoint (safetensors) + tokenizer
    tests/fixtures/parity/CASE.npz         reference outputs for one case
    tests/fixtures/tiny-bert-pickle/       the tiny BERT as a pickled pytorch_model.bin

A case is a checkpoint, or a checkpoint plus a config.json patch (`NAME--VARIANT`, e.g. the RoPE
scaling variants of tiny-llama); meta.json records each case's folder and patch so the tests
can rebuild the patched config without PyTorch. Everything is deterministic: fixed seeds, a
tokenizer vocabulary counted here rather than trained by a hash-map-ordered trainer.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import BertTokenizerFast, PreTrainedTokenizerFast, XLNetTokenizer

ENCODER_INPUTS = [
    ("the cat sat on the mat", None),
    ("we walked to the market to buy apples, bread and milk before the rain started", None),
    ("hello", None),
    ("she reads a book by the window", "the weather is cold today"),
]

DECODER_INPUTS = [
    "the cat sat on the mat and looked at the dog",
    "we walked to the market to buy apples, bread and milk before the rain started",
    "hello",
    "she reads a book by the window when it rains",
]

BERT_SIZES = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    initializer_range=0.2,
)
DISTILBERT_SIZES = dict(
    dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64, initializer_range=0.2
)
LLAMA_SIZES = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=64,
    max_position_embeddings=128,
    initializer_range=0.2,
)
XLNET_SIZES = dict(d_model=32, n_layer=2, n_head=4, d_inner=64, initializer_range=0.2)
LABELS = {"id2label": {0: "negative", 1: "neutral", 2: "positive"}}
# ALBERT: factorised embeddings (E 16 != H 32) and more layers than groups of shared blocks.
ALBERT_SIZES = dict(
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=4,
    num_hidden_groups=2,
    inner_group_num=1,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    initializer_range=0.2,
)

# RoPE variants of tiny-llama: config.json patches (None deletes a key). The linear one uses the
# older `rope_scaling` + top-level `rope_theta` form that many hub configs still carry.
ROPE_VARIANTS = {
    "rope-linear": {
        "rope_parameters": None,
        "rope_scaling": {"type": "linear", "factor": 2.0},
        "rope_theta": 500.0,
    },
    "rope-dynamic": {
        "rope_parameters": {"rope_type": "dynamic", "factor": 4.0, "rope_theta": 10000.0},
        "max_position_embeddings": 16,
    },
    "rope-llama3": {
        "rope_parameters": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
            "rope_theta": 10000.0,
        }
    },
    "rope-yarn": {
        "rope_parameters": {
            "rope_type": "yarn",
            "factor": 4.0,
            "original_max_position_embeddings": 16,
            "rope_theta": 10000.0,
        }
    },
}


@dataclass(frozen=True)
class Spec:
    """One tiny checkpoint: model class, config, tokenizer kind and config-patch variants."""

    name: str
    model_class: str
    config_class: str
    settings: dict
    tokenizer: str
    variants: dict = field(default_factory=dict)
    unpadded: bool = False  # reference: each text run alone, then right-padded with zeros


SPECS = [
    Spec("tiny-bert-mlm", "BertForMaskedLM", "BertConfig", BERT_SIZES, "wordpiece"),
    Spec("tiny-bert-pretraining", "BertForPreTraining", "BertConfig", BERT_SIZES, "wordpiece"),
    Spec(
        "tiny-bert-cls",
        "BertForSequenceClassification",
        "BertConfig",
        {**BERT_SIZES, **LABELS},
        "wordpiece",
    ),
    Spec(
        "tiny-roberta-mlm",
        "RobertaForMaskedLM",
        "RobertaConfig",
        {**BERT_SIZES, "max_position_embeddings": 66, "type_vocab_size": 1, "pad_token_id": 1},
        "roberta",
    ),
    Spec(
        "tiny-roberta-cls",
        "RobertaForSequenceClassification",
        "RobertaConfig",
        {
            **BERT_SIZES,
            "max_position_embeddings": 66,
            "type_vocab_size": 1,
            "pad_token_id": 1,
            **LABELS,
        },
        "roberta",
    ),
    Spec(
        "tiny-xlm-roberta-mlm",
        "XLMRobertaForMaskedLM",
        "XLMRobertaConfig",
        {**BERT_SIZES, "max_position_embeddings": 66, "type_vocab_size": 1, "pad_token_id": 1},
        "roberta",
    ),
    Spec(
        "tiny-distilbert-mlm",
        "DistilBertForMaskedLM",
        "DistilBertConfig",
        DISTILBERT_SIZES,
        "wordpiece",
    ),
    Spec(
        "tiny-distilbert-cls",
        "DistilBertForSequenceClassification",
        "DistilBertConfig",
        {**DISTILBERT_SIZES, **LABELS},
        "wordpiece",
    ),
    Spec(
        "tiny-electra",
        "ElectraForPreTraining",
        "ElectraConfig",
        {**BERT_SIZES, "embedding_size": 16},
        "wordpiece",
    ),
    Spec(
        "tiny-electra-cls",
        "ElectraForSequenceClassification",
        "ElectraConfig",
        {**BERT_SIZES, "embedding_size": 16, **LABELS},
        "wordpiece",
    ),
    Spec(
        "tiny-gpt2",
        "GPT2LMHeadModel",
        "GPT2Config",
        dict(n_embd=32, n_layer=2, n_head=4, n_positions=64, initializer_range=0.2),
        "gpt2",
    ),
    Spec(
        "tiny-llama",
        "LlamaForCausalLM",
        "LlamaConfig",
        {**LLAMA_SIZES, "tie_word_embeddings": False},
        "llama",
        ROPE_VARIANTS,
    ),
    Spec(
        "tiny-llama-mqa",  # SmolLM-style: tied embeddings, one key/value head, wider heads
        "LlamaForCausalLM",
        "LlamaConfig",
        {**LLAMA_SIZES, "num_key_value_heads": 1, "head_dim": 16, "tie_word_embeddings": True},
        "llama",
    ),
    Spec(
        "tiny-llama-cls",
        "LlamaForSequenceClassification",
        "LlamaConfig",
        {**LLAMA_SIZES, "pad_token_id": 0, **LABELS},
        "llama",
    ),
    Spec(
        "tiny-mistral",
        "MistralForCausalLM",
        "MistralConfig",
        {**LLAMA_SIZES, "sliding_window": 4},
        "llama",
    ),
    Spec(
        "tiny-qwen2",
        "Qwen2ForCausalLM",
        "Qwen2Config",
        {
            **LLAMA_SIZES,
            "use_sliding_window": True,
            "sliding_window": 4,
            "max_window_layers": 1,
            "tie_word_embeddings": True,
        },
        "qwen2",
        {"no-layer-types": {"layer_types": None}},
    ),
    Spec("tiny-albert", "AlbertModel", "AlbertConfig", ALBERT_SIZES, "wordpiece", unpadded=True),
    Spec(
        "tiny-albert-mlm",
        "AlbertForMaskedLM",
        "AlbertConfig",
        ALBERT_SIZES,
        "wordpiece",
        unpadded=True,
    ),
    Spec(  # 3 layers over 2 groups (layers 0, 1 -> group 0; 2 -> group 1), 2 blocks per group
        "tiny-albert-pretraining",
        "AlbertForPreTraining",
        "AlbertConfig",
        {**ALBERT_SIZES, "num_hidden_layers": 3, "inner_group_num": 2},
        "wordpiece",
        unpadded=True,
    ),
    Spec(
        "tiny-albert-cls",
        "AlbertForSequenceClassification",
        "AlbertConfig",
        {**ALBERT_SIZES, **LABELS},
        "wordpiece",
        unpadded=True,
    ),
    Spec("tiny-xlnet", "XLNetLMHeadModel", "XLNetConfig", XLNET_SIZES, "xlnet"),
    Spec(
        "tiny-xlnet-cls",
        "XLNetForSequenceClassification",
        "XLNetConfig",
        {**XLNET_SIZES, **LABELS},
        "xlnet",
    ),
]


# --- tokenizers ---------------------------------------------------------------------------------


def learn_bpe(text: str, size: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Learn byte-level BPE merges deterministically (ties broken by the pair itself).

    Returns the 256-symbol byte alphabet (GPT-2 order) plus merged symbols, and the merges.
    """
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = Counter(
        piece for line in text.strip().splitlines() for piece, _ in pre.pre_tokenize_str(line)
    )
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(), key=_byte_order)
    symbols = {word: list(word) for word in words}
    vocab, merges = list(alphabet), []
    while len(vocab) < size:
        pairs: Counter = Counter()
        for word, count in words.items():
            parts = symbols[word]
            for pair in zip(parts, parts[1:], strict=False):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        vocab.append(best[0] + best[1])
        for word, parts in symbols.items():
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            symbols[word] = merged
    return vocab, merges


def _byte_order(char: str) -> int:
    """Sort the byte-level alphabet by the byte each character stands for (GPT-2 order)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    code = ord(char)
    if code in printable:
        return code
    return 256 + code  # the remapped control / space bytes come after, in codepoint order


# Special tokens per tokenizer kind: (tokens placed before the byte vocabulary, tokens after it,
# template of a single text, keyword arguments of PreTrainedTokenizerFast).
BPE_KINDS = {
    "gpt2": (
        [],
        ["<|endoftext|>"],
        None,
        dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>"),
    ),
    "llama": (
        ["<unk>", "<s>", "</s>"],
        [],
        "<s> $A",
        dict(unk_token="<unk>", bos_token="<s>", eos_token="</s>"),
    ),
    "qwen2": (
        [],
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        None,
        dict(eos_token="<|endoftext|>", pad_token="<|endoftext|>"),
    ),
    "roberta": (
        ["<s>", "<pad>", "</s>", "<unk>"],
        ["<mask>"],
        "<s> $A </s>",
        dict(
            bos_token="<s>",
            eos_token="</s>",
            sep_token="</s>",
            cls_token="<s>",
            unk_token="<unk>",
            pad_token="<pad>",
            mask_token="<mask>",
        ),
    ),
}


def byte_bpe_tokenizer(kind: str, text: str, size: int, max_length: int) -> PreTrainedTokenizerFast:
    """Build a tiny byte-level BPE tokenizer of `kind` (gpt2, llama, qwen2, roberta)."""
    before, after, template, special = BPE_KINDS[kind]
    symbols, merges = learn_bpe(text, size - len(before) - len(after))
    pieces = [*before, *symbols, *after]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=kind == "roberta")
    tokenizer.decoder = decoders.ByteLevel()
    if template is not None:
        specials = [(t, vocab[t]) for t in ("<s>", "</s>") if t in template]
        pair = template.replace("$A", "$A </s> </s> $B") if kind == "roberta" else "<s> $A <s> $B"
        tokenizer.post_processor = processors.TemplateProcessing(
            single=template, pair=pair, special_tokens=specials
        )
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special)
    wrapped.model_max_length = max_length
    return wrapped


# XLNet's special tokens in xlnet-base-cased's order (ids 0..8).
XLNET_SPECIALS = ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"]


def xlnet_tokenizer(text: str, size: int, max_length: int) -> XLNetTokenizer:
    """A tiny sentencepiece-style Unigram tokenizer with XLNet's conventions.

    XLNetTokenizer (tokenizers backend) over a counted vocabulary: the specials, `▁`, single
    characters and `▁word` pieces of the most frequent words, scored by log frequency. It pads
    on the left and appends `<sep> <cls>` (segments 0 and 2), like xlnet-base-cased.
    """
    counts = Counter(re.findall(r"[a-z]+", text.lower()))
    chars = list(string.ascii_lowercase + string.ascii_uppercase + string.digits + ".,!?'-\"")
    pieces = [(token, 0.0) for token in XLNET_SPECIALS] + [("▁", -2.0)]
    pieces += [(char, -8.0) for char in chars] + [(f"▁{char}", -9.0) for char in chars]
    words = sorted(counts, key=lambda w: (-counts[w], w))[: size - len(pieces)]
    total = sum(counts.values())
    pieces += [(f"▁{word}", float(np.log(counts[word] / total))) for word in words]
    tokenizer = XLNetTokenizer(vocab=pieces, unk_id=0)
    tokenizer.model_max_length = max_length
    return tokenizer


def wordpiece_tokenizer(vocab: dict[str, int], max_length: int) -> BertTokenizerFast:
    """The tiny WordPiece tokenizer of tiny-bert."""
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    tokenizer.model_max_length = max_length
    return tokenizer


# --- models -------------------------------------------------------------------------------------


def perturb(model: torch.nn.Module) -> None:
    """Randomise biases and norm scales, which transformers initialises to 0 and 1."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            lowered = name.lower()
            if name.endswith("bias"):
                param.normal_(0.0, 0.1)
            elif "norm" in lowered or ".ln_" in lowered or lowered.startswith("ln_"):
                param.copy_(1.0 + 0.1 * torch.randn_like(param))


def tokenizer_for(spec: Spec, training_text: str, wordpiece_vocab: dict[str, int]):
    """Return the tiny tokenizer a spec uses."""
    max_length = int(
        spec.settings.get("max_position_embeddings") or spec.settings.get("n_positions") or 64
    )
    if spec.tokenizer == "wordpiece":
        return wordpiece_tokenizer(wordpiece_vocab, max_length)
    if spec.tokenizer == "xlnet":
        return xlnet_tokenizer(training_text, 256, max_length)
    if spec.tokenizer == "roberta":
        max_length -= 2
    return byte_bpe_tokenizer(spec.tokenizer, training_text, 384, max_length)


def make_checkpoint(spec: Spec, out_dir: Path, tokenizer, seed: int) -> None:
    """Build the random model of `spec` and save it with its tokenizer into `out_dir`."""
    config_class = getattr(transformers, spec.config_class)
    settings = {**spec.settings, "vocab_size": len(tokenizer)}
    if "id2label" in settings:
        settings["label2id"] = {v: k for k, v in settings["id2label"].items()}
    if spec.tokenizer in ("llama", "gpt2", "qwen2"):
        settings.setdefault("bos_token_id", tokenizer.bos_token_id)
        settings.setdefault("eos_token_id", tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = getattr(transformers, spec.model_class)(config_class(**settings)).eval()
    perturb(model)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    generation = out_dir / "generation_config.json"
    if generation.exists():
        generation.unlink()  # not needed, and not part of the architecture


def patched_config(config: dict, patch: dict) -> dict:
    """Apply a config.json patch (a None value deletes the key)."""
    config = copy.deepcopy(config)
    for key, value in patch.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def load_reference_model(spec: Spec, model_dir: Path, patch: dict | None):
    """Load the saved checkpoint in PyTorch (eager attention), with a config patch applied."""
    model_class = getattr(transformers, spec.model_class)
    if not patch:
        return model_class.from_pretrained(model_dir, attn_implementation="eager").eval()
    config_dict = patched_config(json.loads((model_dir / "config.json").read_text()), patch)
    config = getattr(transformers, spec.config_class).from_dict(config_dict)
    config._attn_implementation = "eager"
    base = model_class.from_pretrained(model_dir, attn_implementation="eager")
    model = model_class(config).eval()
    model.load_state_dict(base.state_dict())
    return model


def encode_encoder(tokenizer, inputs) -> dict[str, np.ndarray]:
    """Tokenise (text, pair) inputs and right-pad them with the pad id."""
    rows = [tokenizer(text, pair) for text, pair in inputs]
    width = max(len(row["input_ids"]) for row in rows)
    batch = {
        key: np.zeros((len(rows), width), np.int32)
        for key in ("input_ids", "attention_mask", "token_type_ids")
    }
    batch["input_ids"][:] = tokenizer.pad_token_id
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        batch["input_ids"][i, :n] = row["input_ids"]
        batch["attention_mask"][i, :n] = 1
        if "token_type_ids" in row:
            batch["token_type_ids"][i, :n] = row["token_type_ids"]
    return batch


def encode_decoder(tokenizer, texts, pad_id: int) -> dict[str, np.ndarray]:
    """Tokenise texts and right-pad them with `pad_id` (decoders often have no pad token)."""
    rows = [tokenizer(text)["input_ids"] for text in texts]
    width = max(len(row) for row in rows)
    batch = {key: np.zeros((len(rows), width), np.int32) for key in ("input_ids", "attention_mask")}
    batch["input_ids"][:] = pad_id
    for i, row in enumerate(rows):
        batch["input_ids"][i, : len(row)] = row
        batch["attention_mask"][i, : len(row)] = 1
    return batch


def _outputs(model, feed: dict) -> dict[str, np.ndarray]:
    """Run a model with hidden states and attentions; return them and its logits as numpy."""
    with torch.no_grad():
        out = model(
            **{key: torch.from_numpy(value).long() for key, value in feed.items()},
            output_hidden_states=True,
            output_attentions=True,
        )
    return {
        "hidden_states": torch.stack(out.hidden_states, dim=1).float().numpy(),
        "attentions": torch.stack(out.attentions, dim=1).float().numpy(),
        "logits": out.logits.float().numpy(),
    }


def unpadded_reference(tokenizer, model, types: bool) -> dict[str, np.ndarray]:
    """Run each input alone (unpadded); store inputs and outputs right-padded (zeros beyond).

    types: pass the tokenizer's token_type_ids (segments 0 / 1, 2 on `<cls>`; padding 3) too;
    XLNet's tokenizer leaves them out by default, and XLNetModel then has no segment term.
    """
    rows = [tokenizer(text, pair, return_token_type_ids=types) for text, pair in ENCODER_INPUTS]
    width = max(len(row["input_ids"]) for row in rows)
    batch = {
        "input_ids": np.full((len(rows), width), tokenizer.pad_token_id, np.int32),
        "attention_mask": np.zeros((len(rows), width), np.int32),
    }
    if types:
        batch["token_type_ids"] = np.full((len(rows), width), tokenizer.pad_token_type_id, np.int32)
    alone = []
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        for key in batch:
            batch[key][i, :n] = row[key]
        alone.append(_outputs(model, {key: np.asarray([row[key]]) for key in batch}))
    arrays = dict(batch)
    for key in ("hidden_states", "attentions", "logits"):
        if key == "logits" and alone[0][key].ndim == 2:  # classification: one row per text
            arrays[key] = np.concatenate([a[key] for a in alone])
            continue
        shape = list(alone[0][key].shape[1:])
        if key == "hidden_states":  # [layer, token, d_model]
            shape[1] = width
        elif key == "attentions":  # [layer, head, query, key]
            shape[2:] = [width, width]
        else:  # logits [token, vocab]
            shape[0] = width
        stacked = np.zeros((len(rows), *shape), np.float32)
        for i, a in enumerate(alone):
            n = len(rows[i]["input_ids"])
            if key == "hidden_states":
                stacked[i, :, :n] = a[key][0]
            elif key == "attentions":
                stacked[i, :, :, :n, :n] = a[key][0]
            else:
                stacked[i, :n] = a[key][0]
        arrays[key] = stacked
    return arrays


def reference_xlnet(tokenizer, model) -> dict[str, np.ndarray]:
    """XLNet references: every input run alone, stored right-padded (the pipeline's layout);
    the same with token_type_ids under `typed_*`; and the single texts as XLNet's tokenizer
    batches them, padded on the left, under `left_*`."""
    arrays = unpadded_reference(tokenizer, model, types=False)
    typed = unpadded_reference(tokenizer, model, types=True)
    arrays.update({f"typed_{key}": value for key, value in typed.items()})
    padded = tokenizer([text for text, pair in ENCODER_INPUTS if pair is None], padding=True)
    left = {key: np.asarray(padded[key], np.int32) for key in ("input_ids", "attention_mask")}
    arrays.update({f"left_{key}": value for key, value in left.items()})
    arrays.update({f"left_{key}": value for key, value in _outputs(model, left).items()})
    if isinstance(model, transformers.XLNetLMHeadModel):
        arrays.update(permutation_reference(tokenizer, model))
    return arrays


def permutation_reference(tokenizer, model) -> dict[str, np.ndarray]:
    """The docs' perm_mask + target_mapping recipe on each input alone: predict the middle
    non-special token, which no token may see (`perm_target_position`, `perm_logits`)."""
    positions, logits = [], []
    for text, pair in ENCODER_INPUTS:
        ids = tokenizer(text, pair)["input_ids"]
        special = set(tokenizer.all_special_ids)
        candidates = [i for i, token in enumerate(ids) if token not in special]
        target = candidates[len(candidates) // 2]
        n = len(ids)
        perm_mask = torch.zeros((1, n, n))
        perm_mask[:, :, target] = 1.0
        target_mapping = torch.zeros((1, 1, n))
        target_mapping[0, 0, target] = 1.0
        with torch.no_grad():
            out = model(torch.tensor([ids]), perm_mask=perm_mask, target_mapping=target_mapping)
        positions.append(target)
        logits.append(out.logits[0, 0].float().numpy())
    return {
        "perm_target_position": np.asarray(positions, np.int32),
        "perm_logits": np.stack(logits),
    }


def reference(spec: Spec, model_dir: Path, patch: dict | None) -> dict[str, np.ndarray]:
    """Run PyTorch transformers on the spec's inputs; return inputs and outputs as numpy."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = load_reference_model(spec, model_dir, patch)
    if spec.tokenizer == "xlnet":
        return reference_xlnet(tokenizer, model)
    decoder = spec.tokenizer in ("gpt2", "llama", "qwen2")
    if decoder:
        pad_id = model.config.pad_token_id or 0
        batch = encode_decoder(tokenizer, DECODER_INPUTS, pad_id)
        assert not np.any((batch["input_ids"] == pad_id) & (batch["attention_mask"] == 1))
    else:
        batch = encode_encoder(tokenizer, ENCODER_INPUTS)
    if spec.unpadded:
        return {**batch, **unpadded_outputs(spec, model, batch)}
    feed = {key: torch.from_numpy(value).long() for key, value in batch.items()}
    if "DistilBert" in spec.model_class:
        feed.pop("token_type_ids")
    with torch.no_grad():
        out = model(**feed, output_hidden_states=True, output_attentions=True)
    return {**batch, **output_arrays(spec, out)}


def output_arrays(spec: Spec, out) -> dict[str, np.ndarray]:
    """Return the compared outputs of one PyTorch forward pass as float32 numpy."""
    arrays = {
        "hidden_states": torch.stack(out.hidden_states, dim=1).float().numpy(),
        "attentions": torch.stack(out.attentions, dim=1).float().numpy(),
    }
    if spec.model_class == "BertForPreTraining":
        arrays["logits"] = out.prediction_logits.float().numpy()
        arrays["next_sentence_logits"] = out.seq_relationship_logits.float().numpy()
    elif spec.model_class == "AlbertForPreTraining":
        arrays["logits"] = out.prediction_logits.float().numpy()
        arrays["sentence_order_logits"] = out.sop_logits.float().numpy()
    elif hasattr(out, "logits"):
        arrays["logits"] = out.logits.float().numpy()
    else:
        arrays["pooler_output"] = out.pooler_output.float().numpy()
    return arrays


def token_axes(key: str, ndim: int) -> tuple[int, ...]:
    """Return the token axes of an output array (batch first)."""
    if key == "hidden_states":  # [batch, layer, token, d_model]
        return (2,)
    if key == "attentions":  # [batch, layer, head, query, key]
        return (3, 4)
    if key == "logits" and ndim == 3:  # [batch, token, vocab or label]
        return (1,)
    return ()


def unpadded_outputs(spec: Spec, model, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run each text of the padded batch alone (no padding); return its outputs zero-padded.

    Token axes are filled up to each text's length and stay 0 beyond, so the padded batch our
    models run is compared with unpadded PyTorch runs at every real position.
    """
    rows = []
    for i, n in enumerate(batch["attention_mask"].sum(axis=1)):
        feed = {key: torch.from_numpy(value[i : i + 1, :n]).long() for key, value in batch.items()}
        with torch.no_grad():
            out = model(**feed, output_hidden_states=True, output_attentions=True)
        rows.append((int(n), output_arrays(spec, out)))
    width = batch["input_ids"].shape[1]
    arrays = {}
    for key, first in rows[0][1].items():
        axes = token_axes(key, first.ndim)
        shape = [len(rows), *(width if a in axes else s for a, s in enumerate(first.shape) if a)]
        arrays[key] = np.zeros(shape, np.float32)
        for i, (n, out) in enumerate(rows):
            where = tuple(slice(0, n) if a in axes else slice(None) for a in range(1, len(shape)))
            arrays[key][(i, *where)] = out[key][0]
    return arrays


def make_pickle(tiny_bert_dir: Path, out_dir: Path) -> None:
    """Save the tiny BERT's state dict as a pickled pytorch_model.bin (for the safe reader)."""
    model = transformers.BertModel.from_pretrained(tiny_bert_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    torch.save(model.state_dict(), out_dir / "pytorch_model.bin")


def make_family_fixtures(
    fixtures: Path, training_text: str, wordpiece_vocab: dict[str, int], save_npz, meta: dict
) -> None:
    """Write every family checkpoint and its parity cases; add their entries to `meta`."""
    for seed, spec in enumerate(SPECS, start=1):
        model_dir = fixtures / spec.name
        tokenizer = tokenizer_for(spec, training_text, wordpiece_vocab)
        make_checkpoint(spec, model_dir, tokenizer, seed)
        cases = {spec.name: None, **{f"{spec.name}--{v}": p for v, p in spec.variants.items()}}
        for case, patch in cases.items():
            arrays = reference(spec, model_dir, patch)
            save_npz(fixtures / "parity" / f"{case}.npz", arrays)
            meta["models"][case] = {
                "model": f"tests/fixtures/{spec.name}",
                "class": spec.model_class,
                "patch": patch,
                "shapes": {key: list(value.shape) for key, value in arrays.items()},
            }
            print(f"{case}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in arrays.items()))
    make_pickle(fixtures / "tiny-bert", fixtures / "tiny-bert-pickle")


def folder_sizes(fixtures: Path) -> dict[str, int]:
    """Return the size in bytes of every fixture folder (each must stay under 300 KB)."""
    return {
        folder.name: sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        for folder in fixtures.iterdir()
        if folder.is_dir() and re.match(r"tiny-", folder.name)
    }
