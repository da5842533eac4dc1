"""What every page found, as short facts that link to the view showing each (findings first).

`findings(tables)` is a pure function of the analysis tables: each fact names its page, the
chart that shows it and the page state (the URL-fragment keys of state.js) that opens the view.
A fact is left out when its page's tables are missing (an analysis the card leaves out).
"""

from __future__ import annotations

from urllib.parse import quote

ATTENTION_SHARE = 0.5  # a head "attends to" special / previous tokens above this mean share
TOP_HEADS = 3  # most important heads named
PRUNING_KEEP = 0.9  # pruning is tolerated while the objective keeps this share of its value
TOP_MATRICES = 3  # heaviest-tailed weight matrices named


def fact_link(fact: dict) -> str:
    """Return the fact's permalink, relative to the model folder: page#state&chart=ID."""
    params = {**fact["state"], "chart": fact["chart"]}
    fragment = "&".join(
        f"{quote(str(k), safe='')}={quote(str(v), safe=',')}" for k, v in params.items()
    )
    return f"{fact['page']}#{fragment}"


def _fact(topic: str, text: str, page: str, chart: str, **state) -> dict:
    """Return one fact."""
    return {"topic": topic, "text": text, "page": page, "chart": chart, "state": state}


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def probing_facts(tables: dict) -> list[dict]:
    """The best probing layer of the headline pooling and its accuracy against chance."""
    summary = tables.get("representation_summary") or {}
    protocol = summary.get("protocol")
    poolings = summary.get("poolings") or []
    if not protocol or not poolings or poolings[0] not in summary.get("best", {}):
        return []
    pooling = poolings[0]
    best = summary["best"][pooling]
    text = (
        f"Best probing layer ({pooling} pooling): layer {best['layer']}, held-out linear-probe "
        f"accuracy {_percent(best['accuracy'])} ± {_percent(best['se'])} against a chance level "
        f"of {_percent(protocol['chance'])}."
    )
    return [
        _fact(
            "probing",
            text,
            "representations.html",
            "rep-separability",
            pooling=pooling,
            layer=best["layer"],
        )
    ]


def _heads_named(rows: list[dict]) -> str:
    return ", ".join(f"layer {r['layer']} head {r['head']}" for r in rows)


def head_metric_facts(tables: dict) -> list[dict]:
    """Heads whose mean attention on special tokens or on the previous token exceeds half."""
    rows = tables.get("head_metrics") or []
    facts = []
    for metric, what in (("special", "special tokens"), ("previous", "the previous token")):
        scored = [r for r in rows if r.get(metric) is not None]
        if not scored:
            continue
        ranked = sorted(scored, key=lambda r: (-r[metric], r["layer"], r["head"]))
        over = [r for r in ranked if r[metric] > ATTENTION_SHARE]
        top = ranked[0]
        if over:
            text = (
                f"{len(over)} of {len(scored)} heads put more than half their attention on {what}"
                f" (most: {_heads_named(over[:TOP_HEADS])}; layer {top['layer']} head "
                f"{top['head']}: {_percent(top[metric])})."
            )
        else:
            text = (
                f"No head puts more than half its attention on {what}; the most is layer "
                f"{top['layer']} head {top['head']} with {_percent(top[metric])}."
            )
        facts.append(_fact(f"heads-{metric}", text, "heads.html", "heads-heatmap", metric=metric))
        facts.append(
            _fact(
                f"heads-{metric}-top",
                f"Layer {top['layer']} head {top['head']}, the head most on {what}, on the "
                "first showcase example.",
                "attention.html",
                "attention-heatmap",
                layer=top["layer"],
                head=top["head"],
            )
        )
    return facts


def importance_facts(tables: dict) -> list[dict]:
    """The most important heads by ablation, and how much pruning the objective tolerates."""
    heads = tables.get("head_importance") or []
    facts = []
    if heads:
        ranked = sorted(heads, key=lambda r: (-r["ablation"], r["layer"], r["head"]))[:TOP_HEADS]
        named = "; ".join(
            f"layer {r['layer']} head {r['head']}"
            + (f" ({r['kind']})" if r.get("kind", "self-attention") != "self-attention" else "")
            + f": drop {r['ablation']:.4f}"
            for r in ranked
        )
        facts.append(
            _fact(
                "importance",
                f"Most important heads (objective drop when removed alone): {named}.",
                "attributions.html",
                "head-ablation",
            )
        )
    curve = [r for r in tables.get("pruning_curve") or [] if r["order"] == "by importance"]
    if curve:
        curve.sort(key=lambda r: r["fraction"])
        full = curve[0]["objective"]
        kept = [r["fraction"] for r in curve if abs(r["objective"]) >= PRUNING_KEEP * abs(full)]
        tolerated = 0.0
        for row in curve:  # the longest prefix that keeps the objective
            if row["fraction"] not in kept:
                break
            tolerated = row["fraction"]
        facts.append(
            _fact(
                "pruning",
                f"Pruning the least important heads first, the objective keeps at least "
                f"{PRUNING_KEEP:.0%} of its value with up to {tolerated:.0%} of the heads removed.",
                "attributions.html",
                "pruning",
            )
        )
    return facts


def dimension_facts(tables: dict) -> list[dict]:
    """Massive (flagged outlier) and dead dimensions of the hidden states."""
    outliers = tables.get("activation_outliers")
    if outliers is None:
        return []
    flagged = [r for r in outliers if r.get("flagged")]
    dead_count = len(tables.get("activation_dead_dimensions") or [])  # one row per layer, dim
    dead_text = f"{dead_count} dead dimension–layer pairs." if dead_count else "No dead dimension."
    if flagged:
        top = max(flagged, key=lambda r: (r["ratio"], -r["dim"]))
        text = (
            f"{len(flagged)} massive-activation dimension–layer pairs; the largest is dimension "
            f"{top['dim']} at {top['layer_label']}, peak {top['value']:.4g} "
            f"({top['ratio']:.1f}× the layer's typical dimension). {dead_text}"
        )
        layer = top["layer_label"]
    else:
        text = f"No massive-activation dimension is flagged. {dead_text}"
        layer = outliers[0]["layer_label"] if outliers else None
    state = {"profile-layer": layer} if layer is not None else {}
    return [_fact("dimensions", text, "activations.html", "activations-profile", **state)]


def spectrum_facts(tables: dict) -> list[dict]:
    """The weight matrices with the heaviest-tailed singular-value spectra (smallest alpha)."""
    fitted = [r for r in tables.get("weights_spectra") or [] if r.get("alpha") is not None]
    if not fitted:
        return []
    ranked = sorted(fitted, key=lambda r: (r["alpha"], r["name"]))[:TOP_MATRICES]
    named = "; ".join(f"{r['name']} (α = {r['alpha']:.2f})" for r in ranked)
    top = ranked[0]
    return [
        _fact(
            "spectra",
            f"Heaviest-tailed weight spectra (smallest power-law exponent α): {named}.",
            "weights.html",
            "weights-singular",
            block=top["block"],
            matrix=top["name"],
        )
    ]


def findings(tables: dict) -> list[dict]:
    """Return the facts of every page, in page order.

    Args:
        tables: the analysis tables by name.

    Returns:
        [{topic, text, page, chart, state}]: `state` maps URL-fragment keys to values.
    """
    return [
        *probing_facts(tables),
        *head_metric_facts(tables),
        *importance_facts(tables),
        *dimension_facts(tables),
        *spectrum_facts(tables),
    ]
