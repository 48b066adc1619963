r"""Dropout: zero each unit with probability p at training time, and scale the rest by 1/(1-p).

Inverted dropout scales at training time so that the expected output equals the input and
evaluation is the identity: the network seen at test time stands in for the average of the
thinned networks seen in training (exactly through one linear layer, approximately beyond), with
nothing to rescale. :func:`dropout` has the name, arguments and defaults of
:func:`torch.nn.functional.dropout`, plus a ``generator``; it does not take ``inplace``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dlref._checks import check_float, check_generator, check_in_range

__all__ = ["dropout", "Dropout"]


def dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Inverted dropout: keep each element with probability 1 - p, divided.

    .. math::

        y = \frac{m \odot x}{1 - p},\quad m_i = \mathbb 1[u_i < 1 - p] \sim
        \mathrm{Bernoulli}(1 - p),\quad u_i \sim \mathcal U[0, 1),\qquad
        E[y_i] = \frac{(1 - p)\,x_i}{1 - p} = x_i

    In evaluation mode (``training=False``) :math:`y = x`. With :math:`p = 1`
    every element is dropped and the output is 0 (not 0/0), as in torch.

    Parameters
    ----------
    input : Tensor
        Any shape; the output has the same shape.
    p : float, default 0.5
        Probability of dropping an element.
    training : bool, optional
        Apply dropout; otherwise return the input unchanged. Default True.
    generator : torch.Generator, optional
        The source of the mask, on the input's device (None: the default).

    Examples
    --------
    >>> import torch
    >>> from dlref.regularization import dropout
    >>> g = torch.Generator().manual_seed(0)
    >>> dropout(torch.ones(8), p=0.5, generator=g)  # survivors x 1 / (1 - p)
    tensor([2., 0., 2., 2., 2., 0., 2., 0.])
    >>> dropout(torch.ones(8), p=0.5, training=False)
    tensor([1., 1., 1., 1., 1., 1., 1., 1.])
    """
    check_float("input", input)
    check_in_range("p", p, 0, 1, closed=True)  # the dropout probability
    check_generator(generator, input.device)  # the mask's device
    if not training or p == 0:
        return input.clone() if training else input
    if p == 1:
        return input * torch.zeros_like(input)  # all dropped, gradient 0 too
    kw = {"dtype": input.dtype, "device": input.device}
    u = torch.rand(input.shape, generator=generator, **kw)
    m = u < 1 - p  # m_i ~ Bernoulli(1 - p)
    return input * m / (1 - p)  # m x / (1 - p)


class Dropout(nn.Module):
    r"""Inverted dropout as a module: active after ``train()``, the identity after ``eval()``.

    .. math:: y = \frac{m \odot x}{1 - p},\quad m_i \sim \mathrm{Bernoulli}(1 - p)

    Parameters
    ----------
    p : float, default 0.5
        Probability of dropping an element.

    Examples
    --------
    >>> import torch
    >>> from dlref.regularization import Dropout
    >>> drop = Dropout(0.25)
    >>> x = torch.ones(100_000)
    >>> f"{drop(x).mean():.2f}", f"{(drop(x) == 0).float().mean():.2f}"  # E[y] = x; 1/4 zeros
    ('1.00', '0.25')
    >>> torch.equal(drop.eval()(x), x)
    True
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        check_in_range("p", p, 0, 1, closed=True)
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, input: Tensor) -> Tensor:
        """Dropout in training mode, the identity in evaluation mode; see :func:`dropout`."""
        return dropout(input, self.p, self.training)
