r"""Legendre Memory Units: the memory of Voelker et al. and its spiking cell (LMUFormer, L2MU).

The Legendre memory (Voelker, Kajić & Eliasmith, "Legendre Memory Units: Continuous-Time
Representation in Recurrent Neural Networks", NeurIPS 2019) is the linear time-invariant system

.. math::
    \theta\,\dot m(t) = A\,m(t) + B\,u(t), \qquad
    A_{ij} = (2i+1)\begin{cases} -1 & i < j \\ (-1)^{i-j+1} & i \ge j \end{cases}, \qquad
    B_i = (2i+1)(-1)^i,

for :math:`i, j = 0 \dots d-1`, whose state :math:`m \in \mathbb{R}^d` holds the coefficients of
the sliding window :math:`u(t - \theta'),\ 0 \le \theta' \le \theta` in the shifted Legendre
basis:

.. math::
    u(t - \theta') \approx \sum_{i=0}^{d-1} \tilde P_i(\theta'/\theta)\, m_i(t), \qquad
    \tilde P_i(r) = (-1)^i \sum_{j=0}^{i} \binom{i}{j}\binom{i+j}{j}(-r)^j .

In discrete time (one step of length ``dt``, :math:`\theta` in the same unit) the system is
discretised with a zero-order hold, as in the paper and in LMUFormer:

.. math::
    m_t = \bar A\, m_{t-1} + \bar B\, u_t, \qquad \bar A = e^{A\,dt/\theta}, \qquad
    \bar B = (A/\theta)^{-1}(\bar A - I)\,B/\theta,

computed here as one matrix exponential of the augmented matrix
:math:`\begin{bmatrix} A & B \\ 0 & 0 \end{bmatrix} dt/\theta`, whose upper blocks are
:math:`\bar A` and :math:`\bar B` (this needs no inverse of :math:`A`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from snn.functional._common import check_input, check_sequence
from snn.layers.recurrent import _Memory
from snn.neurons.base import BaseNeuron
from snn.neurons.registry import create_neuron

__all__ = [
    "LegendreMemory",
    "LegendreMemoryState",
    "SpikingLMU",
    "legendre_readout",
    "legendre_state_space",
    "legendre_zoh",
]


def _check_order(order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order of the Legendre memory must be a positive integer, got {order!r}")
    return order


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} of the Legendre memory must be a positive number, got {value!r}")
    return float(value)


def legendre_state_space(order: int, theta: float = 1.0) -> tuple[Tensor, Tensor]:
    r"""Continuous-time matrices of the Legendre memory, :math:`\dot m = (A m + B u)/\theta`.

    Args:
        order: the memory's dimension :math:`d`.
        theta: the window length :math:`\theta`; the returned matrices are :math:`A/\theta`
            and :math:`B/\theta` (``theta=1`` gives the paper's :math:`A` and :math:`B`).

    Returns:
        ``(A, B)`` in float64, shapes ``[d, d]`` and ``[d]``.

    Raises:
        ValueError: for a non-positive order or window.
    """
    d = _check_order(order)
    theta = _check_positive("theta", theta)
    q = torch.arange(d, dtype=torch.float64)
    r = (2 * q + 1).unsqueeze(1)
    i, j = q.unsqueeze(1), q.unsqueeze(0)
    sign = torch.where(i < j, torch.full_like(i * j, -1.0), (-1.0) ** (i - j + 1))
    a = r * sign
    b = (2 * q + 1) * (-1.0) ** q
    return a / theta, b / theta


def legendre_zoh(order: int, theta: float, dt: float = 1.0) -> tuple[Tensor, Tensor]:
    r"""Zero-order-hold discretisation :math:`(\bar A, \bar B)` of the Legendre memory.

    Args:
        order: the memory's dimension :math:`d`.
        theta: the window length, in the unit of ``dt`` (steps when ``dt=1``).
        dt: the step.

    Returns:
        ``(A_bar, B_bar)`` in float64, shapes ``[d, d]`` and ``[d]``: over one step with the
        input held constant, :math:`m \leftarrow \bar A m + \bar B u` solves the continuous
        system exactly.
    """
    a, b = legendre_state_space(order, theta)
    dt = _check_positive("dt", dt)
    d = a.shape[0]
    aug = torch.zeros(d + 1, d + 1, dtype=torch.float64)
    aug[:d, :d] = a * dt
    aug[:d, d] = b * dt
    e = torch.linalg.matrix_exp(aug)
    return e[:d, :d].clone(), e[:d, d].clone()


def legendre_readout(order: int, r: float | Tensor) -> Tensor:
    r"""Shifted Legendre polynomials :math:`\tilde P_i(r)`, :math:`i < d`: the linear readout of
    the memory that decodes the input delayed by :math:`\theta' = r\theta`.

    Args:
        order: the memory's dimension :math:`d`.
        r: relative delay(s) :math:`\theta'/\theta` in ``[0, 1]``, a number or a tensor of any
            shape.

    Returns:
        Float64 tensor ``[*r.shape, d]``; ``memory @ legendre_readout(d, r)`` reconstructs
        :math:`u(t - r\theta)`.
    """
    d = _check_order(order)
    r = torch.as_tensor(r, dtype=torch.float64)
    if r.numel() and (r.min() < 0 or r.max() > 1):
        raise ValueError("relative delay r of the Legendre readout must lie in [0, 1]")
    # the sum above is the Legendre polynomial P_i(2r - 1); Bonnet's recurrence evaluates it
    # without the large alternating binomial terms
    x = 2 * r - 1
    out = [torch.ones_like(x), x]
    for n in range(1, d - 1):
        out.append(((2 * n + 1) * x * out[n] - n * out[n - 1]) / (n + 1))
    return torch.stack(out[:d], dim=-1)


class LegendreMemoryState(NamedTuple):
    """State of :class:`LegendreMemory` between calls.

    Attributes:
        m: the memory after the last step, ``[B, channels, order]``.
    """

    m: Tensor


class LegendreMemory(nn.Module):
    r"""The Legendre memory as a layer: :math:`m_t = \bar A m_{t-1} + \bar B u_t` per input
    channel (no parameters to learn; :math:`\bar A, \bar B` are buffers).

    In sequence mode the input is ``[T, B, channels]`` and the output ``[T, B, channels,
    order]``; in single-step mode ``[B, channels]`` gives ``[B, channels, order]``. Both continue
    from the memory left by the previous call (:func:`snn.reset` clears it).

    Sequences are computed in parallel by default (``method="fft"``): the zero-state response
    is the causal convolution of :math:`u` with the impulse response
    :math:`H_k = \bar A^k \bar B` (the parallel form of Chilkuri & Eliasmith, "Parallelizing
    Legendre Memory Unit Training", ICML 2021, which LMUFormer uses), done by FFT, plus
    :math:`\bar A^{t+1} m_{-1}` for a carried state. ``method="scan"`` runs the recurrence
    step by step; the two agree to rounding (a test holds them to it).

    Args:
        order: the memory's dimension :math:`d`.
        theta: window length in steps of ``dt``.
        dt: the step.
        method: ``"fft"`` or ``"scan"`` for sequences.
        step_mode: ``"sequence"`` or ``"single"``.
    """

    def __init__(
        self,
        order: int,
        theta: float,
        *,
        dt: float = 1.0,
        method: str = "fft",
        step_mode: str = "sequence",
    ):
        super().__init__()
        if method not in ("fft", "scan"):
            raise ValueError(f"method of LegendreMemory must be 'fft' or 'scan', got {method!r}")
        a_bar, b_bar = legendre_zoh(order, theta, dt)
        self.order = order
        self.theta = float(theta)
        self.dt = float(dt)
        self.method = method
        self.register_buffer("A_bar", a_bar.float())
        self.register_buffer("B_bar", b_bar.float())
        self.memory = _Memory(step_mode=step_mode)

    @property
    def step_mode(self) -> str:
        """``"sequence"`` or ``"single"`` (switched by :func:`snn.set_step_mode`)."""
        return self.memory.step_mode

    def extra_repr(self) -> str:
        return f"order={self.order}, theta={self.theta:g}, dt={self.dt:g}, method={self.method!r}"

    def forward(self, u: Tensor) -> Tensor:
        """One step ``[B, C] -> [B, C, order]`` or a sequence ``[T, B, C] -> [T, B, C, order]``
        by the step mode."""
        single = self.step_mode == "single"
        if single:
            check_input(u, "input of LegendreMemory")
            if u.dim() != 2:
                raise ValueError(f"LegendreMemory expects one step [B, C], got {tuple(u.shape)}")
            seq = u.unsqueeze(0)
        else:
            check_sequence(u)
            if u.dim() != 3:
                raise ValueError(
                    f"LegendreMemory expects a sequence [T, B, C], got {tuple(u.shape)}"
                )
            seq = u
        prev = self.memory.state
        m0 = None if prev is None else prev.m
        a_bar = self.A_bar.to(seq.dtype)
        b_bar = self.B_bar.to(seq.dtype)
        if self.method == "scan" or seq.shape[0] == 1:
            m = _scan(seq, a_bar, b_bar, m0)
        else:
            m = _fft(seq, a_bar, b_bar, m0)
        self.memory.state = LegendreMemoryState(m[-1])
        return m[0] if single else m


def _scan(u: Tensor, a_bar: Tensor, b_bar: Tensor, m0: Tensor | None) -> Tensor:
    m = m0 if m0 is not None else u.new_zeros(*u.shape[1:], a_bar.shape[0])
    out = []
    for u_t in u.unbind(0):
        m = m @ a_bar.T + u_t.unsqueeze(-1) * b_bar
        out.append(m)
    return torch.stack(out)


def _powers(a_bar: Tensor, steps: int) -> Tensor:
    """``[A^0 .. A^(steps-1)]`` by repeated squaring of blocks: ``[steps, d, d]``."""
    d = a_bar.shape[0]
    pw = torch.eye(d, dtype=a_bar.dtype, device=a_bar.device).unsqueeze(0)
    step = a_bar
    while pw.shape[0] < steps:
        pw = torch.cat([pw, pw @ step], dim=0)
        step = step @ step
    return pw[:steps]


def _fft(u: Tensor, a_bar: Tensor, b_bar: Tensor, m0: Tensor | None) -> Tensor:
    steps = u.shape[0]
    pw = _powers(a_bar, steps + 1)  # A^0 .. A^T
    h = pw[:steps] @ b_bar  # impulse response [T, d]
    n = 2 * steps
    fu = torch.fft.rfft(u, n=n, dim=0)  # [F, B, C]
    fh = torch.fft.rfft(h, n=n, dim=0)  # [F, d]
    m = torch.fft.irfft(fu.unsqueeze(-1) * fh[:, None, None, :], n=n, dim=0)[:steps]
    if m0 is not None:
        m = m + torch.einsum("tij,bcj->tbci", pw[1:], m0)
    return m


def _fold_norm(norm: nn.Module, x: Tensor) -> Tensor:
    """A BatchNorm1d over the last dimension of ``[..., F]``."""
    if isinstance(norm, nn.Identity):
        return x
    return norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class SpikingLMU(nn.Module):
    r"""Spiking Legendre Memory Unit: the LMU cell with spiking populations on its encoder,
    its memory and its hidden state, as LMUFormer places them.

    Per step :math:`t` (``N`` a spiking population, ``BN`` batch norm):

    .. math::
        u_t &= N_u\big(BN_u(W_u x_t)\big) \\
        m_t &= \bar A m_{t-1} + \bar B u_t \qquad (\text{per channel of } u) \\
        s_t &= N_m\big(BN_m(m_t)\big) \\
        h_t &= N_h\big(BN_h(W_h [s_t; x_t])\big)

    References:
        A. R. Voelker, I. Kajić, C. Eliasmith, "Legendre Memory Units: Continuous-Time
        Representation in Recurrent Neural Networks", NeurIPS 2019 (the memory, eqs. 1-2, and
        the cell, eqs. 18-20).
        Z. Liu, G. Datta, A. Li, P. A. Beerel, "LMUFormer: Low Complexity Yet Powerful Spiking
        Model With Legendre Memory Units", ICLR 2024, arXiv:2402.04882 (the spiking cell).
        Pagliarini et al., 2024, the spiking LMU "L2MU" (spiking populations, LIF or
        current-based, in the same places).

    Readings taken:
        - As LMUFormer (and unlike the original LMU) the encoder sees only the input, not
          :math:`h_{t-1}` or :math:`m_{t-1}`: :math:`u` depends on :math:`x` alone, so sequences
          run in parallel (the memory by FFT). The hidden state is not fed back.
        - LMUFormer's released code spikes the memory in its parallel form but feeds the raw
          memory to :math:`W_h` in its recurrent form; the paper's figure spikes it, and so does
          this cell, in both modes, so that step and sequence modes agree.
        - ``memory_inputs`` generalises the paper's scalar :math:`u` (LMUFormer's ``W_u`` has
          one output) to several channels, each with its own Legendre memory.
        - The populations are any neuron of :data:`snn.neurons.NEURONS`: ``"lif"`` (LMUFormer:
          :math:`\tau = 2`, i.e. ``beta=0.5, decay_input=True``, the default here) or
          ``"cuba_lif"`` (L2MU's current-based populations).
        - Batch norm folds time into the batch in sequence mode; in single-step mode it sees one
          step, so the two modes agree in evaluation mode (running statistics), or with
          ``norm=False``.

    Input ``[T, B, input_size]`` (sequence mode) or ``[B, input_size]`` (single step); output
    spikes ``[T, B, hidden_size]`` or ``[B, hidden_size]``.

    Args:
        input_size: features of :math:`x`.
        hidden_size: features of :math:`h`.
        order: dimension :math:`d` of each Legendre memory.
        theta: the memory's window in steps.
        memory_inputs: channels of :math:`u` (each with its own memory of ``order``).
        neuron: registry name of the spiking populations.
        neuron_kwargs: options of the populations (default ``beta=0.5, decay_input=True`` for
            ``"lif"``; the neuron's own defaults otherwise).
        norm: batch norm before each population.
        method: ``"fft"`` or ``"scan"`` for the memory over a sequence.
        step_mode: ``"sequence"`` or ``"single"``.

    Example:
        >>> cell = SpikingLMU(16, 32, order=8, theta=20)
        >>> cell(torch.rand(50, 4, 16)).shape
        torch.Size([50, 4, 32])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        order: int = 16,
        theta: float = 16.0,
        *,
        memory_inputs: int = 1,
        neuron: str = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
        norm: bool = True,
        method: str = "fft",
        step_mode: str = "sequence",
    ):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("memory_inputs", memory_inputs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} of SpikingLMU must be a positive integer, got {value!r}")
        if neuron_kwargs is None:
            neuron_kwargs = {"beta": 0.5, "decay_input": True} if neuron == "lif" else {}
        mem = memory_inputs * order

        def population() -> BaseNeuron:
            cell = create_neuron(neuron, step_mode=step_mode, **neuron_kwargs)
            if not getattr(cell, "spiking", False):
                raise ValueError(f"SpikingLMU needs a spiking neuron, got {neuron!r}")
            return cell

        self.input_size = input_size
        self.hidden_size = hidden_size
        self.W_u = nn.Linear(input_size, memory_inputs)
        self.norm_u = nn.BatchNorm1d(memory_inputs) if norm else nn.Identity()
        self.neuron_u = population()
        self.memory = LegendreMemory(order, theta, method=method, step_mode=step_mode)
        self.norm_m = nn.BatchNorm1d(mem) if norm else nn.Identity()
        self.neuron_m = population()
        self.W_h = nn.Linear(mem + input_size, hidden_size)
        self.norm_h = nn.BatchNorm1d(hidden_size) if norm else nn.Identity()
        self.neuron_h = population()

    @property
    def step_mode(self) -> str:
        """The populations' step mode."""
        return self.neuron_h.step_mode

    def forward(self, x: Tensor) -> Tensor:
        """``[T, B, input_size] -> [T, B, hidden_size]`` (sequence mode) or ``[B, input_size]
        -> [B, hidden_size]`` (single step)."""
        want = 2 if self.step_mode == "single" else 3
        if not isinstance(x, Tensor) or x.dim() != want or x.shape[-1] != self.input_size:
            shape = "[B, input_size]" if want == 2 else "[T, B, input_size]"
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"SpikingLMU ({self.step_mode} mode) expects {shape} with input_size="
                f"{self.input_size}, got {got}"
            )
        u = self.neuron_u(_fold_norm(self.norm_u, self.W_u(x)))
        m = self.memory(u).flatten(-2)
        s = self.neuron_m(_fold_norm(self.norm_m, m))
        h = self.W_h(torch.cat([s, x], dim=-1))
        return self.neuron_h(_fold_norm(self.norm_h, h))

