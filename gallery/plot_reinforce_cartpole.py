"""
REINFORCE solves CartPole in seconds
====================================

Plain REINFORCE has a reputation for not converging on CartPole. Here it solves
``CartPole-v1`` (a mean return of at least 475 over the last 100 episodes) in
about a dozen updates, above all thanks to a **batch of 64 whole episodes** per
update; a **baseline** (the mean reward-to-go of the batch at the same time
step) and **normalised advantages** help a little more (the ablation is on
:doc:`the policy-gradient page </topics/policy-gradient>`). Running the 64
episodes as one batched environment (:class:`dlref.cartpole.CartPole`), without
autograd, and recomputing every log-probability of the batch in one pass
afterwards makes each update cheap; on a GPU the host reads from the device
once per update.
"""

# %%
# Setup
# -----
# One seed for everything random, and one line choosing the device.
import matplotlib.pyplot as plt
import torch

from dlref.cartpole import CartPole
from dlref.rl import MLPPolicy, reinforce, rollout

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# In RL the data is what the policy experiences. 64 CartPoles, stepped
# together: each row of ``env.state`` is :math:`(x, \dot x, \theta,
# \dot\theta)` of one of them.
env = CartPole(
    64, device=device, generator=torch.Generator(device).manual_seed(0)
)
# the source of the sampled actions
actions = torch.Generator(device).manual_seed(0)
print(env.state.shape)

# %%
# Model
# -----
# A 4-64-2 tanh MLP gives the logits of "push left" and "push right".
#
# The optimizer is Adam written out in five lines: the update of
# :class:`dlref.optim.Adam` and of ``torch.optim.Adam`` with their defaults, so
# the whole algorithm is on this page. A copy of this script can use either
# class instead; both are ``torch.optim.Optimizer`` subclasses, and the first
# one created in a process imports ``torch._dynamo``, which adds a second or
# two to a script this short.
policy = MLPPolicy(observation_size=4, num_actions=2, hidden_size=64).to(
    device
)


class Adam:
    """Adam (Kingma & Ba, 2015), as in torch.optim.Adam.

    betas=(0.9, 0.999), eps=1e-8.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas = list(params), lr, betas
        self.eps, self.t = eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        (b1, b2), self.t = self.betas, self.t + 1
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            # m_t = b1 m + (1 - b1) g
            m.lerp_(p.grad, 1 - b1)
            # v_t = b2 v + (1 - b2) g²
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            # sqrt(v̂_t) + eps
            denom = (v / (1 - b2**self.t)).sqrt_().add_(self.eps)
            # p -= lr m̂_t / denom
            p.addcdiv_(m, denom, value=-self.lr / (1 - b1**self.t))


optimizer = Adam(policy.parameters(), lr=0.05)

# %%
# Training
# --------
# Each update: 64 whole episodes with the current policy (no autograd), the
# reward-to-go :math:`G_t` of every step, the advantage :math:`G_t - b_t`
# normalised over the batch, and one gradient step on :math:`-\mathrm{mean}_t\,
# \log\pi(a_t \mid s_t)\,\hat A_t`.
history = reinforce(
    env,
    policy,
    optimizer,
    num_updates=100,
    gamma=0.99,
    baseline="time",
    normalize_advantages=True,
    target_return=475.0,
    generator=actions,
)
print(
    "solved (mean return of the last 100 episodes ≥ 475): "
    f"{history.solved_at is not None}"
)
fast = len(history.losses) <= 25 and history.env_steps[-1] <= 300_000
print(f"solved within 25 updates and 300,000 env steps: {fast}")

# %%
# Results
# -------
# The trained policy on 64 fresh episodes (still sampling its actions), and the
# learning curve against environment steps and against seconds of training
# (which vary with the machine).
final = rollout(env, policy, actions)
lengths = final.mask.sum(0).float()
print(f"fresh episodes: mean return ≥ 475: {bool(lengths.mean() >= 475)}")

fig, (ax_steps, ax_time) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, x, label in (
    (ax_steps, history.env_steps, "environment steps"),
    (ax_time, history.seconds, "seconds of training"),
):
    ax.plot(x, history.mean_returns, marker="o", ms=3)
    ax.axhline(475, color="grey", ls="--", lw=1)
    ax.set_xlabel(label)
ax_steps.set_ylabel("mean return of the batch's 64 episodes")
ax_steps.set_title("Learning curve")
ax_time.set_title(f"Solved in {history.seconds[-1]:.1f} s of training")
fig.tight_layout()
plt.show()
