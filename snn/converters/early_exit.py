r"""Early exit: stop each sample once its prediction is settled (the Top-K cutoff).

Implements the cutoff of Wu, Jin, Yu, Yi and Huang, "Optimising Event-Driven Spiking Neural
Network with Regularisation and Cutoff" (arXiv:2301.09522, 2023; Frontiers in Neuroscience
2025). With :math:`Y(t)` the network's output after :math:`t` steps, the gap

.. math:: Y_{gap}(t) = \mathrm{Top}_1(Y(t)) - \mathrm{Top}_2(Y(t))

between its two largest entries measures how settled the prediction is. The optimal cutoff
step of a sample is :math:`g(X) = \min\{\hat t : f(X[t_1]) = y\ \forall t_1 \ge \hat t\}`
(from then on it is classified correctly). For every step :math:`\hat t`, :meth:`TopKCutoff.fit`
picks on training samples the smallest :math:`\beta_{\hat t}` whose confidence rate

.. math:: C(\hat t, D\{Y_{gap} > \beta\}) = \frac{1}{|D\{Y_{gap}>\beta\}|}
          \sum_{X \in D\{Y_{gap}>\beta\}} \mathbf{1}(g(X) \le \hat t) \ \ge\ 1 - \epsilon;

at inference a sample stops at the first step :math:`t` with
:math:`Y_{gap}(t) > \beta_t` (or at the last step) and is classified there.

Readings taken: :math:`Y(t)` is the converted network's readout after :math:`t` steps (the
mean output current, :meth:`ConvertedSNN.simulate`); a sample misclassified at the last step
has :math:`g = \infty`; a step where no :math:`\beta` reaches the confidence (or where every
training sample's gap is below the candidates) gets :math:`\beta = \infty` (no exit there).
The network is causal, so reading the exits off one simulation to the last step gives what
stopping each sample would.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from snn.converters.data import labelled_batches
from snn.converters.network import ConvertedSNN

__all__ = ["EarlyExitResult", "TopKCutoff", "optimal_cutoff_steps", "top_gap"]


def top_gap(outputs: Tensor) -> Tensor:
    """Gap between the largest and second largest class score: ``[..., C] -> [...]``."""
    if outputs.shape[-1] < 2:
        raise ValueError(f"the cutoff needs at least two classes, got {outputs.shape[-1]}")
    top = outputs.topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def optimal_cutoff_steps(outputs: Tensor, labels: Tensor) -> Tensor:
    """:math:`g(X)` of every sample: the first step (1-based) from which every prediction is
    correct; ``inf`` for a sample wrong at the last step.

    Args:
        outputs: ``[T, N, C]`` readouts after each step.
        labels: ``[N]`` class indices.
    """
    correct = outputs.argmax(-1) == labels.unsqueeze(0)  # [T, N]
    # correct from t on: reverse cumulative AND
    settled = torch.flip(torch.cumprod(torch.flip(correct, [0]).long(), 0), [0]).bool()
    steps = outputs.shape[0]
    first = torch.where(settled.any(0), settled.float().argmax(0) + 1,
                        torch.full_like(labels, steps + 1)).double()
    first[~settled[-1]] = float("inf")
    return first


@dataclass
class EarlyExitResult:
    """Early-exit accuracy and mean steps, next to the fixed-T curve of the same run.

    Attributes:
        accuracy: accuracy with the cutoff (fraction).
        mean_steps: mean number of steps a sample ran.
        max_steps: the step budget.
        samples: number of samples.
        fixed_accuracy: ``{T: accuracy}`` of the same simulation read out at fixed T.
        exit_histogram: ``{t: samples that stopped at step t}``.
    """

    accuracy: float
    mean_steps: float
    max_steps: int
    samples: int
    fixed_accuracy: dict[int, float] = field(default_factory=dict)
    exit_histogram: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


class TopKCutoff:
    """The Top-K cutoff (see the module docstring).

    Args:
        epsilon: :math:`\\epsilon`, the accepted fraction of early exits that are not yet
            settled (``0 <= epsilon < 1``).
    """

    def __init__(self, epsilon: float = 0.01):
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon must lie in [0, 1), got {epsilon}")
        self.epsilon = float(epsilon)
        self.betas: Tensor | None = None

    @staticmethod
    def _simulate(net: ConvertedSNN, data: Any, steps: int,
                  batch_size: int) -> tuple[Tensor, Tensor]:
        outs, labels = [], []
        device = next((b.device for b in net.buffers()), torch.device("cpu"))
        with torch.no_grad():
            for x, y in labelled_batches(data, batch_size):
                outs.append(net.simulate(x.to(device), steps).cpu())
                labels.append(y.cpu())
        if not outs:
            raise ValueError("data holds no samples")
        return torch.cat(outs, 1), torch.cat(labels)

    def fit_outputs(self, outputs: Tensor, labels: Tensor) -> TopKCutoff:
        """Choose :math:`\\beta_t` for every step from readouts ``[T, N, C]`` and labels."""
        g = optimal_cutoff_steps(outputs, labels)
        gaps = top_gap(outputs)  # [T, N]
        betas = []
        for t in range(outputs.shape[0]):
            order = torch.argsort(gaps[t], descending=True)
            ok = (g[order] <= t + 1).double()
            # the set {gap > beta} for beta just below the k-th largest gap holds the top k
            rate = torch.cumsum(ok, 0) / torch.arange(1, len(ok) + 1, dtype=torch.float64)
            sorted_gaps = gaps[t][order]
            # beta must separate: candidate k only where the next gap is strictly smaller
            distinct = torch.ones_like(ok, dtype=torch.bool)
            distinct[:-1] = sorted_gaps[1:] < sorted_gaps[:-1]
            valid = (rate >= 1.0 - self.epsilon) & distinct
            if bool(valid.any()):
                k = int(torch.nonzero(valid).max())  # largest set: smallest beta
                beta = float(sorted_gaps[k + 1]) if k + 1 < len(ok) else 0.0
                betas.append(max(beta, 0.0))
            else:
                betas.append(float("inf"))
        self.betas = torch.tensor(betas, dtype=torch.float64)
        return self

    def fit(self, net: ConvertedSNN, data: Any, steps: int, batch_size: int = 256) -> TopKCutoff:
        """Simulate ``net`` for ``steps`` on labelled training ``data`` and choose
        :math:`\\beta_t` (see :meth:`fit_outputs`)."""
        outputs, labels = self._simulate(net, data, steps, batch_size)
        return self.fit_outputs(outputs, labels)

    def exits(self, outputs: Tensor) -> Tensor:
        """The step (1-based) each sample stops at, from readouts ``[T, N, C]``."""
        if self.betas is None:
            raise RuntimeError("the cutoff has not been fitted (call fit first)")
        steps = outputs.shape[0]
        if steps > len(self.betas):
            raise ValueError(f"the cutoff was fitted for {len(self.betas)} steps, got {steps}")
        fire = top_gap(outputs).double() > self.betas[:steps].unsqueeze(1)
        fire[-1] = True
        return fire.float().argmax(0) + 1

    def evaluate_outputs(self, outputs: Tensor, labels: Tensor,
                         timesteps: list[int] | None = None) -> EarlyExitResult:
        """Early-exit accuracy and mean steps, and fixed-T accuracies, from readouts."""
        steps = outputs.shape[0]
        stop = self.exits(outputs)
        pred = outputs[stop - 1, torch.arange(outputs.shape[1])].argmax(-1)
        ts = sorted(set(timesteps or range(1, steps + 1)))
        fixed = {t: float((outputs[t - 1].argmax(-1) == labels).double().mean()) for t in ts}
        hist = torch.bincount(stop, minlength=steps + 1)
        return EarlyExitResult(
            accuracy=float((pred == labels).double().mean()),
            mean_steps=float(stop.double().mean()), max_steps=steps,
            samples=int(labels.numel()), fixed_accuracy=fixed,
            exit_histogram={t: int(hist[t]) for t in range(1, steps + 1) if hist[t]})

    def evaluate(self, net: ConvertedSNN, data: Any, steps: int,
                 timesteps: list[int] | None = None, batch_size: int = 256) -> EarlyExitResult:
        """Run ``net`` once for ``steps`` on labelled ``data``; report the early-exit accuracy
        and mean steps and, from the same simulation, the accuracy at each fixed T."""
        outputs, labels = self._simulate(net, data, steps, batch_size)
        return self.evaluate_outputs(outputs, labels, timesteps)
