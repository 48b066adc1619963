"""dlref.transformer against torch layers, module counts, the FLOP counter and full forwards."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from dlref.attention import KVCache
from dlref.transformer import (
    Block,
    Transformer,
    TransformerConfig,
    count_parameters,
    forward_flops,
    kv_cache_bytes_per_token,
)

DT = torch.float64

LLAMA3_8B = dict(
    vocab_size=128256,
    max_seq_len=8192,
    d_model=4096,
    num_layers=32,
    num_heads=32,
    num_kv_heads=8,
    d_ff=14336,
    mlp="swiglu",
    norm="rmsnorm",
    positional="rope",
    tie_embeddings=False,
    rope_base=500000.0,
)


def small(**kw):
    base = dict(vocab_size=11, max_seq_len=24, d_model=16, num_layers=2, num_heads=4)
    return TransformerConfig(**(base | kw))


# ---------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    ("positional", "mlp", "norm", "tie", "bias", "kv"),
    list(
        itertools.product(
            ["learned", "sinusoidal", "rope", "none"],
            ["gelu", "gelu_tanh", "swiglu"],
            ["layernorm", "rmsnorm"],
            [True, False],
            [True, False],
            [4, 1],
        )
    ),
)
def test_count_parameters_equals_the_modules_count(positional, mlp, norm, tie, bias, kv):
    cfg = small(
        positional=positional, mlp=mlp, norm=norm, tie_embeddings=tie, bias=bias, num_kv_heads=kv
    )
    model = Transformer(cfg)
    assert sum(p.numel() for p in model.parameters()) == count_parameters(cfg)


def test_llama3_8b_has_the_published_parameter_count():
    cfg = TransformerConfig(**LLAMA3_8B)
    assert count_parameters(cfg) == 8_030_261_248
    with torch.device("meta"):  # the real module, without allocating 32 GB
        model = Transformer(cfg)
    assert sum(p.numel() for p in model.parameters()) == 8_030_261_248
    attn = model.blocks[0].attn  # the shapes of the flashcard's hint
    assert attn.q_proj.weight.shape == (4096, 4096)
    assert attn.k_proj.weight.shape == (1024, 4096)
    assert attn.v_proj.weight.shape == (1024, 4096)
    assert attn.out_proj.weight.shape == (4096, 4096)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope", "none"])
def test_only_a_learned_position_table_grows_with_the_sequence_length(positional):
    short, long = (count_parameters(small(positional=positional, max_seq_len=n)) for n in (8, 800))
    assert long - short == (792 * 16 if positional == "learned" else 0)


# ----------------------------------------------------------------------- KV bytes and FLOPs


def test_kv_cache_bytes_equal_the_allocated_cache():
    cfg = small(num_kv_heads=2)
    cache = Transformer(cfg).new_kv_cache(batch_size=1, max_seq_len=10)
    assert cache.nbytes == 10 * kv_cache_bytes_per_token(cfg, bytes_per_element=4)


def test_llama_kv_cache_bytes_mha_vs_gqa():
    gqa = TransformerConfig(**LLAMA3_8B)
    mha = TransformerConfig(**(LLAMA3_8B | {"num_kv_heads": 32}))
    assert kv_cache_bytes_per_token(gqa) == 131_072  # 128 KiB per token in bf16
    assert kv_cache_bytes_per_token(mha) == 4 * 131_072


@pytest.mark.parametrize("kv", [4, 2])
@pytest.mark.parametrize("mlp", ["gelu", "gelu_tanh", "swiglu"])
@pytest.mark.parametrize("T", [1, 7, 20])
def test_forward_flops_equal_torchs_flop_counter(kv, mlp, T):
    cfg = small(num_kv_heads=kv, mlp=mlp)
    model = Transformer(cfg)
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, T, dtype=torch.long))
    assert sum(forward_flops(cfg, T).values()) == counter.get_total_flops()


# ------------------------------------------------------------------------ against torch layers


@pytest.mark.parametrize(
    ("mlp", "activation"),
    [("gelu", "gelu"), ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"))],
)
def test_block_equals_torch_transformer_encoder_layer_with_norm_first(mlp, activation):
    torch.manual_seed(0)
    cfg = small(bias=True, mlp=mlp)
    ours = Block(cfg).to(DT)
    ref = torch.nn.TransformerEncoderLayer(
        16,
        4,
        dim_feedforward=64,
        dropout=0.0,
        activation=activation,
        batch_first=True,
        norm_first=True,
        dtype=DT,
    )
    with torch.no_grad():
        a = ours.attn
        ref.self_attn.in_proj_weight.copy_(
            torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
        )
        ref.self_attn.in_proj_bias.copy_(torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]))
        ref.self_attn.out_proj.weight.copy_(a.out_proj.weight)
        ref.self_attn.out_proj.bias.copy_(a.out_proj.bias)
        for mine, theirs in [
            (ours.mlp.up_proj, ref.linear1),
            (ours.mlp.down_proj, ref.linear2),
            (ours.norm1, ref.norm1),
            (ours.norm2, ref.norm2),
        ]:
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    x = torch.randn(2, 7, 16, dtype=DT, requires_grad=True)
    y = ours(x)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(7, dtype=DT)
    y_ref = ref(x, src_mask=mask, is_causal=True)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, g)
    (gx_ref,) = torch.autograd.grad(y_ref, x, g)
    torch.testing.assert_close(gx, gx_ref)


def test_tied_embeddings_share_one_tensor():
    model = Transformer(small())
    assert model.lm_head.weight is model.tok_emb.weight
    assert Transformer(small(tie_embeddings=False)).lm_head.weight is not None


def test_output_at_t_does_not_depend_on_later_tokens():
    torch.manual_seed(0)
    model = Transformer(small()).to(DT)
    x = torch.randint(0, 11, (1, 10))
    y = x.clone()
    y[0, 6:] = (y[0, 6:] + 1) % 11
    torch.testing.assert_close(model(x)[:, :6], model(y)[:, :6])


# ------------------------------------------------------------------------------------ decoding


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope", "none"])
@pytest.mark.parametrize("kv", [4, 2])
def test_cached_decoding_gives_the_full_forward_logits(positional, kv):
    torch.manual_seed(0)
    model = Transformer(small(positional=positional, num_kv_heads=kv)).to(DT).eval()
    x = torch.randint(0, 11, (3, 12))
    full = model(x)
    cache = model.new_kv_cache(3)
    steps = [model(x[:, :5], cache)] + [model(x[:, t : t + 1], cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("positional", ["learned", "rope"])
def test_greedy_generation_is_token_identical_with_and_without_the_cache(positional):
    torch.manual_seed(1)
    model = Transformer(small(positional=positional)).eval()
    prompt = torch.randint(0, 11, (4, 3))
    with_cache = model.generate(prompt, 15)
    without = model.generate(prompt, 15, use_cache=False)
    assert torch.equal(with_cache, without)
    # and each token is the argmax of a plain full forward pass
    for t in range(3, 18):
        assert torch.equal(model(with_cache[:, :t])[:, -1].argmax(-1), with_cache[:, t])


def test_next_token_log_probs_is_a_step_fn():
    torch.manual_seed(0)
    model = Transformer(small()).to(DT).eval()
    x = torch.randint(0, 11, (2, 6))
    logp = model.next_token_log_probs(x)
    torch.testing.assert_close(logp, torch.log_softmax(model(x)[:, -1], -1))
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(2, dtype=DT))
    cache = model.new_kv_cache(2)
    for t in range(1, 7):  # a decoder appending one token per call
        torch.testing.assert_close(
            model.next_token_log_probs(x[:, :t], cache), model.next_token_log_probs(x[:, :t])
        )


def test_cache_reorder_for_beam_search():
    torch.manual_seed(0)
    model = Transformer(small()).to(DT).eval()
    x = torch.randint(0, 11, (3, 5))
    cache = model.new_kv_cache(3)
    model.next_token_log_probs(x, cache)
    parents = torch.tensor([2, 0, 0])
    cache.reorder(parents)
    y = torch.cat([x[parents], torch.tensor([[1], [2], [3]])], dim=1)
    torch.testing.assert_close(model.next_token_log_probs(y, cache), model.next_token_log_probs(y))


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"positional": "alibi"}, r"positional must be one of \('learned', 'sinusoidal', 'rope'"),
        ({"mlp": "relu"}, r"mlp must be one of \('gelu', 'gelu_tanh', 'swiglu'\), got 'relu'"),
        ({"norm": "batchnorm"}, r"norm must be one of"),
        ({"d_model": 18}, "d_model=18 must be divisible by num_heads=4"),
        ({"num_kv_heads": 3}, "num_kv_heads=3 must divide num_heads=4"),
    ],
)
def test_config_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        small(**kw)


def test_forward_errors():
    model = Transformer(small())
    with pytest.raises(TypeError, match=r"tokens must be an integer tensor"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"tokens must have shape \(B, T\)"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"positions 0..24 exceed max_seq_len=24"):
        model(torch.zeros(1, 25, dtype=torch.long))
    cache = KVCache(2, 1, 4, 24, 4)
    model(torch.zeros(1, 3, dtype=torch.long), cache)
    with pytest.raises(ValueError, match=r"all already in the cache \(seq_len=3\)"):
        model.next_token_log_probs(torch.zeros(1, 3, dtype=torch.long), cache)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: TransformerConfig(vocab_size=0, max_seq_len=8), ValueError, "vocab_size must be"),
        (
            lambda: TransformerConfig(vocab_size=10, max_seq_len=2.5),
            TypeError,
            "max_seq_len must be an int, got float 2.5",
        ),
        (
            lambda: TransformerConfig(vocab_size=10, max_seq_len=8, num_layers=-1),
            ValueError,
            "num_layers must be at least 0, got -1",
        ),
        (
            lambda: TransformerConfig(vocab_size=10, max_seq_len=8, d_ff="3"),
            TypeError,
            "d_ff must be an int, got str '3'",
        ),
        (
            lambda: TransformerConfig(vocab_size=10, max_seq_len=8, bias="yes"),
            TypeError,
            "bias must be a bool, got str 'yes'",
        ),
        (
            lambda: TransformerConfig(vocab_size=10, max_seq_len=8, dropout=-1.0),
            ValueError,
            r"dropout must be in \[0, 1\], got -1.0",
        ),
        (
            lambda: TransformerConfig(vocab_size=10, max_seq_len=8, norm_eps=0.0),
            ValueError,
            "norm_eps must be a finite number > 0, got 0.0",
        ),
        (
            lambda: TransformerConfig(vocab_size=10, max_seq_len=8, rope_base="0.1"),
            TypeError,
            "rope_base must be a real number, got str",
        ),
        (lambda: Transformer("a string"), TypeError, "config must be a TransformerConfig, got str"),
        (lambda: count_parameters(-1), TypeError, "config must be a TransformerConfig, got int"),
        (
            lambda: kv_cache_bytes_per_token(TransformerConfig(10, 8), bytes_per_element=0),
            ValueError,
            "bytes_per_element must be at least 1, got 0",
        ),
        (
            lambda: forward_flops(TransformerConfig(10, 8), -7),
            ValueError,
            "seq_len must be at least 0, got -7",
        ),
    ],
)
def test_bad_config_and_arguments_name_the_argument(make, error, message):
    with pytest.raises(error, match=message):
        make()
