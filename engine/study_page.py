"""The study's results page: Markdown prose around the figures (``engine.results``), written to
``<out>/results.md`` and between the results markers of a README; never edited by hand.

Every fact the prose states about a run (model shape, max length, epochs, the machine a step was
timed on) is read from the figures and the study's settings, not written here. Longer than most modules
because it is the page: one function per section, in page order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import EditlensError
from engine.metrics import Estimate
from engine.models import REGISTRY
from engine.results import (
    CONVERGENCE,
    CORPORA,
    CORPUS_TITLES,
    DELETED,
    FAITHFULNESS,
    PAPER,
    PAPER_MODEL,
    RESAMPLES,
    SPELLING,
    CheckpointFigures,
    Figures,
    ModelFigures,
    paper_counterpart,
    with_cis,
)
from engine.stats import spearman, spearman_p
from engine.vocabulary import (
    AGGREGATIONS,
    BASELINE_METHOD,
    FORWARD_METHODS,
    HEADLINE_METHOD,
    LAYER_PLOT_METHODS,
    METHOD_NAMES,
    is_per_word,
    method_info,
    metric_info,
)

START, END = "<!-- results:start -->", "<!-- results:end -->"


def check_readme(path: Path) -> str:
    """The file's text, or an error saying why its results section cannot be rewritten."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise EditlensError(f"{path}: cannot read it ({error.strerror})") from None
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise EditlensError(
            f"{path}: needs one {START} line followed by one {END} line; the study writes its "
            "results between them (or pass --no-readme)"
        )
    return text


def replace_section(text: str, section: str) -> str:
    """``text`` with what lies between the markers replaced by ``section``; nothing else moves."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{section.strip()}\n{END}{tail}"


def write_readme(path: Path, section: str) -> None:
    text = check_readme(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(replace_section(text, section), encoding="utf-8")
    tmp.replace(path)


LAYERS_PNG = "top3-by-layer.png"
METHODS_PNG = "top3-by-method.png"
CHECKPOINTS_PNG = "accuracy-vs-top3.png"
GOALS = {DELETED: 0.80, SPELLING: 0.85}  # the best method's top-3 the project aims for
PAGE = "results.md"


def write_page(figures: Figures, out: Path, readme: Path | None = None) -> Path:
    """Draw the plots, write ``<out>/results.md`` and, given a README, its results section."""
    from engine.plots import checkpoint_plot_png, layer_plot_png, method_plot_png

    out.mkdir(parents=True, exist_ok=True)
    layer_plot_png(figures.rows, out / LAYERS_PNG)
    method_plot_png(with_cis(figures), out / METHODS_PNG)
    checkpoint_plot_png(figures.checkpoints, out / CHECKPOINTS_PNG)
    page = out / PAGE
    page.write_text(render_page(figures, images=""), encoding="utf-8")
    if readme is not None:
        prefix = os.path.relpath(out.absolute(), readme.absolute().parent).replace(os.sep, "/")
        write_readme(readme, render_page(figures, images=f"{prefix}/"))
    return page


def ci(est: Estimate | None, digits: int = 3) -> str:
    """``0.709 (0.680–0.738)``: a mean and its 95 % bootstrap interval; – when there is none."""
    if est is None or est.n == 0 or math.isnan(est.mean):
        return "–"
    return f"{est.mean:.{digits}f} ({est.low:.{digits}f}–{est.high:.{digits}f})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: int = 1) -> list[str]:
    """A Markdown table; columns from ``right`` on are right-aligned."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append(
        "| " + " | ".join("---" if i < right else "---:" for i in range(len(header))) + " |"
    )
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_page(fig: Figures, images: str = "") -> str:
    """The results page as Markdown: a pure function of the figures."""
    lines: list[str] = []
    add = lines.append
    s = fig.settings
    main = fig.main_model()
    add(
        f"_Written by `editlens study` on {fig.written} from the figures in the store; "
        "rerun the command to refresh it (do not edit by hand)._"
    )
    add("")
    deleted = fig.corpora.get(DELETED, {})
    spelling = fig.corpora.get(SPELLING, {})
    add(
        f"**Setup.** Data: the released rationale files in `{s['data']}`: `deleted` "
        f"({deleted.get('scorable', 0):,} sentences + their edited twins = "
        f"{deleted.get('examples', 0):,} examples; train {deleted.get('train', 0):,} / "
        f"dev {deleted.get('dev', 0):,} / test {deleted.get('test', 0):,} by id hash) and "
        f"`spelling` ({spelling.get('examples', 0):,} sentences, all evaluated, never trained "
        f"on). Fine-tuned: {', '.join(f'`{m}`' for m in s['models'])}, "
        f"{s['epochs']} epoch(s) on {_limit(s)} training examples, lr {s['lr']:g} "
        f"({s['warmup']:.0%} linear warm-up, then linear decay), batch {s['train_batch_size']}"
        + (" (a sentence and its edited twin always in one batch)" if s["pair_batches"] else "")
        + f", max length {s['max_length']}, seeds {', '.join(map(str, s['seeds']))}; the epoch "
        f"kept is the one with the best dev {s['select'].removeprefix('dev_').replace('_', ' ')} "
        "(every recipe setting was chosen on the dev split). Not fine-tuned: "
        f"{', '.join(f'`{m}`' for m in s['baselines']) or 'none'} (the forward-pass methods)"
        + (f" and the floor `{s['floor']}` (every method)" if s.get("floor") else "")
        + ". Every method and every layer on `deleted`/test and all of `spelling` for each "
        f"fine-tuned model; integrated gradients with {s['ig_steps']} steps. No setting was "
        "chosen by looking at the test split or at `spelling`: it is the transfer test."
    )
    add("")
    add(
        "Figures are means with 95 % percentile-bootstrap intervals "
        f"({RESAMPLES} resamples, seed 0) in parentheses. Populations: **all** = every scorable "
        "rationale sentence (needs an edit, rationale within the first "
        f"{s['max_length']} subwords); "
        "**flagged** = those the model predicts as needing an edit (the paper's population)."
    )
    add("")
    lines += _headline(fig)
    lines += _goals(fig, main)
    lines += _winners(fig)
    lines += _by_layer(fig, images)
    lines += _by_method(fig, images)
    lines += _seeds(fig)
    lines += _checkpoints(fig, images)
    lines += _aggregation(fig)
    lines += _faithfulness(fig, main)
    lines += _classification(fig)
    lines += _timings(fig)
    return "\n".join(lines).rstrip() + "\n"


