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
    CORPORA,
    CORPUS_TITLES,
    DELETED,
    PAPER,
    PAPER_MODEL,
    RESAMPLES,
    SPELLING,
    Figures,
    ModelFigures,
    paper_counterpart,
    with_cis,
)
from engine.vocabulary import (
    BASELINE_METHOD,
    HEADLINE_METHOD,
    LAYER_PLOT_METHODS,
    METHOD_NAMES,
    METHODS,
)

GRADIENT_METHODS = tuple(m.name for m in METHODS if m.family == "gradient")

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
PAGE = "results.md"


def write_page(figures: Figures, out: Path, readme: Path | None = None) -> Path:
    """Draw the plots, write ``<out>/results.md`` and, given a README, its results section."""
    from engine.plots import layer_plot_png, method_plot_png

    out.mkdir(parents=True, exist_ok=True)
    layer_plot_png(figures.rows, out / LAYERS_PNG)
    method_plot_png(with_cis(figures), out / METHODS_PNG)
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
        f"{s['epochs']} epoch(s) on the first {_limit(s)} training examples, "
        f"lr {s['lr']:g}, batch {s['train_batch_size']}, max length {s['max_length']}, "
        f"seed(s) {', '.join(map(str, s['seeds']))}; without fine-tuning: "
        f"{', '.join(f'`{m}`' for m in (*s['baselines'], s['floor']) if m) or 'none'}. Every method and every layer on `deleted`/test and all of "
        f"`spelling`; integrated gradients with {s['ig_steps']} steps. No setting was chosen by "
        "looking at `spelling`: it is the transfer test."
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
    lines += _by_layer(fig, images)
    lines += _by_method(fig, images)
    lines += _faithfulness(fig)
    lines += _classification(fig)
    lines += _timings(fig)
    lines += _gaps(fig, main)
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
    lines += [_attention_vs_gradients(fig), ""]
    return lines


def _attention_vs_gradients(fig: Figures) -> str:
    """The later paper's claim (attention beats gradient saliency), checked on our main model."""
    main = fig.main_model()
    if main is None:
        return ""
    parts = []
    for corpus in CORPORA:
        run = main.runs.get(corpus)
        attention = fig.estimate(run, HEADLINE_METHOD, main.layers, "all")
        gradients = {method: fig.estimate(run, method, 0, "all") for method in GRADIENT_METHODS}
        gradients = {k: v for k, v in gradients.items() if v is not None and v.n}
        if attention is None or not gradients:
            continue
        best, est = max(gradients.items(), key=lambda item: item[1].mean)
        if attention.low > est.high:
            verdict = "attention is ahead, with intervals apart"
        elif attention.high < est.low:
            verdict = f"{best} is ahead, with intervals apart"
        else:
            verdict = "the intervals overlap: no winner at this N"
        parts.append(
            f"on `{corpus}`, last-layer attention {attention.mean:.3f} vs the best gradient "
            f"method ({best}) {est.mean:.3f}: {verdict}"
        )
    if not parts:
        return ""
    return f"For {main.name}, " + "; ".join(parts) + "."


def _faithfulness(fig: Figures) -> list[str]:
    lines = [
        "#### Faithfulness: comprehensiveness / sufficiency (last layer, all scorable)",
        "",
        "Comprehensiveness = p(pred | x) − p(pred | x without the top-k words): higher means "
        "the words matter. Sufficiency = p(pred | x) − p(pred | only the top-k words): lower "
        "means they suffice. k = the rationale's size. Not computed for the model that was not "
        "fine-tuned (its classifier head is untrained).",
        "",
    ]
    rows = []
    for m in fig.models:
        for corpus in CORPORA:
            run = m.runs.get(corpus)
            ests = [
                (
                    fig.estimate(run, method, m.layer(method), "all", "comprehensiveness"),
                    fig.estimate(run, method, m.layer(method), "all", "sufficiency"),
                )
                for method in METHOD_NAMES
            ]
            if not any(c for c, _ in ests):
                continue
            rows.append(
                [m.name, CORPUS_TITLES[corpus], *(f"{ci(c, 4)} / {ci(s, 4)}" for c, s in ests)]
            )
    lines += _table(["model", "data set", *METHOD_NAMES], rows, right=2) if rows else ["(none)"]
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
    lines += ["", _together(fig), ""]
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


