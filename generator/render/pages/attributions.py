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
    first = examples[0]
    first_rows = [
        {"token": token_label(p, t), "score": s}
        for p, t, s in zip(
            first["positions"],
            first["tokens"],
            first["scores"]["integrated_gradients"],
            strict=True,
        )
    ]
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
                charts.head_heatmap_chart(heads, "ablation", "Ablation importance"),
                "Heatmap of the objective drop when each head is removed",
                "Mean drop of the objective when this head alone is removed (head mask 0).",
            ),
            chart(
                "head-gradient",
                charts.head_heatmap_chart(heads, "gradient", "Gradient importance"),
                "Heatmap of gradient-based head importance",
                "Michel et al. (2019): mean |∂objective/∂mask| of each head at mask = 1.",
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
    data = {"examples": examples, "methods": METHOD_NAMES, "lens": lens}
    return {
        "attribution": data,
        "reason": None,
        "details": details,
        "charts": figures,
        "agreement": tables.get("head_importance_facts", {}).get("spearman"),
    }


def attributions_headline(artifacts: Artifacts, tables: dict) -> dict:
    """Most important head (ablation) and the median IG completeness error."""
    facts = {}
    heads = tables.get("head_importance")
    if heads:
        top = max(heads, key=lambda row: row["ablation"])
        kind = f"{top['kind']}, " if top.get("kind", "self-attention") != "self-attention" else ""
        facts["most important head"] = f"{kind}layer {top['layer']}, head {top['head']}"
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
)
