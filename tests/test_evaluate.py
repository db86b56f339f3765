"""Evaluation end to end with the real minilm on a small AESW corpus written by the test."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import duckdb
import pytest
from store_snapshot import snapshot as store_snapshot

import engine.evaluate as evaluate_module
from engine.errors import EditlensError
from engine.evaluate import EvalSpec, evaluate, run_id_for
from engine.ingest import ingest
from engine.metrics import classification, plausibility
from engine.models import bundled_minilm, load_model
from engine.store import Store, publish_run, staging_dir
from engine.vocabulary import METRICS

pytestmark = pytest.mark.slow

PLAUSIBILITY = tuple(m.name for m in METRICS if m.family == "plausibility")
CORPUS = "tiny"
LONG_ID = "9.0"  # its only edit lies past the length cut
MAX_LENGTH = 32
SUBJECTS = ["The bound", "Our method", "This result", "The proof", "Each sample", "The model"]
TEMPLATES = {
    "deleted": "{s} holds <del>the </del>for every _MATH_ in _REF_.",
    "spelling": "{s} <del>folows</del><ins>follows</ins> from _CITE_.",
    "inserted": "{s} is <ins>a </ins>simple consequence of _MATHDISP_.",
    "mixed": "{s} is<del>,</del> shown in <ins>the </ins>appendix.",
    "none": "{s} converges quickly in practice.",
    "none2": "{s} improves on _CITE_ for large _MATH_.",
}
CHUNK = 8  # small chunks: the run is written in several, so interruption has a middle
SPEC = EvalSpec(
    corpus=CORPUS,
    split="test",
    methods=("attention", "rollout", "grad", "integrated_gradients", "random"),
    max_length=MAX_LENGTH,
    ig_steps=2,
    batch_size=8,
)
QUICK = EvalSpec(
    corpus=CORPUS, split="test", methods=("attention", "random"), layers=(6,), max_length=32
)


def write_xml(path: Path) -> Path:
    """36 short sentences of five edit kinds, and one long one edited at its very end."""
    sentences = []
    for index, template in enumerate(TEMPLATES.values()):
        for number, subject in enumerate(SUBJECTS):
            sentences.append(
                f'<sentence sid="{index + 1}.{number}">{template.format(s=subject)}</sentence>'
            )
    long = " ".join(["word"] * 40)
    sentences.append(f'<sentence sid="{LONG_ID}">{long} and<del>,</del> done.</sentence>')
    body = "\n".join(sentences)
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<xml><p pid="1">\n{body}\n</p></xml>')
    return path


@pytest.fixture(scope="module")
def cached_models():
    """load_model once per (name, seed): evaluation never changes a model's weights."""
    cache = {}

    def cached(name: str, *, seed: int = 0):
        if (name, seed) not in cache:
            cache[name, seed] = load_model(name, seed=seed)
        return cache[name, seed]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate_module, "load_model", cached)
        yield cache


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch, cached_models):
    monkeypatch.setattr(evaluate_module, "CHUNK_ROWS", CHUNK)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, cached_models) -> Path:
    folder = tmp_path_factory.mktemp("ingested")
    db = folder / "store.duckdb"
    with Store(db) as store:
        ingest(store, write_xml(folder / "tiny.xml"), corpus=CORPUS, split="test")
    return db


@pytest.fixture(scope="module")
def evaluated(ingested, tmp_path_factory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("evaluated") / "store.duckdb"
    shutil.copy(ingested, db)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate_module, "CHUNK_ROWS", CHUNK)
        result = evaluate(db, SPEC)
    assert result.merged and result.resumed == 0
    return db, result.run_id


@pytest.fixture
def fresh(ingested, tmp_path) -> Path:
    db = tmp_path / "store.duckdb"
    shutil.copy(ingested, db)
    return db


def rows(db: Path, query: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query, list(params)).fetchall()


def snapshot(db: Path) -> dict[str, list]:
    """Every table's rows and the files beside the store: 'nothing written' means equal."""
    return store_snapshot(db) | {"files": sorted(p.name for p in db.parent.iterdir())}


# --- one complete run ------------------------------------------------------------------------


