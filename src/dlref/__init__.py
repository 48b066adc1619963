"""dlref: a deep-learning reference where every formula runs.

One module per topic; each function states its equation in its docstring and is tested against
the PyTorch built-in of the same name (float64 values and gradients) or against finite
differences where PyTorch has no counterpart.
"""

import dlref.activations as activations
from dlref import autodiff, backprop, losses, tensors

__all__ = ["autodiff", "backprop", "losses", "tensors"]
__all__ += ["activations"]
__version__ = "0.1.0"
