"""The functions' environment as CloudFormation deploys it leaves the SDK's endpoint to the platform.

Found by `make rehearsal`: template.yaml declared `AWS_ENDPOINT_URL: ""` (so that `sam local invoke --env-vars`
could point a function at a moto server). Deployed, that is a real, empty variable; a Lambda emulator that
injects its own endpoint (LocalStack sets AWS_ENDPOINT_URL, then applies the function's variables over it)
ends with "", and every call of the function went to the real AWS endpoints and hung until the timeout.
The declaration is now `!Ref AWS::NoValue`: declared for SAM, absent when deployed.
"""

from __future__ import annotations

import pytest

from devkit import template
from devkit.local import declared_variables

TPL = template.load()


def deployed_environment(function: str, overrides: dict[str, str] | None = None) -> dict[str, object]:
    """Globals and the function's own variables merged, with Fn::If and AWS::NoValue applied as CloudFormation
    applies them (a NoValue entry is no variable at all). Values are left unresolved: only names matter here."""
    glob = TPL.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = TPL["Resources"][function].get("Properties", {}).get("Environment", {}).get("Variables", {})
    return template.resolve_if({**glob, **own}, template.conditions(TPL, overrides)) or {}


@pytest.mark.parametrize("function", template.functions(TPL))
@pytest.mark.parametrize("overrides", [None, {"Tracing": "Active", "CreateMissingEndpoints": "true"}])
def test_no_function_is_deployed_with_an_sdk_endpoint_variable(function: str, overrides: dict[str, str] | None) -> None:
    env = deployed_environment(function, overrides)
    assert "LEDGER_TABLE" in env, "the environment was read"
    endpoint_vars = sorted(k for k in env if k.startswith("AWS_ENDPOINT_URL"))
    assert endpoint_vars == [], (
        f"{function} would be deployed with {endpoint_vars}: even an empty value overrides the endpoint a Lambda "
        "emulator gives the function (declare it `!Ref AWS::NoValue` for sam local instead)")


@pytest.mark.parametrize("function", template.functions(TPL))
def test_sam_local_can_still_point_each_function_at_a_local_endpoint(function: str) -> None:
    # SAM CLI overrides declared variables only: the declaration must stay, whatever its deployed value.
    assert "AWS_ENDPOINT_URL" in declared_variables(TPL, function)
