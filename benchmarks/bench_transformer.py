"""dlref.transformer.Block against torch.nn.TransformerEncoderLayer (pre-norm, causal, GELU).

The two compute the same function (tests/test_transformer.py checks it to 1e-12 in float64);
here both run forward + backward on one (B, T, d) float32 batch with the same weights.
"""

import torch
from torch import nn

from dlref.transformer import Block, TransformerConfig

B, T, D, HEADS = 16, 128, 256, 8


def _block_inputs():
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=2, max_seq_len=T, d_model=D, num_heads=HEADS, bias=True)
    ours = Block(cfg)
    theirs = nn.TransformerEncoderLayer(
        D,
        HEADS,
        dim_feedforward=4 * D,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    with torch.no_grad():
        a = ours.attn
        theirs.self_attn.in_proj_weight.copy_(
            torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
        )
        theirs.self_attn.in_proj_bias.copy_(
            torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])
        )
        theirs.self_attn.out_proj.load_state_dict(a.out_proj.state_dict())
        theirs.linear1.load_state_dict(ours.mlp.up_proj.state_dict())
        theirs.linear2.load_state_dict(ours.mlp.down_proj.state_dict())
        theirs.norm1.load_state_dict(ours.norm1.state_dict())
        theirs.norm2.load_state_dict(ours.norm2.state_dict())
    mask = nn.Transformer.generate_square_subsequent_mask(T)
    x = torch.randn(B, T, D, requires_grad=True)
    return x, mask, ours, theirs


def _ours(x, mask, ours, theirs):
    ours(x).sum().backward()
    x.grad = None
    ours.zero_grad(set_to_none=True)


def _theirs(x, mask, ours, theirs):
    theirs(x, src_mask=mask, is_causal=True).sum().backward()
    x.grad = None
    theirs.zero_grad(set_to_none=True)


CASES = [
    (
        f"Block fwd+bwd vs TransformerEncoderLayer B={B} T={T} d={D} h={HEADS} f32",
        _block_inputs,
        _ours,
        _theirs,
    ),
]