def _limit(s: dict[str, Any]) -> str:
    limits = [x for x in (s.get("train_limit"), s.get("limit")) if x is not None]
    return f"{min(limits):,}" if limits else "all"


def _headline(fig: Figures) -> list[str]:
    lines = [
        "#### Top-3 match: ours beside the paper's",
        "",
        "Share of rationale sentences whose edited words are all among the 3 words with the most "
        "last-layer [CLS] attention, heads averaged (= summed, for a ranking). The paper's "
        "figures are on its population (flagged) with BERT-base-sized models; ours are "
        + ", ".join(sorted({_shape(m) for m in fig.models}))
        + ".",
        "",
    ]
    header = ["model", "paper's row"]
    for corpus in CORPORA:
        title = CORPUS_TITLES[corpus]
        header += [f"{title}: paper", f"{title}: ours, flagged", "N", f"{title}: ours, all", "N"]
    rows = []
    for m in fig.models:
        counterpart = paper_counterpart(m.model, m.role == "fine-tuned")
        cells = [m.name, counterpart or "(none)"]
        for i, corpus in enumerate(CORPORA):
            run = m.runs.get(corpus)
            paper = PAPER[counterpart][i] if counterpart else None
            flagged = fig.estimate(run, HEADLINE_METHOD, m.layers, "flagged")
            everyone = fig.estimate(run, HEADLINE_METHOD, m.layers, "all")
            cells += [
                "–" if paper is None else f"{paper:.3f}",
                ci(flagged),
                f"{flagged.n:,}" if flagged else "0",
                ci(everyone),
                f"{everyone.n:,}" if everyone else "0",
            ]
        rows.append(cells)
    main = fig.main_model()
    if main is not None:
        cells = [f"random ranking (in {main.name}'s runs)", "random ranking"]
        for i, corpus in enumerate(CORPORA):
            run = main.runs.get(corpus)
            flagged = fig.estimate(run, BASELINE_METHOD, 0, "flagged")
            everyone = fig.estimate(run, BASELINE_METHOD, 0, "all")
            cells += [
                f"{PAPER['random ranking'][i]:.4f}",
                ci(flagged),
                f"{flagged.n:,}" if flagged else "0",
                ci(everyone),
                f"{everyone.n:,}" if everyone else "0",
            ]
        rows.append(cells)
    lines += _table(header, rows, right=2)
    lines += ["", _subword_note(fig)] if _subword_note(fig) else []
    lines += [
        "",
        "The paper's other rows, for reference (no counterpart here): "
        + "; ".join(
            f"{name} {d:.3f} / {sp:.3f}"
            for name, (d, sp) in PAPER.items()
            if name not in {paper_counterpart(m.model, m.role == "fine-tuned") for m in fig.models}
            and name != "random ranking"
        )
        + " (deleted / spelling). The paper's random row is over its full release; ours is "
        "over our test sentences. A model that was not fine-tuned has an untrained classifier "
        "head, so its flagged population is whatever that head happens to say (in the paper "
        "too).",
        "",
    ]
    return lines


