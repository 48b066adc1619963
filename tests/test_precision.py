"""dlref.precision against torch: torch.finfo, Tensor.to(dtype), torch.amp.GradScaler, exact sums.

- FloatFormat equals torch.finfo for float64/32/bfloat16/float16, and its smallest subnormal is
  the number whose bit pattern is 1;
- round_to equals x.to(dtype) bit for bit on 4 million random float32 bit patterns (every
  exponent, subnormals, inf; nan as nan), on 2 million numbers around the subnormal range, and on
  the edge cases (ties, the largest finite, the overflow threshold, ±0);
- LossScaler's scale sequence, skipped steps and parameters equal GradScaler("cpu") on a stream of
  3000 steps with inf and nan injected, for several settings, and with a fused optimizer, which
  skips steps on the device: no host sync on a (virtual) GPU;
- the sums against exact closed forms.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlref.precision import FloatFormat, LossScaler, kahan_sum, round_to, sequential_sum

HALF = [torch.bfloat16, torch.float16]


# ------------------------------------------------------------------------------------ formats


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_format_equals_finfo(dtype):
    f, ref = FloatFormat(dtype), torch.finfo(dtype)
    assert (f.bits, f.eps, f.max, f.min) == (ref.bits, ref.eps, ref.max, ref.min)
    assert (f.smallest_normal, f.tiny) == (ref.smallest_normal, ref.tiny)
    assert 1 + f.exponent_bits + f.mantissa_bits == ref.bits
    # the smallest subnormal is the bit pattern 1; the largest finite is inf's pattern minus 1
    int_dtype = {64: torch.int64, 32: torch.int32, 16: torch.int16}[ref.bits]
    one = torch.tensor([1], dtype=int_dtype).view(dtype)
    assert one.double().item() == f.smallest_subnormal
    inf_bits = torch.tensor([math.inf], dtype=dtype).view(int_dtype)
    assert (inf_bits - 1).view(dtype).double().item() == f.max
    # eps: 1 + eps is the next number after 1, 1 + eps/2 rounds back to 1
    assert torch.tensor(1 + f.eps, dtype=torch.float64).to(dtype).item() == 1 + f.eps
    assert torch.tensor(1 + f.eps / 2, dtype=torch.float64).to(dtype).item() == 1.0


def test_bfloat16_has_float32_range_and_3_digits():
    b, f32, h = (FloatFormat(d) for d in (torch.bfloat16, torch.float32, torch.float16))
    assert b.exponent_bits == f32.exponent_bits and b.smallest_normal == f32.smallest_normal
    assert 2 < b.significant_digits < 3 < h.significant_digits < 4
    assert "bfloat16" in repr(b)


# ----------------------------------------------------------------------------------- round_to


def _same_bits_or_both_nan(x, dtype):
    ours, ref = round_to(x, dtype), x.to(dtype)
    assert ours.dtype == dtype and ours.shape == x.shape
    nan = torch.isnan(ref)
    assert torch.equal(torch.isnan(ours), nan)
    assert torch.equal(ours.view(torch.int16)[~nan], ref.view(torch.int16)[~nan])


@pytest.mark.parametrize("dtype", HALF)
def test_round_to_equals_torch_on_random_bit_patterns(dtype):
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(-(2**31), 2**31, (4_000_000,), generator=g, dtype=torch.int64)
    _same_bits_or_both_nan(bits.to(torch.int32).view(torch.float32), dtype)


@pytest.mark.parametrize("dtype", HALF)
def test_round_to_equals_torch_across_magnitudes(dtype):
    g = torch.Generator().manual_seed(1)
    k = torch.randint(-150, 20, (2_000_000,), generator=g).float()
    x = torch.randn(2_000_000, generator=g) * torch.exp2(k)
    _same_bits_or_both_nan(x, dtype)


@pytest.mark.parametrize("dtype", HALF)
def test_round_to_edge_cases(dtype):
    f = FloatFormat(dtype)
    m, top = f.mantissa_bits, f.max
    ulp_top = 2.0 ** (f.bias - m)
    values = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -1.0]
    values += [1 + 2.0**-m / 2, 1 + 3 * 2.0**-m / 2, -(1 + 2.0**-m / 2)]  # ties to even
    values += [1 + 2.0**-m / 2 + 2.0**-23, 1 + 2.0**-m / 2 - 2.0**-23]  # just off a tie
    values += [top, top + ulp_top / 2, top + ulp_top / 2 - ulp_top / 2**16, 3.4028234663852886e38]
    values += [f.smallest_normal, f.smallest_subnormal, f.smallest_subnormal / 2]
    values += [f.smallest_subnormal * 1.5, f.smallest_subnormal * 0.75, f.smallest_normal * 0.999]
    values += [1.401298464324817e-45, 1.1754942106924411e-38, 1.1754943508222875e-38]
    x = torch.tensor(values, dtype=torch.float32)
    _same_bits_or_both_nan(x, dtype)
    _same_bits_or_both_nan(torch.tensor([], dtype=torch.float32), dtype)
    _same_bits_or_both_nan(torch.tensor(1.5), dtype)  # 0-d
    # every float32 bit pattern of 2^20 in a row from 1, from float16's smallest subnormal / 2,
    # and up to float32's largest finite
    for first in (1.0, 2.0**-25, 3.3e38):
        start = torch.tensor([first], dtype=torch.float32).view(torch.int32)
        bits = (start + torch.arange(2**20, dtype=torch.int32)).clamp(max=0x7F7FFFFF)
        _same_bits_or_both_nan(bits.view(torch.float32), dtype)


def test_round_to_is_not_truncation():
    x = torch.tensor([1 + 2.0**-8 + 2.0**-20])  # just above the tie between 1 and 1 + 2^-7
    truncated = (x.view(torch.int32) >> 16).to(torch.int16).view(torch.bfloat16)
    assert round_to(x, torch.bfloat16).item() == 1 + 2.0**-7 != truncated.item()


def test_round_to_errors():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        round_to([1.0], torch.float16)
    with pytest.raises(TypeError, match="x must be a float32 tensor"):
        round_to(torch.ones(2, dtype=torch.float64), torch.float16)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        round_to(torch.ones(2, dtype=torch.int32), torch.float16)
    with pytest.raises(ValueError, match="dtype must be one of bfloat16, float16"):
        round_to(torch.ones(2), torch.float64)
    with pytest.raises(TypeError, match="dtype must be a torch.dtype"):
        round_to(torch.ones(2), "float16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        FloatFormat(torch.int32)


# ---------------------------------------------------------------------------------- LossScaler


def _stream(steps, seed, p_inf=0.02, scale_grads=1e-3):
    """Gradient directions for each step (unscaled), with inf / nan injected at random steps."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        grads = [
            scale_grads * torch.randn(3, generator=g),
            scale_grads * torch.randn(2, generator=g),
        ]
        u = torch.rand((), generator=g).item()
        if u < p_inf / 2:
            grads[0][1] = math.inf
        elif u < p_inf:
            grads[1][0] = math.nan
        out.append(grads)
    return out


