"""The analyses a card's `analyses` key can name, and what choosing them means (leaf module).

Each analysis feeds one page (or one section of a page); leaving it out of `analyses` skips the
arrays extracted only for it, its tables and its page, which is then not linked. `parameters` and
`corpus` feed the overview and always run. `analyze/run.py` holds the functions, in this order.
"""

from __future__ import annotations

# name -> what it adds (and where it shows), in the order they run.
ANALYSES: dict[str, str] = {
    "parameters": "parameter counts by component (overview; always run)",
    "corpus": "corpus lengths and labels (overview; always run)",
    "weights": "weight statistics, spectra and heatmaps (weights page)",
    "activations": "residual-stream statistics (activations page)",
    "neurons": "MLP-neuron tables (the neuron section of the activations page)",
    "attributions": "token attributions, head importance, logit lens (attributions page)",
    "heads": "per-head attention metrics and clusters (heads page)",
    "qk_geometry": "query/key geometry of each head (a section of the heads page)",
    "representations": "probes, CKA and maps of sequence embeddings (representations page)",
}
ALWAYS = ("parameters", "corpus")


def selected_analyses(requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """Return the analyses that run for a card's `analyses` (None: all), in run order."""
    if requested is None:
        return tuple(ANALYSES)
    return tuple(name for name in ANALYSES if name in ALWAYS or name in requested)


def unknown_analyses(requested: tuple[str, ...]) -> list[str]:
    """Return the requested names that are not analyses, in the order given."""
    return [name for name in requested if name not in ANALYSES]


def recorded_analyses(manifest: dict) -> tuple[str, ...]:
    """Return the analyses an artifact folder was extracted for (its manifest's `analyses`)."""
    return tuple(manifest.get("analyses") or ANALYSES)
