"""The project's vocabularies, each declared once: rationale methods, metrics, populations.

Torch-free and import-cheap, so the CLI's ``--help``, the store's schema, reports, the results
page and the TUI's lists all derive from here (ferret's evaluator registry is the model). The
implementations register under these names in ``engine.attribution``; a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    """What everything but the implementation needs to know about a rationale method."""

    name: str
    label: str  # for tables and plots
    short: str  # for narrow columns and the TUI's drop-downs
    family: str  # "attention", "gradient", "perturbation" or "baseline" (captum's split)
    layered: bool  # scores exist per layer (1..L); otherwise one set, stored as layer 0
    per_word: bool = False  # scores words directly: the subword aggregation does not apply


@dataclass(frozen=True)
class MetricInfo:
    """One per-example figure stored on the outcome rows: mostly a word ranking against the
    human rationale, or a method's check of itself (NULL on every other method's rows)."""

    name: str
    label: str
    # "plausibility" (agreement with the human), "faithfulness" (with the model), or
    # "convergence" (how well one method's approximation holds, on its own rows only)
    family: str
    boolean: bool  # a yes/no outcome per example (its mean is a share)
    lower_is_better: bool = False
    browsable: bool = False  # offered as the TUI's "interpretable" outcome

    @property
    def sql_type(self) -> str:
        return "BOOLEAN" if self.boolean else "FLOAT"

    def better(self, a: float, b: float) -> bool:
        """Whether figure ``a`` beats figure ``b`` under this metric's direction."""
        return a < b if self.lower_is_better else a > b


# In the order every table, list and plot shows them.
METHODS: tuple[MethodInfo, ...] = (
    MethodInfo("attention", "attention ([CLS] row, heads' mean)", "attn", "attention", True),
    MethodInfo("attention_max", "attention ([CLS] row, heads' max)", "attn_max", "attention", True),
    MethodInfo("attention_norm", "attention × value norm", "attn_norm", "attention", True),
    MethodInfo("rollout", "attention rollout", "rollout", "attention", True),
    MethodInfo("grad_rollout", "gradient-weighted rollout", "g_rollout", "gradient", True),
    MethodInfo("grad", "gradient norm", "grad", "gradient", False),
    MethodInfo("grad_x_input", "gradient × input", "grad×in", "gradient", False),
    MethodInfo("integrated_gradients", "integrated gradients", "IG", "gradient", False),
    MethodInfo(
        "occlusion", "leave-one-word-out occlusion", "occlusion", "perturbation", False, True
    ),
    MethodInfo("random", "random ranking", "random", "baseline", False, True),
)

METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("exact", "exact", "plausibility", True, browsable=True),
    MetricInfo("top3", "top-3", "plausibility", True, browsable=True),
    MetricInfo("hit1", "hit@1", "plausibility", True, browsable=True),
    MetricInfo("jaccard", "Jaccard", "plausibility", False),
    MetricInfo("jaccard50", "Jaccard≥.5", "plausibility", True, browsable=True),
    MetricInfo("token_f1", "token F1", "plausibility", False),
    MetricInfo("auprc", "AUPRC", "plausibility", False),
    MetricInfo("comprehensiveness", "comprehensiveness", "faithfulness", False),
    MetricInfo("sufficiency", "sufficiency", "faithfulness", False, lower_is_better=True),
    MetricInfo("aopc_comprehensiveness", "AOPC comprehensiveness", "faithfulness", False),
    MetricInfo("aopc_sufficiency", "AOPC sufficiency", "faithfulness", False, lower_is_better=True),
    MetricInfo("ig_delta", "IG |convergence delta|", "convergence", False, lower_is_better=True),
)

HEADLINE_METRIC = "top3"  # the study's headline: the rationale within the top 3 words
HEADLINE_METHOD = "attention"  # last-layer [CLS] row, heads averaged (= summed, for a ranking)
BASELINE_METHOD = "random"
LAYER_PLOT_METHODS = ("attention", "rollout")  # the per-layer plots and tables: the study's pair

# How a word's score is made from its subwords' (recorded in each run; sum is the study's).
AGGREGATIONS: tuple[str, ...] = ("sum", "mean", "max")
# The class gradient and perturbation methods explain: "needs edit" (the rationale is the edit,
# whatever the prediction) or the predicted class.
EXPLAINED_CLASSES: tuple[str, ...] = ("edit", "pred")

# Who a summary is over: every scorable rationale sentence, or those the model flags (the paper's).
POPULATIONS: tuple[str, ...] = ("all", "flagged")

METHOD_NAMES: tuple[str, ...] = tuple(m.name for m in METHODS)
# Methods that read the forward pass alone (no gradient, no extra passes): cheap at any checkpoint.
FORWARD_METHODS: tuple[str, ...] = tuple(
    m.name for m in METHODS if m.family in ("attention", "baseline")
)
METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
BROWSE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.browsable)
LAYERED_METHODS: tuple[str, ...] = tuple(m.name for m in METHODS if m.layered)

_METHODS = {m.name: m for m in METHODS}
_METRICS = {m.name: m for m in METRICS}


def method_info(name: str) -> MethodInfo:
    """The registered method, or a ``KeyError`` naming the choices."""
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; use one of {', '.join(METHOD_NAMES)}") from None


def metric_info(name: str) -> MetricInfo:
    """The registered metric, or a ``KeyError`` naming the choices."""
    try:
        return _METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; use one of {', '.join(METRIC_NAMES)}") from None


def method_order(method: str) -> tuple[int, str]:
    """Sort key: registered methods in table order, anything else after them by name."""
    known = method in _METHODS
    return (METHOD_NAMES.index(method) if known else len(METHOD_NAMES), method)


def is_layered(method: str) -> bool:
    """Whether a method has scores per layer; unknown names (old stores) count as not."""
    return method in _METHODS and _METHODS[method].layered


def is_per_word(method: str) -> bool:
    """Whether a method scores words directly (no subword aggregation); unknown names: not."""
    return method in _METHODS and _METHODS[method].per_word
