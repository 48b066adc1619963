"""dlref: a deep-learning reference where every formula runs.

One module per topic; each function states its equation in its docstring and is tested against
the PyTorch built-in of the same name (float64 values and gradients) or against finite
differences where PyTorch has no counterpart.
"""

from dlref import (
    activations,
    attention,
    autodiff,
    backprop,
    cartpole,
    clipping,
    conditioning,
    conv,
    decoding,
    distributed,
    init,
    llm_systems,
    losses,
    normalization,
    optim,
    parallel,
    positional,
    precision,
    regularization,
    rl,
    rnn,
    scaling,
    tensors,
    tokenization,
    transformer,
)

__all__ = [
    "activations",
    "attention",
    "autodiff",
    "backprop",
    "cartpole",
    "clipping",
    "conditioning",
    "conv",
    "decoding",
    "distributed",
    "init",
    "llm_systems",
    "losses",
    "normalization",
    "optim",
    "parallel",
    "positional",
    "precision",
    "regularization",
    "rl",
    "rnn",
    "scaling",
    "tensors",
    "tokenization",
    "transformer",
]
__version__ = "0.1.0"
