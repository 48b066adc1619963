r"""Model parallelism on two processes: Megatron tensor parallelism and pipeline parallelism.

Data parallelism (``dlref.distributed``) copies the model; these split it. Tensor parallelism
(Megatron-LM) splits each MLP inside its layers (:class:`MegatronMLP` by hand, DTensor's
``parallelize_module``); pipeline parallelism streams micro-batches through whole layers on each
rank (``torch.distributed.pipelining``, GPipe and 1F1B). :func:`run_model_parallel` runs them on
gloo processes on 127.0.0.1, counts the bytes of each collective, and times the bubble.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from dlref._checks import (
    check_divides,
    check_finite_nonnegative,
    check_index,
    check_int,
    check_int_sequence,
    check_linear_input,
    check_positive_finite,
    check_real,
)
from dlref.distributed import run_workers

__all__ = [
    "bubble_fraction",
    "ring_bytes",
    "make_mlp",
    "megatron_shards",
    "MegatronMLP",
    "CollectiveCounter",
    "single_process_reference",
    "run_model_parallel",
]

D_MODEL, D_HIDDEN = 16, 64  # each MLP block: Linear(16, 64), tanh, Linear(64, 16)
BATCH = 32
DELAY = 0.02  # seconds each stage "computes" per micro-batch and pass in the bubble timing


# --- Formulas ---


def bubble_fraction(num_stages: int, num_microbatches: int) -> float:
    r"""The idle fraction of a GPipe or plain 1F1B pipeline step, :math:`(p-1)/(m+p-1)`.

    .. math::
        \text{bubble} = \frac{(p-1)(t_f + t_b)}{(m + p - 1)(t_f + t_b)} = \frac{p-1}{m+p-1}

    With equal :math:`t_f`, :math:`t_b` on all :math:`p` stages, each is busy :math:`m(t_f+t_b)`
    of the step's :math:`(m+p-1)(t_f+t_b)`; 1F1B reorders the passes (less memory), not this.

    Parameters
    ----------
    num_stages : int
        Pipeline stages :math:`p` (one per device).
    num_microbatches : int
        Micro-batches :math:`m` per step.

    Examples
    --------
    >>> from dlref.parallel import bubble_fraction
    >>> [f"{bubble_fraction(4, m):.3f}" for m in (1, 4, 16, 64)]
    ['0.750', '0.429', '0.158', '0.045']
    """
    p = check_int("num_stages", num_stages)
    m = check_int("num_microbatches", num_microbatches)
    # bubble = (p - 1) / (m + p - 1)
    return (p - 1) / (m + p - 1)


_RING_FACTOR = {"all_reduce": 2, "all_gather": 1, "reduce_scatter": 1}


def ring_bytes(collective: str, nbytes: float, world_size: int) -> float:
    r"""Bytes each rank sends in a ring collective on a buffer of ``nbytes`` (the full buffer).

    .. math::
        \text{all-reduce: } 2\,\frac{N-1}{N}\,n, \qquad
        \text{all-gather, reduce-scatter: } \frac{N-1}{N}\,n

    An all-reduce is a reduce-scatter followed by an all-gather. For all-gather ``nbytes`` is
    the gathered output, for reduce-scatter the input before scattering.

    Parameters
    ----------
    collective : {"all_reduce", "all_gather", "reduce_scatter"}
    nbytes : float
        Bytes of the full buffer.
    world_size : int
        Ranks :math:`N` in the ring.

    Examples
    --------
    >>> from dlref.parallel import ring_bytes
    >>> psi = 1_000_000  # float32 parameters: 4 bytes each
    >>> ring_bytes("all_reduce", 4 * psi, 64) / (4 * psi)  # DDP: about 2 Psi per rank
    1.96875
    """
    if collective not in _RING_FACTOR:
        raise ValueError(f"collective must be one of {sorted(_RING_FACTOR)}, got {collective!r}")
    check_real("nbytes", nbytes)
    check_int("world_size", world_size)
    # all-reduce: 2 (N - 1)/N n; all-gather, reduce-scatter: (N - 1)/N n
    return _RING_FACTOR[collective] * (world_size - 1) / world_size * nbytes


# --- The model and its Megatron split ---


def make_mlp(seed: int = 0) -> nn.Sequential:
    """A transformer MLP block in float64: ``Linear(16, 64)``, tanh, ``Linear(64, 16)``.

    Examples
    --------
    >>> from dlref.parallel import make_mlp
    >>> sum(p.numel() for p in make_mlp().parameters())  # 16*64 + 64 + 64*16 + 16
    2128
    """
    check_int("seed", seed, minimum=-(2**63))  # any seed torch takes
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(D_MODEL, D_HIDDEN, dtype=torch.float64),
        nn.Tanh(),
        nn.Linear(D_HIDDEN, D_MODEL, dtype=torch.float64),
    )


def _make_data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(BATCH, D_MODEL, generator=g, dtype=torch.float64)
    return X, torch.sin(X)


def megatron_shards(mlp: nn.Sequential, rank: int, world_size: int) -> dict[str, torch.Tensor]:
    r"""Rank ``rank``'s share of an MLP: rows of the first weight, columns of the second.

    With :math:`A = W_1^\top` split by columns and :math:`B = W_2^\top` split by rows,

    .. math::
        Z = \tanh(X A + a) B + b = \sum_{r=1}^{N} \tanh(X A_r + a_r) B_r + b,

    so each rank computes its term without communication, and one all-reduce sums them.

    Parameters
    ----------
    mlp : torch.nn.Sequential
        ``Linear(d, h)``, an activation, ``Linear(h, d)``; ``world_size`` must divide ``h``.
    rank, world_size : int
        This rank and the number of ranks :math:`N`.

    Returns
    -------
    dict
        ``"w1"`` (h/N, d), ``"b1"`` (h/N,), ``"w2"`` (d, h/N), ``"b2"`` (d,): copies.

    Examples
    --------
    >>> import torch
    >>> from dlref.parallel import make_mlp, megatron_shards
    >>> mlp = make_mlp()
    >>> X = torch.randn(5, 16, dtype=torch.float64)
    >>> parts = []
    >>> for r in range(4):
    ...     s = megatron_shards(mlp, r, 4)
    ...     parts.append(torch.tanh(X @ s["w1"].T + s["b1"]) @ s["w2"].T)
    >>> Z = sum(parts) + s["b2"]  # the all-reduce: a sum over ranks
    >>> bool(torch.allclose(Z, mlp(X), rtol=0, atol=1e-14))
    True
    """
    if not isinstance(mlp, nn.Sequential) or len(mlp) != 3:
        raise TypeError(f"mlp must be an nn.Sequential(Linear, activation, Linear), got {mlp!r}")
    h = mlp[0].out_features
    world_size = check_divides("world_size", world_size, {"hidden width": h})
    check_index("rank", rank, world_size, f"{world_size} ranks")
    cols = slice(rank * h // world_size, (rank + 1) * h // world_size)
    return {
        "w1": mlp[0].weight.detach()[cols].clone(),  # (h/N, d): columns of A = W1^T
        "b1": mlp[0].bias.detach()[cols].clone(),  # (h/N,)
        "w2": mlp[2].weight.detach()[:, cols].clone(),  # (d, h/N): rows of B = W2^T
        "b2": mlp[2].bias.detach().clone(),  # (d,): replicated
    }


class _CopyToParallel(torch.autograd.Function):
    """Megatron's f: identity forward, all-reduce of the input gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)  # dL/dX = sum over ranks of each rank's partial dL/dX
        return grad


