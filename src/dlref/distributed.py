r"""Data parallelism on two processes of one machine: DDP, ZeRO-1 and FSDP on ``torch.distributed``.

The workers live here, in an importable module, because ``torch.multiprocessing`` starts them
with the ``spawn`` method: each is a fresh Python that imports the function it runs. Everything
binds to the loopback address only: the rendezvous store on 127.0.0.1 and gloo's connections
on the loopback interface.

:func:`run_workers` starts the processes and collects their results (``dlref.parallel`` uses
it too). :func:`run_data_parallel` trains one small float64 model four ways on the same global
batch and returns what each rank measured:

- ``DistributedDataParallel``: each rank sees half of the batch; gradients are averaged with an
  all-reduce, so every step equals a single-process step on the whole batch;
- :func:`allreduce_gradients`: that all-reduce written out, on a plain model;
- ``ZeroRedundancyOptimizer`` (ZeRO stage 1): the same, but each rank keeps the Adam state of
  only its share of the parameters;
- ``fully_shard`` (FSDP2, ZeRO stage 3): parameters, gradients and optimizer state sharded, the
  weights all-gathered for each forward/backward. If the installed torch cannot run it on CPU
  with gloo, the error is returned instead.

:func:`train_single_process` is the reference: the same model and batch on one process.
"""

from __future__ import annotations

import datetime
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn

from dlref._checks import (
    check_bool,
    check_callable,
    check_divides,
    check_instance,
    check_int,
    check_positive_finite,
)

__all__ = [
    "make_model",
    "make_batch",
    "optimizer_state_bytes",
    "train_single_process",
    "allreduce_gradients",
    "run_workers",
    "run_data_parallel",
]

WIDTH = 32  # every layer is WIDTH x WIDTH, so ZeRO can split the parameters evenly
N_LINEAR = 4
LR = 1e-2


# ---------------------------------------------------------------------------------------------
# Helpers: the model, the data, the bytes of an optimizer's state, the loopback address.
# ---------------------------------------------------------------------------------------------


