"""MLflow tags that link a tracked run back to the Prefect flow run that made it, and the flow
run's own tags."""

from __future__ import annotations

from typing import Optional

from prefect.runtime import deployment, flow_run

# Where a flow run's page is, relative to the Prefect UI (as prefect.runtime builds it).
FLOW_RUN_PAGE = "/flow-runs/flow-run/{id}"


def prefect_ui_url() -> Optional[str]:
    """The Prefect UI of the API this process talks to: PREFECT_UI_URL (set or derived from
    PREFECT_API_URL), else, for the temporary local API, the address where `prefect server
    start` (`make prefect-ui`) serves the same Prefect home afterwards."""
    from prefect.settings import PREFECT_UI_URL, get_current_settings
    url = PREFECT_UI_URL.value()
    if url:
        return str(url).rstrip("/")
    api = get_current_settings().server.api
    return f"http://{api.host}:{api.port}"


def flow_run_url() -> Optional[str]:
    """This flow run's page in the Prefect UI; None outside a flow run."""
    ui = prefect_ui_url()
    if not flow_run.id or not ui or not ui.startswith(("http://", "https://")):
        return None
    return ui + FLOW_RUN_PAGE.format(id=flow_run.id)


def flow_run_tags() -> dict[str, str]:
    """The flow run's id, name and UI address, and the deployment when the run came from
    one."""
    tags = {"prefect.flow_run_id": str(flow_run.id), "prefect.flow_run_name": flow_run.name}
    url = flow_run_url()
    if url:
        tags["prefect.flow_run_url"] = url
    if deployment.id:
        tags["prefect.deployment"] = f"{flow_run.flow_name}/{deployment.name}"
    return tags


def flow_run_actor() -> str:
    """Who moved the alias, for the champion history: this flow run (and its deployment)."""
    tags = flow_run_tags()
    who = f"prefect flow run {tags['prefect.flow_run_name']} ({tags['prefect.flow_run_id']})"
    return who + (f" of {tags['prefect.deployment']}" if "prefect.deployment" in tags else "")


def tag_flow_run(tags: list[str]) -> None:
    """Add `tags` to this flow run (its list and page show them; they filter runs). A failed
    write costs the tags, not the run."""
    import logging

    from prefect.client.orchestration import get_client
    if not flow_run.id:
        return
    from uuid import UUID
    try:
        run_id = UUID(str(flow_run.id))
        with get_client(sync_client=True) as client:
            have = client.read_flow_run(run_id).tags or []
            client.update_flow_run(run_id, tags=list(dict.fromkeys([*have, *tags])))
    except Exception as e:
        logging.getLogger(__name__).warning("could not tag flow run %s: %s", flow_run.id, e)
