"""A real 2-process run of torch.distributed (gloo, loopback) against single-process training.

One module-scoped run (~5-10 s, mostly each worker importing torch) serves every test.
"""

import multiprocessing
import os
import time

import pytest
import torch

from dlref import distributed, llm_systems

WORLD = 2
STEPS = 5


@pytest.fixture(scope="module")
def ranks():
    return distributed.run_data_parallel(world_size=WORLD, steps=STEPS, timeout=120.0)


@pytest.fixture(scope="module")
def reference():
    model, state_bytes = distributed.train_single_process(steps=STEPS)
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]), state_bytes


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="sockets are listed from /proc")
def test_every_socket_is_on_loopback(ranks):
    assert ranks[0]["backend"] == ("nccl" if torch.cuda.device_count() >= WORLD else "gloo")
    for r in ranks:
        assert r["listening"], "expected the store and gloo to listen somewhere"
        assert all(s.startswith("127.0.0.1:") for s in r["listening"]), r["listening"]


@pytest.mark.parametrize("method", ["ddp", "zero1"])
def test_data_parallel_equals_single_process_on_the_global_batch(ranks, reference, method):
    ref, _ = reference
    for r in ranks:
        torch.testing.assert_close(r[method]["params"], ref, rtol=0, atol=1e-12)
    assert not torch.equal(
        ref, torch.cat([p.reshape(-1) for p in distributed.make_model().parameters()])
    )


def test_allreduce_by_hand_equals_ddp(ranks, reference):
    """All-reduce (sum) then divide by N on a plain model: DDP's parameters, bit for bit."""
    ref, _ = reference
    for r in ranks:
        torch.testing.assert_close(r["allreduce"]["params"], r["ddp"]["params"], rtol=0, atol=0)
        torch.testing.assert_close(r["allreduce"]["params"], ref, rtol=0, atol=1e-12)


def test_ddp_keeps_the_whole_optimizer_state_on_every_rank(ranks, reference):
    _, single = reference
    assert [r["ddp"]["optimizer_bytes"] for r in ranks] == [single] * WORLD


def test_zero1_optimizer_state_per_rank_is_the_prediction(ranks, reference):
    """Adam in float64: m and v are K = 16 bytes per parameter, plus a 4-byte step per tensor."""
    _, single = reference
    psi = sum(p.numel() for p in distributed.make_model().parameters())
    n_tensors = len(list(distributed.make_model().parameters()))
    zero = [r["zero1"] for r in ranks]
    assert sum(z["num_params_local"] for z in zero) == psi
    assert sum(z["optimizer_bytes"] for z in zero) == single  # sharded, nothing lost
    predicted = llm_systems.zero_memory(psi, WORLD, stage=1, k=16, weight_bytes=0, grad_bytes=0)
    for z in zero:
        assert z["optimizer_bytes"] == predicted + 4 * n_tensors / WORLD  # equal shards here
        total = z["param_bytes"] + z["grad_bytes"] + z["optimizer_bytes"]
        expected = llm_systems.zero_memory(psi, WORLD, stage=1, k=16, weight_bytes=8, grad_bytes=8)
        assert total == expected + 4 * n_tensors / WORLD


def test_fsdp_when_it_runs_shards_everything(ranks, reference):
    ref, _ = reference
    status = ranks[0]["fsdp"]["status"]
    if status != "ran":
        pytest.skip(f"fully_shard did not run on CPU/gloo with this torch: {status}")
    psi = ref.numel()
    for r in ranks:
        f = r["fsdp"]
        torch.testing.assert_close(f["params"], ref, rtol=0, atol=1e-12)
        assert f["param_bytes"] == f["grad_bytes"] == 8 * psi / WORLD
        assert f["optimizer_bytes"] - 4 * 8 == 16 * psi / WORLD  # 8 step counters, unsharded


def test_workers_are_killed_on_timeout():
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="did not finish"):
        distributed.run_data_parallel(timeout=0.2, fsdp=False)
    assert time.monotonic() - t0 < 10
    assert multiprocessing.active_children() == []


def test_bad_batch_split_is_refused_before_spawning():
    with pytest.raises(ValueError, match="world_size=2 must divide the global batch 63"):
        distributed.run_data_parallel(global_batch=63)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"world_size": 2.5}, TypeError, "world_size must be an int, got float 2.5"),
        ({"world_size": 0}, ValueError, "world_size must be at least 1, got 0"),
        ({"steps": "3"}, TypeError, "steps must be an int, got str '3'"),
        ({"steps": -1}, ValueError, "steps must be at least 1, got -1"),
        ({"global_batch": -7}, ValueError, "global_batch must be at least 1, got -7"),
        ({"fsdp": "yes"}, TypeError, "fsdp must be a bool, got str 'yes'"),
        ({"timeout": "0.1"}, TypeError, "timeout must be a real number, got str '0.1'"),
        ({"timeout": 0.0}, ValueError, "timeout must be a finite number > 0, got 0.0"),
    ],
)
def test_bad_arguments_are_refused_before_spawning(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        distributed.run_data_parallel(**kwargs)
    assert multiprocessing.active_children() == []  # no worker was started


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"fn": "train"}, TypeError, "fn must be callable, got str"),
        ({"world_size": 0}, ValueError, "world_size must be at least 1, got 0"),
        ({"timeout": float("inf")}, ValueError, "timeout must be a finite number > 0, got inf"),
    ],
)
def test_run_workers_refuses_bad_arguments_before_spawning(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        distributed.run_workers(**({"fn": print} | kwargs))
    assert multiprocessing.active_children() == []


def test_helpers_name_their_arguments():
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer, got str"):
        distributed.optimizer_state_bytes("adam")
    with pytest.raises(TypeError, match="seed must be an int, got float 2.5"):
        distributed.make_batch(8, seed=2.5)
    with pytest.raises(ValueError, match="global_batch must be at least 1, got 0"):
        distributed.make_batch(0)
    with pytest.raises(TypeError, match="steps must be an int, got str '3'"):
        distributed.train_single_process(steps="3")