def test_a_run_appears_with_a_prediction_for_every_example(evaluated) -> None:
    db, run_id = evaluated
    assert rows(db, "SELECT id, kind, corpus, split FROM runs WHERE kind = 'evaluate'") == [
        (run_id, "evaluate", CORPUS, "test")
    ]
    examples = {r[0] for r in rows(db, "SELECT id FROM examples")}
    predicted = [r[0] for r in rows(db, "SELECT example FROM predictions WHERE run = ?", run_id)]
    assert len(examples) == 37
    assert sorted(predicted) == sorted(examples)
    assert not staging_dir(db).exists() or not any(staging_dir(db).iterdir())


def test_every_example_has_an_outcome_per_method_and_layer(evaluated) -> None:
    db, run_id = evaluated
    keys = rows(db, "SELECT method, layer, count(*) FROM outcomes GROUP BY ALL ORDER BY ALL")
    layered = [("attention", layer, 37) for layer in range(1, 7)]
    assert keys == sorted(
        [
            *layered,
            *[("rollout", layer, 37) for layer in range(1, 7)],
            *[("grad", 0, 37), ("integrated_gradients", 0, 37), ("random", 0, 37)],
        ]
    )
    scored = rows(db, "SELECT count(*) FROM scores WHERE run = ?", run_id)[0][0]
    assert scored == 37 * (6 + 6 + 3)


def test_metrics_are_null_exactly_when_an_example_is_not_scorable(evaluated) -> None:
    db, _ = evaluated
    nulls = rows(
        db,
        """SELECT scorable, bool_and(top3 IS NULL AND auprc IS NULL AND jaccard IS NULL),
                  bool_and(top3 IS NOT NULL AND auprc IS NOT NULL) FROM outcomes GROUP BY ALL""",
    )
    assert sorted(nulls) == [(False, True, False), (True, False, True)]


def expected_scorable(db: Path) -> set[str]:
    """Needs an edit, has a rationale, and (every sentence but one is short) is not LONG_ID."""
    return {
        r[0]
        for r in rows(db, "SELECT id FROM examples WHERE label AND len(rationale) > 0")
        if r[0] != LONG_ID
    }


def test_summaries_count_both_populations_over_the_scorable_examples(evaluated) -> None:
    db, run_id = evaluated
    scorable = expected_scorable(db)
    assert len(scorable) == 24  # deleted, spelling, inserted, mixed: 6 each
    flagged = {
        r[0] for r in rows(db, "SELECT example FROM predictions WHERE run = ? AND pred", run_id)
    } & scorable
    summaries = rows(db, "SELECT method, layer, population, n, top3 FROM summaries")
    assert len(summaries) == (2 if flagged else 1) * (6 + 6 + 3)
    for method, layer, population, n, top3 in summaries:
        assert n == (len(scorable) if population == "all" else len(flagged)), (method, layer)
        values = [
            r[0]
            for r in rows(
                db,
                """SELECT top3 FROM outcomes WHERE method = ? AND layer = ? AND scorable
                   AND (? = 'all' OR pred)""",
                method,
                layer,
                population,
            )
        ]
        assert top3 == pytest.approx(sum(values) / len(values))


def test_classification_figures_are_those_of_the_stored_labels_and_predictions(evaluated) -> None:
    db, run_id = evaluated
    stored = rows(db, "SELECT label, pred FROM predictions WHERE run = ?", run_id)
    expected = classification([r[0] for r in stored], [r[1] for r in stored])
    with Store(db, read_only=True) as store:
        metrics = store.get_run(run_id).metrics
    assert metrics["n"] == 37
    for name in ("accuracy", "precision", "recall", "f1"):
        assert metrics[name] == pytest.approx(getattr(expected, name))


