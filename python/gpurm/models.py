"""The model description both framework integrations build: an MLP from a config dict."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from .errors import InvalidRequest

#: Hidden-layer activations both frameworks provide under these names.
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "selu", "silu")
#: Output activations; "linear" (the default) leaves logits / raw values.
OUTPUT_ACTIVATIONS = ("linear", "softmax", "sigmoid")
TASKS = ("regression", "classification")
OPTIMIZERS = ("adam", "sgd", "rmsprop")

_KEYS = ("type", "input_dim", "hidden_units", "output_dim", "activation", "dropout",
         "output_activation", "task", "optimizer", "learning_rate")


@dataclass(frozen=True)
class MlpSpec:
    """A multi-layer perceptron: ``input_dim`` -> Dense(h) + activation (+ dropout)
    for each h in ``hidden_units`` -> Dense(``output_dim``) + ``output_activation``.

    Built from a dict by :meth:`from_config`, with keys
    ``type`` ("mlp", required), ``input_dim`` (int >= 1, required),
    ``hidden_units`` (list of int >= 1, default [64, 32]), ``output_dim``
    (int >= 1, default 1), ``activation`` (one of :data:`ACTIVATIONS`, default
    "relu"), ``dropout`` (in [0, 1), default 0.0), ``output_activation`` (one of
    :data:`OUTPUT_ACTIVATIONS`, default "linear"), ``task`` ("regression" or
    "classification"; default regression when output_dim == 1, else
    classification), and for Keras compilation ``optimizer`` (one of
    :data:`OPTIMIZERS`, default "adam") and ``learning_rate`` (> 0, default 1e-3).
    Unknown keys raise :class:`gpurm.InvalidRequest`.
    """

    input_dim: int
    hidden_units: Tuple[int, ...] = (64, 32)
    output_dim: int = 1
    activation: str = "relu"
    dropout: float = 0.0
    output_activation: str = "linear"
    task: str = "regression"
    optimizer: str = "adam"
    learning_rate: float = 1e-3

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "MlpSpec":
        if not isinstance(config, Mapping):
            raise _invalid("model_config", f"expected a dict, got {type(config).__name__}")
        for key in config:
            if key not in _KEYS:
                raise _invalid(str(key), f"unknown model_config key; known: {', '.join(_KEYS)}")
        model_type = config.get("type")
        if model_type != "mlp":
            raise _invalid("type", f"only type 'mlp' is supported, got {model_type!r}")
        input_dim = _positive_int(config.get("input_dim"), "input_dim")
        raw_hidden = config.get("hidden_units", [64, 32])
        if isinstance(raw_hidden, (str, bytes)) or not hasattr(raw_hidden, "__iter__"):
            raise _invalid("hidden_units", f"expected a list of positive integers, got {raw_hidden!r}")
        hidden = tuple(_positive_int(h, "hidden_units") for h in raw_hidden)
        output_dim = _positive_int(config.get("output_dim", 1), "output_dim")
        activation = _choice(config.get("activation", "relu"), ACTIVATIONS, "activation")
        dropout = _real(config.get("dropout", 0.0), "dropout")
        if not 0.0 <= dropout < 1.0:
            raise _invalid("dropout", f"expected a number in [0, 1), got {dropout!r}")
        output_activation = _choice(config.get("output_activation", "linear"), OUTPUT_ACTIVATIONS,
                                    "output_activation")
        task = _choice(config.get("task", "regression" if output_dim == 1 else "classification"), TASKS, "task")
        optimizer = _choice(config.get("optimizer", "adam"), OPTIMIZERS, "optimizer")
        learning_rate = _real(config.get("learning_rate", 1e-3), "learning_rate")
        if not learning_rate > 0:
            raise _invalid("learning_rate", f"expected a number > 0, got {learning_rate!r}")
        return cls(input_dim, hidden, output_dim, activation, dropout, output_activation, task, optimizer,
                   learning_rate)

    def layer_sizes(self) -> Tuple[int, ...]:
        """Widths from input to output, e.g. (10, 128, 64, 1)."""
        return (self.input_dim, *self.hidden_units, self.output_dim)


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_argument", field=field)


def _positive_int(value: Optional[Any], field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise _invalid(field, f"expected an integer >= 1, got {value!r}")
    return int(value)


def _real(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _invalid(field, f"expected a number, got {value!r}")
    return float(value)


def _choice(value: Any, allowed: Tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise _invalid(field, f"expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)
