"""Token-embedding geometry: a labelled sample of the vocabulary and nearest neighbours.

Sample (for the 2-D PCA and t-SNE maps the analyze stage computes): up to SAMPLE_SIZE ids,
first the TOP_CORPUS most frequent ids of the corpus (when there is one), then a seeded
stratified fill: the remaining ids, in id order, are cut into equal strata and one id is drawn
from each (numpy default_rng(SEED)), so the sample covers the whole id range (frequent
subwords, rare words, unused slots). A vocabulary of at most SAMPLE_SIZE ids is taken whole.

Probes for the nearest-neighbour table: the PROBES most frequent word-like corpus tokens
(letters only after stripping the WordPiece `##` / byte-BPE `Ġ` / SentencePiece `▁` markers,
at least 4 letters, not a special token); without a corpus, PROBES word-like tokens drawn with
the same seed. Neighbours: the NEIGHBOURS ids of highest cosine similarity over the whole
token-embedding matrix, the probe itself excluded.

Arrays: weights/embedding_sample [sample, d_model] float32, weights/embedding_sample_ids
[sample] int32, weights/embedding_sample_tokens [sample] str, weights/embedding_sample_counts
[sample] int32 (occurrences in the corpus, 0 without one), weights/embedding_norms [vocab]
float32 (L2 norm of every row).

Output embedding (the unembedding matrix of a language-model head, [vocab, d_model] with the
rows the logits are dot products with): `untied` when the head has its own matrix
(`UNTIED_OUTPUT`), `tied` when it reuses the token embedding (nothing more is stored: it is the
same matrix), `none` without a vocabulary head. Untied, the same treatment on the same sample
ids and probes: weights/output_embedding_sample [sample, d_model], weights/output_embedding_norms
[vocab], neighbours in the output space, and weights/embedding_io_cosine [vocab]: the cosine
between the input and output rows of each token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

SAMPLE_SIZE = 2000
TOP_CORPUS = 1000
PROBES = 10
NEIGHBOURS = 10
MIN_LETTERS = 4
SEED = 0
_MARKERS = ("##", "Ġ", "▁")
# Heads whose logits are dot products with the rows of an unembedding matrix.
VOCAB_HEADS = ("masked-lm", "causal-lm", "permutation-lm")
# Our parameter paths of an untied unembedding kernel [d_model, vocab] (GPT-2 / Llama lm_head,
# T5 v1.1 lm_head, BERT-like masked-LM decoder).
UNTIED_OUTPUT = re.compile(r"^(lm_head(\.out)?|mlm_head\.decoder)\.kernel$")


@dataclass(frozen=True)
class OutputEmbedding:
    """The unembedding of a model: status untied / tied / none, its matrix and where it is.

    matrix: [vocab, d_model] (untied only); name: our parameter path (untied only); reason:
    why there is none.
    """

    status: str
    matrix: np.ndarray | None = None
    name: str | None = None
    reason: str | None = None


def output_embedding(arrays: Mapping[str, np.ndarray], config) -> OutputEmbedding:
    """Find the output embedding of a parameter mapping (see the module docstring).

    Only the matching tensor is read (the mapping may convert each tensor on lookup).
    """
    heads = tuple(config.heads)
    if not config.seq2seq and not any(head in VOCAB_HEADS for head in heads):
        what = ", ".join(heads) if heads else "none: the checkpoint ends at its last hidden states"
        return OutputEmbedding("none", reason=f"no language-model head (heads: {what})")
    for name in arrays:
        if UNTIED_OUTPUT.match(name) and (values := arrays[name]).ndim == 2:
            return OutputEmbedding("untied", matrix=values.T, name=name)
    return OutputEmbedding("tied")


def token_embedding(arrays: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Return the token-embedding matrix [vocab, d_model] of a parameter mapping, if it has one."""
    from generator.extract.param_roles import classify

    for name in arrays:
        if classify(name).role == "token_embedding" and (values := arrays[name]).ndim == 2:
            return values
    return None


