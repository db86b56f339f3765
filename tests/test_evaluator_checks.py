"""A method's checks of itself, stored per example: integrated gradients' convergence delta.

Evaluation runs end to end (ingest, forward, attribute, store) on a tiny random BERT with the
real minilm tokenizer, so it takes seconds; the stored figure is compared with the one the
method gives for that sentence alone, and the run's summary with the mean of the stored rows.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

import engine.evaluate as evaluate_module
from engine.align import encode
from engine.attribution import Inputs, token_to_word_matrix, word_scores
from engine.attribution.gradient import IntegratedGradients
from engine.batching import collate
from engine.evaluate import EvalSpec, evaluate
from engine.ingest import ingest
from engine.models import DEFAULT_MODEL, LoadedModel, load_tokenizer
from engine.store import Store

SENTENCES = [
    "Our method holds <del>the </del>for every case.",
    "The proof of the bound <del>folows</del><ins>follows</ins> here.",
    "A result <del>is </del>shown.",
    "Each sample converges quickly.",
    "The model is<del>,</del> shown in <ins>the </ins>appendix.",
]
STEPS = 3
SPEC = EvalSpec(
    corpus="tiny",
    model="stub",
    methods=("attention", "grad", "integrated_gradients"),
    ig_steps=STEPS,
    batch_size=2,
    faithfulness=False,
)


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    tokenizer = load_tokenizer(DEFAULT_MODEL)
    torch.manual_seed(3)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=128,
        num_labels=2, pad_token_id=tokenizer.pad_token_id, attn_implementation="eager",
        initializer_range=0.3,
    )  # fmt: skip
    model = BertForSequenceClassification(config).eval()
    return LoadedModel("stub", "stub", model, tokenizer, {})


@pytest.fixture(scope="module")
def evaluated(loaded, tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("checks")
    body = "\n".join(f'<sentence sid="{i}.0">{text}</sentence>' for i, text in enumerate(SENTENCES))
    xml = folder / "tiny.xml"
    xml.write_text(f'<?xml version="1.0"?>\n<xml><p pid="1">\n{body}\n</p></xml>')
    db = folder / "store.duckdb"
    with Store(db) as opened:
        ingest(opened, xml, corpus="tiny", split="test")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate_module, "load_model", lambda name, seed=0: loaded)
        run_id = evaluate(db, SPEC).run_id
    return db, run_id


def stored(db: Path, query: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query, list(params)).fetchall()


def delta_alone(loaded: LoadedModel, text: str, starts: list[int], ends: list[int]) -> float:
    """The method's delta for one sentence in a batch of its own, explaining "needs edit"."""
    (encoded,) = encode(loaded.tokenizer, [text], [starts], [ends], SPEC.max_length)
    batch = collate([encoded], [0], loaded.tokenizer.pad_token_id)
    inputs = Inputs(loaded.model, batch, ["alone"], None, torch.ones(1, dtype=torch.long))
    matrix = token_to_word_matrix(batch.word_of_token, batch.words)
    _, checks = word_scores(IntegratedGradients(steps=STEPS), inputs, matrix)
    return float(checks["ig_delta"][0])


def test_every_integrated_gradients_row_stores_the_delta_of_its_sentence_alone(
    loaded, evaluated
) -> None:
    db, run_id = evaluated
    rows = stored(
        db,
        """SELECT o.ig_delta, e.text, e.starts, e.ends FROM outcomes o
           JOIN examples e ON e.id = o.example
           WHERE o.run = ? AND o.method = 'integrated_gradients' ORDER BY o.example""",
        run_id,
    )
    assert len(rows) == len(SENTENCES)
    for delta, text, starts, ends in rows:
        assert delta == pytest.approx(delta_alone(loaded, text, starts, ends), rel=1e-3, abs=1e-6)
    assert any(delta > 1e-4 for delta, *_ in rows)  # three steps leave a visible gap


def test_the_delta_is_null_on_every_other_methods_rows(evaluated) -> None:
    db, run_id = evaluated
    filled = stored(
        db,
        """SELECT method, count(*), count(ig_delta) FROM outcomes WHERE run = ?
           GROUP BY method ORDER BY method""",
        run_id,
    )
    per_method = len(SENTENCES)
    assert filled == [
        ("attention", 2 * per_method, 0),
        ("grad", per_method, 0),
        ("integrated_gradients", per_method, per_method),
    ]


def test_the_run_summary_holds_the_mean_delta_over_its_population(evaluated) -> None:
    db, run_id = evaluated
    summaries = stored(
        db,
        "SELECT method, layer, population, ig_delta FROM summaries WHERE run = ?",
        run_id,
    )
    assert "integrated_gradients" in {method for method, *_ in summaries}
    for method, layer, population, mean in summaries:
        if method != "integrated_gradients":
            assert mean is None, (method, layer)
            continue
        ((expected,),) = stored(
            db,
            """SELECT avg(ig_delta) FROM outcomes WHERE run = ? AND method = ? AND scorable
               AND (? = 'all' OR pred)""",
            run_id,
            method,
            population,
        )
        assert mean == pytest.approx(expected) and mean > 0