class _ReduceFromParallel(torch.autograd.Function):
    """Megatron's g: all-reduce forward, identity backward."""

    @staticmethod
    def forward(ctx, x):
        import torch.distributed as dist

        x = x.clone()
        dist.all_reduce(x)  # Z = sum over ranks of tanh(X A_r + a_r) B_r
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


class MegatronMLP(nn.Module):
    r"""Rank ``rank``'s part of a tensor-parallel MLP; call it on every rank of the group.

    .. math::
        Z = g\Big(\tanh\big(f(X) A_r + a_r\big) B_r\Big) + b

    :math:`f` is the identity forward and all-reduces the gradient backward; :math:`g`
    all-reduces forward and is the identity backward: one all-reduce of a (batch, d) tensor each
    way. Needs an initialised ``torch.distributed`` process group of ``world_size`` ranks.

    Parameters
    ----------
    mlp : torch.nn.Sequential
        The full MLP (the same on every rank), see :func:`megatron_shards`.
    rank, world_size : int
        This rank and the number of ranks.

    Examples
    --------
    >>> from dlref.parallel import MegatronMLP, make_mlp
    >>> shard = MegatronMLP(make_mlp(), rank=1, world_size=2)
    >>> tuple(shard.w1.shape), tuple(shard.w2.shape)  # half of the 64 hidden units
    ((32, 16), (16, 32))
    """

    def __init__(self, mlp: nn.Sequential, rank: int, world_size: int) -> None:
        super().__init__()
        for name, t in megatron_shards(mlp, rank, world_size).items():
            setattr(self, name, nn.Parameter(t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, d): this rank's hidden units, then the all-reduce."""
        check_linear_input("x", x, self.w1, "(..., d)")
        x = _CopyToParallel.apply(x)  # f
        # Y_r = tanh(X A_r + a_r), A_r = W1_r^T
        y = torch.tanh(x @ self.w1.T + self.b1)  # (B, h/N)
        # Z = g(Y_r B_r) + b
        return _ReduceFromParallel.apply(y @ self.w2.T) + self.b2  # (B, d)


# --- Counting what the collectives move ---


class CollectiveCounter:
    """Wraps ``torch.distributed``'s collectives while active and records their buffer bytes.

    Counts ``all_reduce`` (the buffer), ``all_gather_single`` / ``all_gather_into_tensor`` (the
    gathered output) and ``reduce_scatter_single`` / ``reduce_scatter_tensor`` (the input), as
    ``(family, nbytes)`` in ``calls``.

    Examples
    --------
    >>> import torch.distributed as dist
    >>> from dlref.parallel import CollectiveCounter
    >>> with CollectiveCounter() as counter:
    ...     wrapped = dist.all_reduce is not CollectiveCounter._original["all_reduce"]
    >>> wrapped, dist.all_reduce is CollectiveCounter._original["all_reduce"], counter.calls
    (True, True, [])
    """

    _original: dict = {}
    _names = {
        # name: (family, position and keyword of the full-size tensor argument)
        "all_reduce": ("all_reduce", 0, "tensor"),
        "all_gather_single": ("all_gather", 0, "output_tensor"),
        "all_gather_into_tensor": ("all_gather", 0, "output_tensor"),
        "reduce_scatter_single": ("reduce_scatter", 1, "input"),
        "reduce_scatter_tensor": ("reduce_scatter", 1, "input"),
    }

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __enter__(self) -> CollectiveCounter:
        import torch.distributed as dist

        for name, (family, index, keyword) in self._names.items():
            original = getattr(dist, name)
            CollectiveCounter._original.setdefault(name, original)

            def wrapper(*args, _f=original, _family=family, _i=index, _k=keyword, **kwargs):
                t = args[_i] if len(args) > _i else kwargs[_k]
                self.calls.append((_family, t.numel() * t.element_size()))
                return _f(*args, **kwargs)

            setattr(dist, name, wrapper)
        return self

    def __exit__(self, *exc) -> None:
        import torch.distributed as dist

        for name in self._names:
            setattr(dist, name, CollectiveCounter._original[name])


# --- The reference and the worker ---


def _mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((out - target) ** 2).mean()  # mean over the (micro-)batch


def _step(model: nn.Module, X: torch.Tensor, Y: torch.Tensor, grads=None) -> dict:
    """One forward and backward on the whole batch; the output is copied to a plain tensor."""
    x = X.clone().requires_grad_()
    out = model(x)
    loss = _mse(out, Y)
    loss.backward()
    grads = [p.grad for p in model.parameters()] if grads is None else grads(model)
    return {
        "out": torch.empty_like(X).copy_(out.detach()),  # DTensor's is a tensor subclass
        "loss": loss.detach(),
        "grad_x": x.grad,
        "grads": torch.cat([g.reshape(-1) for g in grads]),
    }


def single_process_reference(num_stages: int = 2) -> dict[str, dict]:
    """One process, one float64 backward: the numbers every parallel run must reproduce.

    Parameters
    ----------
    num_stages : int, optional
        Blocks of the pipeline stack: a ``world_size`` that :func:`run_model_parallel` accepts.

    Returns
    -------
    dict
        ``"tp"``: one block ``make_mlp(0)``; ``"pp"``: the stack ``make_mlp(0)``, ...,
        ``make_mlp(num_stages - 1)``. Each: ``"out"`` (32, 16), ``"loss"``, ``"grad_x"``
        (32, 16) and ``"grads"``, the flattened parameter gradients, for the mean squared error.

    Examples
    --------
    >>> from dlref.parallel import single_process_reference
    >>> ref = single_process_reference()
    >>> tuple(ref["tp"]["out"].shape), ref["tp"]["grads"].numel(), ref["pp"]["grads"].numel()
    ((32, 16), 2128, 4256)
    """
    num_stages = check_divides("num_stages", num_stages, {"batch": BATCH, "hidden width": D_HIDDEN})
    X, Y = _make_data()
    stack = nn.Sequential(*(make_mlp(s) for s in range(num_stages)))
    return {"tp": _step(make_mlp(0), X, Y), "pp": _step(stack, X, Y)}


def _tensor_parallel(rank: int, world_size: int) -> dict:
    X, Y = _make_data()  # the full batch on every rank
    shard = MegatronMLP(make_mlp(0), rank, world_size)
    with CollectiveCounter() as counter:
        out = _step(shard, X, Y)
    return {**out, "calls": counter.calls}  # "grads": this rank's shards (the parent joins them)


def _dtensor_parallel(world_size: int) -> dict:
    import torch.distributed.tensor.parallel as tp
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (world_size,))
    plan = {"0": tp.ColwiseParallel(), "2": tp.RowwiseParallel()}  # Megatron's column, row split
    mlp = tp.parallelize_module(make_mlp(0), mesh, plan)
    out = _step(mlp, *_make_data(), grads=lambda m: [p.grad.full_tensor() for p in m.parameters()])
    return {**out, "local_params": sum(p.to_local().numel() for p in mlp.parameters())}


