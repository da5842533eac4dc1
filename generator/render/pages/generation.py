"""Time steps of the attention page: the greedy continuation of each showcase example, step by
step (generation/* arrays, see extract/generation.py).

Per example the page gets the tokens before the first generated one (`base`: the prompt of a
decoder-only model, the decoder start token of T5), the generated tokens, each step's top-10
predictions and logit lens, and the fed token's attention rows packed as uint16 thousandths
[step, layer, head, key] (key = base + generated tokens but the last). Step s shows the prefix
base + generated[:s]: its last token is the one fed at that step, and the predictions are for
generated[s]. Encoder-only models (and cards with `generation_steps: 0`) get a reason instead.
"""

from __future__ import annotations

import numpy as np

from generator.artifacts import Artifacts
from generator.render.charts import generation as charts
from generator.render.pages.common import chart
from generator.render.pages.packing import decode_weights, encode_weights, token_label

KINDS = {"self": "generation/attentions", "cross": "generation/cross_attentions"}


def not_shown_reason(artifacts: Artifacts) -> str:
    """Say why a model has no time steps (only called when generation/* is absent)."""
    config = artifacts.manifest["model"]["config"]
    settings = artifacts.manifest.get("settings") or {}
    if settings.get("generation_steps") == 0:
        return "The card sets generation_steps: 0, so no continuation was generated."
    if config.get("seq2seq") or (config.get("causal") and "causal-lm" in config.get("heads", [])):
        return (
            "No continuation was generated: the model's positions left no room after the prompts."
        )
    if config.get("family") == "xlnet":
        return (
            "XLNet predicts tokens in permuted orders through two attention streams; step-by-step "
            "generation with a key-value cache is not implemented for it, so no time steps are shown."
        )
    if config.get("causal"):
        return (
            "Time steps need a language-model head to predict the next token; this decoder "
            "has none (it is a classifier), so there is nothing to generate."
        )
    return (
        "Time steps show a model generating text one token at a time; this is an encoder-only "
        "model, which reads the whole text at once and predicts no next token, so the view does "
        "not apply."
    )


def _strings(values) -> list[str]:
    return [str(v) for v in values]


def generation_examples(artifacts: Artifacts, seq2seq: bool) -> list[dict]:
    """Return per showcase example: base and generated tokens, per-step predictions, lens and
    packed attention rows (see the module docstring)."""
    length = artifacts.array("generation/length")
    tokens = artifacts.array("generation/tokens")
    top_tokens, top_probs = (artifacts.array(f"generation/top_{n}") for n in ("tokens", "probs"))
    lens_tokens = artifacts.array("generation/lens_top_tokens")
    lens_probs = artifacts.array("generation/lens_top_probs")
    maps = {kind: artifacts.array(name) for kind, name in KINDS.items() if artifacts.has(name)}
    mask = artifacts.array("showcase/attention_mask")
    words = artifacts.array("showcase/tokens")
    examples = []
    for example, n in enumerate(length):
        n = int(n)
        prompt = _strings(words[example, : int(mask[example].sum())])
        start = (
            _strings(artifacts.array("showcase/decoder_tokens")[example, :1]) if seq2seq else prompt
        )
        weights = {"self": maps["self"][example, :n, :, :, : len(start) + n - 1]}
        if "cross" in maps:
            weights["cross"] = maps["cross"][example, :n, :, :, : len(prompt)]
        examples.append(
            {
                "prompt": prompt,
                "base": start,
                "generated": _strings(tokens[example, :n]),
                "top": [
                    [
                        [str(t), round(float(p), 4)]
                        for t, p in zip(top_tokens[example, s], top_probs[example, s], strict=True)
                    ]
                    for s in range(n)
                ],
                "lens": [
                    [
                        [[str(t), round(float(p), 4)] for t, p in zip(lt, lp, strict=True)]
                        for lt, lp in zip(
                            lens_tokens[example, s], lens_probs[example, s], strict=True
                        )
                    ]
                    for s in range(n)
                ],
                "weights": {
                    kind: encode_weights(np.asarray(value, np.float32))
                    for kind, value in weights.items()
                },
            }
        )
    return examples


def _unpack(example: dict, kind: str, n_layers: int, n_heads: int) -> np.ndarray:
    """Return one example's attention rows [step, layer, head, key] in [0, 1]."""
    steps = len(example["generated"])
    return decode_weights(example["weights"][kind]).reshape(steps, n_layers, n_heads, -1)


def prefix(example: dict, step: int) -> list[str]:
    """Return the tokens the fed token of `step` sees: base + generated[:step] (as generation.js)."""
    return example["base"] + example["generated"][:step]


