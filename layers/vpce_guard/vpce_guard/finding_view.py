"""One (resource, rule) verdict as the outside world is told it: the shape every export and publisher reads.

Built from a ledger record and the status it replaced (what a run publishes), or from a state item and its
last history item (what `report --format asff|ocsf` exports). Pure: no AWS calls. The texts here (what
vpce-guard did, would do, or why it did nothing) are shared by the ASFF, OCSF, event and notification forms,
so a finding reads the same wherever it lands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .ledger import LedgerRecord
from .models import Status
from .rules import DEFAULT_SEVERITY, REGISTRY, all_rules

#: ARN resource type of each ledger resource_type (arn:<partition>:ec2:<region>:<account>:<type>/<id>).
ARN_TYPES = {
    "vpc-endpoint": "vpc-endpoint",
    "vpc": "vpc",
    "route-table": "route-table",
    "security-group": "security-group",
    "subnet": "subnet",
    "endpoint-service": "vpc-endpoint-service",
    "vpc-endpoint-service": "vpc-endpoint-service",
}
#: What an action does, for actions that carry no summary of their own.
ACTION_TEXT = {
    "set_endpoint_policy": "add a Deny statement to the policy of {id} that confines it to the organization",
    "add_route_tables": "associate {id} with the VPC's route tables that lack it",
    "remove_route_tables": "remove route tables from {id}",
    "reassociate_route_tables": "re-associate {id} with its route tables",
    "set_private_dns": "turn private DNS on for {id}",
    "enable_vpc_attribute": "turn a DNS attribute on in {id}",
    "create_endpoint": "create a required endpoint in {id}",
    "authorize_ingress": "allow inbound TCP 443 in {id}",
}


def partition_of(region: str) -> str:
    """The partition of a region, by its name (the ARNs of a resource must carry it)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"


def rule_title(rule_id: str) -> str:
    all_rules()  # registers every rule module
    rule = REGISTRY.get(rule_id)
    return rule.title if rule else rule_id


