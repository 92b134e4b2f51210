"""MLflow tags that link a tracked run back to the Prefect flow run that made it."""

from __future__ import annotations

from prefect.runtime import deployment, flow_run


def flow_run_tags() -> dict[str, str]:
    """The flow run's id and name; its UI address when a Prefect server is configured (the
    temporary local API of `sentiment pipeline` has no UI that outlives the run); and the
    deployment, when the run came from one."""
    tags = {"prefect.flow_run_id": str(flow_run.id), "prefect.flow_run_name": flow_run.name}
    url = flow_run.ui_url
    if url and url.startswith(("http://", "https://")):
        tags["prefect.flow_run_url"] = url
    if deployment.id:
        tags["prefect.deployment"] = f"{flow_run.flow_name}/{deployment.name}"
    return tags


def flow_run_actor() -> str:
    """Who moved the alias, for the champion history: this flow run (and its deployment)."""
    tags = flow_run_tags()
    who = f"prefect flow run {tags['prefect.flow_run_name']} ({tags['prefect.flow_run_id']})"
    return who + (f" of {tags['prefect.deployment']}" if "prefect.deployment" in tags else "")
