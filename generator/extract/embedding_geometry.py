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
[sample] int32 (occurrences in the corpus, 0 without one).
"""

from __future__ import annotations

import numpy as np

SAMPLE_SIZE = 2000
TOP_CORPUS = 1000
PROBES = 10
NEIGHBOURS = 10
MIN_LETTERS = 4
SEED = 0
_MARKERS = ("##", "Ġ", "▁")


def token_embedding(arrays: dict[str, np.ndarray]) -> np.ndarray | None:
    """Return the token-embedding matrix [vocab, d_model] of a parameter dict, if it has one."""
    from generator.extract.param_roles import classify

    for name, values in arrays.items():
        if classify(name).role == "token_embedding" and values.ndim == 2:
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


def write_embedding_geometry(embedding, tokenizer, writer, token_ids=None) -> dict | None:
    """Store the embedding sample and return the neighbour table for the manifest.

    Args:
        embedding: [vocab, d_model] token-embedding matrix, or None (then nothing is written).
        tokenizer: the checkpoint's tokenizer, or None.
        writer: the ArtifactWriter of the staging folder.
        token_ids: the corpus as a ragged list of id arrays, or None without a corpus.
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
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    probes = choose_probes(strings, counts, special)
    neighbours = nearest_neighbours(embedding, probes)
    return {
        "vocab_size": int(vocab),
        "sample_size": len(sample),
        "sample_from_corpus": int(np.count_nonzero(counts[sample])),
        "probes_from_corpus": bool(counts.any()),
        "neighbours": [
            {
                "probe": strings[probe],
                "probe_id": probe,
                "count": int(counts[probe]),
                "neighbours": [
                    {"token": strings[i], "id": i, "cosine": round(c, 4)} for i, c in found
                ],
            }
            for probe, found in zip(probes, neighbours, strict=True)
        ],
        "settings": {
            "sample_size": SAMPLE_SIZE,
            "top_corpus": TOP_CORPUS,
            "probes": PROBES,
            "neighbours": NEIGHBOURS,
            "seed": SEED,
        },
    }
