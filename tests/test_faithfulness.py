"""Stored faithfulness, word scores and occlusion against probabilities worked out by hand.

The model is a stub whose probabilities follow from counting two words and whose attention
is written below, so every stored figure has an exact answer; the tokenizer is the real minilm
one (loaded alone, in a fraction of a second). Evaluation runs end to end: ingest, forward,
attribute, rank, ablate, store.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
import torch

import engine.evaluate as evaluate_module
from engine.evaluate import EvalSpec, evaluate
from engine.ingest import ingest
from engine.models import DEFAULT_MODEL, LoadedModel, load_tokenizer
from engine.store import Store

SENTENCES = {
    # id: (AESW markup, the rationale's word index)
    "1.0": ("Our method holds <del>the </del>for every case.", 3),
    "2.0": ("The proof of the bound <del>folows</del><ins>follows</ins> here.", 5),
    "3.0": ("A result <del>is </del>shown.", 2),
    "4.0": ("Each sample converges quickly.", None),
}


class CountingModel(torch.nn.Module):
    """logits = (ln 2 * (1 + #"a"), ln 3 * #"the"), so p(needs edit) = 3^t / (3^t + 2^(1+a)).

    Attention: layer 1 is uniform over the real tokens; in layer 2 every row weighs "the" and
    "a" 10 and any other token 1 (so the last layer ranks those words first).
    """

    def __init__(self, the: int, a: int) -> None:
        super().__init__()
        self.the, self.a = the, a
        self.config = SimpleNamespace(num_hidden_layers=2, num_attention_heads=1, pad_token_id=0)

    def forward(self, input_ids, attention_mask, output_attentions=False, **_):
        real = attention_mask.bool()
        the = ((input_ids == self.the) & real).sum(dim=1).double()
        a = ((input_ids == self.a) & real).sum(dim=1).double()
        logits = torch.stack([math.log(2) * (1 + a), math.log(3) * the], dim=1).float()
        marked = (input_ids == self.the) | (input_ids == self.a)
        layers = []
        for weights in (real.float(), real.float() * (1 + 9 * marked.float())):
            row = weights / weights.sum(dim=1, keepdim=True)  # (batch, tokens)
            tokens = row.shape[1]
            layers.append(row[:, None, None, :].expand(-1, 1, tokens, tokens))
        return SimpleNamespace(
            logits=logits, attentions=tuple(layers) if output_attentions else None
        )


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    tokenizer = load_tokenizer(DEFAULT_MODEL)
    the, a = tokenizer.convert_tokens_to_ids(["the", "a"])
    stub = LoadedModel("stub", "stub", CountingModel(the, a), tokenizer, {})
    monkeypatch.setattr(evaluate_module, "load_model", lambda name, seed=0: stub)
    body = "\n".join(f'<sentence sid="{i}">{text}</sentence>' for i, (text, _) in SENTENCES.items())
    xml = tmp_path / "tiny.xml"
    xml.write_text(f'<?xml version="1.0"?>\n<xml><p pid="1">\n{body}\n</p></xml>')
    db = tmp_path / "store.duckdb"
    with Store(db) as opened:
        ingest(opened, xml, corpus="tiny", split="test")
    return db


def stored(db: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query).fetchall()


def test_stored_faithfulness_is_the_hand_computed_drop_in_the_predicted_class(store) -> None:
    evaluate(store, EvalSpec(corpus="tiny", model="stub", methods=("attention",), batch_size=2))
    rationales = dict(stored(store, "SELECT id, rationale FROM examples"))
    assert rationales == {i: [] if r is None else [r] for i, (_, r) in SENTENCES.items()}
    predictions = stored(store, "SELECT example, pred, confidence FROM predictions ORDER BY 1")
    expected_predictions = [
        ("1.0", True, 3 / 5),  # one "the": 3 / (3 + 2)
        ("2.0", True, 9 / 11),  # two: 9 / (9 + 2)
        ("3.0", False, 4 / 5),  # one "a": p(no edit) = 4 / (1 + 4)
        ("4.0", False, 2 / 3),  # neither: 2 / (1 + 2)
    ]
    for (example, pred, confidence), (e, p, c) in zip(
        predictions, expected_predictions, strict=True
    ):
        assert (example, pred) == (e, p) and confidence == pytest.approx(c, rel=1e-6)

    outcomes = stored(
        store,
        """SELECT example, layer, comprehensiveness, sufficiency, aopc_comprehensiveness,
                  aopc_sufficiency FROM outcomes WHERE scorable ORDER BY example, layer""",
    )
    # k = |R| = 1 everywhere; the last layer (2) ranks "the"/"a" first, the other words by
    # their tokens' summed weight, ties to the lower index. AOPC averages k in aopc_sizes:
    # (1, 2, 3) for 8 words, (1, 3) for 5.
    expected = {
        # ranking 3, 0, 1, ...: "the" is in every top-k. Without it no "the": p(edit) 1/3;
        # with it alone or with others p(edit) stays 3/5.
        "1.0": (3 / 5 - 1 / 3, 0.0, 3 / 5 - 1 / 3, 0.0),
        # ranking 0, 3, 5 ("folows": 3 tokens), ...: top-1 leaves one "the" either way (3/5);
        # top-2 and top-3 hold both "the"s: without them 1/3, alone 9/11.
        "2.0": (
            9 / 11 - 3 / 5,
            9 / 11 - 3 / 5,
            ((9 / 11 - 3 / 5) + 2 * (9 / 11 - 1 / 3)) / 3,
            (9 / 11 - 3 / 5) / 3,
        ),
        # ranking 0 ("A"), 1, 2, ...: the prediction is "no edit", so its probability is what
        # drops: without "a" p(no edit) = 2/3; with "a" kept it stays 4/5.
        "3.0": (4 / 5 - 2 / 3, 0.0, 4 / 5 - 2 / 3, 0.0),
    }
    for example, layer, *figures in outcomes:
        if layer == 1:  # faithfulness is measured at the last layer only
            assert figures == [None] * 4, example
            continue
        assert figures == pytest.approx(expected.pop(example), abs=1e-6), example
    assert expected == {}
    unscored = stored(store, "SELECT comprehensiveness FROM outcomes WHERE example = '4.0'")
    assert unscored == [(None,), (None,)]


def word_scores_stored(db: Path, run_id: str, method: str, layer: int, example: str) -> list:
    ((scores,),) = stored(
        db,
        f"""SELECT scores FROM scores WHERE run = '{run_id}' AND method = '{method}'
            AND layer = {layer} AND example = '{example}'""",
    )
    return scores


@pytest.mark.parametrize(
    ("aggregation", "folows"),
    # "The proof of the bound folows here ." at layer 2: the two "the" tokens weigh 10, the
    # other 10 tokens ([CLS] and [SEP] included) 1, so each token gets 1/30 and each "the" 1/3;
    # "folows" is f ##olo ##ws: 3/30 summed, 1/30 as mean or max.
    [("sum", 3 / 30), ("mean", 1 / 30), ("max", 1 / 30)],
)
def test_word_scores_are_stored_with_the_evaluations_aggregation(store, aggregation, folows):
    spec = EvalSpec(corpus="tiny", model="stub", methods=("attention",), aggregation=aggregation)
    run_id = evaluate(store, spec).run_id
    scores = word_scores_stored(store, run_id, "attention", 2, "2.0")
    expected = [1 / 3, 1 / 30, 1 / 30, 1 / 3, 1 / 30, folows, 1 / 30, 1 / 30]
    assert scores == pytest.approx(expected, rel=1e-5)
    ((config,),) = stored(store, f"SELECT config FROM runs WHERE id = '{run_id}'")
    assert json.loads(config)["aggregation"] == aggregation


@pytest.mark.parametrize(
    ("explain", "expected"),
    [
        # "A result is shown ." is predicted "no edit" (p(edit) = 1/5). Explaining "needs edit":
        # without "A" (no "a" left) p(edit) rises to 1/3, a drop of 1/5 - 1/3.
        ("edit", [1 / 5 - 1 / 3, 0.0, 0.0, 0.0, 0.0]),
        # Explaining the prediction: p(no edit) falls from 4/5 to 2/3.
        ("pred", [4 / 5 - 2 / 3, 0.0, 0.0, 0.0, 0.0]),
    ],
)
def test_occlusion_explains_needs_edit_by_default_and_the_prediction_on_request(
    store, explain, expected
) -> None:
    spec = EvalSpec(corpus="tiny", model="stub", methods=("occlusion",), explain=explain)
    run_id = evaluate(store, spec).run_id
    scores = word_scores_stored(store, run_id, "occlusion", 0, "3.0")
    assert scores == pytest.approx(expected, abs=1e-6)
