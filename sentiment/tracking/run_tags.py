"""The tags every tracked run starts with, whichever job it records (training, baseline,
scoring): its one-line description, where its code came from, and the orchestrator's link.

A run started by a flow carries the flow's tags (``prefect.flow_run_id``,
``prefect.flow_run_url``, ``prefect.deployment``); given the flow run's URL, the run's Source
(``mlflow.source.name``, type ``JOB``) is that page rather than the file that started the
process.
"""

from __future__ import annotations

from sentiment.tracking import provenance
from sentiment.tracking.names import (
    DESCRIPTION,
    FLOW_RUN_URL,
    GIT_COMMIT,
    PACKAGES,
    SOURCE_NAME,
    SOURCE_TYPE,
)


def packages_tag(packages: dict) -> str:
    """{name: version} as one tag value, "python 3.12.3, mlflow 3.17.0, ...": one line in the
    tag box instead of a tag per package (environment.json keeps them as JSON)."""
    return ", ".join(f"{k} {v}" for k, v in packages.items())


def run_tags(description: str, own: dict, caller: dict | None = None, *,
             with_provenance: bool = True, fixed: dict | None = None,
             environment: dict | None = None) -> dict:
    """The run's tags: description, git commit and package versions in one tag
    (`with_provenance`),
    the job's `own` tags, then the `caller`'s (a flow's; they win over `own`), then `fixed`
    (what the run is, which no caller may rename). `environment` ({packages, git}, as
    ``provenance.environment`` gives) spares reading them again when the caller has them."""
    tags = {DESCRIPTION: description}
    if with_provenance:
        env = environment or provenance.environment()
        tags[PACKAGES] = packages_tag(env["packages"])
        git = env["git"]
        if git:
            tags.update({GIT_COMMIT: git["commit"], **{f"git.{k}": v for k, v in git.items()}})
    tags.update(own)
    extra = {k: str(v) for k, v in (caller or {}).items() if v is not None}
    if extra.get(FLOW_RUN_URL):
        tags.update({SOURCE_NAME: extra[FLOW_RUN_URL], SOURCE_TYPE: "JOB"})
    return {**tags, **extra, **(fixed or {})}
