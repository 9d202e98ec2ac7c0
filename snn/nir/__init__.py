"""Export to and import from the Neuromorphic Intermediate Representation (NIR).

NIR is the exchange format of snnTorch, Norse, Sinabs, Lava, SpiNNaker 2, Xylo and others.
:func:`export` writes a model as a :class:`nir.NIRGraph`; :func:`load` builds a model from one.
The mapping between the per-step parameters here and NIR's time constants is exact and
documented in :mod:`snn.nir.mapping`; a graph written by :func:`export` loads back bit for bit.

Example:
    >>> graph = snn.nir.export(model, torch.rand(10, 1, 2, 16, 16))
    >>> nir.write("model.nir", graph)
    >>> same = snn.nir.load("model.nir")

Requires the ``nir`` package (``pip install 'snn[nir]'``).
"""

from snn.layers.recurrent import Recurrent, RecurrentState
from snn.nir.export import EXPORTERS, NIRExportError, export
from snn.nir.layers import Scale, SumPool2d
from snn.nir.load import IMPORTERS, NIRGraphModule, NIRImportError, load
from snn.nir.mapping import DISCRETISATIONS, get_discretisation

__all__ = [
    "DISCRETISATIONS",
    "EXPORTERS",
    "IMPORTERS",
    "NIRExportError",
    "NIRGraphModule",
    "NIRImportError",
    "Recurrent",
    "RecurrentState",
    "Scale",
    "SumPool2d",
    "export",
    "get_discretisation",
    "load",
]