def attention_rows(
    example: dict, kind: str, shape: tuple[int, int], step: int, *, layer: int = 0, head: int = 0
) -> list[dict]:
    """Rows of the step attention chart (mirrors `attentionRows` in generation.js).

    `shape` is (layers, heads). Self-attention keys are the prefix (the last one is the fed
    token); cross-attention keys are the encoder's tokens.
    """
    weights = _unpack(example, kind, *shape)[step, layer, head]
    if kind == "cross":
        keys, kinds = example["prompt"], ["encoder token"] * len(example["prompt"])
    else:
        keys = prefix(example, step)
        kinds = ["earlier token"] * (len(keys) - 1) + ["fed token"]
    return [
        {"key": token_label(i, key), "weight": round(float(weights[i]), 3), "new": kinds[i]}
        for i, key in enumerate(keys)
    ]


def prediction_rows(example: dict, step: int) -> list[dict]:
    """Rows of the predictions chart (mirrors `predictionRows` in generation.js)."""
    chosen = example["generated"][step]
    return [
        {
            "rank": rank,
            "label": f"{rank + 1}. {token}",
            "prob": prob,
            "chosen": "greedy choice" if rank == 0 and token == chosen else "other",
        }
        for rank, (token, prob) in enumerate(example["top"][step])
    ]


def lens_rows(example: dict, step: int) -> list[dict]:
    """Rows of the lens chart (mirrors `lensRows` in generation.js)."""
    return [
        {"layer": layer, "rank": rank, "token": token, "prob": prob}
        for layer, ranked in enumerate(example["lens"][step])
        for rank, (token, prob) in enumerate(ranked)
    ]


def generation_context(artifacts: Artifacts) -> dict:
    """Return {generation: page data or None, reason: why not, charts: [...]}."""
    if not artifacts.has("generation/token_ids"):
        return {"generation": None, "reason": not_shown_reason(artifacts), "charts": []}
    config = artifacts.manifest["model"]["config"]
    seq2seq = artifacts.has("generation/cross_attentions")
    shape = (config["n_decoder_layers"] if seq2seq else config["n_layers"], config["n_heads"])
    examples = generation_examples(artifacts, seq2seq)
    data = {
        "seq2seq": seq2seq,
        "n_layers": shape[0],
        "n_heads": shape[1],
        "steps": int(artifacts.array("generation/token_ids").shape[1]),
        "requested": int((artifacts.manifest.get("generation") or {}).get("requested", 0)),
        "max_positions": config.get("max_positions"),
        "kinds": list(examples[0]["weights"]) if examples else ["self"],
        "examples": examples,
    }
    first = examples[0]
    self_label = "decoder self-attention" if seq2seq else "attention"
    charts_out = [
        chart(
            "generation-attention",
            charts.step_attention_chart([]),
            "Bar chart: attention of the token fed at the selected time step over the tokens before it",
            f"The {self_label} of the token fed at this step (the last bar) over every token "
            "before it, for the selected layer and head: the bars sum to 1.",
            interactive=True,
            figure_spec=charts.step_attention_chart(attention_rows(first, "self", shape, 0)),
        ),
    ]
    if seq2seq:
        charts_out.append(
            chart(
                "generation-cross",
                charts.step_attention_chart([]),
                "Bar chart: cross-attention of the decoder token fed at the selected step over the encoder tokens",
                "The cross-attention of the decoder token fed at this step over the encoder's "
                "input tokens, for the selected layer and head: the bars sum to 1.",
                interactive=True,
                figure_spec=charts.step_attention_chart(attention_rows(first, "cross", shape, 0)),
            )
        )
    charts_out += [
        chart(
            "generation-predictions",
            charts.predictions_chart([]),
            "Bar chart: the ten most probable next tokens at the selected time step",
            "Predicted output words: the model's ten most probable next tokens after this prefix "
            "and their probabilities; greedy decoding takes the first (red), which becomes the "
            "next step's fed token.",
            interactive=True,
            figure_spec=charts.predictions_chart(prediction_rows(first, 0)),
        ),
        chart(
            "generation-lens",
            charts.lens_chart([]),
            "Grid: logit lens of the token fed at the selected time step, top tokens per layer",
            "Logit lens at this step: each layer's residual stream at the fed token read through "
            "the final norm and the unembedding, with its top tokens and their probabilities "
            "(the top layer is the model's own prediction).",
            interactive=True,
            figure_spec=charts.lens_chart(lens_rows(first, 0)),
        ),
    ]
    return {"generation": data, "reason": "", "charts": charts_out}
