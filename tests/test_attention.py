"""dlref.attention against torch (float64 values and gradients), closed forms and plain loops."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_parity

from dlref.attention import KVCache, MultiHeadAttention, causal_mask, scaled_dot_product_attention
from dlref.positional import RotaryEmbedding

DT = torch.float64


def qkv(B=2, H=3, L=4, S=5, E=6, Ev=7, H_kv=None, batch=True):
    g = torch.Generator().manual_seed(0)
    lead = (B, H) if batch else (B,)
    lead_kv = (B, H_kv or H) if batch else (B,)
    return (
        torch.randn(*lead, L, E, generator=g, dtype=DT),
        torch.randn(*lead_kv, S, E, generator=g, dtype=DT),
        torch.randn(*lead_kv, S, Ev, generator=g, dtype=DT),
    )


# ------------------------------------------------------------------ scaled_dot_product_attention


def _masks():
    g = torch.Generator().manual_seed(1)
    bool_ls = torch.rand(4, 5, generator=g) > 0.3
    bool_ls[:, 0] = True  # every row keeps a key
    dead_row = torch.ones(4, 5, dtype=torch.bool)
    dead_row[2] = False
    float_mask = torch.randn(2, 1, 4, 5, generator=g, dtype=DT)
    float_inf = torch.zeros(4, 5, dtype=DT).masked_fill(~bool_ls, -math.inf)
    float_dead = torch.zeros(4, 5, dtype=DT).masked_fill(~dead_row, -math.inf)
    return {
        "bool (L, S)": bool_ls,
        "bool (B, 1, L, S)": torch.rand(2, 1, 4, 5, generator=g) > 0.2,
        "bool (B, 1, 1, S) padding": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
        .bool()
        .view(2, 1, 1, 5),
        "bool, a fully masked row": dead_row,
        "float (B, 1, L, S)": float_mask,
        "float with -inf": float_inf,
        "float, a fully -inf row": float_dead,
    }


@pytest.mark.parametrize("mask_name", [None, "causal", *_masks()])
def test_sdpa_matches_torch_with_every_mask(mask_name):
    q, k, v = qkv()
    if mask_name == "causal":
        kwargs = {"is_causal": True}
    else:
        kwargs = {"attn_mask": None if mask_name is None else _masks()[mask_name]}
    assert_parity(scaled_dot_product_attention, F.scaled_dot_product_attention, (q, k, v), kwargs)


@pytest.mark.parametrize(("L", "S"), [(1, 5), (5, 2), (3, 3), (6, 1)])
def test_sdpa_causal_with_different_lengths_matches_torch(L, S):
    q, k, v = qkv(L=L, S=S)
    assert_parity(
        scaled_dot_product_attention,
        F.scaled_dot_product_attention,
        (q, k, v),
        {"is_causal": True},
    )


@pytest.mark.parametrize("scale", [None, 0.1, 2.0])
def test_sdpa_3d_inputs_and_scale_match_torch(scale):
    q, k, v = qkv(batch=False)
    assert_parity(
        scaled_dot_product_attention,
        F.scaled_dot_product_attention,
        (q, k, v),
        {"scale": scale},
        double_backward=True,
    )


@pytest.mark.parametrize(("H", "H_kv"), [(4, 2), (4, 1), (6, 3)])
@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_grouped_query_matches_torch(H, H_kv, is_causal):
    q, k, v = qkv(H=H, H_kv=H_kv)
    kwargs = {"enable_gqa": True, "is_causal": is_causal}
    assert_parity(scaled_dot_product_attention, F.scaled_dot_product_attention, (q, k, v), kwargs)


def test_sdpa_dropout_draws_the_same_mask_as_torch():
    q, k, v = qkv()
    torch.manual_seed(5)
    ref = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)
    torch.manual_seed(5)
    ours = scaled_dot_product_attention(q, k, v, dropout_p=0.4)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_sdpa_extreme_scores_are_finite_and_match_torch():
    q, k, v = qkv()
    q, k = 100 * q, 100 * k  # scores of order 1e4
    ours = scaled_dot_product_attention(q, k, v)
    assert torch.isfinite(ours).all()
    assert_parity(scaled_dot_product_attention, F.scaled_dot_product_attention, (q, k, v))


def test_sdpa_fully_masked_row_gives_zeros_like_torch():
    q, k, v = qkv()
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1] = False
    ours = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (ours[..., 1, :] == 0).all()
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.parametrize(("B", "S"), [(0, 5), (2, 0)])
@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_empty_batch_and_empty_keys_match_torch(B, S, is_causal):
    q, k, v = qkv(B=B, S=S)
    ours = scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=is_causal))


def test_sdpa_float32_matches_torch():
    q, k, v = (t.float() for t in qkv())
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, is_causal=True),
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
    )


def test_sdpa_equals_a_plain_loop():
    """softmax_j(q_i . k_j / sqrt(E)) v_j, one query and one key at a time."""
    q, k, v = (t[0, 0] for t in qkv())
    out = torch.zeros(q.shape[0], v.shape[1], dtype=DT)
    for i in range(q.shape[0]):
        s = [sum(q[i, e] * k[j, e] for e in range(q.shape[1])) / math.sqrt(6) for j in range(5)]
        w = [math.exp(x) / sum(math.exp(y) for y in s) for x in s]
        for j in range(5):
            out[i] += w[j] * v[j]
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v), out)


finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 4), st.data())
def test_sdpa_rows_are_convex_combinations_of_values(L, S, E, data):
    n = L * E + S * E
    xs = torch.tensor(data.draw(st.lists(finite, min_size=n, max_size=n)), dtype=DT)
    q, k = xs[: L * E].view(L, E), xs[L * E :].view(S, E)
    mask = torch.tensor(data.draw(st.lists(st.booleans(), min_size=L * S, max_size=L * S)))
    mask = mask.view(L, S)
    ours = scaled_dot_product_attention(q, k, torch.ones(S, 1, dtype=DT), attn_mask=mask)
    expected = mask.any(-1, keepdim=True).to(DT)  # weights sum to 1, or 0 where all masked
    torch.testing.assert_close(ours, expected)
    ref = F.scaled_dot_product_attention(q, k, torch.eye(S, dtype=DT), attn_mask=mask)
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, torch.eye(S, dtype=DT), attn_mask=mask), ref
    )


def test_causal_mask_offsets():
    torch.testing.assert_close(causal_mask(3, 3), torch.ones(3, 3, dtype=torch.bool).tril())
    torch.testing.assert_close(
        causal_mask(2, 5, offset=3), torch.ones(5, 5, dtype=torch.bool).tril()[3:]
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (
            ((2, 4, 8), (2, 5, 6), (2, 5, 6)),
            {},
            ValueError,
            r"query has shape \(2, 4, 8\) but key has shape \(2, 5, 6\): the last dimensions must",
        ),
        (
            ((2, 4, 8), (2, 5, 8), (2, 3, 8)),
            {},
            ValueError,
            r"key has shape \(2, 5, 8\) but value has shape \(2, 3, 8\): the sequence dimensions",
        ),
        (
            ((2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8)),
            {},
            ValueError,
            r"batch and head dimensions must match or broadcast \(different head counts need",
        ),
        (
            ((2, 3, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8)),
            {"enable_gqa": True},
            ValueError,
            r"key heads=2 must divide the query heads 3",
        ),
        (
            ((2, 4, 8), (2, 5, 8), (2, 5, 8)),
            {"attn_mask": torch.ones(3, 5, dtype=torch.bool)},
            ValueError,
            r"attn_mask has shape \(3, 5\), which does not broadcast to the scores' shape "
            r"\(2, 4, 5\)",
        ),
        (
            ((2, 4, 8), (2, 5, 8), (2, 5, 8)),
            {"attn_mask": torch.ones(4, 5, dtype=torch.long)},
            TypeError,
            r"attn_mask must have dtype torch.bool or torch.float32, got torch.int64",
        ),
        (
            ((2, 4, 8), (2, 5, 8), (2, 5, 8)),
            {"dropout_p": 1.5},
            ValueError,
            r"dropout_p must be at most 1, got 1.5",
        ),
        (
            ((2, 4, 8), (2, 5, 8), (3, 5, 8)),
            {},
            ValueError,
            r"key has shape \(2, 5, 8\) but value has shape \(3, 5, 8\): the batch and head",
        ),
        (
            ((2, 4, 8), (1, 5, 8), (3, 5, 8)),
            {},
            ValueError,
            r"query has shape \(2, 4, 8\) but value has shape \(3, 5, 8\): the batch and head",
        ),
        (
            ((8,), (5, 8), (5, 8)),
            {},
            ValueError,
            r"query must have shape \(\.\.\., \[H,\] L, E\) = \(\.\.\., any, any\), got \(8,\)",
        ),
        (
            ((4, 8), (5, 8), (5, 8)),
            {"attn_mask": torch.ones(4, 5, dtype=torch.bool), "is_causal": True},
            ValueError,
            r"attn_mask and is_causal=True were both given: pass one mask, e.g. "
            r"attn_mask=attn_mask & causal_mask\(L, S\)",
        ),
    ],
)
def test_sdpa_errors_name_the_arguments_and_shapes(args, kwargs, error, message):
    tensors = [torch.randn(s) for s in args]
    with pytest.raises(error, match=message):
        scaled_dot_product_attention(*tensors, **kwargs)


@pytest.mark.parametrize(
    ("shapes", "kwargs"),
    [
        (((3, 1, 2), (2, 2), (2, 1)), {}),  # batch dimensions broadcast, as in matmul
        (((2, 4, 8), (2, 5, 8), (5, 8)), {}),  # value with fewer dimensions
        (((2, 4, 3, 8), (2, 2, 5, 8), (2, 1, 5, 8)), {"enable_gqa": True}),  # 2 and 1 KV heads
        (((1, 2), (2, 2), (2, 1)), {"dropout_p": -1.0}),  # dropout only when dropout_p > 0
        (((1, 2), (2, 2), (2, 1)), {"dropout_p": 1.0}),  # all dropped: zeros
        (((1, 2), (2, 2), (2, 1)), {"scale": torch.tensor(0.5)}),
        (((1, 2), (2, 2), (0, 3)), {}),  # no values: zeros of shape (L, E_v)
        (((1, 0), (2, 0), (2, 3)), {}),  # E = 0: uniform weights
        (((1, 2), (2, 2), (2, 1)), {"attn_mask": torch.tensor(0.0)}),
    ],
)
def test_sdpa_accepts_what_torch_accepts(shapes, kwargs):
    torch.manual_seed(0)
    q, k, v = (torch.randn(s, dtype=torch.float64) for s in shapes)
    expected = F.scaled_dot_product_attention(q, k, v, **kwargs)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, **kwargs), expected)


@pytest.mark.parametrize(
    ("shapes", "kwargs", "error", "message"),
    [
        (
            ((1, 2), (2, 2), (2, 1)),
            {"is_causal": 1},
            TypeError,
            "is_causal must be a bool, got int",
        ),
        (((1, 2), (2, 2), (2, 1)), {"enable_gqa": "yes"}, TypeError, "enable_gqa must be a bool"),
        (
            ((1, 2), (2, 2), (2, 1)),
            {"dropout_p": "0.1"},
            TypeError,
            "dropout_p must be a real number, got str",
        ),
        (
            ((1, 2), (2, 2), (2, 1)),
            {"scale": "a"},
            TypeError,
            "scale must be a Real or None, got str",
        ),
        (
            ((1, 2), (2, 2), (2, 1)),
            {"attn_mask": -1},
            TypeError,
            "attn_mask must be a Tensor or None, got int",
        ),
        (
            ((1, 2), (2, 2), (2, 1)),
            {"attn_mask": torch.zeros(3, 1, 2)},
            ValueError,
            r"attn_mask has shape \(3, 1, 2\), which does not broadcast to the scores' shape "
            r"\(1, 2\)",
        ),
        (
            ((3, 8), (5, 8), (5, 8)),
            {"enable_gqa": True},
            ValueError,
            r"query must have shape \(\.\.\., \[H,\] L, E\) = \(\.\.\., any, any, any\), "
            r"got \(3, 8\)",
        ),
        (
            ((1, 2), (2, 2), (2, 1)),
            {"dropout_p": math.inf},
            ValueError,
            "dropout_p must be at most 1",
        ),
    ],
)
def test_sdpa_rejects_what_torch_rejects(shapes, kwargs, error, message):
    q, k, v = (torch.randn(s) for s in shapes)
    with pytest.raises(error, match=message):
        scaled_dot_product_attention(q, k, v, **kwargs)
    with pytest.raises((TypeError, RuntimeError, IndexError)):  # torch rejects it too
        F.scaled_dot_product_attention(q, k, v, **kwargs)


def test_sdpa_rejects_mixed_dtypes():
    q, k, v = torch.randn(1, 2), torch.randn(2, 2, dtype=torch.float64), torch.randn(2, 1)
    with pytest.raises(TypeError, match="query, key and value must have the same dtype"):
        scaled_dot_product_attention(q, k, v)


def test_sdpa_rejects_integer_query():
    with pytest.raises(
        TypeError, match="query must be a floating-point tensor, got dtype torch.int64"
    ):
        scaled_dot_product_attention(
            torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3), torch.ones(2, 3)
        )


# --------------------------------------------------------------------------- MultiHeadAttention


def _torch_mha(E=12, H=3, bias=True, kdim=None):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(
        E, H, bias=bias, batch_first=True, kdim=kdim, vdim=kdim, dtype=DT
    )
    ours = MultiHeadAttention(E, H, bias=bias, kdim=kdim, dtype=DT)
    with torch.no_grad():
        if ref._qkv_same_embed_dim:
            wq, wk, wv = ref.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = ref.q_proj_weight, ref.k_proj_weight, ref.v_proj_weight
        ours.q_proj.weight.copy_(wq)
        ours.k_proj.weight.copy_(wk)
        ours.v_proj.weight.copy_(wv)
        ours.out_proj.weight.copy_(ref.out_proj.weight)
        if bias:
            bq, bk, bv = ref.in_proj_bias.chunk(3)
            ours.q_proj.bias.copy_(bq)
            ours.k_proj.bias.copy_(bk)
            ours.v_proj.bias.copy_(bv)
            ours.out_proj.bias.copy_(ref.out_proj.bias)
    return ours, ref


def _grads_of_params(out, params):
    return torch.autograd.grad(out, params, torch.ones_like(out), retain_graph=True)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_mha_equals_torch_multihead_attention(bias, causal):
    ours, ref = _torch_mha(bias=bias)
    x = torch.randn(2, 5, 12, dtype=DT, requires_grad=True)
    if causal:  # torch's nn.MultiheadAttention: True = *not* allowed, the opposite of SDPA
        y_ref = ref(x, x, x, attn_mask=~causal_mask(5, 5), need_weights=False)[0]
        y = ours(x, is_causal=True)
    else:
        y_ref = ref(x, x, x, need_weights=False)[0]
        y = ours(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    (gx,), (gx_ref,) = _grads_of_params(y, [x]), _grads_of_params(y_ref, [x])
    torch.testing.assert_close(gx, gx_ref)
    g_out = _grads_of_params(y, [ours.out_proj.weight])[0]
    torch.testing.assert_close(g_out, _grads_of_params(y_ref, [ref.out_proj.weight])[0])
    g_in = torch.cat(
        _grads_of_params(y, [ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
    )
    torch.testing.assert_close(g_in, _grads_of_params(y_ref, [ref.in_proj_weight])[0])


def test_mha_cross_attention_equals_torch():
    x, ctx_k = torch.randn(2, 4, 12, dtype=DT), torch.randn(2, 6, 5, dtype=DT)
    # ours takes one context for keys and values (width kdim); torch's kdim/vdim allow two
    ours, ref = _torch_mha(kdim=5)
    y_ref = ref(x, ctx_k, ctx_k, need_weights=False)[0]
    torch.testing.assert_close(ours(x, ctx_k), y_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("H_kv", [1, 2, 4])
def test_gqa_equals_torch_sdpa_with_enable_gqa(H_kv):
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, num_kv_heads=H_kv, dtype=DT)
    x = torch.randn(2, 6, 32, dtype=DT)
    q = mha.q_proj(x).view(2, 6, 4, 8).transpose(1, 2)
    k = mha.k_proj(x).view(2, 6, H_kv, 8).transpose(1, 2)
    v = mha.v_proj(x).view(2, 6, H_kv, 8).transpose(1, 2)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    ref = mha.out_proj(y.transpose(1, 2).reshape(2, 6, 32))
    torch.testing.assert_close(mha(x, is_causal=True), ref)
    assert mha.k_proj.weight.shape == (H_kv * 8, 32)


def test_self_attention_is_permutation_equivariant_without_positions_and_not_with_a_mask():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, dtype=DT)
    x = torch.randn(1, 7, 16, dtype=DT)
    perm = torch.randperm(7)
    torch.testing.assert_close(mha(x[:, perm]), mha(x)[:, perm])  # f(Px) = P f(x)
    assert not torch.allclose(mha(x[:, perm]), mha(x))  # not invariant
    assert not torch.allclose(mha(x[:, perm], is_causal=True), mha(x, is_causal=True)[:, perm])


def test_mha_errors():
    with pytest.raises(ValueError, match="num_heads=3 must divide the embed_dim 10"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="num_kv_heads=3 must divide the num_heads 4"):
        MultiHeadAttention(16, 4, num_kv_heads=3)
    with pytest.raises(ValueError, match="dropout must be >= 0, got -0.5"):
        MultiHeadAttention(16, 4, dropout=-0.5)
    mha = MultiHeadAttention(16, 4)
    with pytest.raises(
        ValueError, match=r"x must have shape \(B, T, embed_dim\) = \(any, any, 16\)"
    ):
        mha(torch.randn(2, 8))
    with pytest.raises(ValueError, match=r"context must have shape \(B, S, kdim\), x if None"):
        MultiHeadAttention(16, 4, kdim=8)(torch.randn(2, 3, 16))
    cache = KVCache(1, 1, 4, 8, 4)
    with pytest.raises(ValueError, match="kv_cache is for self-attention"):
        mha(torch.randn(1, 2, 16), torch.randn(1, 2, 16), kv_cache=cache)


# ------------------------------------------------------------------------------------ KV cache


@pytest.mark.parametrize("H_kv", [4, 2, 1])
@pytest.mark.parametrize("rope", [False, True])
def test_decoding_with_the_cache_equals_the_full_forward(H_kv, rope):
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, num_kv_heads=H_kv, dtype=DT).eval()
    rotary = RotaryEmbedding(8, 16, dtype=DT) if rope else None
    x = torch.randn(2, 9, 32, dtype=DT)
    full = mha(x, is_causal=True, rotary=rotary)
    cache = KVCache(1, 2, H_kv, 16, 8, dtype=DT)
    pieces = [mha(x[:, :3], is_causal=True, rotary=rotary, kv_cache=cache)]  # prefill 3
    pieces += [mha(x[:, 3:5], is_causal=True, rotary=rotary, kv_cache=cache)]  # a chunk of 2
    for t in range(5, 9):  # then one token at a time
        pieces.append(mha(x[:, t : t + 1], is_causal=True, rotary=rotary, kv_cache=cache))
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-12, atol=1e-12)
    assert cache.seq_len == 9


def test_cache_chunk_with_a_float_mask_equals_the_full_forward():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, dtype=DT)
    x = torch.randn(1, 6, 16, dtype=DT)
    full = mha(x, is_causal=True, attn_mask=torch.zeros(6, 6, dtype=DT))
    cache = KVCache(1, 1, 2, 8, 8, dtype=DT)
    a = mha(x[:, :2], is_causal=True, kv_cache=cache)
    b = mha(x[:, 2:], is_causal=True, kv_cache=cache, attn_mask=torch.zeros(4, 6, dtype=DT))
    torch.testing.assert_close(torch.cat([a, b], 1), full)


def test_kv_cache_stores_reorders_and_resets():
    cache = KVCache(2, 3, 1, 4, 2)
    k = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    keys, values = cache.update(1, k, 2 * k)
    torch.testing.assert_close(keys, k)
    torch.testing.assert_close(values, 2 * k)
    assert cache.lengths == [0, 2]
    cache.reorder(torch.tensor([2, 2, 0]))
    torch.testing.assert_close(cache.keys[1, :, 0, 0, 0], torch.tensor([2.0, 2.0, 0.0]))
    assert cache.nbytes == 2 * 2 * 3 * 1 * 4 * 2 * 4
    cache.reset()
    assert cache.lengths == [0, 0]


def test_kv_cache_errors():
    cache = KVCache(1, 2, 2, 4, 3)
    with pytest.raises(ValueError, match=r"k must have .* = \(2, 2, any, 3\), got \(2, 1, 1, 3\)"):
        cache.update(0, torch.ones(2, 1, 1, 3), torch.ones(2, 1, 1, 3))
    with pytest.raises(ValueError, match=r"v must have shape k's shape = \(2, 2, 1, 3\), got"):
        cache.update(0, torch.ones(2, 2, 1, 3), torch.ones(2, 2, 2, 3))
    cache.update(0, torch.ones(2, 2, 3, 3), torch.ones(2, 2, 3, 3))
    with pytest.raises(
        ValueError, match=r"seq_len \+ T \(stored \+ new tokens\) must be at most 4"
    ):
        cache.update(0, torch.ones(2, 2, 2, 3), torch.ones(2, 2, 2, 3))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: causal_mask(-1, 4), ValueError, "query_len must be at least 0, got -1"),
        (lambda: causal_mask(2, 2.5), TypeError, "key_len must be an int, got float 2.5"),
        (lambda: causal_mask(2, 4, offset="1"), TypeError, "offset must be an int, got str"),
        (lambda: causal_mask(2, 4, device=-1), ValueError, "device must be None, a torch.device"),
        (lambda: KVCache(1, 2.5, 2, 8, 4), TypeError, "batch_size must be an int, got float 2.5"),
        (lambda: KVCache(1, 1, 2, 8, 0), ValueError, "head_dim must be at least 1, got 0"),
        (lambda: MultiHeadAttention(8, 2, bias="yes"), TypeError, "bias must be a bool"),
        (
            lambda: MultiHeadAttention(8, 2, dropout=1.5),
            ValueError,
            r"dropout must be at most 1, got 1.5",
        ),
        (lambda: MultiHeadAttention(8, -1), ValueError, "num_heads must be at least 1, got -1"),
        (lambda: MultiHeadAttention(8, 2, kdim=0), ValueError, "kdim must be at least 1, got 0"),
    ],
)
def test_constructor_and_helper_errors_name_the_argument(make, error, message):
    with pytest.raises(error, match=message):
        make()