def _run(scaler, stream, overflow_above=None, fused=None):
    """Train two parameters on the stream; returns scales, skipped steps and the parameters."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.zeros(2))]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, fused=fused)
    scales, skipped = [], []
    for grads in stream:
        loss = (params[0].sum() + params[1].sum()) * 0 + 1.0
        scaled = scaler.scale(loss)
        s = scaled.detach() / loss.detach()  # the scale, as the scaler applies it
        for p, d in zip(params, grads, strict=True):
            p.grad = d * s
            if overflow_above is not None and s.item() > overflow_above:
                p.grad[0] = math.inf  # float16's overflow when the scale is too large
        before = [p.detach().clone() for p in params]
        scaler.step(opt)
        skipped.append(all(torch.equal(b, p) for b, p in zip(before, params, strict=True)))
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, skipped, [p.detach() for p in params]


@pytest.mark.parametrize(
    "kwargs, overflow_above",
    [
        ({}, None),
        ({"growth_interval": 7}, 2.0**20),
        (
            {"init_scale": 3.0, "growth_factor": 3.0, "backoff_factor": 0.25, "growth_interval": 5},
            1e9,
        ),
        (
            {
                "init_scale": 1e-30,
                "growth_factor": 1.7,
                "backoff_factor": 0.3,
                "growth_interval": 1,
            },
            None,
        ),
        ({"init_scale": 2.0**120, "growth_interval": 2}, None),  # growth stops below float32 inf
    ],
)
def test_loss_scaler_equals_grad_scaler(kwargs, overflow_above):
    stream = _stream(3000, seed=3)
    ours = _run(LossScaler(**kwargs), stream, overflow_above)
    ref = _run(torch.amp.GradScaler("cpu", **kwargs), stream, overflow_above)
    assert ours[0] == ref[0]
    assert ours[1] == ref[1]
    assert sum(ours[1]) > 10 and len(set(ours[0])) > 3
    for a, b in zip(ours[2], ref[2], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_loss_scaler_skips_a_fused_step_on_the_device():
    """A fused optimizer gets the flag as a tensor (torch's ``found_inf``) and skips by itself."""
    stream = _stream(600, seed=4, p_inf=0.05)
    ours = _run(LossScaler(growth_interval=5), stream, fused=True)
    ref = _run(torch.amp.GradScaler("cpu", growth_interval=5), stream, fused=True)
    assert ours[0] == ref[0]
    assert ours[1] == ref[1]
    assert sum(ours[1]) > 10 and len(set(ours[0])) > 3
    for a, b in zip(ours[2], ref[2], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _fused_adam_run(device):
    w = torch.nn.Parameter(torch.ones(3, device=device))
    opt = torch.optim.Adam([w], lr=0.1, fused=True)
    scaler = LossScaler(init_scale=4.0, growth_interval=2)
    for g in ([1.0, 2.0, 3.0], [math.inf, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, -1.0, 2.0]):
        scaler.scale((w * torch.tensor(g, device=device)).sum()).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
    return w.detach(), scaler


def test_loss_scaler_with_a_fused_optimizer_never_waits_for_the_host():
    """On a device, scale, unscale_, step and update read nothing back: 0 host syncs."""
    import vgpu  # tools/vgpu.py, registered by conftest.py

    ref, ref_scaler = _fused_adam_run("cpu")
    with vgpu.VirtualGPU(strict=True) as vg:
        w, scaler = _fused_adam_run(vgpu.VDEV)
        syncs = sum(vg.syncs.values())
        w, scale, tracker = w.cpu(), scaler.get_scale(), scaler.get_growth_tracker()
    assert syncs == 0
    torch.testing.assert_close(w.elem if isinstance(w, vgpu.V) else w, ref, rtol=0, atol=0)
    assert (scale, tracker) == (ref_scaler.get_scale(), ref_scaler.get_growth_tracker()) == (4.0, 0)


def test_loss_scaler_unscale_then_step_and_float16_outputs():
    w = torch.nn.Parameter(torch.ones(2))
    ours, ref = LossScaler(init_scale=1024.0), torch.amp.GradScaler("cpu", init_scale=1024.0)
    x = torch.ones(2, dtype=torch.float16)
    assert ours.scale(x).dtype == ref.scale(x).dtype == torch.float16
    torch.testing.assert_close(ours.scale(x), ref.scale(x), rtol=0, atol=0)
    for scaler in (ours, ref):
        opt = torch.optim.SGD([w], lr=1.0)
        w.grad = torch.tensor([1024.0, 2048.0])
        scaler.unscale_(opt)
        torch.testing.assert_close(w.grad, torch.tensor([1.0, 2.0]))
        with pytest.raises(RuntimeError, match="already been called"):
            scaler.unscale_(opt)
        scaler.step(opt)
        with pytest.raises(RuntimeError, match="already been called"):
            scaler.step(opt)
        scaler.update()
    assert ours.get_growth_tracker() == ref._get_growth_tracker() == 1
    assert ours.get_scale() == ref.get_scale() == 1024.0


def test_loss_scaler_errors():
    with pytest.raises(RuntimeError, match="No inf checks"):
        LossScaler().update()
    with pytest.raises(TypeError, match="optimizer must be"):
        LossScaler().unscale_([torch.ones(1)])
    with pytest.raises(TypeError, match="outputs must be a torch.Tensor"):
        LossScaler().scale(1.0)
    with pytest.raises(TypeError, match="init_scale must be a real number"):
        LossScaler(init_scale="1")
    with pytest.raises(ValueError, match=r"init_scale must lie in \(0, inf\), got 0.0"):
        LossScaler(init_scale=0.0)
    with pytest.raises(ValueError, match=r"growth_factor must lie in \(1, inf\), got 1.0"):
        LossScaler(growth_factor=1.0)
    with pytest.raises(ValueError, match="backoff_factor must lie in"):
        LossScaler(backoff_factor=1.0)
    with pytest.raises(TypeError, match="growth_interval must be an int"):
        LossScaler(growth_interval=2.0)
    with pytest.raises(ValueError, match="growth_interval must be at least 1"):
        LossScaler(growth_interval=0)


# ---------------------------------------------------------------------------------------- sums


@pytest.mark.parametrize("dtype, stop", [(torch.bfloat16, 256), (torch.float16, 2048)])
def test_sum_of_ones_stops_at_2_to_the_m_plus_1(dtype, stop):
    ones = torch.ones(5000, dtype=dtype)
    assert sequential_sum(ones).item() == stop == 2 ** (FloatFormat(dtype).mantissa_bits + 1)
    assert sequential_sum(ones, torch.float32).item() == 5000.0
    # Kahan in the same 16 bits: 5000 rounded to the format
    assert kahan_sum(ones).item() == torch.tensor(5000.0).to(dtype).item()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=200))
def test_kahan_error_is_within_its_bound(xs):
    x = torch.tensor(xs, dtype=torch.float32)
    exact = math.fsum(float(v) for v in xs)
    eps, total = FloatFormat(torch.float32).eps / 2, sum(abs(v) for v in xs)
    assert abs(kahan_sum(x).item() - exact) <= 2 * eps * total + 1e-30 + abs(exact) * eps
    assert abs(sequential_sum(x).item() - exact) <= (len(xs) + 1) * eps * total + 1e-30


def test_sum_errors():
    with pytest.raises(ValueError, match="x must be 1-D"):
        kahan_sum(torch.ones(2, 2))
    with pytest.raises(TypeError, match="x must be a floating-point"):
        sequential_sum(torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match="dtype must be one of"):
        sequential_sum(torch.ones(2), torch.int8)
    assert sequential_sum(torch.ones(0)).item() == 0.0
