"""The promotion gate as pure functions: no MLflow, no I/O, so every branch is unit-testable.
``sentiment.tracking.promotion`` reads the registry, brings the accuracies onto one test set and
asks ``decide``.
"""

from sentiment.gate.decision import (
    behaviour_markdown,
    behaviour_verdict,
    decide,
    markdown_report,
    side_by_side,
    slice_rows,
    slice_verdict,
    slices_markdown,
)

__all__ = ["decide", "markdown_report", "side_by_side", "behaviour_verdict",
           "behaviour_markdown", "slice_rows", "slice_verdict", "slices_markdown"]
