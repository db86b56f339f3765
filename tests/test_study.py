"""The study: its results page from known figures, the README section, the plots, a tiny run."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import tracemalloc
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine import metrics
from engine.errors import EditlensError
from engine.metrics import Estimate, mean_with_ci
from engine.plots import layer_plot_png, method_plot_png, terminal_layer_plot
from engine.report import report_rows
from engine.results import (
    DELETED,
    SPELLING,
    CheckpointFigures,
    Figures,
    ModelFigures,
    Step,
    StudyRun,
    classification_cis,
)
from engine.store import Run, Store, publish_run
from engine.study import Checkpoint, StudyResult, StudySpec, plan, run_study, write_results
from engine.study_page import (
    END,
    LAYERS_PNG,
    METHODS_PNG,
    START,
    _correlation,
    _where_attention_finds_the_edit,
    check_readme,
    ci,
    replace_section,
)
from engine.vocabulary import AGGREGATIONS, FORWARD_METHODS, METHOD_NAMES

LAYERS = 2
T0 = datetime(2025, 1, 1, 9, 0, 0)
# Per run: the examples (id, label, pred, scorable) and top-3 outcomes of last-layer attention.
DELETED_EXAMPLES = [
    ("a", True, True, True),
    ("a/edited", False, False, False),
    ("b", True, True, True),
    ("b/edited", False, True, False),
    ("c", True, True, True),
    ("c/edited", False, False, False),
    ("d", True, False, True),
    ("d/edited", False, False, False),
]
ATTENTION_TOP3 = {"a": True, "b": True, "c": False, "d": True}  # all 0.750, flagged (a, b, c) 2/3
RANDOM_TOP3 = {"a": False, "b": False, "c": True, "d": False}  # all 0.250, flagged 1/3
SPELLING_EXAMPLES = [("s1", True, True, True), ("s2", True, True, True), ("s3", True, False, True)]


def _record(db: Path, tmp: Path, run_id: str, model: str, corpus: str, examples) -> None:
    """One evaluation run with known outcomes, published through the real store code."""
    predictions: dict[str, list] = {}
    outcomes: dict[str, list] = {}
    for example, label, pred, scorable in examples:
        for key, value in dict(
            run=run_id, example=example, label=label, prob=0.9 if pred else 0.1, pred=pred,
            confidence=0.9, seen_words=10, scorable=scorable,
        ).items():  # fmt: skip
            predictions.setdefault(key, []).append(value)
        for method, layer in [
            ("attention", 1), ("attention", 2), ("rollout", 1), ("rollout", 2), ("random", 0),
        ]:  # fmt: skip
            table = RANDOM_TOP3 if method == "random" else ATTENTION_TOP3
            top3 = table.get(example, example in ("s1", "s2")) if scorable else None
            if method == "attention" and layer == 1 and scorable:
                top3 = False
            faithful = scorable and layer in (0, LAYERS)
            row = dict(
                run=run_id, method=method, layer=layer, example=example, label=label, pred=pred,
                confidence=0.9, kind="deleted", rationale_size=1, seen_words=10,
                scorable=scorable, exact=top3, top3=top3, hit1=top3,
                jaccard=float(top3) if scorable else None, jaccard50=top3,
                token_f1=float(top3) if scorable else None, auprc=0.5 if scorable else None,
                comprehensiveness=0.2 if faithful else None,
                sufficiency=0.1 if faithful else None,
            )  # fmt: skip
            for key, value in row.items():
                outcomes.setdefault(key, []).append(value)
    staging = tmp / f"{run_id}.duckdb"
    with Store(staging) as store:
        store.write_chunk({"predictions": pa.table(predictions), "outcomes": pa.table(outcomes)})
        store.record_run(
            Run(
                id=run_id, kind="evaluate", model=model, checkpoint=model, corpus=corpus,
                split="test", layers=LAYERS, heads=2, config={}, metrics={"accuracy": 0.5},
                started=T0, finished=T0,
            )
        )  # fmt: skip
    publish_run(db, staging, run_id)


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, StudyResult]:
    """A store with a fine-tuned and a baseline model, each on both data sets, and its result."""
    db = tmp_path / "study.duckdb"
    runs = []
    for model, role, seed, display in [
        ("minilm", "fine-tuned", 13, "minilm+ft:aesw-deleted"),
        ("minilm", "not fine-tuned", None, "minilm"),
    ]:
        for corpus, examples in ((DELETED, DELETED_EXAMPLES), (SPELLING, SPELLING_EXAMPLES)):
            run_id = f"eval-{display}-{corpus}"
            _record(db, tmp_path, run_id, display, corpus, examples)
            runs.append(StudyRun(run_id, model, role, seed, corpus))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nintro\n\n## Results\n\n{START}\nold text\n{END}\n\ntail\n")
    spec = StudySpec(data=tmp_path, models=("minilm",), out=tmp_path / "out", readme=readme)
    result = StudyResult(spec, runs=runs, steps=[Step("ingest", 1.5, False, "2 CPU cores")])
    result.steps.append(Step("fine-tune minilm (seed 13)", 125.0, True, "64 CPU cores"))
    return db, result


def _expected_ci(values: list[bool]) -> str:
    return ci(mean_with_ci(values, resamples=1000, seed=0))


def test_page_shows_known_figures_beside_the_papers(study: tuple[Path, StudyResult]) -> None:
    db, result = study
    page = write_results(db, result).read_text()
    flagged = _expected_ci([True, True, False])  # a, b, c are flagged; c misses
    everyone = _expected_ci([True, True, False, True])
    spelling_flagged = _expected_ci([True, True])
    spelling_all = _expected_ci([True, True, False])
    assert flagged.startswith("0.667 (") and everyone.startswith("0.750 (")
    assert (
        f"| minilm (fine-tuned, seed 13) | BERT-base, fine-tuned | 0.709 | {flagged} | 3 | "
        f"{everyone} | 4 | 0.804 | {spelling_flagged} | 2 | {spelling_all} | 3 |"
    ) in page
    assert "| minilm (not fine-tuned) | BERT-base, not fine-tuned | 0.085 |" in page
    random_flagged = _expected_ci([False, False, True])
    assert (
        "| random ranking (in minilm (fine-tuned, seed 13)'s runs) | random ranking | 0.1300 | "
        f"{random_flagged} | 3 |"
    ) in page
    # the per-layer table: layer 1 misses every sentence, layer 2 is the headline
    assert f"| minilm (fine-tuned, seed 13) | attention | {ci(mean_with_ci([False] * 4), 2)} |" in (
        page
    )
    assert "| fine-tune minilm (seed 13) | 2.1 min | reused" in page
    assert "| **total** | **2.1 min** |" in page
    assert "RoBERTa-base, fine-tuned 0.639 / 0.738" in page


def test_every_headline_figure_carries_a_bootstrap_interval(
    study: tuple[Path, StudyResult],
) -> None:
    db, result = study
    page = write_results(db, result).read_text()
    headline = page.split("#### Top-3 match")[1].split("####")[0]
    header = next(line for line in headline.splitlines() if line.startswith("| model"))
    assert "deleted: ours, flagged" in header and "spelling: ours, all" in header
    rows = [line for line in headline.splitlines() if line.startswith("| minilm")]
    interval = re.compile(r"\d\.\d{3} \(\d\.\d{3}–\d\.\d{3}\)")
    assert rows and all(len(interval.findall(row)) == 4 for row in rows)
    classification = page.split("#### Classification")[1].split("####")[0]
    assert len(interval.findall(classification)) >= 8  # accuracy, F1, flagged, top-3 x models
    assert "95 % percentile-bootstrap" in page


def test_readme_section_is_replaced_and_nothing_else(study: tuple[Path, StudyResult]) -> None:
    db, result = study
    readme = result.spec.readme
    before = readme.read_text()
    write_results(db, result)
    after = readme.read_text()
    head, tail = before.split(START)[0], before.split(END)[1]
    assert after.startswith(head + START + "\n") and after.endswith(END + tail)
    assert "old text" not in after
    assert f"](out/{LAYERS_PNG})" in after  # links relative to the README
    assert f"]({LAYERS_PNG})" in (result.spec.out / "results.md").read_text()
    assert replace_section(after, "x") == head + START + "\nx\n" + END + tail


def test_readme_without_markers_is_a_clear_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    with pytest.raises(EditlensError, match="results:start"):
        check_readme(readme)
    spec = StudySpec(data=Path("/work/shared/aesw-rationales"), readme=readme, out=tmp_path)
    data = tmp_path / "data"
    _write_released(data, 4, 2)
    spec = StudySpec(data=data, readme=readme, out=tmp_path / "out")
    with pytest.raises(EditlensError, match="results:start"):
        run_study(tmp_path / "x.duckdb", spec)  # refused before any work
    assert not (tmp_path / "x.duckdb").exists()
    assert readme.read_text() == "# no markers here\n"


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EditlensError, match="--data"):
        run_study(tmp_path / "x.duckdb", StudySpec(data=tmp_path / "nowhere", out=tmp_path))


def test_plots_are_written_as_png_files(study: tuple[Path, StudyResult], tmp_path: Path) -> None:
    db, result = study
    write_results(db, result)
    for name in (LAYERS_PNG, METHODS_PNG):
        assert (result.spec.out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Store(db, read_only=True) as store:
        rows = report_rows(store)
    assert layer_plot_png(rows, tmp_path / "p" / "l.png").stat().st_size > 1000
    assert method_plot_png(rows, tmp_path / "p" / "m.png").stat().st_size > 1000
    text = terminal_layer_plot(rows, "top3")
    assert "top3: aesw-deleted/test · attention" in text


def test_classification_intervals_hold_the_point_estimate() -> None:
    figures = classification_cis([True, True, False, False], [True, False, False, True])
    assert figures["accuracy"].mean == 0.5 and figures["f1"].mean == 0.5
    assert figures["flagged"].mean == 0.5
    for est in figures.values():
        assert est.low <= est.mean <= est.high and est.n == 4


def test_the_page_states_the_settings_of_its_runs_not_fixed_facts(
    study: tuple[Path, StudyResult],
) -> None:
    db, result = study
    result.spec = dataclasses.replace(result.spec, max_length=64)
    page = write_results(db, result).read_text()
    assert "rationale within the first 64 subwords" in page and "128" not in page
    assert "ours are `minilm` (2 layers × 2 heads)" in page  # the store's shape of the runs
    assert "**model size**: `minilm` (2 layers × 2 heads), 6-layer uncased BERT" in page
    assert "MiniLM-L6 (6 layers" not in page and "shared with other jobs" not in page
    assert "| ingest | 1.5 s | measured now on 2 CPU cores |" in page
    assert "reused (time of the run that did it on 64 CPU cores)" in page
    assert "seeds 13, 14, 15; the epoch kept is the one with the best dev accuracy" in page


def test_bootstrap_draws_in_blocks_give_the_rows_of_one_draw(monkeypatch) -> None:
    monkeypatch.setattr(metrics, "BOOTSTRAP_BLOCK", 10)  # 1 row of 7 per block
    blocks = list(metrics.bootstrap_draws(7, 1000, seed=3))
    assert len(blocks) == 1000 and max(block.size for block in blocks) == 7
    whole = np.random.default_rng(3).integers(0, 7, size=(1000, 7))
    assert np.array_equal(np.concatenate(blocks), whole)


def test_classification_intervals_at_the_aesw_test_size_stay_small_in_memory() -> None:
    """143k examples: one (1000, n) index matrix alone would be 1.1 GB."""
    rng = np.random.default_rng(0)
    labels, preds = rng.random(143_000) < 0.5, rng.random(143_000) < 0.5
    tracemalloc.start()
    figures = classification_cis(labels, preds, resamples=200)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 150 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert figures["f1"].low <= figures["f1"].mean <= figures["f1"].high


# --- a tiny study, end to end ---------------------------------------------------------------

WORDS = [
    "the",
    "model",
    "of",
    "the",
    "sentence",
    "is",
    ",",
    "as",
    "shown",
    "in",
    "the",
    "results",
    ":",
    "a",
    "good",
    "one",
]


def _write_released(folder: Path, deleted: int, spelling: int) -> None:
    """Released-format rationale files: one extra comma (deleted) or one misspelt word."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(deleted):
        words = [*WORDS[: 4 + i % 5], ",", *WORDS[4 + i % 5 :]]
        rows.append({"id": f"{i}.1", "sent": " ".join(words), "words": ["[CLS]", *words, "[SEP]"],
                     "best_words": [5 + i % 5]})  # fmt: skip
    _gzip(folder / "deleted.jsonl.gz", rows)
    rows = []
    for i in range(spelling):
        words = list(WORDS)
        words[1 + i % 4] = "modle"
        rows.append({"id": f"{i}.2", "sent": " ".join(words), "words": ["[CLS]", *words, "[SEP]"],
                     "best_words": [2 + i % 4]})  # fmt: skip
    _gzip(folder / "spelling.jsonl.gz", rows)


