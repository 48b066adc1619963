r"""CartPole: a pole balanced on a cart, batched in torch tensors.

:class:`CartPole` is Gymnasium's ``CartPole-v1`` (same constants, Euler integrator, termination,
500-step truncation, reward and initial-state distribution), the cart-pole of Barto, Sutton and
Anderson (1983), written for many environments at once in plain torch tensors, so a rollout of a
whole batch of episodes costs a few tensor operations a step and runs on a GPU when given one.
:func:`dlref.rl.reinforce` trains policies on it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlref._checks import (
    check_factory,
    check_float,
    check_generator,
    check_index_tensor,
    check_index_tensor_on_device,
    check_int,
    check_shape,
    check_tensor,
)

__all__ = ["CartPole"]


class CartPole:
    r"""Gymnasium's ``CartPole-v1`` for ``num_envs`` environments at once, in torch tensors.

    The state :math:`s = (x, \dot x, \theta, \dot\theta)` moves by one explicit Euler step of
    :math:`\tau = 0.02` s under the force :math:`F = \pm 10` N of the action (0 pushes left,
    1 right):

    .. math::

        h &= \frac{F + m_p l \dot\theta^2 \sin\theta}{m_c + m_p},\qquad
        \ddot\theta = \frac{g \sin\theta - h \cos\theta}
                           {l\,\bigl(\tfrac43 - \tfrac{m_p \cos^2\theta}{m_c + m_p}\bigr)},\qquad
        \ddot x = h - \frac{m_p l\, \ddot\theta \cos\theta}{m_c + m_p},

        s_{t+1} &= s_t + \tau\,(\dot x, \ddot x, \dot\theta, \ddot\theta),

    with :math:`g = 9.8`, :math:`m_c = 1`, :math:`m_p = 0.1`, :math:`l = 0.5` (half the pole).
    Every step earns reward 1, the step that ends the episode included. An episode terminates
    when :math:`|x| > 2.4` or :math:`|\theta| > 12°` and is truncated after 500 steps. Finished
    environments restart at once from :math:`s \sim U(-0.05, 0.05)^4` (Gymnasium's
    ``AutoresetMode.SAME_STEP``): the state returned for them is the new episode's first state,
    and their last state is kept in :attr:`final_state`.

    Parameters
    ----------
    num_envs : int
        Number of environments stepped together.
    device : torch.device or str, optional
        Where the state lives (CUDA works).
    generator : torch.Generator, optional
        Source of the initial states; it lives on ``device`` (``torch.Generator(device)``).
    dtype : torch.dtype, optional
        Dtype of the state, float32 by default (Gymnasium's observations); float64 reproduces
        Gymnasium's internal state; None: torch's default dtype.

    References
    ----------
    A. G. Barto, R. S. Sutton and C. W. Anderson, "Neuronlike adaptive elements that can solve
    difficult learning control problems", *IEEE Trans. SMC* 13(5), 1983 (the cart-pole and its
    equations of motion). Gymnasium, ``CartPole-v1``,
    ``gymnasium/envs/classic_control/cartpole.py`` (the constants, integrator and limits
    reproduced here).

    Examples
    --------
    >>> import torch
    >>> from dlref.cartpole import CartPole
    >>> env = CartPole(3, generator=torch.Generator().manual_seed(0))
    >>> env.state = torch.zeros(3, 4)
    >>> state, reward, terminated, truncated = env.step(torch.tensor([0, 1, 1]))
    >>> state
    tensor([[ 0.0000, -0.1951,  0.0000,  0.2927],
            [ 0.0000,  0.1951,  0.0000, -0.2927],
            [ 0.0000,  0.1951,  0.0000, -0.2927]])
    >>> reward, terminated, truncated
    (tensor([1., 1., 1.]), tensor([False, False, False]), tensor([False, False, False]))
    """

    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    length = 0.5  # half the pole's length
    force_mag = 10.0
    tau = 0.02  # seconds per step
    x_threshold = 2.4
    theta_threshold_radians = 12 * 2 * math.pi / 360
    max_episode_steps = 500
    observation_size = 4
    num_actions = 2

    def __init__(
        self,
        num_envs: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = torch.float32,
    ) -> None:
        check_int("num_envs", num_envs)
        check_factory(device, dtype)
        self.device = torch.device("cpu" if device is None else device)
        check_generator(generator, self.device)
        self.num_envs = num_envs
        self.generator = generator
        self.dtype = dtype = torch.get_default_dtype() if dtype is None else dtype
        M = self.masspole + self.masscart  # total mass
        ml = self.masspole * self.length  # m_p l
        # Constants folded once, so a step is few tensor calls (each costs microseconds).
        self._F_over_M = torch.tensor([-self.force_mag, self.force_mag], dtype=dtype) / M
        self._F_over_M = self._F_over_M.to(self.device)
        self._ml_over_M = ml / M
        # the denominator of θ̈ divided by g, l (4/3 - m_p cos²θ / M) / g, is c0 - c1 cos²θ:
        self._c0 = torch.tensor(4.0 / 3.0 * self.length / self.gravity, dtype=dtype).to(self.device)
        self._c1 = ml / M / self.gravity
        self.reset()

    # The state is stored transposed, (4, num_envs): each variable is one contiguous row, which
    # makes every operation of a step cheaper than on the strided columns of (num_envs, 4).
    @property
    def state(self) -> Tensor:
        r"""The state :math:`(x, \dot x, \theta, \dot\theta)` of each environment, (num_envs, 4).

        May be assigned, e.g. to start every environment from a chosen state.
        """
        return self._state.T

    @state.setter
    def state(self, value: Tensor) -> None:
        check_float("state", value)
        check_shape("state", value, (self.num_envs, 4), "(num_envs, 4)")
        self._state = value.to(self.device, self.dtype).T.contiguous()

    @property
    def final_state(self) -> Tensor:
        """The state after the last step, before any restart, shape (num_envs, 4)."""
        return self._final_state.T

    def _initial_states(self, n: int) -> Tensor:
        """U(-0.05, 0.05) in every coordinate, shape (4, n)."""
        s = torch.empty(4, n, device=self.device, dtype=self.dtype)
        return s.uniform_(-0.05, 0.05, generator=self.generator)

    @property
    def steps(self) -> Tensor:
        """Steps taken in the current episode, (num_envs,) int64; may be assigned."""
        return self._steps

    @steps.setter
    def steps(self, value: Tensor) -> None:
        check_index_tensor("steps", value, self.max_episode_steps, "an episode")
        check_shape("steps", value, (self.num_envs,), "(num_envs,)")
        self._steps = value.to(self.device, torch.int64)

    def reset(self) -> Tensor:
        """Start a new episode in every environment; returns the state, (num_envs, 4)."""
        self._state = self._final_state = self._initial_states(self.num_envs)
        self._steps = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        return self.state

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Advance every environment by one step of 0.02 s.

        Parameters
        ----------
        action : Tensor
            Integer or bool, shape (num_envs,): 0 pushes the cart left, 1 right. An action
            out of range raises ``ValueError`` on the CPU; on an accelerator it is checked on
            the device without a host sync per step, and fails there.

        Returns
        -------
        state : Tensor
            (num_envs, 4), the new state; for finished environments the next episode's first.
        reward : Tensor
            (num_envs,), 1 for every step.
        terminated : Tensor
            (num_envs,) bool: the pole fell or the cart left the track on this step.
        truncated : Tensor
            (num_envs,) bool: the episode reached 500 steps on this step.
        """
        check_tensor("action", action)
        action = action.long() if action.dtype == torch.bool else action  # False/True: 0/1
        check_shape("action", action, (self.num_envs,), "(num_envs,)")
        check_index_tensor_on_device("action", action, self.num_actions, "the action space")
        action = action.long()  # a uint8 index would be a mask to torch
        x, x_dot, theta, theta_dot = self._state  # rows, each (N,)
        cos, sin = theta.cos(), theta.sin()
        # h = (F + m_p l θ̇² sinθ) / M
        h = torch.addcmul(self._F_over_M[action], theta_dot.square(), sin, value=self._ml_over_M)
        # θ̈ = (g sinθ - h cosθ) / (l (4/3 - m_p cos²θ / M)), numerator and denominator over g
        theta_acc = torch.addcmul(sin, cos, h, value=-1.0 / self.gravity) / torch.addcmul(
            self._c0, cos, cos, value=-self._c1
        )
        x_acc = torch.addcmul(h, theta_acc, cos, value=-self._ml_over_M)  # ẍ = h - m_p l θ̈ cosθ / M
        derivative = torch.stack((x_dot, x_acc, theta_dot, theta_acc))  # ṡ, (4, N)
        state = torch.add(self._state, derivative, alpha=self.tau)  # s + τ ṡ
        terminated = (state[0].abs() > self.x_threshold) | (  # |x| > 2.4
            state[2].abs() > self.theta_threshold_radians  # |θ| > 12°
        )
        self._steps = self._steps + 1
        truncated = self._steps >= self.max_episode_steps
        done = terminated | truncated
        self._final_state = state
        # restart the finished environments (drawing for all is cheaper than selecting)
        self._state = torch.where(done, self._initial_states(self.num_envs), state)
        self._steps = self._steps.masked_fill(done, 0)
        reward = torch.ones(self.num_envs, dtype=self.dtype, device=self.device)
        return self.state, reward, terminated, truncated
