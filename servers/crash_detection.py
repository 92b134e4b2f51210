"""The automation that marks a flow run Crashed when its heartbeats stop (its worker or machine
died): Prefect's documented recipe for "zombie" flow runs. Flow runs started by a deployment
emit a `prefect.flow-run.heartbeat` event every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds;
after a heartbeat, the trigger expects another heartbeat or a final state within
`crash_after_s` seconds, and otherwise sets the run's state to Crashed."""

from __future__ import annotations

from datetime import timedelta

NAME = "sentiment: crash flow runs without heartbeats"


def ensure(api_url: str, crash_after_s: int) -> None:
    """Create the automation, replacing one of the same name (so a new setting applies)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.settings import PREFECT_API_URL, temporary_settings

    automation = AutomationCore(
        name=NAME,
        description="Marks a flow run Crashed when no heartbeat or final state follows its "
                    f"last heartbeat within {crash_after_s} s (set by the servers script).",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed", "prefect.flow-run.Cancelled",
                    "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=crash_after_s),
        ),
        actions=[ChangeFlowRunState(
            state=StateType.CRASHED,
            message=f"No heartbeat for {crash_after_s} s: the process running this flow run "
                    f"(or its machine) died.")],
    )
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            for old in client.read_automations_by_name(NAME):
                client.delete_automation(old.id)
            client.create_automation(automation)