def test_a_rationale_word_past_the_length_cut_makes_the_example_unscorable(evaluated) -> None:
    db, _ = evaluated
    ((seen, scorable),) = rows(
        db, "SELECT seen_words, scorable FROM predictions WHERE example = ?", LONG_ID
    )
    ((words, rationale),) = rows(
        db, "SELECT len(words), rationale FROM examples WHERE id = ?", LONG_ID
    )
    assert seen == MAX_LENGTH - 2 < words and rationale == [41]
    assert scorable is False
    outcomes = rows(db, "SELECT scorable, top3, exact FROM outcomes WHERE example = ?", LONG_ID)
    assert len(outcomes) == 15 and set(outcomes) == {(False, None, None)}
    lengths = rows(db, "SELECT DISTINCT len(scores) FROM scores WHERE example = ?", LONG_ID)
    assert lengths == [(seen,)]


def test_every_stored_outcome_is_the_metrics_of_its_stored_scores(evaluated) -> None:
    # The oracle: recompute each plausibility metric from the `scores` row and the example's
    # rationale with engine.metrics, and compare with the `outcomes` row beside them.
    db, run_id = evaluated
    joined = rows(
        db,
        f"""SELECT o.method, o.layer, o.example, o.scorable, s.scores, e.rationale,
                  {", ".join(f"o.{name}" for name in PLAUSIBILITY)},
                  o.comprehensiveness IS NOT NULL
           FROM outcomes o JOIN scores s USING (run, example, method, layer)
           JOIN examples e ON e.id = o.example
           WHERE o.run = ? ORDER BY ALL""",
        run_id,
    )
    assert len(joined) == rows(db, "SELECT count(*) FROM outcomes WHERE run = ?", run_id)[0][0]
    last_layer = {"attention": 6, "rollout": 6}
    checked = 0
    for method, layer, example, scorable, scores, rationale, *stored, faithful in joined:
        key = (method, layer, example)
        if not scorable:
            assert stored == [None] * len(PLAUSIBILITY) and not faithful, key
            continue
        expected = plausibility(rationale, scores)
        for name, value in zip(PLAUSIBILITY, stored, strict=True):
            assert value == pytest.approx(getattr(expected, name), rel=1e-6), (key, name)
        # Faithfulness is measured at each method's last layer only.
        assert faithful == (layer == last_layer.get(method, 0)), key
        checked += 1
    assert checked == 24 * (6 + 6 + 3)


# --- interruption, staging, publishing --------------------------------------------------------


def run_tables(db: Path, run_id: str) -> dict[str, list[tuple]]:
    tables = ("predictions", "scores", "outcomes", "summaries")
    return {t: sorted(rows(db, f"FROM {t} WHERE run = ?", run_id)) for t in tables}


def test_an_interrupted_job_shows_nothing_and_resumes_to_the_same_results(fresh, evaluated) -> None:
    def stop(progress) -> None:
        if progress.done > CHUNK:  # in the second chunk: the first one is staged
            raise KeyboardInterrupt

    before = snapshot(fresh)
    with pytest.raises(KeyboardInterrupt):
        evaluate(fresh, SPEC, on_progress=stop)
    assert {k: v for k, v in snapshot(fresh).items() if k != "files"} == {
        k: v for k, v in before.items() if k != "files"
    }
    assert any(staging_dir(fresh).iterdir())  # the first chunk waits there
    result = evaluate(fresh, SPEC)
    assert result.resumed == CHUNK
    reference_db, run_id = evaluated
    assert result.run_id == run_id
    assert run_tables(fresh, run_id) == run_tables(reference_db, run_id)


def test_writing_behind_as_on_a_gpu_stages_the_same_rows_and_resumes_after_an_interrupt(
    fresh, evaluated, monkeypatch
) -> None:
    monkeypatch.setattr(evaluate_module, "WRITES_BEHIND_ON", frozenset({"cpu"}))
    written = []
    monkeypatch.setattr(
        Store, "chunks_written_behind",
        lambda store, real=Store.chunks_written_behind: written.append(1) or real(store),
    )  # fmt: skip

    def stop(progress) -> None:
        if progress.done > 2 * CHUNK:  # in the third chunk: the second may still be in flight
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(fresh, SPEC, on_progress=stop)
    result = evaluate(fresh, SPEC)
    assert written == [1, 1] and result.resumed == 2 * CHUNK  # both chunks landed whole
    reference_db, run_id = evaluated
    assert run_tables(fresh, run_id) == run_tables(reference_db, run_id)


