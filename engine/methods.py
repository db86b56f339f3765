"""The rationale methods' names, in the order every table shows them; torch-free, for reports.

``engine.attribution.METHODS`` registers the implementations under exactly these names (tested).
"""

from __future__ import annotations

METHOD_NAMES = (
    "attention",
    "attention_max",
    "rollout",
    "grad",
    "grad_x_input",
    "integrated_gradients",
    "random",
)
LAYER_PLOT_METHODS = ("attention", "rollout")  # the per-layer plots and tables: the study's pair


def method_order(method: str) -> tuple[int, str]:
    """Sort key: registered methods in table order, anything else after them by name."""
    return (METHOD_NAMES.index(method) if method in METHOD_NAMES else len(METHOD_NAMES), method)
