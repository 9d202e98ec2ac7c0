"""Exceptions raised by the converter."""

from __future__ import annotations

__all__ = ["ConversionError", "UnsupportedOperationError"]


class ConversionError(ValueError):
    """A model, its calibration data or a conversion option cannot be converted as asked."""


class UnsupportedOperationError(ConversionError):
    """The traced graph contains an operation with no exact spiking counterpart.

    Attributes:
        op: the operation as written in the model (``"nn.GELU"``, ``"torch.sigmoid"``, ...).
        reason: why it cannot be converted.
        node: the name of the graph node (``None`` when tracing itself failed).
        source: ``"file:line: code"`` of the model's source that produced it, when known.
    """

    def __init__(self, op: str, reason: str, node: str | None = None, source: str | None = None):
        self.op = op
        self.reason = reason
        self.node = node
        self.source = source
        where = f" (node {node!r})" if node else ""
        at = f" at {source}" if source else ""
        super().__init__(f"cannot convert {op}{where}{at}: {reason}")
