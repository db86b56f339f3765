"""The study's results page: Markdown written from the store's figures, never by hand."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import EditlensError
from engine.metrics import Estimate, mean_with_ci
from engine.vocabulary import LAYER_PLOT_METHODS, METHOD_NAMES

if TYPE_CHECKING:
    from engine.study import StudyResult

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


# --- the figures -------------------------------------------------------------------------------

HEADLINE_METHOD = "attention"  # last-layer [CLS] row, heads averaged (= summed for a ranking)
CORPORA = ("aesw-deleted", "aesw-spelling")
CORPUS_TITLES = {"aesw-deleted": "deleted", "aesw-spelling": "spelling"}
RESAMPLES = 1000
# Stevens & Su, top-3 match on the sentences the model flags (deleted, spelling).
PAPER = {
    "BERT-base, fine-tuned": (0.709, 0.804),
    "RoBERTa-base, fine-tuned": (0.639, 0.738),
    "SciBERT, fine-tuned": (0.412, 0.573),
    "BERT-base, not fine-tuned": (0.085, 0.169),
    "random ranking": (0.1300, 0.1227),
}


def paper_counterpart(model: str, fine_tuned: bool) -> str | None:
    """The paper's row a model stands in for: MiniLM for BERT; none for random weights."""
    name = model.lower()
    if "random" in name:
        return None  # the paper had no randomly initialised model
    if "roberta" in name:
        return "RoBERTa-base, fine-tuned" if fine_tuned else None
    if "scibert" in name:
        return "SciBERT, fine-tuned" if fine_tuned else None
    return "BERT-base, fine-tuned" if fine_tuned else "BERT-base, not fine-tuned"


@dataclass
class ModelFigures:
    """One model in one role and its evaluation run per data set."""

    model: str
    role: str  # fine-tuned | not fine-tuned
    seed: int | None
    display: str  # what the store calls it
    layers: int
    runs: dict[str, str]  # corpus -> run id
    train: dict[str, Any] | None = None  # dev figures of the fine-tuning run
    classification: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # corpus -> ..

    @property
    def name(self) -> str:
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return f"{self.model} ({self.role}{seed})"


@dataclass
class Figures:
    """Everything the page prints, read from the store (pure data: the page is a function of it)."""

    models: list[ModelFigures]
    rows: list[dict[str, Any]]  # report rows of the study's runs
    cis: dict[tuple[str, str, int, str, str], Estimate]  # (run, method, layer, population, metric)
    corpora: dict[str, dict[str, int]]  # corpus -> counts (examples, scorable, test ...)
    settings: dict[str, Any]
    steps: list[tuple[str, float, bool]]  # (step, seconds, reused)
    written: str = ""