def rule_severity(rule_id: str) -> str:
    """The rule's declared severity (rules/__init__.py `register(..., severity=)`); unknown ids: the default."""
    all_rules()
    rule = REGISTRY.get(rule_id)
    return rule.severity if rule else DEFAULT_SEVERITY


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class FindingView(BaseModel):
    """A verdict with its context; `previous_status` is the status it replaced (None: first verdict or unknown)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    account: str
    region: str
    resource_id: str
    resource_type: str
    rule_id: str
    status: str
    reason: str
    #: When the ledger recorded this verdict (the ledger's time format, RFC 3339 UTC).
    time: str
    vpc_id: str | None = None
    previous_status: str | None = None
    #: The ledger key of the history item that recorded this verdict: the jump from a finding to its history.
    ledger_pk: str = ""
    ledger_sk: str = ""
    actions: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    trigger: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_record(cls, record: LedgerRecord, previous: Status | str | None = None) -> FindingView:
        return cls(account=record.account, region=record.region, resource_id=record.resource_id,
                   resource_type=record.resource_type, rule_id=record.rule_id, status=record.status.value,
                   reason=record.reason, time=record.time, vpc_id=record.vpc_id,
                   previous_status=None if previous is None else str(getattr(previous, "value", previous)),
                   ledger_pk=record.pk, ledger_sk=record.sk, actions=list(record.actions), error=record.error,
                   details=dict(record.details), trigger=record.trigger.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_state(cls, state: Mapping[str, Any], history: Mapping[str, Any] | None = None) -> FindingView:
        """From a state item (sk STATE#<rule>) and, when read, the history item it names (`last_evaluation`),
        which holds the actions, error and details the state item leaves out."""
        h = history or {}
        return cls(account=str(state["account"]), region=str(state["region"]),
                   resource_id=str(state["resource_id"]), resource_type=str(state.get("resource_type") or ""),
                   rule_id=str(state["rule_id"]), status=str(state["status"]), reason=str(state.get("reason") or ""),
                   time=str(state.get("time") or h.get("time") or ""), vpc_id=state.get("vpc_id"),
                   ledger_pk=str(state["pk"]), ledger_sk=str(state.get("last_evaluation") or ""),
                   actions=list(h.get("actions") or []), error=h.get("error"), details=dict(h.get("details") or {}),
                   trigger=dict(h.get("trigger") or {}))

    # -- derived ---------------------------------------------------------------------------------------------
    @property
    def partition(self) -> str:
        return partition_of(self.region)

    @property
    def resource_arn(self) -> str:
        kind = ARN_TYPES.get(self.resource_type, self.resource_type or "resource")
        return f"arn:{self.partition}:ec2:{self.region}:{self.account}:{kind}/{self.resource_id}"

    @property
    def title(self) -> str:
        return rule_title(self.rule_id)

    @property
    def severity(self) -> str:
        """The rule's severity while the finding needs attention; INFORMATIONAL once it passed or is gone."""
        if self.status in (Status.COMPLIANT.value, Status.REMEDIATED.value, Status.NOT_APPLICABLE.value):
            return "INFORMATIONAL"
        return rule_severity(self.rule_id)

    @property
    def unfixable(self) -> str | None:
        """Why no safe fix exists, when the rule said so (recorded `failed` with `cannot fix safely: …`)."""
        note = self.details.get("unfixable")
        if note:
            return str(note)
        prefix = "cannot fix safely: "
        return self.error[len(prefix):] if self.error and self.error.startswith(prefix) else None

    @property
    def exemption(self) -> dict[str, Any] | None:
        found = self.details.get("exemption")
        return dict(found) if isinstance(found, Mapping) else None

    def steps(self) -> list[str]:
        """What the recorded actions change (or would): their summaries, or a sentence per kind."""
        out = []
        for a in self.actions:
            text = str(a.get("summary") or "")
            if not text:
                template = ACTION_TEXT.get(str(a.get("kind")), "{kind} on {id}")
                text = template.format(id=a.get("resource_id") or self.resource_id, kind=a.get("kind"))
            out.append(text)
        return out

    def remediation(self) -> str:
        """What vpce-guard did, would do, or why it does nothing: the sentence a finding's reader acts on."""
        steps = "; ".join(self.steps())
        would = f"vpce-guard would {steps}" if steps else "vpce-guard has a fix for this"
        status = self.status
        if status == Status.REMEDIATED.value:
            return f"Fixed by vpce-guard: {steps or 'the recorded change'}. Its before-state is in the ledger."
        if status == Status.DRY_RUN.value:
            return (f"{would}. The rule runs in dry_run, so nothing was changed: switch it to enforce, or make "
                    "the change yourself.")
        if status == Status.PENDING.value:
            return f"vpce-guard is applying a fix: {steps or 'see the ledger'}."
        if status == Status.EXEMPT.value:
            ex = self.exemption or {}
            why = f"{ex.get('reason')} (owner {ex.get('owner')}, until {ex.get('expires')})" if ex else self.reason
            return f"Exempt: {why}. Nothing is changed while the exemption holds; {would} otherwise."
        if status == Status.FLAPPING.value:
            return (f"vpce-guard stopped fixing this: its fix kept being undone. {would}. Find who or what undoes "
                    "it, then clear the flapping state.")
        if status == Status.FAILED.value:
            if self.unfixable:
                return f"No safe automatic fix ({self.unfixable}). Change the resource so that: {self.title}."
            return (f"vpce-guard could not fix this ({self.error or 'see the ledger'}); the next event or sweep "
                    f"tries again. {would}.")
        if status == Status.CONFLICT.value:
            return (f"Someone changed the resource while vpce-guard fixed it: AWS shows neither what was there nor "
                    f"the fix ({self.error or 'see the ledger'}). Check the change; the next event or sweep judges "
                    f"it again. {would}.")
        if status == Status.NON_COMPLIANT.value:
            if steps:
                return f"{would}."
            return f"vpce-guard reports this rule and does not fix it. Change the resource so that: {self.title}."
        if status == Status.COMPLIANT.value:
            return "Compliant: nothing to do."
        if status == Status.NOT_APPLICABLE.value:
            return "The resource is gone or no longer in the rule's scope: nothing to do."
        return f"Recorded {status}: see the ledger."
