"""Attributions page: token attributions, head importance and the logit lens."""

from __future__ import annotations

from generator.artifacts import Artifacts
from generator.render.charts import attributions as charts
from generator.render.pages.common import Page, chart

METHOD_NAMES = {
    "integrated_gradients": "Integrated gradients",
    "grad_input": "Gradient × input",
    "grad_norm": "Gradient norm",
    "rollout": "Attention rollout",
}


GRADIENT_CAPTIONS = {
    "michel": "Michel et al. (2019): mean |∂objective/∂mask| of each head at mask = 1.",
    "taylor-fidelity": "Second-order Taylor estimate of the drop, ½‖P⊥ ∂e/∂ξ‖² / ‖e‖² (e: the "
    "text's embedding, ξ: the head's mask, P⊥: off e), mean over texts: the similarity to the "
    "unablated embedding is at its maximum with every head, so its gradient is zero there.",
}


def token_label(position: int, token: str) -> str:
    """The "NNNN token" label the charts sort by and show as "token"."""
    return f"{position:04d} {token}"


def example_data(tables: dict) -> list[dict]:
    """Per showcase example: text, facts and per-method token scores for the page script."""
    examples = {
        row["example"]: {
            **row,
            "tokens": [],
            "positions": [],
            "scores": {m: [] for m in METHOD_NAMES},
        }
        for row in tables["attribution_examples"]
    }
    for row in tables["attribution_tokens"]:
        item = examples[row["example"]]
        item["tokens"].append(row["token"])
        item["positions"].append(row["position"])
        for method in METHOD_NAMES:
            item["scores"][method].append(row[method])
    return [examples[key] for key in sorted(examples)]


def score_rows(item: dict, method: str) -> list[dict]:
    """Return the token-scores chart's rows of one example and method (as `scoreRows`)."""
    return [
        {"token": token_label(p, t), "method": method, "score": s}
        for p, t, s in zip(item["positions"], item["tokens"], item["scores"][method], strict=True)
    ]


def lens_rows(tables: dict) -> dict[str, list[dict]]:
    """Logit-lens chart rows per example (as strings for JSON keys)."""
    rows: dict[str, list[dict]] = {}
    for row in tables.get("logit_lens", []):
        rows.setdefault(str(row["example"]), []).append(
            {
                "layer": row["layer"],
                "token": token_label(row["position"], row["token"]),
                "top": row["top"],
                "top_prob": row["top_prob"],
                "final": row["final"],
                "final_rank": row["final_rank"],
                "final_prob": row["final_prob"],
            }
        )
    return rows


def attributions_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context: what was measured (or why not), the page data and the charts."""
    details = artifacts.manifest.get("attribution") or {}
    if "attribution_examples" not in tables:
        reason = details.get("skipped") or (
            "this card names no corpus"
            if not artifacts.manifest.get("corpus")
            else "attributions were not computed for this card (see its `analyses` key)"
        )
        return {"attribution": None, "reason": reason, "details": details, "charts": []}
    examples = example_data(tables)
    first_rows = score_rows(examples[0], "integrated_gradients")
    figures = [
        chart(
            "token-scores",
            charts.token_scores_chart([]),
            "Bar chart of per-token attribution scores of the selected example",
            "Attribution of each input token to the objective (selected example and "
            "method); positive pushes the objective up.",
            interactive=True,
            figure_spec=charts.token_scores_chart(first_rows),
        )
    ]
    lens = lens_rows(tables)
    heads = tables.get("head_importance")
    if heads:
        figures += [
            chart(
                "head-ablation",
                charts.head_heatmap_chart(heads, "ablation", "Ablation importance", signed=True),
                "Heatmap of the objective drop when each head is removed",
                "Mean drop of the objective when this head alone is removed (head mask 0); "
                "diverging colours: a negative drop means the objective rose without the head."
                " Click a cell to open that head on the attention page.",
            ),
            chart(
                "head-gradient",
                charts.head_heatmap_chart(heads, "gradient", "Gradient importance"),
                "Heatmap of gradient-based head importance",
                GRADIENT_CAPTIONS[details["heads"].get("gradient_method", "michel")]
                + " Click a cell to open that head on the attention page.",
            ),
            chart(
                "head-agreement",
                charts.agreement_chart(heads),
                "Scatter plot of ablation against gradient importance, one point per head",
                "Each head's ablation and gradient importance, with ± one standard error over "
                "the sample's texts: the two methods agree where the points rise together."
                " Click a point to open that head on the attention page.",
            ),
            chart(
                "pruning",
                charts.pruning_chart(tables["pruning_curve"]),
                "Line chart of the objective as heads are removed",
                "Mean objective as heads are removed, least important first versus random order "
                f"(mean of {details['heads']['random_orders']} random orders).",
            ),
        ]
    if lens:
        figures.append(
            chart(
                "lens",
                charts.lens_chart([]),
                "Heatmap of the final prediction's probability at every layer and position",
                "Logit lens: each layer's residual stream read through the final norm "
                "and unembedding; colour = probability of the model's final prediction, "
                "text = that layer's top-1 token.",
                interactive=True,
                figure_spec=charts.lens_chart(lens.get("0", [])),
            )
        )
    # A list, not a mapping: script_json sorts object keys, so the page script must not take
    # the column order of the scores table from a JSON object (it once labelled the columns
    # in this order while filling them in sorted order).
    methods = [{"key": key, "title": title} for key, title in METHOD_NAMES.items()]
    data = {"examples": examples, "methods": methods, "lens": lens}
    return {
        "attribution": data,
        "reason": None,
        "details": details,
        "charts": figures,
        "agreement": tables.get("head_importance_facts", {}),
    }


def head_name(row: dict) -> str:
    """'layer L, head H' (with the kind of attention for encoder-decoders)."""
    kind = f"{row['kind']}, " if row.get("kind", "self-attention") != "self-attention" else ""
    return f"{kind}layer {row['layer']}, head {row['head']}"


def attributions_headline(artifacts: Artifacts, tables: dict) -> dict:
    """The head both importance methods put at the top (if any) and the median IG error."""
    facts = {}
    if tables.get("head_importance"):
        featured = tables.get("head_importance_facts", {}).get("featured")
        facts["most important head"] = (
            head_name(featured)
            if featured
            else "none singled out: ablation and gradient importance do not agree on the top "
            "head within their standard errors"
        )
    examples = tables.get("attribution_examples")
    if examples:
        errors = sorted(row["ig_error"] for row in examples)
        facts["IG completeness error (median)"] = f"{100 * errors[len(errors) // 2]:.2g}%"
    return facts


PAGE = Page(
    "attributions.html",
    "Attributions",
    "model_attributions.html",
    attributions_context,
    scripts=("attributions.js",),
    headline=attributions_headline,
    analysis="attributions",
)