def _subword_note(fig: Figures) -> str:
    """Why a model with random weights can look interpretable on spelling."""
    untrained = next((m for m in fig.models if "random" in m.model.lower()), None)
    if untrained is None:
        return ""
    run = untrained.runs.get(SPELLING)
    attention = fig.estimate(run, HEADLINE_METHOD, untrained.layers, "all")
    chance = fig.estimate(run, BASELINE_METHOD, 0, "all")
    if attention is None or chance is None:
        return ""
    return (
        f"Word scores are sums over a word's subwords. A misspelt word splits into more "
        f"subwords than most, so attention spread evenly already favours it: {untrained.name}, "
        f"whose weights were never pre-trained, reaches {attention.mean:.3f} on `spelling` "
        f"against {chance.mean:.3f} for a random ranking. Read the spelling column with that "
        "floor in mind."
    )


def _by_layer(fig: Figures, images: str) -> list[str]:
    depth = max((m.layers for m in fig.models), default=0)
    lines = [
        f"#### By layer ({' and '.join(LAYER_PLOT_METHODS)}, all scorable sentences)",
        "",
        f"![top-3 match by layer]({images}{LAYERS_PNG})",
        "",
    ]
    for corpus in CORPORA:
        rows = []
        for m in fig.models:
            run = m.runs.get(corpus)
            for method in LAYER_PLOT_METHODS:
                cells = [m.name, method]
                estimates = [
                    fig.estimate(run, method, layer, "all") for layer in range(1, depth + 1)
                ]
                if not any(estimates):
                    continue
                cells += [ci(e, 2) for e in estimates]
                rows.append(cells)
        header = ["model", "method", *(f"L{layer}" for layer in range(1, depth + 1))]
        lines += [f"Top-3 match on `{corpus}`/test by layer:", ""]
        lines += _table(header, rows, right=2)
        lines.append("")
    return lines


def _by_method(fig: Figures, images: str) -> list[str]:
    lines = [
        "#### Attention vs rollout vs gradient methods vs random (last layer, all scorable)",
        "",
        f"![top-3 match by method]({images}{METHODS_PNG})",
        "",
    ]
    for corpus in CORPORA:
        rows = []
        for m in fig.models:
            run = m.runs.get(corpus)
            if run is None:
                continue
            ests = [fig.estimate(run, method, m.layer(method), "all") for method in METHOD_NAMES]
            n = next((e.n for e in ests if e is not None), 0)
            rows.append([m.name, f"{n:,}", *(ci(e, 2) for e in ests)])
        lines += [f"Top-3 match on `{corpus}`/test:", ""]
        lines += _table(["model", "N", *METHOD_NAMES], rows, right=1)
        lines.append("")
    return lines


