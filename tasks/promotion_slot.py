"""One promotion at a time per model name across every flow run that shares a Prefect server.

A Prefect global concurrency limit ``promote-<model_name>`` with one slot is held around the
gate. Only a real Prefect API (PREFECT_API_URL set) spans processes and machines; the temporary
local API that `sentiment pipeline` starts belongs to one process, so there the library's own
lock (``sentiment.tracking.promotion_lock``: a file lock beside a local store, a lease on a server's
registered model) is what keeps promotions apart. It is always taken, also under this limit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def limit_name(model_name: str) -> str:
    return f"promote-{model_name}"


@contextlib.contextmanager
def promotion_slot(model_name: str, timeout_s: float) -> Iterator[None]:
    """Hold the model's one promotion slot on the Prefect server, if there is one."""
    if not os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    name = limit_name(model_name)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            # Created with one slot when missing; a limit an operator already tuned is kept.
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1))
    with concurrency(name, occupy=1, timeout_seconds=timeout_s, strict=True):
        yield
