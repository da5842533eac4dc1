"""Write benchmarks/results.md: machine, every measurement (median, min–max) and the targets."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.e2e import E2EResult
from benchmarks.forward import OURS, ForwardResult
from benchmarks.pages import PAGE_LIMIT, RENDER_LIMIT_MS, SiteResult
from benchmarks.scaling import LONG_JOIN, Point
from benchmarks.sizes import SizeResult

MB = 1e6


@dataclass(frozen=True)
class Target:
    """One figure with its goal."""

    figure: str
    goal: str
    value: float | None
    limit: float | None  # None: reported beside the targets, no limit of its own
    higher_is_better: bool = False
    shown: str = ""

    @property
    def met(self) -> str:
        """'yes', 'no', 'n/a' when it was not measured, '–' when it has no limit."""
        if self.value is None:
            return "n/a"
        if self.limit is None:
            return "–"
        ok = self.value >= self.limit if self.higher_is_better else self.value <= self.limit
        return "yes" if ok else "**no**"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def machine_section(machine: dict) -> list[str]:
    """Machine, versions and thread settings."""
    lines = [
        "## Machine",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable), "
        f"{machine['memory_gib']} GiB RAM; {machine['os']}",
        "- load average (1, 5, 15 min) at start: "
        + ", ".join(f"{x:.1f}" for x in machine["load_average_start"])
        + "; at end: "
        + ", ".join(f"{x:.1f}" for x in machine.get("load_average_end", ()))
        + " (other processes share these cores: wall times are noisy, CPU times less so)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        "- threads: " + "; ".join(f"{k}: {v}" for k, v in machine["threads"].items()),
        "",
    ]
    return lines


def forward_section(result: ForwardResult) -> list[str]:
    """Forward-pass throughput and fraction of the GEMM peak."""
    lines = [
        "## Forward pass",
        "",
        f"Model `{result.model}`; ours = the extract stage's jitted showcase step (hidden states, "
        "attentions, queries, keys, values); PyTorch = `BertModel` eager with hidden states and "
        "attentions under `torch.inference_mode()`. Also measured (not targets): the same step "
        "compiled without YNNPACK fusions (experimental XLA CPU flag), and the corpus step the "
        "build runs over the whole corpus (pooled summaries only). Same token ids (no padding), "
        "alternated, after warm-up. Model FLOPs per pass = L·(T·(8d² + 4d·f) + 4T²·d) per "
        "sequence (matmuls only; see benchmarks/forward.py).",
        "",
    ]
    if result.torch_skipped:
        lines += [f"PyTorch comparison skipped: {result.torch_skipped}.", ""]
    rows = []
    for shape in result.shapes:
        for name in shape.seconds:
            frac = shape.gflops(name).scaled(100.0 / result.peak_gflops)
            rows.append(
                [
                    f"{shape.batch} × {shape.tokens}",
                    name,
                    shape.seconds[name].fmt(3, "s"),
                    shape.tokens_per_second(name).fmt(0),
                    shape.gflops(name).fmt(1),
                    frac.fmt(1, "%"),
                ]
            )
    lines += _table(
        ["batch × tokens", "implementation", "time", "tokens/s", "GFLOP/s", "of GEMM peak"],
        rows,
    )
    lines += [
        "",
        f"GEMM ({result.gemm_n}³ float32, GFLOP/s, alternated with the passes above; "
        "the best median is the peak):",
        "",
    ]
    lines += _table(
        ["library", "GFLOP/s"], [[name, s.fmt(1)] for name, s in result.gemm_gflops.items()]
    )
    diffs = [
        f"{s.batch}×{s.tokens}: " + ", ".join(f"{k} {v:.1e}" for k, v in s.max_abs_diff.items())
        for s in result.shapes
        if s.max_abs_diff
    ]
    if diffs:
        lines += ["", "Max |ours − PyTorch| on these inputs: " + "; ".join(diffs) + "."]
    return lines + [""]


def e2e_section(result: E2EResult) -> list[str]:
    """Cold build vs baseline, warm rebuild, template re-render."""
    rows = [["cold `modelatlas build`", result.seconds(result.cold), result.cpu(result.cold)]]
    if result.baseline:
        rows.append(
            ["seeds baseline script", result.seconds(result.baseline), result.cpu(result.baseline)]
        )
    rows += [
        ["warm rebuild (nothing changed)", result.seconds(result.warm), result.cpu(result.warm)],
        [
            "re-render after template edit",
            result.seconds(result.template),
            result.cpu(result.template),
        ],
    ]
    lines = ["## End to end", "", f"Card `{result.card}`, each run a fresh process.", ""]
    if result.baseline_skipped:
        lines += [f"Baseline skipped: {result.baseline_skipped}.", ""]
    lines += _table(
        ["case", "wall s", "CPU s (user+sys)"],
        [[name, wall.fmt(1), cpu.fmt(1)] for name, wall, cpu in rows],
    )
    compiled = result.compile_seconds()
    if compiled:
        lines += [
            "",
            f"JAX compile time inside the cold builds (reported by build): {compiled.fmt(1, 's')}.",
        ]
    if result.baseline:
        out = result.baseline[-1].stdout.strip().splitlines()
        if out:
            lines += ["", f"Baseline stages (last run): `{out[-1]}`"]
    return lines + [""]


def scaling_section(points: list[Point]) -> list[str]:
    """Build time and peak memory per setting."""
    lines = [
        "## Scaling",
        "",
        "Cold builds (fresh artifacts, empty compile cache), one process each; peak RSS of "
        "that process. Corpora: demo texts with an index appended; the max_length series joins "
        f"{LONG_JOIN} demo sentences per text so every text reaches the limit.",
        "",
    ]
    lines += _table(
        ["setting", "texts", "max_length", "wall s", "CPU s", "JAX compile s", "peak RSS MiB"],
        [
            [
                p.label,
                str(p.texts),
                str(p.max_length),
                p.seconds.fmt(1),
                p.cpu_seconds.fmt(1),
                p.compile_seconds.fmt(1),
                p.rss_mb.fmt(0),
            ]
            for p in points
        ],
    )
    return lines + [""]


def sizes_section(results: list[SizeResult]) -> list[str]:
    """Cold build of each real-size checkpoint: time, compile, memory, stages, baseline."""
    from generator.timings import format_timings

    lines = [
        "## Real sizes",
        "",
        "Random-init checkpoints of published sizes written at bench time "
        "(`benchmarks/checkpoints.py`, MiniLM's tokenizer), each built cold once with the default "
        "card's settings on the demo corpus (one process; peak RSS of that process), and the "
        "seeds-style script on the same checkpoint.",
        "",
    ]
    rows = []
    for r in results:
        base = r.baseline.seconds if r.baseline else None
        compiled = r.compile_seconds
        rows.append(
            [
                r.kind,
                f"{r.parameters / 1e6:.1f}M",
                f"{r.checkpoint.seconds:.1f}",
                f"{r.build.seconds:.1f}",
                f"{r.build.cpu_seconds:.1f}",
                "–" if compiled is None else f"{compiled:.1f}",
                f"{r.rss_gb:.2f}",
                f"{r.rss_bytes_per_parameter:.1f}",
                "–" if base is None else f"{base:.1f}",
                "–" if base is None else f"{r.build.seconds / base:.2f}",
            ]
        )
    lines += _table(
        [
            "model",
            "parameters",
            "checkpoint written s",
            "cold build wall s",
            "CPU s",
            "JAX compile s",
            "peak RSS GB",
            "RSS bytes / parameter",
            "seeds script s",
            "build / script",
        ],
        rows,
    )
    lines += ["", "Where each cold build's time went (its timings.json; seconds):", ""]
    for r in results:
        lines.append(f"- **{r.kind}**:")
        lines += [f"  - {line}" for line in format_timings(r.timings)]
        stages = r.baseline_stages()
        if stages:
            lines.append(
                "  - seeds script: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
            )
    return lines + [""]


def size_targets(results: list[SizeResult]) -> list[Target]:
    """The issue's targets for real sizes: time and memory per size, compile, RSS growth."""
    limits = {"bert-base": 150.0, "gpt2-small": 200.0}
    out = []
    for r in results:
        if r.kind in limits:
            limit = limits[r.kind]
            out.append(Target(f"{r.kind} cold build, s", f"≤ {limit:.0f}", r.build.seconds, limit))
            out.append(Target(f"{r.kind} peak RSS, GB", "≤ 3", r.rss_gb, 3.0))
        out.append(Target(f"{r.kind} JAX compile, s", "≤ 10", r.compile_seconds, 10.0))
        out.append(
            Target(
                f"{r.kind} peak RSS per parameter, bytes ({r.parameters / 1e6:.0f}M)",
                "(see below)",
                r.rss_bytes_per_parameter,
                None,
            )
        )
    if len(results) > 1:
        small = min(results, key=lambda r: r.parameters)
        large = max(results, key=lambda r: r.parameters)
        if large.parameters > small.parameters:
            out.append(
                Target(
                    f"RSS per parameter, {large.kind} / {small.kind} (≤ 1: at most linear)",
                    "≤ 1.0",
                    large.rss_bytes_per_parameter / small.rss_bytes_per_parameter,
                    1.0,
                )
            )
    return out


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("pass" if ok else "FAIL")