def _classification(fig: Figures) -> list[str]:
    lines = [
        "#### Classification next to interpretability",
        "",
        "Accuracy and F1 (positive = needs edit) on `deleted`/test (rationale sentences and "
        "their edited twins, balanced), the share of `spelling` sentences flagged (all need an "
        "edit, so this is recall), and the headline top-3 match (flagged population).",
        "",
    ]
    rows = []
    for m in fig.models:
        d = m.classification.get(DELETED, {})
        sp = m.classification.get(SPELLING, {})
        dev = (m.train or {}).get("dev", {})
        rows.append(
            [
                m.name,
                "–" if not dev else f"{dev.get('accuracy', math.nan):.3f}",
                ci(d.get("accuracy")),
                ci(d.get("f1")),
                ci(sp.get("flagged")),
                ci(fig.estimate(m.runs.get(DELETED), HEADLINE_METHOD, m.layers, "flagged")),
                ci(fig.estimate(m.runs.get(SPELLING), HEADLINE_METHOD, m.layers, "flagged")),
            ]
        )
    header = [
        "model",
        "dev acc.",
        "deleted acc.",
        "deleted F1",
        "spelling flagged",
        "top-3 deleted",
        "top-3 spelling",
    ]
    lines += _table(header, rows, right=1)
    lines.append("")
    for m in fig.models:
        flagged = m.classification.get(DELETED, {}).get("flagged")
        if flagged is not None and flagged.n and not 0.05 < flagged.mean < 0.95:
            answer = "needs edit" if flagged.mean >= 0.95 else "no edit"
            share = flagged.mean if answer == "needs edit" else 1 - flagged.mean
            lines += [
                f"{m.name} answers '{answer}' for {share:.0%} of `deleted`/test: it has "
                "not learned the task, so its flagged population is "
                + ("all sentences" if answer == "needs edit" else "nearly empty")
                + " and its accuracy says nothing about its attention.",
                "",
            ]
    return lines


def _timings(fig: Figures) -> list[str]:
    total = sum(step.seconds for step in fig.steps)
    rows = []
    for step in fig.steps:
        where = f" on {step.machine}" if step.machine else ""
        note = (
            f"reused (time of the run that did it{where})"
            if step.reused
            else f"measured now{where}"
        )
        took = f"{step.seconds / 60:.1f} min" if step.seconds >= 60 else f"{step.seconds:.1f} s"
        rows.append([step.name, took, note])
    rows.append(["**total**", f"**{total / 60:.1f} min**", ""])
    return ["#### Wall time", "", *_table(["step", "wall time", ""], rows, right=1), ""]


def _shape(m: ModelFigures) -> str:
    """``minilm`` (6 layers × 12 heads): what the store knows of a model's size."""
    return f"`{m.model}` ({m.layers} layers × {m.heads} heads)"


def _about(model: str) -> str:
    """The registry's description of a model, if it is a registered one."""
    return f", {REGISTRY[model]}" if model in REGISTRY else ""


def _pick(method: str, layer: int) -> str:
    """``attention (L6)`` or ``occlusion``: a (method, layer) slice as the page names it."""
    return f"{method} (L{layer})" if layer else method


def _p(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2g}" if value >= 1e-4 else "< 0.0001"


def _winners(fig: Figures) -> list[str]:
    """The best (method, layer) against last-layer attention and against the runner-up, paired."""
    if not fig.comparisons:
        return []
    lines = [
        "#### Which method finds the edit (paired comparisons)",
        "",
        "For each fine-tuned model and test set, the (method, layer) with the highest top-3 "
        "match (all scorable sentences) against last-layer attention (the paper's method, fixed "
        "in advance) and against the best slice of any other method. The difference is paired: "
        "sentences are resampled with both figures kept together (95 % bootstrap interval); p is "
        "McNemar's exact test on the sentences where the two disagree. The winner is picked on "
        "the same sentences it is measured on, so its own figure is slightly optimistic; the "
        "difference to attention is the comparison that was planned.",
        "",
    ]
    rows = [
        [
            c.name, CORPUS_TITLES[c.corpus], _pick(*c.a), ci(c.a_estimate), _pick(*c.b),
            ci(c.b_estimate), ci(c.difference), _p(c.p), f"{c.difference.n:,}",
        ]
        for c in fig.comparisons
    ]  # fmt: skip
    header = ["model", "data set", "best", "top-3", "against", "top-3", "difference", "p", "N"]
    lines += _table(header, rows, right=3)
    lines.append("")
    return lines


