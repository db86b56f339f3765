"""The analysis queries (engine.store.analysis) and the figures made from them (engine.figures),
checked against answers counted in Python from the rows the fixture wrote."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tui_fixture import (
    CORPUS,
    RUNS,
    _publish,
    _run,
    build_pairs,
    build_small,
    small_data,
)

from engine import figures
from engine.figures import Side, compare, group_bars, layer_bars, run_facts
from engine.metrics import mean_with_ci
from engine.stats import mcnemar_p
from engine.store import Store, StoreReader, examples_to_arrow

FT, BASE = RUNS[0][0], RUNS[1][0]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small(tmp_path_factory.mktemp("analysis") / "store.duckdb")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, list[dict]]]:
    _, runs = small_data()
    return {run.id: {name: t.to_pylist() for name, t in tables.items()} for run, tables in runs}


@pytest.fixture
def store(db: Path):
    yield StoreReader(db)


def outcomes(rows, run: str, method: str, layer: int, metric: str = "top3") -> dict[str, bool]:
    """Example -> metric, for the examples scorable under (run, method, layer)."""
    return {
        o["example"]: o[metric]
        for o in rows[run]["outcomes"]
        if o["method"] == method and o["layer"] == layer and o[metric] is not None
    }


def cells_in_python(rows, a: Side, b: Side) -> dict[tuple[bool, bool], list[str]]:
    first, second = outcomes(rows, *vars(a).values()), outcomes(rows, *vars(b).values())
    cells: dict[tuple[bool, bool], list[str]] = {
        (x, y): [] for x in (True, False) for y in (True, False)
    }
    for example in sorted(first.keys() & second.keys()):
        cells[(first[example], second[example])].append(example)
    return cells


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (Side(FT, "attention", 6), Side(BASE, "attention", 6)),  # two runs
        (Side(FT, "attention", 6), Side(FT, "attention", 2)),  # two layers
        (Side(FT, "rollout", 6), Side(FT, "grad", 0)),  # two methods
    ],
)
def test_compare_counts_each_cell_of_the_paired_table(store, rows, a: Side, b: Side) -> None:
    expected = {cell: len(ids) for cell, ids in cells_in_python(rows, a, b).items()}
    assert store.compare_cells(a, b, "top3") == expected
    assert sum(expected.values()) > 30  # the fixture's scorable examples, not an empty join


@pytest.mark.parametrize("metric", ["top3", "auprc"])
def test_paired_values_line_up_example_by_example(store, rows, metric: str) -> None:
    a, b = Side(FT, "attention", 6), Side(FT, "grad", 0)
    first, second = (
        outcomes(rows, FT, "attention", 6, metric),
        outcomes(rows, FT, "grad", 0, metric),
    )
    both = sorted(first.keys() & second.keys())
    assert store.paired_values(a, b, metric) == (
        [float(first[e]) for e in both],
        [float(second[e]) for e in both],
    )
    assert len(both) > 30


def test_comparison_carries_mcnemar_p_of_its_discordant_cells(store, rows) -> None:
    a, b = Side(FT, "attention", 6), Side(BASE, "attention", 6)
    cells = cells_in_python(rows, a, b)
    result = compare(store, a, b, "top3")
    assert (result.a_only, result.b_only) == (len(cells[True, False]), len(cells[False, True]))
    assert result.p_value == mcnemar_p(result.a_only, result.b_only)
    assert result.n == sum(len(ids) for ids in cells.values())


def test_compare_page_lists_one_cells_examples_in_id_order_and_pages(store, rows) -> None:
    a, b = Side(FT, "attention", 6), Side(FT, "attention", 1)
    cells = cells_in_python(rows, a, b)
    cell = max(cells, key=lambda c: len(cells[c]))
    ids = cells[cell]
    assert len(ids) > 6
    first = store.compare_page(a, b, "top3", cell, limit=5, offset=0)
    second = store.compare_page(a, b, "top3", cell, limit=5, offset=5)
    assert first.column("id").to_pylist() == ids[:5]
    assert second.column("id").to_pylist() == ids[5:10]
    texts = {e.id: e.text for e in small_data()[0]}
    assert first.column("text").to_pylist() == [texts[i] for i in ids[:5]]


def test_runs_of_different_corpora_share_no_examples(tmp_path: Path) -> None:
    """The same ids in another corpus are other sentences: nothing to pair."""
    examples, runs = small_data()
    path = build_small(tmp_path / "two.duckdb")
    run, tables = runs[0]
    other = _run("other-run", "minilm+ft:other", "other", {}, 9)
    with Store(path) as writer:
        writer.write_examples("other", [examples_to_arrow("other", examples)])
        renamed = {
            name: t.set_column(t.schema.get_field_index("run"), "run", [["other-run"] * len(t)])
            for name, t in tables.items()
        }
        _publish(writer, other, [renamed], tmp_path)
    reader = StoreReader(path)
    cells = reader.compare_cells(
        Side(run.id, "attention", 6), Side("other-run", "attention", 6), "top3"
    )
    assert cells == {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}


def test_grouped_values_by_layer_give_n_mean_and_the_values(store, rows) -> None:
    table = store.grouped_values(FT, "top3", "all", "layer")
    got = {(r["method"], r["layer"]): r for r in table}
    for (method, layer), row in got.items():
        values = [float(v) for v in outcomes(rows, FT, method, layer).values()]
        assert row["n"] == len(values)
        assert row["mean"] == pytest.approx(np.mean(values))
        assert sorted(row["values"]) == sorted(values)
    assert ("attention", 3) in got and ("random", 0) in got


def test_grouped_values_leave_out_the_values_of_a_group_over_the_cap(store) -> None:
    table = store.grouped_values(FT, "top3", "all", "layer", cap=5)
    assert all(row["values"] is None for row in table)
    assert all(row["n"] > 5 and row["mean"] is not None for row in table)


def test_only_the_groups_within_the_cap_carry_their_values(store, rows) -> None:
    sizes = {
        row["kind"]: row["n"]
        for row in store.grouped_values(FT, "top3", "all", "kind", method="attention", layer=6)
    }
    cap = sorted(sizes.values())[1]  # the two smallest kinds fit, the others do not
    table = store.grouped_values(FT, "top3", "all", "kind", method="attention", layer=6, cap=cap)
    expected = outcomes(rows, FT, "attention", 6)
    kinds = {o["example"]: o["kind"] for o in rows[FT]["outcomes"]}
    for row in table:
        if row["n"] <= cap:
            mine = [float(v) for e, v in expected.items() if kinds[e] == row["kind"]]
            assert sorted(row["values"]) == sorted(mine)
        else:
            assert row["values"] is None
    assert sum(row["values"] is not None for row in table) >= 2


def test_flagged_population_keeps_the_examples_the_model_flags(store, rows) -> None:
    flagged = {p["example"] for p in rows[FT]["predictions"] if p["pred"]}
    values = [v for e, v in outcomes(rows, FT, "attention", 6).items() if e in flagged]
    row = next(
        r
        for r in store.grouped_values(FT, "top3", "flagged", "layer")
        if (r["method"], r["layer"]) == ("attention", 6)
    )
    assert row["n"] == len(values) < len(outcomes(rows, FT, "attention", 6))


def test_rationale_sizes_of_three_or_more_are_one_group(store, rows) -> None:
    sizes: dict[int, int] = {}
    for o in rows[FT]["outcomes"]:
        if (o["method"], o["layer"]) == ("attention", 6) and o["top3"] is not None:
            sizes[min(o["rationale_size"], 3)] = sizes.get(min(o["rationale_size"], 3), 0) + 1
    table = store.grouped_values(FT, "top3", "all", "rationale", method="attention", layer=6)
    assert {row["rationale"]: row["n"] for row in table} == sizes
    assert all(len(row["values"]) == row["n"] for row in table)


def test_unknown_metric_population_or_grouping_is_refused(store) -> None:
    with pytest.raises(ValueError, match="metric"):
        store.grouped_values(FT, "jaccard", "all", "layer")  # not a yes/no metric
    with pytest.raises(ValueError, match="grouping"):
        store.grouped_values(FT, "top3", "all", "split")
    with pytest.raises(ValueError, match="metric"):
        store.compare_cells(Side(FT, "attention", 6), Side(FT, "attention", 5), "top3; DROP")


def test_run_populations_count_the_runs_predictions(store, rows) -> None:
    preds = rows[FT]["predictions"]
    assert store.run_populations(FT) == {
        "evaluated": len(preds),
        "needs_edit": sum(p["label"] for p in preds),
        "all": sum(p["scorable"] for p in preds),
        "flagged": sum(p["scorable"] and p["pred"] for p in preds),
        "predicted_edit": sum(p["pred"] for p in preds),
    }


def test_head_rows_hold_the_grid_and_the_last_layers_rows(store, rows) -> None:
    head = next(h for h in rows[FT]["heads"] if h["example"] == "s0002")
    detail = store.head_rows(FT, "s0002")
    assert detail["grid"] == pytest.approx(head["grid"])
    assert detail["last"] == pytest.approx(head["last"])
    assert len(detail["last"]) == detail["heads"] * detail["seen_words"]
    assert store.head_rows(FT, "no-such-example") is None


def test_examples_by_id_keep_the_order_asked_and_skip_unknown_ids(store, rows) -> None:
    table = store.examples_by_id(FT, "attention", 6, ["s0005", "missing", "s0002"])
    assert table.column("id").to_pylist() == ["s0005", "s0002"]
    expected = outcomes(rows, FT, "attention", 6)
    assert table.column("top3").to_pylist() == [expected.get("s0005"), expected.get("s0002")]
    assert table.column("scores")[0].as_py() is not None


@pytest.fixture(scope="module")
def pair_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pairs(tmp_path_factory.mktemp("pairs"))


def test_pair_rows_put_the_sentence_before_its_edited_twin(pair_db: Path) -> None:
    reader = StoreReader(pair_db)
    original = reader.pair_rows("pairs-run", "s0001", "attention", 6)
    from_twin = reader.pair_rows("pairs-run", "s0001/edited", "attention", 6)
    assert [r["id"] for r in original] == ["s0001", "s0001/edited"] == [r["id"] for r in from_twin]
    first, twin = original
    assert twin["words"] == [w for i, w in enumerate(first["words"]) if i not in first["rationale"]]
    assert twin["label"] is False and first["label"] is True
    assert len(first["scores"]) == first["seen_words"]


def test_a_sentence_without_a_twin_has_one_row(store) -> None:
    assert [r["id"] for r in store.pair_rows(FT, "s0001", "attention", 6)] == ["s0001"]


# -- figures ---------------------------------------------------------------------------------


def test_layer_bars_carry_the_bootstrap_interval_of_the_results_page(store, rows) -> None:
    bars = layer_bars(store, FT, "top3", "all")
    bar = next(b for b in bars if (b.heading, b.value) == ("rollout", 4))
    values = [float(v) for v in outcomes(rows, FT, "rollout", 4).values()]
    assert bar.estimate == mean_with_ci(values, resamples=1000, seed=0)
    assert [b.heading for b in bars][:6] == ["attention"] * 6  # the vocabulary's order
    assert bars[-1].heading == "random" and bars[-1].label == "–"


def test_a_bar_over_the_bootstrap_limit_has_its_mean_and_no_interval(store, monkeypatch) -> None:
    monkeypatch.setattr(figures, "BOOTSTRAP_MAX_N", 5)
    bar = layer_bars(store, FT, "top3", "all")[0]
    assert not math.isnan(bar.estimate.mean)
    assert math.isnan(bar.estimate.low) and math.isnan(bar.estimate.high)


def test_group_bars_by_rationale_size_label_the_last_group_three_or_more(store) -> None:
    bars = group_bars(store, FT, "attention", 6, "top3", "all", "rationale")
    assert [b.label for b in bars] == ["|R|=1", "|R|=2", "|R|=3+"]
    kinds = group_bars(store, FT, "attention", 6, "top3", "all", "kind")
    assert {b.value for b in kinds} == {"deleted", "spelling", "inserted", "mixed"}


def test_run_facts_flag_an_untrained_head_and_a_partial_run(tmp_path: Path) -> None:
    examples, runs = small_data()
    path = build_small(tmp_path / "facts.duckdb")
    _, tables = runs[0]
    partial = replace(
        _run("partial-run", "minilm", CORPUS, {}, 7), config={"model": "minilm", "limit": 20}
    )
    renamed = {
        name: t.set_column(t.schema.get_field_index("run"), "run", [["partial-run"] * len(t)])
        for name, t in tables.items()
    }
    with Store(path) as writer:
        _publish(writer, partial, [renamed], tmp_path)
    reader = StoreReader(path)
    facts = run_facts(reader, "partial-run")
    assert facts.head == "untrained" and facts.limit == 20
    assert facts.badges == ["PARTIAL: --limit 20", "UNTRAINED HEAD: not fine-tuned"]
    assert facts.seconds == 300
    fine_tuned = run_facts(reader, FT)
    assert fine_tuned.head == "fine-tuned" and fine_tuned.badges == []
    assert fine_tuned.populations["evaluated"] == len(examples)