def pages_section(site: SiteResult) -> list[str]:
    """Bytes, initial-view data files and render time of every page, with the limits."""
    lines = [
        f"## Pages: {site.label}",
        "",
        f"Shared Vega runtime {site.vega_bytes / MB:.2f} MB (counted once); our own JS/CSS "
        f"{site.own_asset_bytes / MB:.3f} MB; on-demand data files {site.data_bytes / MB:.2f} MB; "
        f"figures {site.figure_bytes / MB:.2f} MB; whole site {site.site_bytes / MB:.2f} MB. "
        f"Weight: the HTML plus the data files its initial view loads (limit "
        f"{PAGE_LIMIT / MB:.0f} MB); render: median ms until every chart is drawn (limit "
        f"{RENDER_LIMIT_MS / 1000:.1f} s).",
        "",
    ]
    if site.browser_skipped:
        lines += [f"Browser timing skipped: {site.browser_skipped}.", ""]
    rows = []
    for page in site.pages:
        render = page.render_ms.fmt(0) if page.render_ms else "–"
        problems = "; ".join(page.problems) or "none"
        light, fast = page.verdicts()
        rows.append(
            [
                page.path,
                f"{page.html_bytes / MB:.3f}",
                f"{page.data_files} ({page.data_bytes / MB:.3f} MB)",
                f"{page.weight / MB:.3f}",
                _verdict(light),
                str(page.charts),
                render,
                _verdict(fast),
                problems,
            ]
        )
    header = ["page", "HTML MB", "data files loaded", "weight MB", "≤ 2 MB", "charts"]
    lines += _table([*header, "render ms", "≤ 1.5 s", "problems"], rows)
    return lines + [""]


