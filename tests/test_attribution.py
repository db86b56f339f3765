"""Rationale methods: shared tests that every registered method must pass, then known answers.

The shared tests run on a tiny random BERT (2 layers, 2 heads, 16 dimensions) built in memory,
so every method, integrated gradients included, runs in milliseconds. Word scores are taken
the way the evaluator takes them: ``word_scores`` (signed token scores, magnitudes where the
method says so, then one mapping to words).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from transformers import BertConfig

from engine.align import NO_WORD, Encoded
from engine.attribution import (
    AGGREGATIONS,
    METHODS,
    Attribution,
    Inputs,
    cls_rows,
    to_words,
    token_to_word_matrix,
    word_scores,
)
from engine.attribution.attention import Attention as AttentionMean
from engine.attribution.attention import AttentionMax, AttentionNorm, Rollout
from engine.attribution.baseline import RandomRanking
from engine.attribution.gradient import IntegratedGradients, embedding_gradients
from engine.attribution.perturbation import Occlusion
from engine.batching import Batch, collate
from engine.errors import EditlensError
from engine.specs import EvalSpec
from engine.vocabulary import METHODS as METHOD_INFOS
from engine.vocabulary import METRIC_NAMES

CLS, SEP, PAD = 1, 2, 0
LAYERS, HEADS = 2, 2


def tiny_bert(initializer_range: float = 0.02) -> torch.nn.Module:
    from transformers import BertForSequenceClassification

    torch.manual_seed(7)
    config = BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=32, max_position_embeddings=64, num_labels=2, pad_token_id=PAD,
        attn_implementation="eager", initializer_range=initializer_range,
    )  # fmt: skip
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_bert()


@pytest.fixture(scope="module")
def curved_model() -> torch.nn.Module:
    """Weights 15 times BERT's initial scale: removing words moves the logit by 0.1 to 1.4, and
    not along a straight line, so integrated gradients' step count matters (at BERT's scale
    the logits barely move: every delta is under 1e-5)."""
    return tiny_bert(initializer_range=0.3)


def sentence(words: list[list[int]]) -> Encoded:
    """[CLS] + each word's token ids + [SEP], with the word of every token."""
    ids, word_of_token = [CLS], [NO_WORD]
    for index, tokens in enumerate(words):
        ids += tokens
        word_of_token += [index] * len(tokens)
    return Encoded([*ids, SEP], [*word_of_token, NO_WORD], len(words), False)


SENTENCES = {
    "a": sentence([[5], [6, 7], [8], [9, 10, 11]]),
    "b": sentence([[12], [13]]),
    "c": sentence([[14, 15], [16], [17], [18], [19], [20, 21]]),
}


def inputs_for(
    model: torch.nn.Module, ids: list[str], *, pad_to: int | None = None, target: int | None = None
) -> Inputs:
    """What evaluate builds: one forward pass with attentions and hidden states; by default the
    predicted class is explained."""
    encoded = [SENTENCES[i] for i in ids]
    batch = collate(encoded, list(range(len(ids))), PAD, pad_to)
    with torch.inference_mode():
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            output_attentions=True,
            output_hidden_states=True,
        )
    predicted = out.logits.argmax(dim=-1).clone()
    return Inputs(
        model=model,
        batch=batch,
        example_ids=ids,
        attentions=tuple(a.clone() for a in out.attentions),
        target=predicted if target is None else torch.full_like(predicted, target),
        hidden_states=tuple(h.clone() for h in out.hidden_states),
    )


def scores(method: Attribution, inputs: Inputs, aggregation: str = "sum") -> torch.Tensor:
    """(batch, layers or 1, words), as the evaluator stores them."""
    matrix = token_to_word_matrix(inputs.batch.word_of_token, inputs.batch.words)
    return word_scores(method, inputs, matrix, aggregation)[0].clone()


def example_scores(method: Attribution, inputs: Inputs, row: int, example: str) -> torch.Tensor:
    """(layers or 1, words of that example)"""
    return scores(method, inputs)[row, :, : SENTENCES[example].seen_words]