def make_model(seed: int = 0) -> nn.Sequential:
    """Four ``Linear(32, 32)`` layers with tanh between them, float64, initialised from ``seed``.

    Examples
    --------
    >>> from dlref.distributed import make_model
    >>> sum(p.numel() for p in make_model().parameters())  # 4 * (32 * 32 + 32)
    4224
    """
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(N_LINEAR):
        layers.append(nn.Linear(WIDTH, WIDTH, dtype=torch.float64))
        if i < N_LINEAR - 1:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def make_batch(global_batch: int = 64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A regression batch: inputs ``(global_batch, 32)`` and targets ``sin(x @ W)`` of that shape.

    Examples
    --------
    >>> from dlref.distributed import make_batch
    >>> X, Y = make_batch(8)
    >>> tuple(X.shape), tuple(Y.shape), X.dtype
    ((8, 32), (8, 32), torch.float64)
    """
    check_int("global_batch", global_batch)
    check_int("seed", seed, minimum=-(2**63))  # any seed torch takes
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(global_batch, WIDTH, generator=g, dtype=torch.float64)
    W = torch.randn(WIDTH, WIDTH, generator=g, dtype=torch.float64) / WIDTH**0.5
    return X, torch.sin(X @ W)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor in ``optimizer.state`` (Adam: ``exp_avg``, ``exp_avg_sq``, ``step``).

    Examples
    --------
    >>> import torch
    >>> from dlref.distributed import optimizer_state_bytes
    >>> w = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    >>> opt = torch.optim.Adam([w])
    >>> w.sum().backward(); opt.step()
    >>> optimizer_state_bytes(opt)  # m and v: 2 * 10 * 8 bytes, step: one float32 scalar
    164
    """
    check_instance("optimizer", optimizer, torch.optim.Optimizer, "torch.optim.Optimizer")
    tensors = [t for state in optimizer.state.values() for t in state.values()]
    tensors = [t.to_local() if hasattr(t, "to_local") else t for t in tensors]  # DTensor: shard
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def _free_loopback_port() -> int:
    """A TCP port that is free on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback_interface() -> str:
    """The loopback interface's name (``lo`` on Linux, ``lo0`` on macOS), for gloo."""
    names = [name for _, name in socket.if_nameindex()]
    return next((n for n in names if n.startswith("lo")), "lo")


def _fd_target(fd: str) -> str:
    """What the open file ``fd`` of this process is (``socket:[inode]`` for a socket)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # closed meanwhile (the listing's own descriptor)
        return ""


def _listening_sockets() -> list[str]:
    """``address:port`` of every TCP socket this process listens on (Linux ``/proc``; else []).

    A listening socket of this process is one of its open files (``/proc/self/fd``) that is a
    socket; ``/proc/net/tcp`` names its address (hex, little-endian) and state (0A: LISTEN).
    """
    fds = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []
    inodes = {link[8:-1] for link in map(_fd_target, fds) if link.startswith("socket:[")}
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        lines = Path(table).read_text().splitlines()[1:] if os.path.exists(table) else []
        for cols in map(str.split, lines):
            (addr, port), state, inode = cols[1].split(":"), cols[3], cols[9]
            if state == "0A" and inode in inodes:
                raw = bytes.fromhex(addr)  # 32-bit words, each little-endian
                ip = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append(f"{socket.inet_ntop(family, ip)}:{int(port, 16)}")
    return sorted(found)


def _loopback_store(rank: int, world_size: int, port: int) -> torch.distributed.TCPStore:
    """The rendezvous key-value store, served by rank 0 on 127.0.0.1:port only.

    ``init_process_group`` with ``MASTER_ADDR=127.0.0.1`` would connect to loopback but serve
    the store on every interface; handing the store a socket already bound to 127.0.0.1
    (``master_listen_fd``) keeps it on loopback.
    """
    import torch.distributed as dist

    timeout = datetime.timedelta(seconds=60)
    if rank != 0:
        return dist.TCPStore("127.0.0.1", port, world_size, False, timeout=timeout)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return dist.TCPStore(
        "127.0.0.1", port, world_size, True, timeout=timeout, master_listen_fd=sock.detach()
    )


def allreduce_gradients(model: nn.Module) -> None:
    r"""Average the gradients of ``model`` over the ranks, as DDP does.

    .. math:: g \leftarrow \frac{1}{N} \sum_{r=1}^{N} g_r

    Called on every rank after ``loss.backward()`` (each rank's loss a mean
    over its own shard of the batch), it leaves on every rank the gradient of
    the mean loss over the whole batch, so the ranks' identical copies of the
    model take identical steps. ``DistributedDataParallel`` computes the same
    sum, bucketed and overlapped with the backward pass.

    Parameters
    ----------
    model : torch.nn.Module
        The same model on every rank of a ``torch.distributed`` group.

    Examples
    --------
    A group of one rank, where the mean is the gradient itself (two ranks
    against DDP: ``tests/test_distributed.py``):

    >>> import torch
    >>> import torch.distributed as dist
    >>> from dlref.distributed import allreduce_gradients
    >>> dist.init_process_group(
    ...     "gloo", store=dist.HashStore(), rank=0, world_size=1
    ... )
    >>> model = torch.nn.Linear(2, 1)
    >>> model(torch.tensor([[1.0, 2.0]])).sum().backward()
    >>> allreduce_gradients(model)
    >>> model.weight.grad, model.bias.grad
    (tensor([[1., 2.]]), tensor([1.]))
    >>> dist.destroy_process_group()
    """
    import torch.distributed as dist

    check_instance("model", model, nn.Module, "torch.nn.Module")
    world_size = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            # sum_r g_r, on every rank
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world_size  # g = (1/N) sum_r g_r


def _train(model: nn.Module, optimizer, X, Y, steps: int, allreduce: bool = False) -> None:
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((model(X) - Y) ** 2).mean()  # mean over the (local) batch
        loss.backward()  # under DDP/FSDP: gradients averaged over ranks here
        if allreduce:
            allreduce_gradients(model)  # the same average, written out
        optimizer.step()


def train_single_process(steps: int = 5, global_batch: int = 64) -> tuple[nn.Module, int]:
    """The reference: Adam on the whole batch in one process. Returns the model and state bytes.

    Examples
    --------
    >>> from dlref.distributed import train_single_process
    >>> model, state_bytes = train_single_process(steps=2)
    >>> state_bytes  # 4224 parameters * 16 bytes (m, v in float64) + 8 float32 step counters
    67616
    """
    check_int("steps", steps, minimum=0)
    check_int("global_batch", global_batch)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    X, Y = make_batch(global_batch)
    _train(model, optimizer, X, Y, steps)
    return model, optimizer_state_bytes(optimizer)


# ---------------------------------------------------------------------------------------------
# The worker: one process of the group
# ---------------------------------------------------------------------------------------------


def _flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def _run_fsdp(world_size: int, device, X, Y, steps: int) -> dict:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu" if device is None else "cuda", (world_size,))
    model = make_model().to(device)
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, mesh=mesh)  # each layer's parameters sharded along dim 0
    fully_shard(model, mesh=mesh)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    _train(model, optimizer, X, Y, steps)
    local = [p.to_local() for p in model.parameters()]  # this rank's shards (DTensor -> Tensor)
    return {
        "status": "ran",
        "params": _flat(p.full_tensor() for p in model.parameters()).cpu(),  # all-gathered
        "param_bytes": sum(t.numel() * t.element_size() for t in local),
        "grad_bytes": sum(
            g.numel() * g.element_size() for g in (p.grad.to_local() for p in model.parameters())
        ),
        "optimizer_bytes": optimizer_state_bytes(optimizer),
    }


def _worker(rank: int, world_size: int, steps: int, global_batch: int, fsdp: bool) -> dict:
    """One rank: DDP, all-reduce by hand, ZeRO-1, then FSDP2 on its half of the batch."""
    import torch.distributed as dist
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    device = torch.device("cuda", rank) if dist.get_backend() == "nccl" else None
    X, Y = make_batch(global_batch)
    shard = slice(rank * global_batch // world_size, (rank + 1) * global_batch // world_size)
    X, Y = X[shard].to(device), Y[shard].to(device)  # this rank's half of the global batch
    out: dict = {"rank": rank, "backend": dist.get_backend()}

    model = DDP(make_model().to(device))  # same seed on every rank; DDP broadcasts rank 0's
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    _train(model, optimizer, X, Y, steps)
    out["listening"] = _listening_sockets()  # the store (rank 0) and gloo's pairs
    out["ddp"] = {
        "params": _flat(model.parameters()).cpu(),
        "optimizer_bytes": optimizer_state_bytes(optimizer),
    }

    model = make_model().to(device)  # the same seed on every rank: the same start
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    _train(model, optimizer, X, Y, steps, allreduce=True)
    out["allreduce"] = {"params": _flat(model.parameters()).cpu()}

    model = DDP(make_model().to(device))
    optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.Adam, lr=LR)
    _train(model, optimizer, X, Y, steps)
    local = optimizer.optim  # the Adam that holds this rank's share
    out["zero1"] = {
        "params": _flat(model.parameters()).cpu(),
        "optimizer_bytes": optimizer_state_bytes(local),
        "num_params_local": sum(p.numel() for g in local.param_groups for p in g["params"]),
        "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "grad_bytes": sum(p.grad.numel() * p.grad.element_size() for p in model.parameters()),
    }

    if fsdp:
        try:
            out["fsdp"] = _run_fsdp(world_size, device, X, Y, steps)
        except Exception as e:  # report, do not fail: FSDP on CPU/gloo depends on the version
            out["fsdp"] = {"status": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
    return out


# ---------------------------------------------------------------------------------------------
# The launcher
# ---------------------------------------------------------------------------------------------


def _entry(rank: int, fn, args: tuple, world_size: int, port: int, out_dir: str, backend: str):
    """A spawned process: join the group on loopback, run ``fn``, save what it returns."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ["GLOO_SOCKET_IFNAME"] = _loopback_interface()  # gloo's connections: loopback
    os.environ["NCCL_SOCKET_IFNAME"] = _loopback_interface()  # NCCL's bootstrap: loopback
    if backend == "nccl":
        torch.cuda.set_device(rank)  # one GPU per rank
    store = _loopback_store(rank, world_size, port)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size)
    try:
        torch.save(fn(rank, world_size, *args), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_workers(
    fn, args: tuple = (), world_size: int = 2, timeout: float = 60.0, backend: str = "gloo"
) -> list:
    """Run ``fn(rank, world_size, *args)`` on ``world_size`` spawned processes; return each result.

    Each process joins a ``torch.distributed`` group of ``backend`` whose rendezvous store and
    connections bind to 127.0.0.1 only. The processes are always reaped: if one fails, the others
    are killed and its exception is raised (``torch.multiprocessing.ProcessRaisedException``);
    past ``timeout`` seconds all are killed and ``TimeoutError`` is raised.

    Parameters
    ----------
    fn : callable
        A function of an importable module (``spawn`` starts a fresh Python that imports it),
        returning what ``torch.save`` can write (tensors, dicts, lists, numbers, strings).
    args : tuple, optional
        More arguments of ``fn``.
    world_size : int, optional
        Number of processes (ranks).
    timeout : float, optional
        Seconds before the workers are killed.
    backend : {"gloo", "nccl"}, optional
        ``"nccl"`` gives rank ``r`` the GPU ``cuda:r``.

    Returns
    -------
    list
        What ``fn`` returned on each rank, in rank order.

    Examples
    --------
    >>> from dlref.distributed import run_workers
    >>> run_workers(print, timeout=0)
    Traceback (most recent call last):
    ...
    ValueError: timeout must be a finite number > 0, got 0
    """
    check_callable("fn", fn)
    world_size = check_int("world_size", world_size)
    check_positive_finite("timeout", timeout)
    with tempfile.TemporaryDirectory() as out_dir:
        spawn_args = (fn, args, world_size, _free_loopback_port(), out_dir, backend)
        # spawn re-imports the caller's __main__ script in each worker (and would re-run a
        # script that calls this at top level); the workers need only this module.
        main = sys.modules["__main__"]
        main_file = getattr(main, "__file__", None) if main.__spec__ is None else None
        if main_file is not None:
            del main.__file__
        try:
            ctx = mp.start_processes(
                _entry, args=spawn_args, nprocs=world_size, join=False, start_method="spawn"
            )
        finally:
            if main_file is not None:
                main.__file__ = main_file
        deadline = time.monotonic() + timeout
        try:
            while not ctx.join(timeout=max(deadline - time.monotonic(), 0.0)):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"the {world_size} workers did not finish in {timeout} s")
        finally:
            for p in ctx.processes:  # reap every worker, also on error or timeout
                if p.is_alive():
                    p.kill()
                p.join()
        return [torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in range(world_size)]