def corpus_counts(token_ids, vocab_size: int) -> np.ndarray:
    """Return [vocab] occurrence counts of ids in a ragged list of id arrays."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for ids in token_ids or ():
        np.add.at(counts, np.asarray(ids)[np.asarray(ids) < vocab_size], 1)
    return counts


def choose_sample(counts: np.ndarray, size: int = SAMPLE_SIZE) -> np.ndarray:
    """Return sorted sample ids: the most frequent corpus ids, then a stratified random fill."""
    vocab = len(counts)
    if vocab <= size:
        return np.arange(vocab)
    seen = np.flatnonzero(counts)
    top = seen[np.argsort(-counts[seen], kind="stable")][:TOP_CORPUS]
    rest = np.setdiff1d(np.arange(vocab), top)
    strata = np.array_split(rest, size - len(top))
    rng = np.random.default_rng(SEED)
    fill = np.array([stratum[rng.integers(len(stratum))] for stratum in strata if len(stratum)])
    return np.sort(np.concatenate([top, fill]).astype(np.int64))


def word_like(token: str, special: set[str]) -> bool:
    """Tell whether a token is a word piece of at least MIN_LETTERS letters."""
    if token in special:
        return False
    for marker in _MARKERS:
        token = token.replace(marker, "")
    return len(token) >= MIN_LETTERS and token.isalpha()


def choose_probes(strings: list[str], counts: np.ndarray, special: set[str]) -> list[int]:
    """Return probe ids: most frequent word-like corpus tokens, else seeded word-like tokens."""
    candidates = [i for i, token in enumerate(strings) if word_like(token, special)]
    if counts.any():
        frequent = sorted((i for i in candidates if counts[i]), key=lambda i: (-counts[i], i))
        if frequent:
            return frequent[:PROBES]
    rng = np.random.default_rng(SEED)
    if not candidates:
        return []
    return sorted(rng.choice(candidates, min(PROBES, len(candidates)), replace=False).tolist())


def nearest_neighbours(embedding: np.ndarray, probes: list[int], k: int = NEIGHBOURS):
    """Return, per probe, the k (id, cosine) pairs most similar to it, the probe excluded."""
    norms = np.linalg.norm(embedding, axis=1)
    unit = embedding / np.maximum(norms, 1e-12)[:, None]
    result = []
    for probe in probes:
        cosine = unit @ unit[probe]
        cosine[probe] = -np.inf
        top = np.argpartition(-cosine, k)[:k]
        top = top[np.argsort(-cosine[top], kind="stable")]
        result.append([(int(i), float(cosine[i])) for i in top])
    return result


def vocabulary_strings(tokenizer, vocab_size: int) -> list[str]:
    """Return the token string of every id ([id] placeholders without a tokenizer)."""
    if tokenizer is None:
        return [f"[{i}]" for i in range(vocab_size)]
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    return [str(t) if t is not None else f"[{i}]" for i, t in enumerate(tokens)]


ROW_BLOCK = 4096  # rows widened to float64 at a time (each row's sums are the same per block)


def row_norms(matrix: np.ndarray) -> np.ndarray:
    """Return the L2 norm of every row of a [vocab, d] matrix as float32 (summed in float64)."""
    out = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), ROW_BLOCK):
        block = np.asarray(matrix[start : start + ROW_BLOCK], dtype=np.float64)
        out[start : start + len(block)] = np.linalg.norm(block, axis=1)
    return out


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the cosine similarity of the matching rows of two [vocab, d] matrices."""
    out = np.empty(len(a), dtype=np.float32)
    for start in range(0, len(a), ROW_BLOCK):
        x = np.asarray(a[start : start + ROW_BLOCK], dtype=np.float64)
        y = np.asarray(b[start : start + ROW_BLOCK], dtype=np.float64)
        denominator = np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1), 1e-300)
        out[start : start + len(x)] = np.sum(x * y, axis=1) / denominator
    return out


def neighbour_rows(strings, counts, probes, neighbours) -> list[dict]:
    """Return the manifest's neighbour table: per probe, its nearest tokens with cosines."""
    return [
        {
            "probe": strings[probe],
            "probe_id": probe,
            "count": int(counts[probe]),
            "neighbours": [{"token": strings[i], "id": i, "cosine": round(c, 4)} for i, c in found],
        }
        for probe, found in zip(probes, neighbours, strict=True)
    ]


def write_output_geometry(output, embedding, writer, *, sample, probes, strings, counts) -> dict:
    """Store the untied output embedding's sample, norms and input/output cosines; return its
    manifest record (status, and for untied: name, neighbours)."""
    record = {"status": output.status, "reason": output.reason}
    if output.status != "untied":
        return record
    matrix = np.asarray(output.matrix, dtype=np.float32)
    writer.write_array("weights/output_embedding_sample", matrix[sample], ("sample", "d_model"))
    writer.write_array("weights/output_embedding_norms", row_norms(matrix), ("vocab",))
    if matrix.shape == embedding.shape:
        writer.write_array(
            "weights/embedding_io_cosine", row_cosines(embedding, matrix), ("vocab",)
        )
    found = nearest_neighbours(matrix, probes)
    return {
        **record,
        "name": output.name,
        "neighbours": neighbour_rows(strings, counts, probes, found),
    }


def write_embedding_geometry(
    embedding, tokenizer, writer, token_ids=None, output=None
) -> dict | None:
    """Store the embedding sample and return the neighbour table for the manifest.

    Args:
        embedding: [vocab, d_model] token-embedding matrix, or None (then nothing is written).
        tokenizer: the checkpoint's tokenizer, or None.
        writer: the ArtifactWriter of the staging folder.
        token_ids: the corpus as a ragged list of id arrays, or None without a corpus.
        output: the model's `OutputEmbedding`, or None (not looked for).
    """
    from generator.extract.stored_strings import strings_array

    if embedding is None:
        return None
    vocab = embedding.shape[0]
    strings = vocabulary_strings(tokenizer, vocab)
    counts = corpus_counts(token_ids, vocab)
    sample = choose_sample(counts)
    writer.write_array("weights/embedding_sample", embedding[sample], ("sample", "d_model"))
    writer.write_array("weights/embedding_sample_ids", sample.astype(np.int32), ("sample",))
    writer.write_array(
        "weights/embedding_sample_tokens", strings_array([strings[i] for i in sample]), ("sample",)
    )
    writer.write_array(
        "weights/embedding_sample_counts", counts[sample].astype(np.int32), ("sample",)
    )
    writer.write_array("weights/embedding_norms", row_norms(embedding), ("vocab",))
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    probes = choose_probes(strings, counts, special)
    neighbours = nearest_neighbours(embedding, probes)
    record = {
        "vocab_size": int(vocab),
        "sample_size": len(sample),
        "sample_from_corpus": int(np.count_nonzero(counts[sample])),
        "probes_from_corpus": bool(counts.any()),
        "neighbours": neighbour_rows(strings, counts, probes, neighbours),
        "settings": {
            "sample_size": SAMPLE_SIZE,
            "top_corpus": TOP_CORPUS,
            "probes": PROBES,
            "neighbours": NEIGHBOURS,
            "seed": SEED,
        },
    }
    if output is not None:
        record["output"] = write_output_geometry(
            output, embedding, writer, sample=sample, probes=probes, strings=strings, counts=counts
        )
    return record