def _gzip(path: Path, rows: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)


def test_the_plan_evaluates_every_method_only_at_the_selected_epoch_of_a_fine_tuned_model(
    tmp_path: Path,
) -> None:
    spec = StudySpec(data=tmp_path, seeds=(13, 14))
    points = [
        Checkpoint("minilm", "ck/best", 13),
        Checkpoint("minilm", "ck/epoch-1", 13, epoch=1),
        Checkpoint("minilm", "minilm", every_method=False),
        Checkpoint("minilm-random", "minilm-random"),
    ]
    planned = plan(spec, points)
    full = [p for p in planned if p.spec.methods == METHOD_NAMES]
    assert [(p.spec.model, p.spec.corpus, p.spec.aggregation) for p in full] == [
        (model, corpus, "sum")
        for model in ("ck/best", "minilm-random")
        for corpus in (DELETED, SPELLING)
    ]
    assert all(p.spec.methods == FORWARD_METHODS for p in planned if p not in full)
    assert "integrated_gradients" not in FORWARD_METHODS and "random" in FORWARD_METHODS
    epoch = [p for p in planned if p.run.epoch == 1]
    assert [(p.spec.corpus, p.spec.aggregation) for p in epoch] == [(DELETED, "sum")]
    assert epoch[0].spec.label == "minilm+ft:aesw-deleted#seed13@epoch1"
    baseline = [p for p in planned if p.run.seed is None]
    assert sorted((p.spec.model, p.spec.corpus, p.spec.aggregation) for p in baseline) == sorted(
        (m, c, a)
        for m in ("minilm", "minilm-random")
        for c in (DELETED, SPELLING)
        for a in AGGREGATIONS
    )
    assert not any(p.spec.faithfulness for p in baseline)
    shown = [(p.spec.label or p.spec.model, p.spec.corpus) for p in planned]
    assert len(set(shown)) == len(shown)  # every run can be told apart in the TUI
    assert len({p.title for p in planned}) == len(planned)  # and in timings.json


