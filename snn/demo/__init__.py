"""The library's main job in one call: on scikit-learn's 8x8 digits (no download), train a
small CNN, convert it to an SNN, train the same architecture as an SNN with surrogate
gradients, compare accuracy against time steps, estimate energy on hardware targets against
the CNN, and write a report folder (JSON, PNG figures, a Markdown summary).

Run it as ``snn demo`` (``--quick`` for a sub-minute run) or :func:`run_demo`.
"""

from snn.demo.run import REPORT_FILES, DemoConfig, run_demo, summary_markdown

__all__ = ["REPORT_FILES", "DemoConfig", "run_demo", "summary_markdown"]