def collect(db: Path, result: StudyResult, timings: dict[str, Any]) -> Figures:
    """Read the study's runs from the store and bootstrap a CI for every figure the page shows."""
    from engine.report import report_rows
    from engine.store import Store
    from engine.study import spec_summary

    spec = result.spec
    with Store(db, read_only=True) as store:
        by_key: dict[tuple[str, int | None], ModelFigures] = {}
        for study_run in result.runs:
            run = store.get_run(study_run.run_id)
            key = (study_run.model, study_run.seed)
            if key not in by_key:
                by_key[key] = ModelFigures(
                    study_run.model, study_run.role, study_run.seed, run.model, run.layers, {}
                )
            figures = by_key[key]
            figures.runs[study_run.corpus] = run.id
            labels, preds = store.run_labels(run.id)
            figures.classification[study_run.corpus] = classification_cis(labels, preds)
        for (model, seed), figures in by_key.items():
            train_id = result.train_runs.get(f"{model}/{seed}")
            if train_id:
                train = store.get_run(train_id)
                figures.train = {
                    "run": train_id,
                    "dev": train.metrics.get("dev", {}),
                    "best_epoch": train.metrics.get("best_epoch"),
                    "history": train.metrics.get("history", []),
                }
        run_ids = [r.run_id for r in result.runs]
        rows = report_rows(store, run_ids) if run_ids else []
        cis: dict[tuple[str, str, int, str, str], Estimate] = {}
        for row in rows:
            headline = row["layer"] in (0, _last_layer(by_key, row["run"]))
            if row["population"] == "flagged" and not (
                headline and row["method"] in (HEADLINE_METHOD, "random")
            ):
                continue
            wanted = ["top3"]
            if headline and row["population"] == "all" and row["comprehensiveness"] is not None:
                wanted += ["comprehensiveness", "sufficiency"]
            for metric in wanted:
                values = store.outcome_values(
                    row["run"], row["method"], row["layer"], row["population"], metric
                )
                cis[(row["run"], row["method"], row["layer"], row["population"], metric)] = (
                    mean_with_ci(values, resamples=RESAMPLES, seed=0)
                )
        corpora = {
            c.name: {"examples": c.examples, "scorable": c.scorable, **c.by_split}
            for c in store.corpora()
            if c.name in CORPORA
        }
    steps = [(s.name, s.seconds, s.reused) for s in result.steps]
    return Figures(
        models=list(by_key.values()),
        rows=rows,
        cis=cis,
        corpora=corpora,
        settings=spec_summary(spec),
        steps=steps,
        written=datetime.now().strftime("%Y-%m-%d %H:%M"),
    )


def _last_layer(models: dict[Any, ModelFigures], run_id: str) -> int:
    for figures in models.values():
        if run_id in figures.runs.values():
            return figures.layers
    return 0


def classification_cis(
    labels: Sequence[bool], preds: Sequence[bool], *, resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, Estimate]:
    """Accuracy, F1 and the share flagged as needing an edit, each with a bootstrap 95 % CI."""
    gold = np.asarray(labels, dtype=bool)
    pred = np.asarray(preds, dtype=bool)
    n = len(gold)
    if n == 0:
        nan = Estimate(0, math.nan, math.nan, math.nan)
        return {"accuracy": nan, "f1": nan, "flagged": nan}
    correct = gold == pred
    out = {
        "accuracy": mean_with_ci(correct, resamples=resamples, seed=seed),
        "flagged": mean_with_ci(pred, resamples=resamples, seed=seed),
    }
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    tp = (gold & pred)[draws].sum(axis=1)
    wrong = (gold != pred)[draws].sum(axis=1)  # fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1s = np.where(2 * tp + wrong > 0, 2 * tp / (2 * tp + wrong), 0.0)
    tp_all, wrong_all = int((gold & pred).sum()), int((gold != pred).sum())
    f1 = 2 * tp_all / (2 * tp_all + wrong_all) if 2 * tp_all + wrong_all else 0.0
    low, high = np.quantile(f1s, [0.025, 0.975])
    out["f1"] = Estimate(n, f1, float(low), float(high))
    return out


# --- the page ----------------------------------------------------------------------------------

LAYERS_PNG = "top3-by-layer.png"
METHODS_PNG = "top3-by-method.png"
PAGE = "results.md"