@pytest.mark.slow
def test_tiny_study_runs_end_to_end_and_reruns_cheaply(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write_released(data, 60, 6)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\n{END}\n")
    spec = StudySpec(
        data=data, models=("minilm",), baselines=("minilm",), floor=None, seeds=(13,), epochs=2,
        out=tmp_path / "out", limit=8, ig_steps=1, train_batch_size=8, readme=readme,
    )  # fmt: skip
    db = tmp_path / "study.duckdb"
    spec.out.mkdir()
    (spec.out / "timings.json").write_text('{"fine-tune gone (seed 1)": {"seconds": 9.0}}')
    first = run_study(db, spec)
    assert json.loads((spec.out / "timings.json").read_text()).keys() == {
        step.name for step in first.steps
    }  # a step of an older plan is not kept
    main = [(run.corpus, run.role) for run in first.runs if run.main]
    assert main == [(c, r) for r in ("fine-tuned", "not fine-tuned") for c in (DELETED, SPELLING)]
    other_epoch = [run for run in first.runs if run.epoch is not None]
    assert len(other_epoch) == 1 and other_epoch[0].corpus == DELETED  # 2 epochs, 1 selected
    with Store(db, read_only=True) as store:
        evaluated = {run.id for run in store.runs(kind="evaluate")}
        methods = {row["method"] for row in report_rows(store)}
    assert evaluated == {run.run_id for run in first.runs}
    assert {"attention", "rollout", "integrated_gradients", "random"} <= methods
    page = (spec.out / "results.md").read_text()
    assert "#### Top-3 match" in page and "| **total** |" in page
    assert (spec.out / LAYERS_PNG).is_file() and "#### Goals and the paper" in readme.read_text()
    second = run_study(db, spec)  # nothing is fine-tuned or evaluated again
    assert all(
        step.reused for step in second.steps if step.name.startswith(("fine-tune", "evaluate"))
    )
    assert [s.seconds for s in second.steps if s.reused] == [
        s.seconds for s in first.steps if s.name in {r.name for r in second.steps if r.reused}
    ]


def test_the_best_slice_is_compared_with_attention_and_the_runner_up_on_the_same_sentences(
    study: tuple[Path, StudyResult],
) -> None:
    db, result = study
    page = write_results(db, result).read_text()
    # attention L2 and rollout L1 both reach 3 of 4 on the same sentences: a paired 0, p = 1;
    # the winner is attention itself, so the planned comparison with attention is not repeated
    everyone = _expected_ci([True, True, False, True])
    assert (
        f"| minilm (fine-tuned, seed 13) | deleted | attention (L2) | {everyone} | rollout (L1) | "
        f"{everyone} | 0.000 (0.000–0.000) | 1 | 4 |"
    ) in page
    assert "| minilm (not fine-tuned) | deleted | attention (L2)" not in page  # fine-tuned only


def test_seeds_are_shown_one_by_one_with_their_mean_and_range(
    study: tuple[Path, StudyResult],
) -> None:
    db, result = study
    tmp = db.parent
    for corpus, examples in ((DELETED, DELETED_EXAMPLES), (SPELLING, SPELLING_EXAMPLES)):
        run_id = f"eval-seed14-{corpus}"
        _record(db, tmp, run_id, "minilm+ft:aesw-deleted#seed14", corpus, examples)
        result.runs.append(StudyRun(run_id, "minilm", "fine-tuned", 14, corpus))
    page = write_results(db, result).read_text()
    assert "#### Seeds: `minilm` fine-tuned 2 times" in page
    assert "| deleted | accuracy | 0.750 | 0.750 | 0.750 | 0.000 |" in page  # 6 of 8 right
    assert "| spelling | random | 0.667 | 0.667 | 0.667 | 0.000 |" in page


def _est(x: float) -> Estimate:
    return Estimate(100, x, x - 0.05, x + 0.05)


def test_the_goals_name_each_models_best_attention_layer_against_its_last() -> None:
    top3 = {"s13": (0.4, 0.6, 0.5), "s14": (0.2, 0.7, 0.1)}  # layers 1..3
    models = [
        ModelFigures("minilm", "fine-tuned", seed, run, 3, 2, {DELETED: run}, None,
                     {DELETED: {"accuracy": _est(accuracy)}})
        for seed, run, accuracy in ((13, "s13", 0.74), (14, "s14", 0.76))
    ]  # fmt: skip
    cis = {
        (run, "attention", layer, "all", "top3"): _est(x)
        for run, figures in top3.items()
        for layer, x in enumerate(figures, 1)
    }
    lines = _where_attention_finds_the_edit(Figures(models, [], cis, {}, {}, []), models)
    assert lines[0] == (
        "Where attention finds the edit on `deleted` (all scorable sentences, the layer table "
        "below): minilm (fine-tuned, seed 13) L2 0.60 against L3 0.50; minilm (fine-tuned, "
        "seed 14) L2 0.70 against L3 0.10. Across the fine-tuned models the last layer's top-3 "
        "spans 0.10–0.50 while `deleted` accuracy spans 0.740–0.760."
    )


def _point(name: str, epoch: int | None, accuracy: float, top3: float) -> CheckpointFigures:
    return CheckpointFigures(name, 13, epoch, False, None, _est(accuracy), _est(top3))


def test_accuracy_and_top3_rising_together_give_rho_one_with_its_exact_p() -> None:
    points = [_point("ft", e, 0.5 + e / 10, 0.1 * e) for e in (1, 2, 3, 4)]
    text = _correlation(points)
    # 2 of the 24 orders of 4 points reach |rho| = 1: p = 1/12, up to Monte Carlo noise
    match = re.search(r"the fine-tuned checkpoints \(N = 4\), Spearman's ρ = \+1\.00 "
                      r"\(permutation p = (0\.0\d+)\)", text)  # fmt: skip
    assert match and abs(float(match.group(1)) - 1 / 12) < 0.01
    with_floor = _correlation([*points, _point("random", None, 0.5, 0.5)])  # ranks cancel
    assert "every model (N = 5), Spearman's ρ = +0.00" in with_floor


def test_the_checkpoint_plot_is_a_png(tmp_path: Path) -> None:
    from engine.plots import checkpoint_plot_png

    points = [_point("ft", e, 0.5 + e / 10, 0.1 * e) for e in (1, 2)] + [
        _point("pre-trained", None, 0.5, 0.1)
    ]
    path = checkpoint_plot_png(points, tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