def run_data_parallel(
    world_size: int = 2,
    steps: int = 5,
    global_batch: int = 64,
    fsdp: bool = True,
    timeout: float = 60.0,
) -> list[dict]:
    """Train on ``world_size`` spawned processes; return each rank's measurements.

    The processes are always reaped: if one fails, the others are killed and its exception is
    raised (``torch.multiprocessing.ProcessRaisedException``); past ``timeout`` seconds all are
    killed and ``TimeoutError`` is raised.

    Parameters
    ----------
    world_size : int, optional
        Number of processes (ranks); must divide ``global_batch``.
    steps : int, optional
        Adam steps of each training run, at least 1.
    global_batch : int, optional
        Examples per step, summed over the ranks.
    fsdp : bool, optional
        Also try FSDP2's ``fully_shard``.
    timeout : float, optional
        Seconds before the workers are killed.

    Returns
    -------
    list of dict
        One dict per rank: ``"backend"``, ``"listening"`` (the ``address:port`` of each socket
        the rank listened on), and ``"ddp"``, ``"zero1"`` (and ``"fsdp"``), each holding the
        flattened trained parameters ``"params"`` and the measured ``"optimizer_bytes"``;
        ``"fsdp"`` has ``"status"``: ``"ran"`` or the error.

    Examples
    --------
    >>> import torch
    >>> from dlref.distributed import run_data_parallel, train_single_process
    >>> ranks = run_data_parallel(world_size=2, steps=1, fsdp=False)
    >>> reference, _ = train_single_process(steps=1)
    >>> theta = torch.cat([p.detach().reshape(-1) for p in reference.parameters()])
    >>> [bool(torch.allclose(r["ddp"]["params"], theta, rtol=0, atol=1e-12)) for r in ranks]
    [True, True]
    >>> [r["zero1"]["optimizer_bytes"] for r in ranks]  # half of the single-process 67,616 each
    [33808, 33808]
    """
    # Every argument is checked here, before any process is started.
    global_batch = check_int("global_batch", global_batch)
    world_size = check_divides("world_size", world_size, {"global batch": global_batch})
    steps = check_int("steps", steps)  # each rank measures its optimizer state after a step
    check_bool("fsdp", fsdp)
    check_positive_finite("timeout", timeout)
    backend = "nccl" if torch.cuda.device_count() >= world_size else "gloo"  # one GPU per rank
    return run_workers(_worker, (steps, global_batch, fsdp), world_size, timeout, backend)