class _Delay(torch.autograd.Function):
    """Sleep ``seconds`` in the forward and in the backward pass: a stage's fixed compute time."""

    @staticmethod
    def forward(ctx, x, seconds, busy):
        ctx.seconds, ctx.busy = seconds, busy
        t0 = time.perf_counter()
        time.sleep(seconds)
        busy.append(time.perf_counter() - t0)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        _Delay.forward(ctx, grad, ctx.seconds, ctx.busy)  # the same wait, recorded likewise
        return grad, None, None


class _Stage(nn.Module):
    def __init__(self, block: nn.Module, seconds: float) -> None:
        super().__init__()
        self.block, self.seconds, self.busy = block, seconds, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(x)  # the delay after the block: its backward runs on every stage
        return _Delay.apply(x, self.seconds, self.busy) if self.seconds else x


def _pipeline(rank: int, world_size: int, schedule: str, m: int, seconds: float) -> dict:
    """One training step of the ``world_size``-stage stack; this rank holds block ``rank``."""
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

    X, Y = _make_data()
    module = _Stage(make_mlp(rank), seconds)
    stage = PipelineStage(module, rank, world_size, torch.device("cpu"))
    sent = []  # bytes of every point-to-point send of this stage
    for name in ("get_fwd_send_ops", "get_bwd_send_ops"):
        original = getattr(stage, name)

        def counted(chunk, _f=original):
            ops = _f(chunk)
            sent.extend(op.tensor.numel() * op.tensor.element_size() for op in ops)
            return ops

        setattr(stage, name, counted)
    cls = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}[schedule]
    # loss_fn is the mean over a micro-batch; scale_grads=True (the default) divides the summed
    # gradients by m, so they are those of the mean over the whole batch.
    sched = cls(stage, n_microbatches=m, loss_fn=_mse)
    times = []
    for _ in range(2):  # the first step also sets up the stage's buffers: time the second
        module.zero_grad()
        module.busy.clear()
        sent.clear()
        losses: list = []
        t0 = time.perf_counter()
        last = {"target": Y, "losses": losses} if rank == world_size - 1 else {}
        sched.step(*([X] if rank == 0 else []), **last)  # stage 0 gets X, the last one Y
        times.append(time.perf_counter() - t0)
    return {
        "grads": torch.cat([p.grad.reshape(-1) for p in module.block.parameters()]),
        "losses": [loss.detach() for loss in losses],
        "step_time": times[-1],
        "busy_time": sum(module.busy),
        "sent": list(sent),
    }