def _together(fig: Figures) -> str:
    """What our few models can say about accuracy and interpretability moving together."""
    pairs = []
    for m in fig.models:
        acc = m.classification.get(DELETED, {}).get("accuracy")
        top3 = fig.estimate(m.runs.get(DELETED), HEADLINE_METHOD, m.layers, "all")
        if acc is not None and top3 is not None and not math.isnan(acc.mean):
            pairs.append((m.name, acc, top3))
    if len(pairs) < 2:
        return "One model cannot say whether accuracy and interpretability move together."
    apart = any(
        a.low > b.high or b.low > a.high
        for i, (_, a, _) in enumerate(pairs)
        for _, b, _ in pairs[i:]
    )
    if not apart:
        return (
            "The accuracies of our models cannot be told apart (their intervals overlap), so "
            "they cannot test whether classification and interpretability move together: "
            "that needs models of one family at clearly different accuracies (more data, "
            "epochs, seeds, checkpoints, sizes)."
        )
    by_acc = [name for name, _, _ in sorted(pairs, key=lambda p: -p[1].mean)]
    by_top3 = [name for name, _, _ in sorted(pairs, key=lambda p: -p[2].mean)]
    order = "the same order" if by_acc == by_top3 else "different orders"
    return (
        f"Ranked by `deleted` accuracy: {', '.join(by_acc)}; by top-3 match (all): "
        f"{', '.join(by_top3)}: {order}. With {len(pairs)} models, which differ in more than "
        "one way (pre-training, fine-tuning), this can only illustrate the paper's claim that "
        "accuracy does not predict interpretability, not test it: a test needs many models of "
        "one family at several accuracies (seeds, checkpoints, sizes)."
    )


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


def _machines(fig: Figures) -> str:
    """Where the steps were timed, as the study recorded it."""
    machines = sorted({step.machine for step in fig.steps if step.machine})
    return " / ".join(machines) if machines else "this machine"


def _about(model: str) -> str:
    """The registry's description of a model, if it is a registered one."""
    return f", {REGISTRY[model]}" if model in REGISTRY else ""


def _gaps(fig: Figures, main: ModelFigures | None) -> list[str]:
    lines = ["#### Gaps", ""]
    if main is None:
        return [*lines, "No fine-tuned model in this study.", ""]
    d = fig.estimate(main.runs.get(DELETED), HEADLINE_METHOD, main.layers, "flagged")
    sp = fig.estimate(main.runs.get(SPELLING), HEADLINE_METHOD, main.layers, "flagged")
    acc = main.classification.get(DELETED, {}).get("accuracy")

    def versus(est: Estimate | None, paper: float) -> str:
        if est is None or est.n == 0:
            return f"no figure against the paper's {paper:.3f}"
        if est.high < paper:
            return f"{est.mean:.3f}, below the paper's {paper:.3f} (its CI ends at {est.high:.3f})"
        if est.low > paper:
            return f"{est.mean:.3f}, above the paper's {paper:.3f}"
        return f"{est.mean:.3f}, within reach of the paper's {paper:.3f} (CI {ci(est)})"

    paper = PAPER["BERT-base, fine-tuned"]
    s = fig.settings
    history = (main.train or {}).get("history") or []
    rate = history[0].get("examples_per_s") if history else None
    train_size = fig.corpora.get(DELETED, {}).get("train", 0)
    cost = (
        f" At the rate we measured ({rate:.1f} examples/s on this shared machine), 3 epochs on "
        f"all {train_size:,} training examples would take about "
        f"{3 * train_size / rate / 3600:.1f} h per model."
        if rate and train_size
        else ""
    )
    lines.append(
        f"Our fine-tuned `{main.model}` reaches a top-3 match of {versus(d, paper[0])} on "
        f"`deleted`, and {versus(sp, paper[1])} on `spelling`, with a `deleted` accuracy of "
        f"{ci(acc)}. What separates the two set-ups, and what would close the gap: "
        f"**model size**: {_shape(main)}{_about(main.model)} against {PAPER_MODEL}; pass "
        "`--models bert-base-uncased` where its weights are cached. **Training data**: the paper "
        "fine-tuned on the full AESW training set (about 1.2 M sentences); we fine-tune on "
        f"{_limit(s)} examples of the released subset of one dev split's deleted sentences and "
        "their edited twins"
        + (
            f"; at an accuracy of {acc.mean:.3f} the classifier has barely learned the task, and "
            "a model that cannot tell a sentence from its edited twin has no reason to attend "
            "to the edit"
            if acc is not None and acc.mean < 0.7
            else ""
        )
        + f". **Epochs**: {s['epochs']} here, sized to fit the hour on {_machines(fig)}; "
        "`--epochs 3 --train-limit 0` (all of the released training split) is the first thing "
        "to try with more time. Integrated gradients uses "
        f"{s['ig_steps']} steps (a coarse path integral) for the same reason.{cost} Our random row "
        "and our no-fine-tuning row are the checks that do not depend on training: they should "
        "sit near the paper's whatever the model size."
    )
    lines.append("")
    return lines
