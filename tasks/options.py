"""Options every pipeline task shares, and the retry policy for the ones that write remotely."""

from __future__ import annotations

from prefect.cache_policies import NO_CACHE

# Prefect's default cache key (task inputs + run id) never hits across runs, and results are not
# persisted, so task caching would only hash a Config on every call. Tokenization is cached by
# the library itself, in the `datasets` cache keyed by an explicit fingerprint.
NO_CACHING = dict(cache_policy=NO_CACHE, persist_result=False)

# Only tracking and registry writes can fail transiently (a busy tracking server, a locked SQLite
# file) and they are safe to repeat. Bad data or a bad config fails the same way every time, so
# validation, tokenization and training never retry.
TRANSIENT_RETRIES = dict(retries=2, retry_delay_seconds=[2, 10])

# `datasets` hashes data with dill, which reads `dis` output from a swapped sys.stdout; Prefect's
# print-to-log patch would divert that output into the run's logs (and blind dill). Tasks that
# go through `datasets` keep print() as plain print; training sends its progress and epoch lines
# to the run logger itself (`sentiment.common.progress.lines_to`), and its curves to MLflow.
PLAIN_PRINT = dict(log_prints=False)
