r"""The arithmetic of training and serving large language models: parameters, memory, speed.

Everything here is arithmetic on ints and floats (and NumPy arrays where a function says so):
the formulas of the LLM-systems page, stated once with their source.

- Parameters of a decoder-only transformer (GPT-2 and Llama layouts).
- Memory: mixed-precision Adam's :math:`2 + 2 + 12` bytes per parameter, ZeRO stages 0-3
  (Rajbhandari et al., 2020), activations per layer (Korthikanti et al., 2022), the KV cache.
- Speed: the arithmetic intensity of a matmul against a roofline (Williams et al., 2009).

The FLOPs of a training run (:func:`~dlref.scaling.training_flops`,
:func:`~dlref.scaling.flops_per_token`) live with the scaling laws in ``dlref.scaling``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dlref._checks import (
    check_bool,
    check_choice,
    check_divides,
    check_finite_nonnegative,
    check_index,
    check_int,
    check_positive_array,
    check_positive_finite,
)

__all__ = [
    "transformer_parameters",
    "kv_cache_bytes",
    "ModelStateBytes",
    "model_state_bytes",
    "zero_memory",
    "activation_bytes_per_layer",
    "matmul_intensity",
    "roofline",
]


# ---------------------------------------------------------------------------------------------
# Parameters and the KV cache
# ---------------------------------------------------------------------------------------------


def transformer_parameters(
    n_layer: int,
    d_model: int,
    n_head: int,
    vocab_size: int,
    d_ff: int | None = None,
    n_kv_head: int | None = None,
    mlp: str = "gelu",
    norm: str = "layernorm",
    bias: bool = True,
    tie_embeddings: bool = True,
    n_positions: int = 0,
) -> int:
    r"""Number of parameters of a decoder-only transformer, counted tensor by tensor.

    Per layer, with head size :math:`d_h = d/n_{\text{head}}` and :math:`n_{kv}` key/value heads
    (grouped-query attention when :math:`n_{kv} < n_{\text{head}}`):

    .. math::

        \underbrace{2d^2 + 2 d\, n_{kv} d_h}_{W_Q, W_O,\ W_K, W_V}
        + \underbrace{k\, d\, d_{\text{ff}}}_{\text{MLP}}
        + \underbrace{2 \cdot \text{norm}}_{\text{two norms}} \;(+\ \text{biases})

    with :math:`k = 2` for a GELU MLP and :math:`k = 3` for SwiGLU (gate, up, down), a norm of
    :math:`d` (RMSNorm, or LayerNorm without bias) or :math:`2d` (LayerNorm with bias)
    parameters. Add a final norm, the token embedding :math:`V d`, learned positions
    :math:`n_{\text{positions}} d` and, when the output projection is not tied to the embedding,
    another :math:`V d`. Biases (``bias=True``) sit on every projection, as in GPT-2. With
    :math:`d_{\text{ff}} = 4d`, one head group, no biases and no embeddings this is Kaplan et
    al.'s :math:`N \approx 12\, n_{\text{layer}} d^2`.

    Parameters
    ----------
    n_layer, d_model, n_head, vocab_size : int
        Layers, width :math:`d`, query heads, vocabulary :math:`V`.
    d_ff : int, optional
        Hidden width of the MLP; default ``4 * d_model``.
    n_kv_head : int, optional
        Key/value heads; default ``n_head`` (multi-head attention). Must divide ``n_head``.
    mlp : {"gelu", "swiglu"}, optional
        Two matrices, or three (SwiGLU).
    norm : {"layernorm", "rmsnorm"}, optional
        LayerNorm has a weight and (with ``bias``) a bias, RMSNorm a weight only.
    bias : bool, optional
        Biases on the attention and MLP projections and in LayerNorm.
    tie_embeddings : bool, optional
        The output projection reuses the token embedding (GPT-2) or has its own (Llama 3).
    n_positions : int, optional
        Rows of a learned position embedding (GPT-2: 1024); 0 for rotary positions.

    Returns
    -------
    int
        The parameter count.

    Examples
    --------
    GPT-2 small and Llama 3 8B, against their published counts:

    >>> from dlref.llm_systems import transformer_parameters
    >>> transformer_parameters(12, 768, 12, 50257, n_positions=1024)  # GPT-2 (124M)
    124439808
    >>> transformer_parameters(32, 4096, 32, 128256, d_ff=14336, n_kv_head=8, mlp="swiglu",
    ...                        norm="rmsnorm", bias=False, tie_embeddings=False)  # Llama 3 8B
    8030261248
    """
    n_layer = check_int("n_layer", n_layer, minimum=0)
    d = check_int("d_model", d_model)
    n_head = check_divides("n_head", n_head, {"width d_model": d})
    vocab_size = check_int("vocab_size", vocab_size)
    n_positions = check_int("n_positions", n_positions, minimum=0)
    d_ff = check_int("d_ff", 4 * d if d_ff is None else d_ff)
    n_kv_head = n_head if n_kv_head is None else n_kv_head  # multi-head attention by default
    n_kv = check_divides("n_kv_head", n_kv_head, {"query heads n_head": n_head})
    bias, tie_embeddings = check_bool("bias", bias), check_bool("tie_embeddings", tie_embeddings)
    check_choice("mlp", mlp, ("gelu", "swiglu"))
    check_choice("norm", norm, ("layernorm", "rmsnorm"))
    d_kv = n_kv * (d // n_head)  # d_kv = n_kv * d_h
    attn = 2 * d * d + 2 * d * d_kv + bias * (2 * d + 2 * d_kv)  # W_Q, W_O, W_K, W_V
    n_mat = 3 if mlp == "swiglu" else 2
    ffn = n_mat * d * d_ff + bias * ((n_mat - 1) * d_ff + d)  # up (and gate), down
    norm_size = 2 * d if norm == "layernorm" and bias else d  # LayerNorm's bias follows ``bias``
    layer = attn + ffn + 2 * norm_size
    embeddings = vocab_size * d * (1 if tie_embeddings else 2) + n_positions * d
    return n_layer * layer + norm_size + embeddings


def kv_cache_bytes(
    n_layer: int,
    n_kv_head: int,
    head_dim: int,
    seq_len: int,
    batch_size: int = 1,
    bytes_per_element: int = 2,
) -> int:
    r"""Bytes of the key/value cache of a decoder during generation.

    .. math:: 2 \cdot n_{\text{layer}} \cdot n_{kv} \cdot d_h \cdot s \cdot b \cdot
              \text{bytes per element}

    one key and one value vector per layer, key/value head, position and sequence. Grouped-query
    attention shrinks it by :math:`n_{\text{head}}/n_{kv}`.

    Parameters
    ----------
    n_layer, n_kv_head, head_dim, seq_len : int
        Layers, key/value heads, head size, cached positions.
    batch_size : int, optional
        Sequences decoded together.
    bytes_per_element : int, optional
        2 for bfloat16/float16.

    Returns
    -------
    int
        Bytes of keys and values.

    Examples
    --------
    Llama 3 8B (32 layers, 8 key/value heads of size 128) at its 8192-token context:

    >>> from dlref.llm_systems import kv_cache_bytes
    >>> kv_cache_bytes(32, 8, 128, seq_len=1) // 1024  # KiB per token
    128
    >>> kv_cache_bytes(32, 8, 128, seq_len=8192) / 2**30  # GiB per sequence
    1.0
    """
    n_layer = check_int("n_layer", n_layer, minimum=0)
    n_kv_head = check_int("n_kv_head", n_kv_head)
    head_dim = check_int("head_dim", head_dim)
    seq_len = check_int("seq_len", seq_len)
    batch_size = check_int("batch_size", batch_size)
    bytes_per_element = check_int("bytes_per_element", bytes_per_element)
    # 2 (a key and a value) * n_layer * n_kv * d_h * bytes, for each token
    per_token = 2 * n_layer * n_kv_head * head_dim * bytes_per_element
    return per_token * seq_len * batch_size  # times s positions, b sequences


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


class ModelStateBytes(NamedTuple):
    """Bytes of the model states: weights, gradients, optimizer states.

    Returned by :func:`model_state_bytes`; ``sum(...)`` is the total.

    Examples
    --------
    >>> from dlref.llm_systems import ModelStateBytes
    >>> m = ModelStateBytes(weights=2.0, gradients=2.0, optimizer_states=12.0)  # per parameter
    >>> m.optimizer_states, sum(m)
    (12.0, 16.0)
    """

    weights: float
    gradients: float
    optimizer_states: float


def model_state_bytes(
    num_params, k: float = 12, weight_bytes: float = 2, grad_bytes: float = 2
) -> ModelStateBytes:
    r"""Bytes of weights, gradients and optimizer state for training with Adam.

    Mixed-precision Adam (Rajbhandari et al., 2020, section 3.1) keeps 16-bit weights and
    gradients and, in 32-bit, a master copy of the weights, the momentum and the variance:

    .. math:: (2 + 2 + K)\,\Psi \text{ bytes},\qquad K = 4 + 4 + 4 = 12

    for :math:`\Psi` parameters: 16 bytes per parameter. Plain float32 Adam is
    ``weight_bytes=4, grad_bytes=4, k=8`` (no master copy).

    Parameters
    ----------
    num_params : float
        :math:`\Psi`.
    k : float, optional
        Optimizer-state bytes per parameter.
    weight_bytes, grad_bytes : float, optional
        Bytes per weight and per gradient.

    Returns
    -------
    ModelStateBytes
        ``(weights, gradients, optimizer_states)`` in bytes; ``sum(...)`` is the total.

    Examples
    --------
    >>> from dlref.llm_systems import model_state_bytes
    >>> m = model_state_bytes(7.5e9)
    >>> [f"{b / 1e9:g} GB" for b in m], f"{sum(m) / 1e9:g} GB"
    (['15 GB', '15 GB', '90 GB'], '120 GB')
    """
    psi = check_positive_array("num_params", num_params)
    k = check_finite_nonnegative("k", k)
    weight_bytes = check_finite_nonnegative("weight_bytes", weight_bytes)
    grad_bytes = check_finite_nonnegative("grad_bytes", grad_bytes)
    # (2 + 2 + K) Psi with 16-bit weights and gradients
    return ModelStateBytes(weight_bytes * psi, grad_bytes * psi, k * psi)


def zero_memory(
    num_params,
    num_devices: int,
    stage: int,
    k: float = 12,
    weight_bytes: float = 2,
    grad_bytes: float = 2,
) -> float:
    r"""Bytes of model states per device under ZeRO data parallelism (Rajbhandari et al., 2020).

    ZeRO partitions what plain data parallelism replicates over :math:`N_d` devices: stage 1 the
    optimizer states (:math:`P_{os}`), stage 2 the gradients too (:math:`P_{os+g}`), stage 3 the
    weights too (:math:`P_{os+g+p}`). Per device, with 2-byte weights and gradients:

    .. math::

        \text{stage 0: } (2 + 2 + K)\Psi,\quad
        \text{1: } 4\Psi + \frac{K\Psi}{N_d},\quad
        \text{2: } 2\Psi + \frac{(2 + K)\Psi}{N_d},\quad
        \text{3: } \frac{(2 + 2 + K)\Psi}{N_d}

    Activations, temporary buffers and fragmentation come on top.

    Parameters
    ----------
    num_params : float
        :math:`\Psi`.
    num_devices : int
        :math:`N_d`, the data-parallel degree.
    stage : int
        0 (plain data parallelism), 1, 2 or 3.
    k, weight_bytes, grad_bytes : float, optional
        As in :func:`model_state_bytes`.

    Returns
    -------
    float
        Bytes per device.

    Examples
    --------
    The paper's figure 1: :math:`\Psi = 7.5` B, :math:`N_d = 64`, :math:`K = 12`, in GB of
    :math:`10^9` bytes:

    >>> from dlref.llm_systems import zero_memory
    >>> [round(zero_memory(7.5e9, 64, s) / 1e9, 1) for s in range(4)]
    [120.0, 31.4, 16.6, 1.9]
    """
    num_devices = check_int("num_devices", num_devices)
    stage = check_index("stage", stage, 4, "ZeRO's stages")
    w, g, o = model_state_bytes(num_params, k, weight_bytes, grad_bytes)
    n = num_devices
    # stage 1 splits the optimizer states over the N_d devices, stage 2 the
    # gradients too, stage 3 the weights too; the rest is replicated
    o = o / n if stage >= 1 else o
    g = g / n if stage >= 2 else g
    w = w / n if stage >= 3 else w
    return float(w + g + o)


def activation_bytes_per_layer(
    seq_len: int, batch_size: int, d_model: int, n_head: int, attention_scores: bool = True
) -> int:
    r"""Bytes of activations one transformer layer keeps for the backward pass (16-bit).

    Korthikanti et al. (2022), "Reducing Activation Recomputation in Large Transformer Models",
    eq. (1), for sequence length :math:`s`, batch :math:`b`, width :math:`h`, :math:`a` heads,
    16-bit activations and 1-byte dropout masks, no parallelism and no recomputation:

    .. math:: s\,b\,h\,\Bigl(34 + 5\,\frac{a\,s}{h}\Bigr)

    The :math:`5as^2b` bytes are the attention scores, their softmax and its dropout mask,
    quadratic in :math:`s`. A fused attention kernel that recomputes them in the backward pass
    (FlashAttention, or "selective recomputation") keeps none: ``attention_scores=False`` gives
    :math:`34\,sbh`.

    Parameters
    ----------
    seq_len, batch_size, d_model, n_head : int
        :math:`s, b, h, a`.
    attention_scores : bool, optional
        Count the stored attention matrices.

    Returns
    -------
    int
        Bytes kept for the backward pass.

    Examples
    --------
    >>> from dlref.llm_systems import activation_bytes_per_layer
    >>> activation_bytes_per_layer(2048, 1, 4096, 32) / 2**20  # MiB, one sequence, one layer
    912.0
    >>> activation_bytes_per_layer(2048, 1, 4096, 32, attention_scores=False) / 2**20
    272.0
    """
    s = check_int("seq_len", seq_len)
    b = check_int("batch_size", batch_size)
    h = check_int("d_model", d_model)
    a = check_int("n_head", n_head)
    attention_scores = check_bool("attention_scores", attention_scores)
    # s b h (34 + 5 a s / h) = 34 sbh + 5 a s^2 b
    return 34 * s * b * h + (5 * a * s * s * b if attention_scores else 0)


# ---------------------------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------------------------


def matmul_intensity(m: int, k: int, n: int, bytes_per_element: int = 2) -> float:
    r"""Arithmetic intensity of :math:`(m \times k) \cdot (k \times n)`: FLOPs per byte moved.

    .. math:: I = \frac{2mkn}{(mk + kn + mn)\cdot\text{bytes per element}}

    reading both inputs once and writing the output once. For a square :math:`n \times n` matmul
    in 16-bit, :math:`I = n/3`; for a matrix-vector product (:math:`m = 1`) about 1 FLOP per
    byte, whatever the size.

    Parameters
    ----------
    m, k, n : int
        The shapes.
    bytes_per_element : int, optional
        2 for bfloat16.

    Returns
    -------
    float
        FLOPs per byte.

    Examples
    --------
    A square matmul, far above an H100's ridge of 295, and a matrix-vector product, far below:

    >>> from dlref.llm_systems import matmul_intensity
    >>> round(matmul_intensity(4096, 4096, 4096), 1), round(matmul_intensity(1, 4096, 4096), 4)
    (1365.3, 0.9995)
    """
    m, k, n = check_int("m", m), check_int("k", k), check_int("n", n)
    bytes_per_element = check_int("bytes_per_element", bytes_per_element)
    # I = 2mkn / ((mk + kn + mn) * bytes per element)
    return 2 * m * k * n / ((m * k + k * n + m * n) * bytes_per_element)


def roofline(intensity, peak_flops: float, bandwidth: float):
    r"""Attainable FLOP/s of a kernel with a given arithmetic intensity (the roofline model).

    .. math:: P = \min\bigl(P_{\text{peak}},\ I \cdot \beta\bigr)

    Below the ridge point :math:`I^* = P_{\text{peak}}/\beta` the kernel waits for memory
    (memory-bound); above it, for the arithmetic units (compute-bound). Williams, Waterman and
    Patterson (2009).

    Parameters
    ----------
    intensity : float or numpy.ndarray
        FLOPs per byte, positive.
    peak_flops : float
        The device's peak FLOP/s.
    bandwidth : float
        Memory bandwidth in bytes/s.

    Returns
    -------
    float or numpy.ndarray
        FLOP/s.

    Examples
    --------
    An H100 SXM: 989 TFLOP/s dense bfloat16, 3.35 TB/s:

    >>> from dlref.llm_systems import roofline
    >>> f"{roofline(1.0, 989e12, 3.35e12):.3g}"  # matrix-vector: 0.3% of the peak
    '3.35e+12'
    >>> f"{roofline(1365.3, 989e12, 3.35e12):.3g}"
    '9.89e+14'
    """
    intensity = check_positive_array("intensity", intensity)
    peak_flops = check_positive_finite("peak_flops", peak_flops)
    bandwidth = check_positive_finite("bandwidth", bandwidth)
    # P = min(P_peak, I * beta)
    attainable = np.minimum(peak_flops, intensity * bandwidth)
    return float(attainable) if isinstance(intensity, float) else attainable