SPEC = EvalSpec(corpus="test", ig_steps=16, seed=0)
every_method = pytest.mark.parametrize(
    "method", [cls.from_spec(SPEC) for cls in METHODS.values()], ids=list(METHODS)
)


# --- shared tests: every registered method -----------------------------------------------------


def test_the_registry_holds_exactly_the_vocabulary_methods_in_its_order() -> None:
    assert tuple(METHODS) == tuple(info.name for info in METHOD_INFOS)
    assert all(name == method.name for name, method in METHODS.items())


@pytest.mark.parametrize("info", METHOD_INFOS, ids=[info.name for info in METHOD_INFOS])
def test_each_method_sits_in_the_family_the_vocabulary_gives_it(info) -> None:
    assert METHODS[info.name].family == info.family


@every_method
def test_raw_scores_are_per_token_or_per_word_and_per_layer_when_layered(model, method) -> None:
    inputs = inputs_for(model, ["a", "b", "c"])
    with torch.inference_mode(not method.needs_gradients):
        raw = method.attribute(inputs)
    width = inputs.batch.words if method.per_word else inputs.batch.input_ids.shape[1]
    assert raw.shape == (3, LAYERS if method.layered else 1, width)


@every_method
def test_word_scores_are_batch_by_layers_by_words_and_finite(model, method) -> None:
    result = scores(method, inputs_for(model, ["a", "b", "c"]))
    assert result.shape == (3, LAYERS if method.layered else 1, 6)
    assert torch.isfinite(result).all()


@every_method
def test_padding_the_batch_wider_leaves_word_scores_unchanged(model, method) -> None:
    narrow = example_scores(method, inputs_for(model, ["b"]), 0, "b")
    wide = example_scores(method, inputs_for(model, ["b"], pad_to=20), 0, "b")
    torch.testing.assert_close(wide, narrow, rtol=1e-4, atol=1e-6)


@every_method
def test_word_scores_do_not_depend_on_the_rest_of_the_batch(model, method) -> None:
    alone = example_scores(method, inputs_for(model, ["a"]), 0, "a")
    together = example_scores(method, inputs_for(model, ["c", "b", "a"]), 2, "a")
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-6)


@every_method
def test_checks_are_one_finite_figure_per_example_under_a_vocabulary_metric(model, method) -> None:
    inputs = inputs_for(model, ["a", "b", "c"])
    matrix = token_to_word_matrix(inputs.batch.word_of_token, inputs.batch.words)
    _, checks = word_scores(method, inputs, matrix)
    assert set(checks) <= set(METRIC_NAMES)
    for check in checks.values():
        assert check.shape == (3,)
        assert torch.isfinite(check).all()


@every_method
def test_words_past_an_example_end_score_zero(model, method) -> None:
    # "b" has 2 words in a batch 6 words wide: its last 4 columns have no tokens.
    if method.name == "random":
        pytest.skip("random draws a score for every column; evaluate keeps only the seen words")
    result = scores(method, inputs_for(model, ["b", "c"]))
    assert (result[0, :, 2:] == 0).all()


@every_method
def test_attention_all_on_special_tokens_gives_every_word_zero(model, method) -> None:
    if not method.needs_attentions or method.needs_gradients:
        pytest.skip("reads no attention, or also gradients through the model")
    inputs = inputs_for(model, ["a"])
    only_specials = tuple(torch.zeros_like(a) for a in inputs.attentions)
    for a in only_specials:
        a[..., 0] = 1.0  # every row puts all its mass on [CLS]
    inputs.attentions = only_specials
    assert (scores(method, inputs) == 0).all()


# --- known answers -----------------------------------------------------------------------------


def hand_inputs(attentions: tuple[torch.Tensor, ...], word_of_token: list[int]) -> Inputs:
    words = max(word_of_token) + 1
    of_token = torch.tensor([word_of_token])
    batch = Batch([0], torch.zeros_like(of_token), torch.ones_like(of_token), of_token, words)
    return Inputs(torch.nn.Identity(), batch, ["x"], attentions, target=torch.tensor([1]))