def write_results(db: Path, result: StudyResult, timings: dict[str, Any]) -> Path:
    """Collect the figures, draw the plots, write ``<out>/results.md`` and the README section."""
    from engine.plots import layer_plot_png, method_plot_png

    out = Path(result.spec.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = collect(db, result, timings)
    layer_plot_png(figures.rows, out / LAYERS_PNG)
    method_plot_png(with_cis(figures), out / METHODS_PNG)
    page = out / PAGE
    page.write_text(render_page(figures, images=""), encoding="utf-8")
    if result.spec.readme is not None:
        readme = Path(result.spec.readme)
        prefix = os.path.relpath(out.absolute(), readme.absolute().parent).replace(os.sep, "/")
        write_readme(readme, render_page(figures, images=f"{prefix}/"))
    return page


def with_cis(figures: Figures) -> list[dict[str, Any]]:
    """Report rows with ``low``/``high`` of their top-3 CI (population all): what plots take."""
    rows = []
    for row in figures.rows:
        est = figures.cis.get((row["run"], row["method"], row["layer"], row["population"], "top3"))
        if est is not None:
            rows.append(row | {"low": est.low, "high": est.high})
    return rows


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
    main = next((m for m in fig.models if m.role == "fine-tuned"), None)
    add(
        f"_Written by `editlens study` on {fig.written} from the figures in the store; "
        "rerun the command to refresh it (do not edit by hand)._"
    )
    add("")
    deleted = fig.corpora.get("aesw-deleted", {})
    spelling = fig.corpora.get("aesw-spelling", {})
    add(
        f"**Setup.** Data: the released rationale files in `{s['data']}`: `deleted` "
        f"({deleted.get('scorable', 0):,} sentences + their edited twins = "
        f"{deleted.get('examples', 0):,} examples; train {deleted.get('train', 0):,} / "
        f"dev {deleted.get('dev', 0):,} / test {deleted.get('test', 0):,} by id hash) and "
        f"`spelling` ({spelling.get('examples', 0):,} sentences, all evaluated, never trained "
        f"on). Fine-tuned: {', '.join(f'`{m}`' for m in s['models'])}, "
        f"{s['epochs']} epoch(s) on the first {_limit(s)} training examples, "
        f"lr {s['lr']:g}, batch {s['train_batch_size']}, max length {s['max_length']}, "
        f"seed(s) {', '.join(map(str, s['seeds']))}; baseline without fine-tuning: "
        f"`{s['baseline']}`. Every method and every layer on `deleted`/test and all of "
        f"`spelling`; integrated gradients with {s['ig_steps']} steps. No setting was chosen by "
        "looking at `spelling`: it is the transfer test."
    )
    add("")
    add(
        "Figures are means with 95 % percentile-bootstrap intervals "
        f"({RESAMPLES} resamples, seed 0) in parentheses. Populations: **all** = every scorable "
        "rationale sentence (needs an edit, rationale within the first 128 subwords); "
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


def _est(fig: Figures, run: str | None, method: str, layer: int, population: str, metric="top3"):
    if run is None:
        return None
    return fig.cis.get((run, method, layer, population, metric))


def _headline(fig: Figures) -> list[str]:
    lines = [
        "#### Top-3 match: ours beside the paper's",
        "",
        "Share of rationale sentences whose edited words are all among the 3 words with the most "
        "last-layer [CLS] attention, heads averaged (= summed, for a ranking). The paper's "
        "figures are on its population (flagged) with BERT-base-sized models; ours are MiniLM-L6.",
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
            flagged = _est(fig, run, HEADLINE_METHOD, m.layers, "flagged")
            everyone = _est(fig, run, HEADLINE_METHOD, m.layers, "all")
            cells += [
                "–" if paper is None else f"{paper:.3f}",
                ci(flagged),
                f"{flagged.n:,}" if flagged else "0",
                ci(everyone),
                f"{everyone.n:,}" if everyone else "0",
            ]
        rows.append(cells)
    main = next((m for m in fig.models if m.role == "fine-tuned"), None)
    if main is not None:
        cells = [f"random ranking (in {main.name}'s runs)", "random ranking"]
        for i, corpus in enumerate(CORPORA):
            run = main.runs.get(corpus)
            flagged = _est(fig, run, "random", 0, "flagged")
            everyone = _est(fig, run, "random", 0, "all")
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
    run = untrained.runs.get("aesw-spelling")
    attention = _est(fig, run, HEADLINE_METHOD, untrained.layers, "all")
    chance = _est(fig, run, "random", 0, "all")
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
        "#### By layer (attention and rollout, all scorable sentences)",
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
                estimates = [_est(fig, run, method, layer, "all") for layer in range(1, depth + 1)]
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
            ests = [_est(fig, run, method, _layer(m, method), "all") for method in METHOD_NAMES]
            n = next((e.n for e in ests if e is not None), 0)
            rows.append([m.name, f"{n:,}", *(ci(e, 2) for e in ests)])
        lines += [f"Top-3 match on `{corpus}`/test:", ""]
        lines += _table(["model", "N", *METHOD_NAMES], rows, right=1)
        lines.append("")
    lines += [_attention_vs_gradients(fig), ""]
    return lines


def _attention_vs_gradients(fig: Figures) -> str:
    """The later paper's claim (attention beats gradient saliency), checked on our main model."""
    main = next((m for m in fig.models if m.role == "fine-tuned"), None)
    if main is None:
        return ""
    parts = []
    for corpus in CORPORA:
        run = main.runs.get(corpus)
        attention = _est(fig, run, "attention", main.layers, "all")
        gradients = {
            method: _est(fig, run, method, 0, "all")
            for method in ("grad", "grad_x_input", "integrated_gradients")
        }
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


def _layer(m: ModelFigures, method: str) -> int:
    return m.layers if method in ("attention", "attention_max", "rollout") else 0


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
                    _est(fig, run, method, _layer(m, method), "all", "comprehensiveness"),
                    _est(fig, run, method, _layer(m, method), "all", "sufficiency"),
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
        d = m.classification.get("aesw-deleted", {})
        sp = m.classification.get("aesw-spelling", {})
        dev = (m.train or {}).get("dev", {})
        rows.append(
            [
                m.name,
                "–" if not dev else f"{dev.get('accuracy', math.nan):.3f}",
                ci(d.get("accuracy")),
                ci(d.get("f1")),
                ci(sp.get("flagged")),
                ci(_est(fig, m.runs.get("aesw-deleted"), HEADLINE_METHOD, m.layers, "flagged")),
                ci(_est(fig, m.runs.get("aesw-spelling"), HEADLINE_METHOD, m.layers, "flagged")),
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
        flagged = m.classification.get("aesw-deleted", {}).get("flagged")
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
        acc = m.classification.get("aesw-deleted", {}).get("accuracy")
        top3 = _est(fig, m.runs.get("aesw-deleted"), HEADLINE_METHOD, m.layers, "all")
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
    total = sum(seconds for _, seconds, _ in fig.steps)
    rows = [
        [name, f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s", note]
        for name, seconds, reused in fig.steps
        for note in ["reused (time of the run that did it)" if reused else "measured now"]
    ]
    rows.append(["**total**", f"**{total / 60:.1f} min**", ""])
    return [
        "#### Wall time (2 CPU cores, shared with other jobs)",
        "",
        *_table(["step", "wall time", ""], rows, right=1),
        "",
    ]


def _gaps(fig: Figures, main: ModelFigures | None) -> list[str]:
    lines = ["#### Gaps", ""]
    if main is None:
        return [*lines, "No fine-tuned model in this study.", ""]
    d = _est(fig, main.runs.get("aesw-deleted"), HEADLINE_METHOD, main.layers, "flagged")
    sp = _est(fig, main.runs.get("aesw-spelling"), HEADLINE_METHOD, main.layers, "flagged")
    acc = main.classification.get("aesw-deleted", {}).get("accuracy")

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
    train_size = fig.corpora.get("aesw-deleted", {}).get("train", 0)
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
        "**model size**: MiniLM-L6 (6 layers, 384 wide, 22 M parameters, distilled for sentence "
        "embeddings) against BERT-base (12 layers, 768 wide, 110 M); pass `--models "
        "bert-base-uncased` where its weights are cached. **Training data**: the paper "
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
        + f". **Epochs**: {s['epochs']} here, sized to fit the hour on 2 CPU cores; "
        "`--epochs 3 --train-limit 0` (all of the released training split) is the first thing "
        "to try with more time. Integrated gradients uses "
        f"{s['ig_steps']} steps (a coarse path integral) for the same reason.{cost} Our random row "
        "and our no-fine-tuning row are the checks that do not depend on training: they should "
        "sit near the paper's whatever the model size."
    )
    lines.append("")
    return lines