def _seeds(fig: Figures) -> list[str]:
    """Each seed's figures and the spread between seeds: what one seed cannot say."""
    lines: list[str] = []
    for base in dict.fromkeys(m.model for m in fig.models if m.role == "fine-tuned"):
        seeds = [m for m in fig.models if m.model == base and m.role == "fine-tuned"]
        if len(seeds) < 2:
            continue
        lines += [
            f"#### Seeds: `{base}` fine-tuned {len(seeds)} times",
            "",
            "Top-3 match of every method (last layer, all scorable) and `deleted` accuracy for "
            "each seed, then the mean over seeds and the range (highest − lowest). A range "
            "wider than a method's lead means one seed could reverse it.",
            "",
        ]
        header = ["data set", "figure", *(f"seed {m.seed}" for m in seeds), "mean", "range"]
        rows = []
        for corpus in CORPORA:
            figures = [("accuracy", None)] if corpus == DELETED else []
            figures += [(method, method) for method in METHOD_NAMES]
            for label, method in figures:
                values = []
                for m in seeds:
                    if method is None:
                        est = m.classification.get(corpus, {}).get("accuracy")
                    else:
                        est = fig.estimate(m.runs.get(corpus), method, m.layer(method), "all")
                    values.append(None if est is None or not est.n else est.mean)
                known = [v for v in values if v is not None]
                if not known:
                    continue
                cells = ["–" if v is None else f"{v:.3f}" for v in values]
                mean = sum(known) / len(known)
                rows.append([CORPUS_TITLES[corpus], label, *cells, f"{mean:.3f}",
                             f"{max(known) - min(known):.3f}"])  # fmt: skip
        lines += _table(header, rows, right=2)
        lines.append("")
    return lines


def _checkpoints(fig: Figures, images: str) -> list[str]:
    """The paper's central claim, tested: do accuracy and interpretability move together?"""
    points = fig.checkpoints
    if not points:
        return []
    lines = [
        "#### Does classification track interpretability? Every checkpoint",
        "",
        f"![accuracy against top-3 match]({images}{CHECKPOINTS_PNG})",
        "",
        "Every epoch of every fine-tuned model (the epoch kept on dev marked *) and the models "
        "that were not fine-tuned, on `deleted`/test: accuracy against the top-3 match of "
        "last-layer attention (all scorable sentences), with 95 % intervals.",
        "",
    ]
    rows = [
        [
            p.name, "–" if p.epoch is None else f"{p.epoch}{' *' if p.selected else ''}",
            "–" if p.dev_accuracy is None else f"{p.dev_accuracy:.3f}",
            ci(p.accuracy), ci(p.top3),
        ]
        for p in points
    ]  # fmt: skip
    lines += _table(["model", "epoch", "dev acc.", "test acc.", "top-3 (attention, last)"], rows)
    lines += ["", _correlation(points), ""]
    return lines


def _correlation(points: list[CheckpointFigures]) -> str:
    """Spearman's rho of accuracy and top-3 across checkpoints, with and without the models
    that were not fine-tuned, each with its permutation p-value."""
    parts = []
    tuned = [p for p in points if p.epoch is not None]
    for label, group in (("the fine-tuned checkpoints", tuned), ("every model", points)):
        if len(group) < 3 or (group is points and len(group) == len(tuned)):
            continue
        acc = [p.accuracy.mean for p in group]
        top3 = [p.top3.mean for p in group]
        rho = spearman(acc, top3)
        if math.isnan(rho):
            continue
        parts.append(
            f"across {label} (N = {len(group)}), Spearman's ρ = {rho:+.2f} "
            f"(permutation p = {_p(spearman_p(acc, top3))})"
        )
    if not parts:
        return "Too few checkpoints for a rank correlation."
    return (
        "Rank correlation of accuracy and top-3: "
        + "; ".join(parts)
        + ". A ρ near +1 says the more accurate checkpoints also point at the edit; the "
        "paper's claim is that this does not always hold, which a ρ near 0 (or a large p) "
        "supports."
    )


