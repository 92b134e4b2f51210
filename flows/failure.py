"""A flow that fails returns a Failed state instead of raising.

Prefect writes the exception of a flow that raises into its result storage (a pickle under
~/.prefect/storage), whatever the flow's `persist_result` says; a returned state follows
`persist_result`, so a failed run leaves nothing behind. The caller of the flow still gets the
exception raised, and the run's state message and logs still say what went wrong.
"""

from __future__ import annotations

from prefect import get_run_logger
from prefect.states import Failed, State

from sentiment.contract.validation import ValidationError
from sentiment.tracking.store import StoreUnavailable


def failed(exc: Exception) -> State:
    logger = get_run_logger()
    # Bad data or an unreachable store: the one-line message says it all.
    if isinstance(exc, (ValidationError, StoreUnavailable)):
        logger.error(f"Stopped: {exc}")
    else:
        logger.exception(f"Failed: {type(exc).__name__}: {exc}")
    return Failed(message=f"Flow run failed: {type(exc).__name__}: {exc}", data=exc)