def test_progress_moves_with_every_batch_not_only_with_every_chunk(fresh) -> None:
    seen: list[int] = []
    spec = dataclasses.replace(QUICK, batch_size=2)
    result = evaluate(fresh, spec, on_progress=lambda p: seen.append(p.done))
    chunks = -(-result.examples // CHUNK)
    assert len(seen) > chunks
    assert seen == sorted(seen) and seen[-1] == result.examples
    assert all(b - a <= spec.batch_size for a, b in zip([0, *seen], seen, strict=False))


def test_batch_size_and_label_do_not_change_what_a_run_is() -> None:
    same = dataclasses.replace(SPEC, batch_size=3, label="another name", device="cpu")
    assert run_id_for(same) == run_id_for(SPEC)
    assert run_id_for(dataclasses.replace(SPEC, ig_steps=3)) != run_id_for(SPEC)


def test_an_unmerged_run_stays_staged_until_published(fresh) -> None:
    before = snapshot(fresh)
    result = evaluate(fresh, QUICK, merge=False)
    assert not result.merged and result.staging.is_file()
    after = snapshot(fresh)
    assert {k: v for k, v in after.items() if k != "files"} == {
        k: v for k, v in before.items() if k != "files"
    }
    publish_run(fresh, result.staging, result.run_id)
    assert rows(fresh, "SELECT id FROM runs") == [(result.run_id,)]
    assert rows(fresh, "SELECT count(*) FROM predictions")[0][0] == 37
    assert not result.staging.exists()


# --- bad input ----------------------------------------------------------------------------------


def model_folder(tmp_path: Path, name: str) -> Path:
    """A folder with a config and the bundled tokenizer: everything but usable weights."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    shutil.copy(bundled_minilm() / "tokenizer.json", folder)
    return folder


def no_weights(tmp_path: Path) -> str:
    return str(model_folder(tmp_path, "empty-model"))


def pickle_only(tmp_path: Path) -> str:
    folder = model_folder(tmp_path, "pickled")
    (folder / "pytorch_model.bin").write_bytes(b"")
    return str(folder)


BAD = {
    "unknown model": (lambda t: {"model": "no-such-model-anywhere"}, "cannot be loaded"),
    "directory without weights": (lambda t: {"model": no_weights(t)}, "no weights"),
    "pickle-only checkpoint": (lambda t: {"model": pickle_only(t)}, "pickle"),
    "corpus not in the store": (lambda t: {"corpus": "absent"}, "not in"),
    "split with no examples": (lambda t: {"split": "dev"}, "no examples"),
    "layer zero": (lambda t: {"layers": (0,)}, "start at 1"),
    "layer past the last": (lambda t: {"layers": (6, 7)}, "out of range"),
    "unknown method": (lambda t: {"methods": ("attention", "telepathy")}, "telepathy"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_raises_a_clear_error_and_writes_nothing(fresh, tmp_path, case) -> None:
    make, message = BAD[case]
    spec = EvalSpec(**{**QUICK.__dict__, **make(tmp_path)})
    before = snapshot(fresh)
    with pytest.raises(EditlensError, match=message):
        evaluate(fresh, spec)
    assert snapshot(fresh) == before


def test_prefetching_keeps_order_and_works_on_the_next_item_while_the_caller_holds_one() -> None:
    import threading

    from engine.evaluate import prefetched

    started: list[int] = []
    second_started = threading.Event()

    def work(item: int) -> int:
        started.append(item)
        if item == 2:
            second_started.set()
        return item * 10

    results = prefetched(iter([1, 2, 3]), work)
    assert next(results) == 10
    assert second_started.wait(5)  # item 2 was taken up before the caller asked for it
    assert list(results) == [20, 30] and started == [1, 2, 3]
    assert list(prefetched(iter([]), work)) == []


def test_an_error_in_prefetched_work_reaches_the_caller() -> None:
    from engine.evaluate import prefetched

    def work(item: int) -> int:
        if item == 2:
            raise ValueError("bad chunk")
        return item

    results = prefetched(iter([1, 2, 3]), work)
    assert next(results) == 1
    with pytest.raises(ValueError, match="bad chunk"):
        next(results)