def _aggregation(fig: Figures) -> list[str]:
    """Sum, mean or max over subwords: how much of a method's figure is the subword count."""
    if not fig.aggregations:
        return []
    lines = [
        "#### Word scores from subwords: sum, mean or max",
        "",
        "Top-3 match (last layer, all scorable) of the forward-pass methods when a word's score "
        "is the sum, the mean or the max of its subwords' scores. A misspelt word splits into "
        "more subwords than most, so sums favour it whatever the model attends to: the random-"
        "weight model's `spelling` figures under sum against mean or max measure that bias. "
        + ", ".join(f"`{m}`" for m in METHOD_NAMES if is_per_word(m))
        + " score whole words, so no aggregation applies to them.",
        "",
    ]
    methods = [m for m in FORWARD_METHODS if not is_per_word(m)]
    for corpus in CORPORA:
        rows = []
        for m in fig.models:
            for aggregation in AGGREGATIONS:
                estimates = fig.aggregations.get((m.name, corpus, aggregation))
                if estimates:
                    rows.append([m.name, aggregation, *(ci(estimates.get(x), 2) for x in methods)])
        if rows:
            lines += [f"`{corpus}`/test:", ""]
            lines += _table(["model", "words from subwords", *methods], rows, right=2)
            lines.append("")
    return lines


def _faithfulness(fig: Figures, main: ModelFigures | None) -> list[str]:
    if main is None:
        return []
    names = [metric_info(m).label for m in FAITHFULNESS]
    lines = [
        f"#### Faithfulness of {main.name} (last layer, all scorable)",
        "",
        "As ERASER defines them: comprehensiveness = p(pred | x) − p(pred | x without the top-k "
        "words), higher means the words matter; sufficiency = p(pred | x) − p(pred | only the "
        "top-k words), lower means they suffice; k = the rationale's size. The AOPC forms "
        "average each over k = 1, 3, the rationale's size and 20 % of the words.",
        "",
    ]
    for corpus in CORPORA:
        run = main.runs.get(corpus)
        rows = []
        for method in METHOD_NAMES:
            ests = [fig.estimate(run, method, main.layer(method), "all", m) for m in FAITHFULNESS]
            if any(e is not None and e.n for e in ests):
                rows.append([method_info(method).label, *(ci(e, 3) for e in ests)])
        if rows:
            lines += [f"`{corpus}`/test:", ""]
            lines += _table(["method", *names], rows)
            lines.append("")
    lines += _convergence(fig)
    return lines


def _convergence(fig: Figures) -> list[str]:
    """Integrated gradients' completeness check, per fine-tuned model and data set."""
    parts = []
    for metric in CONVERGENCE:
        for m in fig.models:
            for corpus in CORPORA:
                est = fig.estimate(m.runs.get(corpus), "integrated_gradients", 0, "all", metric)
                if est is not None and est.n:
                    parts.append(f"{m.name} on `{CORPUS_TITLES[corpus]}` {ci(est)}")
    if not parts:
        return []
    return [
        f"Integrated gradients with {fig.settings['ig_steps']} steps: mean |convergence delta| "
        "(|sum of attributions − (F(x) − F(baseline))|, in logits; 0 for an exact integral) "
        + "; ".join(parts)
        + ". Raise `--ig-steps` where it is large against the logit gap.",
        "",
    ]