def test_token_to_word_matrix_sums_subword_scores_into_words() -> None:
    of_token = torch.tensor([[NO_WORD, 0, 0, 1, 2, 2, 2, NO_WORD, NO_WORD]])
    matrix = token_to_word_matrix(of_token, 3)
    assert matrix.shape == (1, 9, 3)
    assert matrix[0].tolist() == [
        [0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1],
        [0, 0, 0], [0, 0, 0],
    ]  # fmt: skip
    token_scores = torch.tensor([[[9.0, 0.1, 0.2, 0.3, 1.0, 2.0, 4.0, 9.0, 9.0]]])
    torch.testing.assert_close(token_scores @ matrix, torch.tensor([[[0.3, 0.3, 7.0]]]))


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        # words: 0 = tokens 1, 2 (0.5, -1.5); 1 = token 3 (0.25); 2 = tokens 4..6 (1, -2, 4);
        # word 3 has no token (past this example's end). Specials carry 9 and must not count.
        ("sum", [-1.0, 0.25, 3.0, 0.0]),
        ("mean", [-0.5, 0.25, 1.0, 0.0]),
        ("max", [0.5, 0.25, 4.0, 0.0]),
    ],
)
def test_subword_scores_become_word_scores_by_sum_mean_or_max(aggregation, expected) -> None:
    of_token = torch.tensor([[NO_WORD, 0, 0, 1, 2, 2, 2, NO_WORD, NO_WORD]])
    matrix = token_to_word_matrix(of_token, 4)
    token_scores = torch.tensor([[[9.0, 0.5, -1.5, 0.25, 1.0, -2.0, 4.0, 9.0, 9.0]]])
    result = to_words(token_scores, matrix, aggregation)
    torch.testing.assert_close(result, torch.tensor([[expected]]))
    assert aggregation in AGGREGATIONS


def test_an_unknown_aggregation_is_refused() -> None:
    with pytest.raises(ValueError, match="median"):
        to_words(torch.zeros(1, 1, 2), torch.zeros(1, 2, 1), "median")


def test_magnitudes_are_taken_per_token_before_summing_into_words(model) -> None:
    # grad_x_input and integrated gradients rank by |token score|: -1 and +1 on one word's two
    # subwords give that word 2, not 0.
    class Signed(Attribution):
        name = "signed"
        family = "gradient"
        magnitude = True

        def attribute(self, inputs: Inputs) -> torch.Tensor:
            return torch.tensor([[[0.0, -1.0, 1.0, 0.0]]])

    inputs = hand_inputs((), [NO_WORD, 0, 0, NO_WORD])
    torch.testing.assert_close(scores(Signed(), inputs), torch.tensor([[[2.0]]]))


def test_cls_rows_take_row_zero_of_every_layer_and_head() -> None:
    layer = torch.arange(2 * 2 * 3 * 3, dtype=torch.float32).view(2, 2, 3, 3)
    rows = cls_rows((layer, layer + 100))
    assert rows.shape == (2, 2, 2, 3)  # (batch, layers, heads, tokens)
    assert rows[1, 1, 0].tolist() == [118.0, 119.0, 120.0]


def test_attention_means_heads_and_attention_max_takes_the_sharpest_head_per_token() -> None:
    layer = torch.zeros(1, 2, 3, 3)  # (batch, heads, tokens, tokens); [CLS] rows below
    layer[0, 0, 0] = torch.tensor([0.1, 0.7, 0.2])
    layer[0, 1, 0] = torch.tensor([0.5, 0.1, 0.4])
    separate = hand_inputs((layer,), [NO_WORD, 0, 1])
    torch.testing.assert_close(scores(AttentionMean(), separate), torch.tensor([[[0.4, 0.3]]]))
    torch.testing.assert_close(scores(AttentionMax(), separate), torch.tensor([[[0.7, 0.4]]]))
    # One word of two tokens: max is taken per token, then summed (0.7 + 0.4), not per word.
    joined = hand_inputs((layer,), [NO_WORD, 0, 0])
    torch.testing.assert_close(scores(AttentionMean(), joined), torch.tensor([[[0.7]]]))
    torch.testing.assert_close(scores(AttentionMax(), joined), torch.tensor([[[1.1]]]))