def _data_parallel_counts(rank: int, world_size: int) -> dict:
    """Bytes per step of DDP's all-reduce and of FSDP2's all-gathers and reduce-scatter."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel as DDP

    X, Y = _make_data()
    half = slice(rank * BATCH // world_size, (rank + 1) * BATCH // world_size)
    X, Y = X[half], Y[half]

    def hook(state, bucket):  # DDP's default all-reduce, written out so that it is counted
        buf = bucket.buffer().div_(world_size)
        return dist.all_reduce(buf, async_op=True).get_future().then(lambda f: f.value()[0])

    ddp = DDP(make_mlp(0))
    ddp.register_comm_hook(None, hook)
    with CollectiveCounter() as ddp_counter:
        _mse(ddp(X), Y).backward()
    mesh = init_device_mesh("cpu", (world_size,))
    fsdp = make_mlp(0)
    for layer in (fsdp[0], fsdp[2]):
        fully_shard(layer, mesh=mesh)
    fully_shard(fsdp, mesh=mesh)
    with CollectiveCounter() as fsdp_counter:
        _mse(fsdp(X), Y).backward()
    return {"ddp": ddp_counter.calls, "fsdp": fsdp_counter.calls}


def _worker(rank: int, world_size: int, microbatches: tuple, seconds: float) -> dict:
    """One rank: every pipeline run, then tensor parallelism by hand and by DTensor, then DP."""
    pp = {
        (schedule, m): _pipeline(rank, world_size, schedule, m, seconds)
        for schedule in ("gpipe", "1f1b")
        for m in microbatches  # torch's 1F1B refuses m < p: the worker raises
    }
    tp, dtensor = _tensor_parallel(rank, world_size), _dtensor_parallel(world_size)
    return {
        "rank": rank,
        "pp": pp,
        "tp": tp,
        "dtensor": dtensor,
        "dp": _data_parallel_counts(rank, world_size),
    }


def run_model_parallel(
    world_size: int = 2,
    microbatches: tuple[int, ...] = (2, 4, 8),
    delay: float = DELAY,
    timeout: float = 60.0,
) -> list[dict]:
    r"""Run tensor, pipeline and data parallelism on ``world_size`` spawned gloo processes.

    The processes are always reaped: if one raises, the others are killed and its exception is
    raised here with its message (``torch.multiprocessing.ProcessRaisedException``); past
    ``timeout`` seconds all are killed and ``TimeoutError`` is raised.

    Parameters
    ----------
    world_size : int, optional
        Ranks: the tensor-parallel degree and the number of pipeline stages (must divide 32).
    microbatches : tuple of int, optional
        Micro-batch counts :math:`m` of the pipeline runs; 1F1B needs :math:`m \ge p`.
    delay : float, optional
        Seconds each stage sleeps per micro-batch in each pass during the timed steps.
    timeout : float, optional
        Seconds before the workers are killed.

    Returns
    -------
    list of dict
        Per rank: ``"tp"``, ``"dtensor"`` (output, loss, gradients; counted ``"calls"``),
        ``"pp"`` by ``(schedule, m)`` (stage gradients, micro-batch losses, bytes sent, step
        and busy times), ``"dp"`` (the collectives of a DDP and an FSDP2 step).

    Examples
    --------
    >>> from dlref.parallel import run_model_parallel
    >>> run_model_parallel(world_size=3)
    Traceback (most recent call last):
    ...
    ValueError: world_size=3 must divide the batch 32 and the hidden width 64
    """
    world_size = check_divides("world_size", world_size, {"batch": BATCH, "hidden width": D_HIDDEN})
    for m in check_int_sequence("microbatches", microbatches):
        check_divides("microbatches", m, {"batch": BATCH})
    check_finite_nonnegative("delay", delay)
    check_positive_finite("timeout", timeout)
    # the workers join a gloo group on 127.0.0.1 (see dlref.distributed.run_workers)
    ranks = run_workers(_worker, (tuple(microbatches), float(delay)), world_size, timeout)
    # the full MLP's gradients from the shards: w1 and b1 by rows, w2 by columns, b2 replicated
    n1, nb = D_HIDDEN // world_size * D_MODEL, D_HIDDEN // world_size
    g = [r["tp"].pop("grads").split([n1, nb, n1, D_MODEL]) for r in ranks]
    w2 = torch.cat([gr[2].view(D_MODEL, -1) for gr in g], dim=1)
    full = [*(torch.cat([gr[i] for gr in g]) for i in (0, 1)), w2.reshape(-1), g[0][3]]
    for r in ranks:
        r["tp"]["grads"] = torch.cat(full)
    return ranks