def site_targets(site: SiteResult) -> list[Target]:
    """The page limits of one site: heaviest page weight, slowest page, whole site."""
    heaviest = max((p.weight for p in site.pages), default=0) + site.own_asset_bytes
    renders = [p.render_ms.median for p in site.pages if p.render_ms]
    return [
        Target(
            f"{site.label}: heaviest page, MB (HTML + initial data files + own JS/CSS, no Vega "
            "runtime)",
            "≤ 2",
            heaviest / MB,
            PAGE_LIMIT / MB,
        ),
        Target(
            f"{site.label}: slowest page until all charts rendered, s",
            "≤ 1.5",
            max(renders) / 1000 if renders else None,
            RENDER_LIMIT_MS / 1000,
        ),
    ]


def _sites(site: SiteResult | list[SiteResult] | None) -> list[SiteResult]:
    """Return the measured sites as a list (one site, several, or none)."""
    if site is None:
        return []
    return list(site) if isinstance(site, list) else [site]


def targets(
    forward: ForwardResult | None,
    e2e: E2EResult | None,
    points: list[Point] | None,
    site: SiteResult | list[SiteResult] | None,
    sizes: list[SizeResult] | None = None,
) -> list[Target]:
    """Every target with its measured value (None when not measured)."""
    out = []
    if forward:
        for s in forward.shapes:
            shape = f"{s.batch}×{s.tokens}"
            if "PyTorch eager" in s.seconds:
                ratio = s.seconds["PyTorch eager"].median / s.seconds[OURS].median
                out.append(
                    Target(f"forward {shape}: ours / PyTorch tokens/s", "≥ 1.0", ratio, 1.0, True)
                )
            frac = s.gflops(OURS).median / forward.peak_gflops
            out.append(Target(f"forward {shape}: fraction of GEMM peak", "≥ 0.60", frac, 0.6, True))
    if e2e:
        base = e2e.seconds(e2e.baseline).median if e2e.baseline else None

        def ratio(runs):
            return e2e.seconds(runs).median / base if base else None

        out += [
            Target("cold build / baseline (wall)", "≤ 1.0", ratio(e2e.cold), 1.0),
            Target("warm rebuild / baseline", "≤ 0.2", ratio(e2e.warm), 0.2),
            Target("template re-render / baseline", "≤ 0.3", ratio(e2e.template), 0.3),
        ]
    if points:
        by_n = {p.texts: p for p in points if p.label.endswith("texts")}
        if 400 in by_n and 1600 in by_n:
            out.append(
                Target(
                    "build time 1600 / 400 texts",
                    "≤ 4.5",
                    by_n[1600].seconds.median / by_n[400].seconds.median,
                    4.5,
                )
            )
            out.append(
                Target(
                    "peak RSS 1600 / 400 texts",
                    "≤ 1.5",
                    by_n[1600].rss_mb.median / by_n[400].rss_mb.median,
                    1.5,
                )
            )
    for index, one in enumerate(_sites(site)):
        out += site_targets(one)
        if index == 0:  # the default site
            out.append(Target("whole site incl. figures, MB", "≤ 25", one.site_bytes / MB, 25.0))
    return out + size_targets(sizes or [])


def write_report(
    path,
    machine: dict,
    forward: ForwardResult | None,
    e2e: E2EResult | None,
    points: list[Point] | None,
    site: SiteResult | list[SiteResult] | None,
    command: str,
    seconds: float,
    sizes: list[SizeResult] | None = None,
) -> str:
    """Render the markdown report, write it to `path`, and return it."""
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` in {seconds / 60:.1f} min. Figures are medians with "
        "(min–max) over the repetitions; contenders of a comparison ran alternately in one "
        "process run. How to read and reproduce them: benchmarks/README.md.",
        "",
        "## Targets",
        "",
    ]
    lines += _table(
        ["figure", "target", "measured", "met"],
        [
            [t.figure, t.goal, "–" if t.value is None else f"{t.value:.3g}", t.met]
            for t in targets(forward, e2e, points, site, sizes)
        ],
    )
    lines += [""] + machine_section(machine)
    if forward:
        lines += forward_section(forward)
    if e2e:
        lines += e2e_section(e2e)
    if points:
        lines += scaling_section(points)
    if sizes:
        lines += sizes_section(sizes)
    for one in _sites(site):
        lines += pages_section(one)
    text = "\n".join(lines).rstrip() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text