def test_rollout_of_two_hand_made_layers() -> None:
    # A^ = 0.5 A + 0.5 I (rows of A already sum to 1, so renormalising changes nothing):
    #   A1 = [[.2 .6 .2] [.5 .5 0] [0 0 1]]  ->  A^1 = [[.6 .3 .1] [.25 .75 0] [0 0 1]]
    #   A2 = [[0 1 0] [0 0 1] [1 0 0]]       ->  A^2 = [[.5 .5 0] [0 .5 .5] [.5 0 .5]]
    # Layer 1: R = A^1, [CLS] row [.6 .3 .1].
    # Layer 2: R = A^2 A^1, [CLS] row = .5 [.6 .3 .1] + .5 [.25 .75 0] = [.425 .525 .05].
    # Tokens 1 and 2 are words 0 and 1; [CLS] (token 0) belongs to no word.
    a1 = torch.tensor([[0.2, 0.6, 0.2], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    a2 = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    ctx = hand_inputs((a1.view(1, 1, 3, 3), a2.view(1, 1, 3, 3)), [NO_WORD, 0, 1])
    expected = torch.tensor([[[0.3, 0.1], [0.525, 0.05]]])  # (batch, layers, words)
    torch.testing.assert_close(scores(Rollout(), ctx), expected)


def test_rollout_averages_heads_before_mixing_in_the_identity() -> None:
    # Heads [[0 1] [1 0]] and [[1 0] [0 1]] average to [[.5 .5] [.5 .5]];
    # A^ = .5 mean + .5 I = [[.75 .25] [.25 .75]]: word 0 (token 1) gets .25.
    heads = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]]).unsqueeze(0)
    ctx = hand_inputs((heads,), [NO_WORD, 0])
    torch.testing.assert_close(scores(Rollout(), ctx), torch.tensor([[[0.25]]]))


def test_rollout_renormalises_rows_that_do_not_sum_to_one() -> None:
    # A = [[1 1] [0 2]]: A^ = .5 A + .5 I = [[1 .5] [0 1.5]] -> rows / sums = [[2/3 1/3] [0 1]].
    doubled = torch.tensor([[1.0, 1.0], [0.0, 2.0]]).view(1, 1, 2, 2)
    ctx = hand_inputs((doubled,), [NO_WORD, 0])
    torch.testing.assert_close(scores(Rollout(), ctx), torch.tensor([[[1 / 3]]]))


def test_random_is_the_same_per_seed_and_example_id_whatever_the_batch(model) -> None:
    method = RandomRanking(seed=0)
    first = example_scores(method, inputs_for(model, ["a"]), 0, "a")
    again = example_scores(method, inputs_for(model, ["c", "a"]), 1, "a")
    other_seed = example_scores(RandomRanking(seed=1), inputs_for(model, ["a"]), 0, "a")
    other_example = example_scores(method, inputs_for(model, ["b"]), 0, "b")
    torch.testing.assert_close(again, first)
    assert not torch.equal(other_seed, first)
    assert not torch.equal(other_example, first[:, :2])
    assert ((first >= 0) & (first < 1)).all()


# --- gradients against independent computations ----------------------------------------------


def predicted_logit(model, embeddings: torch.Tensor, mask: torch.Tensor, label: int):
    return model(inputs_embeds=embeddings, attention_mask=mask).logits[0, label]


