"""The layer's small IAM evaluator (vpce_guard.policy_eval) against the test suite's reference evaluator.

The reference (tests/support/iam_eval.py) stays the authority; the layer module was derived from it for the
one question the product asks at run time. Both must answer every request of the property-test grid the
same way for every generated policy.
"""

from __future__ import annotations

from hypothesis import assume, given

from tests.support.iam_eval import RequestContext, evaluate
from tests.unit.test_policy_properties import GRID, POLICIES, SETTINGS
from vpce_guard import policy, policy_eval


def _request(ctx: RequestContext) -> policy_eval.Request:
    return policy_eval.Request(
        action=ctx.action, resource=ctx.resource, principal_arn=ctx.principal_arn,
        principal_account=ctx.principal_account, principal_org_id=ctx.principal_org_id,
        service_principal=ctx.service_principal, keys=dict(ctx.extra),
    )


@SETTINGS
@given(doc=POLICIES)
def test_layer_evaluator_agrees_with_the_reference_on_every_grid_request(doc: object) -> None:
    try:
        policy.parse_policy(doc)  # type: ignore[arg-type]
    except policy.PolicyError:
        assume(False)  # the layer refuses documents it cannot read; the reference guesses
    for caller in GRID:
        assert policy_eval.allows(doc, _request(caller.ctx)) == evaluate(doc, caller.ctx), caller  # type: ignore[arg-type]


def test_default_policy_allows_and_an_explicit_deny_wins() -> None:
    req = policy_eval.Request(action="s3:GetObject", resource="arn:aws:s3:::aws-ssm-eu-west-1/*",
                              principal_arn="arn:aws:iam::111122223333:root", principal_account="111122223333",
                              principal_org_id="o-abcdefghij")
    assert policy_eval.allows(None, req)
    deny = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
                          {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                           "Resource": "arn:aws:s3:::aws-ssm-*/*"}]}
    assert not policy_eval.allows(deny, req)