def _goals(fig: Figures, main: ModelFigures | None) -> list[str]:
    """What was aimed for and what was reached, read from the figures."""
    lines = ["#### Goals and the paper's figures", ""]
    tuned = [m for m in fig.models if m.role == "fine-tuned"]
    if main is None:
        return [*lines, "No fine-tuned model in this study.", ""]
    for corpus in CORPORA:
        best = [c for c in fig.comparisons if c.corpus == corpus]
        wins = {}
        for c in best:
            wins.setdefault(c.name, c)
        if corpus == SPELLING:
            note = (" (among methods that score whole words or average or max their subwords, "
                    "so the subword count is not the reason)")  # fmt: skip
            reached = _best_without_sums(fig, tuned, corpus)
        else:
            note = ""
            reached = [(c.name, _pick(*c.a), c.a_estimate) for c in wins.values()]
        if not reached:
            continue
        goal = GOALS[corpus]
        text = "; ".join(
            f"{name}: {pick} {ci(est)}{' ✓' if est.mean >= goal else ''}"
            for name, pick, est in reached
        )
        lines += [f"Best method on `{CORPUS_TITLES[corpus]}`{note}, goal ≥ {goal:.2f}: {text}.", ""]
    paper = PAPER["BERT-base, fine-tuned"]
    for i, corpus in enumerate(CORPORA):
        parts = []
        for m in tuned:
            est = fig.estimate(m.runs.get(corpus), HEADLINE_METHOD, m.layers, "flagged")
            if est is not None and est.n:
                parts.append(f"{m.name} {_versus(est, paper[i])}")
        if parts:
            lines += [
                f"Last-layer attention on `{CORPUS_TITLES[corpus]}` (flagged, as the paper): "
                + "; ".join(parts) + ".", "",
            ]  # fmt: skip
    lines += _where_attention_finds_the_edit(fig, tuned)
    acc = main.classification.get(DELETED, {}).get("accuracy")
    lines += [
        f"What separates the set-ups: **model size**: {_shape(main)}{_about(main.model)} "
        f"against {PAPER_MODEL} (`--models bert-base-uncased` where its weights are cached); "
        "**training data**: the paper fine-tuned on the full AESW training set (about 1.2 M "
        f"sentences), this study on {fig.corpora.get(DELETED, {}).get('train', 0):,} examples "
        f"of the released `deleted` subset (minimal pairs), reaching `deleted` accuracy "
        f"{ci(acc)}.",
        "",
    ]
    return lines


def _where_attention_finds_the_edit(fig: Figures, tuned: list[ModelFigures]) -> list[str]:
    """The data's side of "why below the paper": each fine-tuned model's best attention layer on
    ``deleted`` against its last, and the spread of the last layer beside that of accuracy."""
    parts, last, accuracy = [], [], []
    for m in tuned:
        run = m.runs.get(DELETED)
        layers = {n: fig.estimate(run, HEADLINE_METHOD, n, "all") for n in range(1, m.layers + 1)}
        layers = {n: est for n, est in layers.items() if est is not None and est.n}
        acc = m.classification.get(DELETED, {}).get("accuracy")
        if m.layers not in layers or acc is None:
            continue
        best = max(layers, key=lambda n: layers[n].mean)
        parts.append(
            f"{m.name} L{best} {layers[best].mean:.2f} against L{m.layers} "
            f"{layers[m.layers].mean:.2f}"
        )
        last.append(layers[m.layers].mean)
        accuracy.append(acc.mean)
    if not parts:
        return []
    return [
        "Where attention finds the edit on `deleted` (all scorable sentences, the layer table "
        f"below): {'; '.join(parts)}. Across the fine-tuned models the last layer's top-3 spans "
        f"{min(last):.2f}–{max(last):.2f} while `deleted` accuracy spans "
        f"{min(accuracy):.3f}–{max(accuracy):.3f}.",
        "",
    ]


def _versus(est: Any, paper: float) -> str:
    if est.high < paper:
        return (
            f"{est.mean:.3f}, below the paper's {paper:.3f} (its interval ends at {est.high:.3f})"
        )
    if est.low > paper:
        return f"{est.mean:.3f}, above the paper's {paper:.3f} (interval {ci(est)})"
    return f"{est.mean:.3f}, level with the paper's {paper:.3f} (interval {ci(est)})"


def _best_without_sums(
    fig: Figures, models: list[ModelFigures], corpus: str
) -> list[tuple[str, str, Any]]:
    """Per model, the best top-3 among per-word methods (any aggregation) and mean/max runs."""
    out = []
    for m in models:
        candidates = []
        for method in METHOD_NAMES:
            if is_per_word(method) and method != BASELINE_METHOD:
                est = fig.estimate(m.runs.get(corpus), method, m.layer(method), "all")
                if est is not None and est.n:
                    candidates.append((method, est))
        for aggregation in AGGREGATIONS[1:]:
            for method, est in (fig.aggregations.get((m.name, corpus, aggregation)) or {}).items():
                if method != BASELINE_METHOD and est is not None and est.n:
                    candidates.append((f"{method}, {aggregation}", est))
        if candidates:
            pick, est = max(candidates, key=lambda c: c[1].mean)
            out.append((m.name, pick, est))
    return out