def one_by_one_gradients(model, inputs: Inputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per example, on its own: (gradient, embeddings) of the target logit, unpadded."""
    results = []
    for row, example in enumerate(inputs.example_ids):
        ids = torch.tensor([SENTENCES[example].input_ids])
        embeddings = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        logit = predicted_logit(model, embeddings, torch.ones_like(ids), int(inputs.target[row]))
        (gradient,) = torch.autograd.grad(logit, embeddings)
        results.append((gradient[0], embeddings[0].detach()))
    return results


def summed_into_words(token_scores: torch.Tensor, example: str) -> torch.Tensor:
    of_token = torch.tensor([SENTENCES[example].word_of_token])
    matrix = token_to_word_matrix(of_token, SENTENCES[example].seen_words)[0]
    return token_scores @ matrix


@pytest.mark.parametrize("target", [None, 0, 1], ids=["predicted", "class 0", "class 1"])
def test_grad_and_grad_x_input_match_autograd_run_on_each_example_alone(model, target) -> None:
    inputs = inputs_for(model, ["a", "b", "c"], target=target)
    grad = scores(METHODS["grad"](), inputs)
    grad_x_input = scores(METHODS["grad_x_input"](), inputs)
    for row, (gradient, embeddings) in enumerate(one_by_one_gradients(model, inputs)):
        example = inputs.example_ids[row]
        words = SENTENCES[example].seen_words
        expected_grad = summed_into_words(gradient.norm(dim=-1), example)
        expected_gxi = summed_into_words((gradient * embeddings).sum(-1).abs(), example)
        torch.testing.assert_close(grad[row, 0, :words], expected_grad, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(grad_x_input[row, 0, :words], expected_gxi, rtol=1e-4, atol=1e-7)


def test_gradients_explain_the_target_class_not_the_prediction(model) -> None:
    # Two classes, two logits: their gradients differ, so the target must be the one asked for.
    first = scores(METHODS["grad"](), inputs_for(model, ["a"], target=0))
    second = scores(METHODS["grad"](), inputs_for(model, ["a"], target=1))
    assert not torch.allclose(first, second)


def test_grad_x_input_matches_a_finite_difference_along_each_token(model) -> None:
    # d/de f(x + e * x_t) at e = 0 is grad_t . x_t; central differences in float64.
    inputs = inputs_for(model, ["a"])
    with torch.no_grad():
        signed = METHODS["grad_x_input"]().attribute(inputs)[0, 0]  # (tokens,)
    double = type(model)(model.config).double().eval()
    double.load_state_dict(model.state_dict())
    ids = torch.tensor([SENTENCES["a"].input_ids])
    embeddings = double.get_input_embeddings()(ids).detach()
    mask, label, step = torch.ones_like(ids), int(inputs.target[0]), 1e-4
    per_token = []
    with torch.no_grad():
        for t in range(ids.shape[1]):
            direction = torch.zeros_like(embeddings)
            direction[0, t] = embeddings[0, t]
            plus = predicted_logit(double, embeddings + step * direction, mask, label)
            minus = predicted_logit(double, embeddings - step * direction, mask, label)
            per_token.append((plus - minus) / (2 * step))
    torch.testing.assert_close(signed, torch.stack(per_token).float(), rtol=1e-3, atol=1e-6)


def path_integral(model, inputs: Inputs, steps: int):
    """Signed IG per token, step by step with the shared gradient helper: (batch, tokens)."""
    embeddings = model.get_input_embeddings()(inputs.batch.input_ids).detach()
    pad = model.get_input_embeddings().weight[PAD].detach()
    on_words = (inputs.batch.word_of_token >= 0).unsqueeze(-1)
    baseline = torch.where(on_words, pad.expand_as(embeddings), embeddings)
    total = torch.zeros_like(embeddings)
    for alpha in (torch.arange(steps, dtype=torch.float32) + 0.5) / steps:
        total += embedding_gradients(inputs, baseline + alpha * (embeddings - baseline))
    return ((embeddings - baseline) * total / steps).sum(-1), embeddings, baseline


def test_integrated_gradients_batch_their_steps_into_the_step_by_step_integral(model) -> None:
    inputs = inputs_for(model, ["a", "b"])
    expected, _, _ = path_integral(model, inputs, 8)
    signed = IntegratedGradients(steps=8).attribute(inputs).detach()  # (batch, 1, tokens)
    torch.testing.assert_close(signed[:, 0], expected, rtol=1e-4, atol=1e-6)
    # a budget of one batch per pass (8 passes) gives the same integral as all 8 steps in one
    one_per_pass = inputs.batch.input_ids.numel()
    for budget in (one_per_pass, 3 * one_per_pass, 8 * one_per_pass):
        split = IntegratedGradients(steps=8, tokens_per_pass=budget).attribute(inputs).detach()
        torch.testing.assert_close(split[:, 0], expected, rtol=1e-4, atol=1e-6)
    # Stored word scores: |.| per token, then summed into words.
    matrix = token_to_word_matrix(inputs.batch.word_of_token, inputs.batch.words)
    torch.testing.assert_close(
        scores(IntegratedGradients(steps=8), inputs), expected.abs().unsqueeze(1) @ matrix,
        rtol=1e-4, atol=1e-6,
    )  # fmt: skip


def logit_change(model, inputs: Inputs) -> torch.Tensor:
    """F(x) - F(x'), F the target logit and x' integrated gradients' baseline, each example run
    on its own: (batch,)."""
    _, embeddings, baseline = path_integral(model, inputs, 1)
    changes = []
    with torch.no_grad():
        for row, example in enumerate(inputs.example_ids):
            tokens = len(SENTENCES[example].input_ids)
            mask, label = torch.ones(1, tokens, dtype=torch.long), int(inputs.target[row])
            full = predicted_logit(model, embeddings[row : row + 1, :tokens], mask, label)
            empty = predicted_logit(model, baseline[row : row + 1, :tokens], mask, label)
            changes.append(full - empty)
    return torch.stack(changes)


def ig_delta(model, inputs: Inputs, steps: int) -> torch.Tensor:
    """The convergence delta the evaluator stores for integrated gradients: (batch,)."""
    matrix = token_to_word_matrix(inputs.batch.word_of_token, inputs.batch.words)
    return word_scores(IntegratedGradients(steps=steps), inputs, matrix)[1]["ig_delta"]


@pytest.mark.parametrize("target", [None, 0, 1], ids=["predicted", "class 0", "class 1"])
def test_ig_delta_is_the_summed_attributions_minus_the_logit_change_in_magnitude(
    curved_model, target
) -> None:
    # captum's completeness check: sum of the signed attributions - (F(x) - F(x')), here |.|.
    model = curved_model
    inputs = inputs_for(model, ["a", "b", "c"], pad_to=20, target=target)
    signed = IntegratedGradients(steps=3).attribute(inputs).detach()[:, 0]  # (batch, tokens)
    expected = (signed.sum(-1) - logit_change(model, inputs)).abs()
    torch.testing.assert_close(ig_delta(model, inputs, 3), expected, rtol=1e-4, atol=1e-6)
    assert (expected > 5e-4).all()  # three steps leave a gap the check must show


def test_ig_delta_shrinks_by_orders_of_magnitude_from_one_step_to_64(curved_model) -> None:
    # Midpoint sums converge as 1/steps^2: a delta near 0 says the step count suffices.
    model = curved_model
    inputs = inputs_for(model, ["a", "b", "c"])
    one, many = ig_delta(model, inputs, 1), ig_delta(model, inputs, 64)
    scale = logit_change(model, inputs).abs()
    assert (many < one / 100).all(), (one, many)
    assert (many < 1e-3 * scale + 1e-6).all(), (many, scale)


def test_method_parameters_come_from_the_evaluation_spec() -> None:
    spec = EvalSpec(corpus="c", ig_steps=5, seed=11)
    assert IntegratedGradients.from_spec(spec).steps == 5
    assert RandomRanking.from_spec(spec).seed == 11
    with pytest.raises(ValueError, match="at least one step"):
        IntegratedGradients(steps=0)


# --- occlusion against hand-computed probabilities ----------------------------------------------


class TokenCounter(torch.nn.Module):
    """logits = (0, ln 3 * #token5 + ln 2 * #token9 - ln 2): probabilities by hand."""

    config = BertConfig(pad_token_id=PAD)

    def forward(self, input_ids, attention_mask, **_):
        real = attention_mask.bool()
        fives = ((input_ids == 5) & real).sum(dim=1).double()
        nines = ((input_ids == 9) & real).sum(dim=1).double()
        edit = math.log(3) * fives + math.log(2) * nines - math.log(2)
        return SimpleNamespace(logits=torch.stack([torch.zeros_like(edit), edit], dim=1).float())


@pytest.mark.parametrize(
    ("target", "expected_a"),
    [
        # "a" = words [5] [6 7] [8] [9 10 11]: p(edit) = 3/4 whole; without word 0 (no 5) 1/2,
        # without word 3 (no 9) 3/5; words 1 and 2 change nothing.
        (1, [3 / 4 - 1 / 2, 0.0, 0.0, 3 / 4 - 3 / 5]),
        # Explaining "no edit" flips every sign: p(no edit) rises as p(edit) falls.
        (0, [1 / 4 - 1 / 2, 0.0, 0.0, 1 / 4 - 2 / 5]),
    ],
)
def test_occlusion_is_the_drop_in_the_target_probability_without_each_word(
    target, expected_a
) -> None:
    batch = collate([SENTENCES["a"], SENTENCES["b"]], [0, 1], PAD)
    inputs = Inputs(TokenCounter(), batch, ["a", "b"], None, torch.tensor([target, target]))
    matrix = token_to_word_matrix(batch.word_of_token, batch.words)
    widest = batch.input_ids.shape[1]
    result, _ = word_scores(Occlusion(tokens_per_pass=2 * widest), inputs, matrix)  # 2 rows a pass
    assert result.shape == (2, 1, 4)
    torch.testing.assert_close(result[0, 0], torch.tensor(expected_a))
    torch.testing.assert_close(result[1, 0], torch.zeros(4))  # "b" has neither 5 nor 9


# --- gradient-weighted rollout and value norms against direct implementations ------------------


def test_grad_rollout_matches_a_direct_implementation_example_by_example(model) -> None:
    # Chefer et al. eq. 5-6, one example at a time, unpadded, in float64, heads looped.
    inputs = inputs_for(model, ["a", "b", "c"], target=1)
    result = scores(METHODS["grad_rollout"](), inputs)
    double = type(model)(model.config).double().eval()
    double.load_state_dict(model.state_dict())
    for row, example in enumerate(inputs.example_ids):
        ids = torch.tensor([SENTENCES[example].input_ids])
        out = double(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
        gradients = torch.autograd.grad(out.logits[0, 1], out.attentions)
        relevance = torch.eye(ids.shape[1], dtype=torch.float64)
        for layer, (attention, gradient) in enumerate(zip(out.attentions, gradients, strict=True)):
            mixed = (
                sum((gradient[0, h] * attention[0, h]).clamp(min=0) for h in range(HEADS)) / HEADS
            )
            relevance = relevance + mixed @ relevance
            expected = summed_into_words(relevance[0].float().detach(), example)
            words = SENTENCES[example].seen_words
            torch.testing.assert_close(result[row, layer, :words], expected, rtol=1e-4, atol=1e-6)


def test_attention_norm_matches_an_explicit_loop_over_heads_and_tokens(model) -> None:
    # ||sum_h alpha_h[CLS, j] (x_j W_V^h + b_V^h) W_O^h|| for every layer and token j.
    inputs = inputs_for(model, ["a", "c"])
    result = scores(METHODS["attention_norm"](), inputs)
    for row, example in enumerate(inputs.example_ids):
        ids = torch.tensor([SENTENCES[example].input_ids])
        with torch.no_grad():
            out = model(
                input_ids=ids, attention_mask=torch.ones_like(ids),
                output_attentions=True, output_hidden_states=True,
            )  # fmt: skip
            for layer, block in enumerate(model.bert.encoder.layer):
                value, dense = block.attention.self.value, block.attention.output.dense
                hidden, attention = out.hidden_states[layer][0], out.attentions[layer][0]
                size = value.out_features // HEADS
                per_token = []
                for j in range(ids.shape[1]):
                    moved = torch.zeros(dense.out_features)
                    for h in range(HEADS):
                        part = slice(h * size, (h + 1) * size)
                        v = hidden[j] @ value.weight[part].T + value.bias[part]
                        moved += attention[h, 0, j] * (v @ dense.weight[:, part].T)
                    per_token.append(moved.norm())
                expected = summed_into_words(torch.stack(per_token), example)
                words = SENTENCES[example].seen_words
                torch.testing.assert_close(
                    result[row, layer, :words], expected, rtol=1e-4, atol=1e-6
                )


def test_attention_norm_refuses_a_model_without_bert_style_layers() -> None:
    inputs = hand_inputs((torch.ones(1, 1, 2, 2),), [NO_WORD, 0])
    with pytest.raises(EditlensError, match="BERT-style"):
        AttentionNorm().attribute(inputs)
