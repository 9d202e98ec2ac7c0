"""``evaluate``: ANN and SNN accuracy at several time steps from one simulation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from snn.converters.data import labelled_batches
from snn.converters.network import ConvertedSNN

__all__ = ["EvaluationResult", "evaluate"]


@dataclass
class EvaluationResult:
    """Accuracies (fractions in ``[0, 1]``) of an ANN and its converted SNN.

    Attributes:
        timesteps: the T values read out.
        samples: number of samples.
        ann_accuracy: the ANN's accuracy.
        analog_accuracy: accuracy of the normalised ANN the SNN approximates (thresholds
            clipping the activations); its gap to ``ann_accuracy`` is the normalisation loss.
        snn_accuracy: ``{T: accuracy}`` of the SNN read out after T steps.
        agreement: ``{T: fraction}`` of samples where the SNN predicts what the ANN predicts.
        firing_rates: ``{layer: {T: spikes per neuron per step over the first T steps}}``.
    """

    timesteps: list[int]
    samples: int
    ann_accuracy: float
    analog_accuracy: float
    snn_accuracy: dict[int, float] = field(default_factory=dict)
    agreement: dict[int, float] = field(default_factory=dict)
    firing_rates: dict[str, dict[int, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)

    def table(self) -> str:
        """Accuracy (%) and agreement per T as a text table."""
        lines = [f"ANN {100 * self.ann_accuracy:.2f}%  normalised ANN "
                 f"{100 * self.analog_accuracy:.2f}%  ({self.samples} samples)",
                 f"{'T':>6} {'SNN %':>8} {'agree %':>8} {'rate':>7}"]
        for t in self.timesteps:
            rates = [r[t] for r in self.firing_rates.values()]
            mean_rate = sum(rates) / len(rates) if rates else float("nan")
            lines.append(f"{t:>6} {100 * self.snn_accuracy[t]:>8.2f} "
                         f"{100 * self.agreement[t]:>8.2f} {mean_rate:>7.3f}")
        return "\n".join(lines)


def evaluate(
    ann: nn.Module,
    snn_model: ConvertedSNN,
    data: Any,
    timesteps: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    batch_size: int = 256,
) -> EvaluationResult:
    """Accuracy of ``ann`` and of ``snn_model`` after each T in ``timesteps``, agreement of
    their predictions and per-layer firing rates.

    The SNN runs once per batch to the largest T; the readout after each smaller T is read out
    along the way (the network is causal, so this equals separate runs of T steps).

    Args:
        ann: the original network (run in eval mode; its mode is restored afterwards).
        snn_model: its conversion.
        data: ``(inputs, labels)`` tensors, or an iterable (DataLoader) of ``(input, label)``
            batches; labels are class indices.
        timesteps: positive T values.
        batch_size: batch size when ``data`` is a pair of tensors.

    Returns:
        an :class:`EvaluationResult`.
    """
    if not isinstance(snn_model, ConvertedSNN):
        raise TypeError(f"snn_model must be a ConvertedSNN, got {type(snn_model).__name__}")
    ts = sorted({int(t) for t in timesteps})
    if not ts or ts[0] < 1:
        raise ValueError(f"timesteps must be positive integers, got {list(timesteps)}")
    t_max = ts[-1]
    index = torch.tensor([t - 1 for t in ts])
    counts: dict[str, list[Tensor]] = {}
    sizes: dict[str, int] = {}
    handles = []
    for name, layer in snn_model.neurons().items():
        def hook(_m: nn.Module, _inp: Any, out: Tensor, name: str = name) -> None:
            # out: spikes [steps, B, ...] of the IF neuron
            counts.setdefault(name, []).append(out.detach().reshape(out.shape[0], -1).sum(1)
                                               .double())
            sizes[name] = out[0].numel() // out.shape[1]
        handles.append(layer.neuron.register_forward_hook(hook))
    was_training = ann.training
    ann.eval()
    device = next((b.device for b in snn_model.buffers()), torch.device("cpu"))
    n = 0
    ann_ok = analog_ok = 0
    snn_ok = torch.zeros(len(ts), dtype=torch.long)
    agree = torch.zeros(len(ts), dtype=torch.long)
    totals: dict[str, Tensor] = {}
    try:
        with torch.no_grad():
            for x, y in labelled_batches(data, batch_size):
                x, y = x.to(device), y.to(device)
                ann_pred = ann(x).argmax(-1)
                analog_pred = snn_model.analog(x).argmax(-1)
                out = snn_model.simulate(x, t_max)[index.to(device)]  # [len(ts), B, classes]
                snn_pred = out.argmax(-1)
                n += y.shape[0]
                ann_ok += int((ann_pred == y).sum())
                analog_ok += int((analog_pred == y).sum())
                snn_ok += (snn_pred == y).sum(1).cpu()
                agree += (snn_pred == ann_pred).sum(1).cpu()
                for name, chunks in counts.items():
                    per_step = torch.cat(chunks).cpu()
                    totals[name] = totals.get(name, 0) + per_step / sizes[name]
                    chunks.clear()
    finally:
        for h in handles:
            h.remove()
        ann.train(was_training)
    if n == 0:
        raise ValueError("data holds no samples")
    rates = {}
    for name, per_step in totals.items():
        cum = torch.cumsum(per_step, 0)
        rates[name] = {t: float(cum[t - 1] / (t * n)) for t in ts}
    return EvaluationResult(
        timesteps=ts, samples=n, ann_accuracy=ann_ok / n, analog_accuracy=analog_ok / n,
        snn_accuracy={t: int(snn_ok[i]) / n for i, t in enumerate(ts)},
        agreement={t: int(agree[i]) / n for i, t in enumerate(ts)},
        firing_rates=rates,
    )
