"""The one-line explanations of errors the commands meet, including ones the end-to-end tests cannot provoke
without an AWS account (expired sign-in, access denied): each says what to do, with the right exit code."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    UnauthorizedSSOTokenError,
)

from vpce_guard import cli
from vpce_guard.config import ConfigError


def _client_error(code: str, message: str, op: str = "Query") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


@pytest.mark.parametrize(("error", "code", "says"), [
    (NoRegionError(), 2, "pass --region"),
    (ProfileNotFound(profile="ops"), 2, "no profile 'ops'"),
    (NoCredentialsError(), 1, "pass --profile"),
    (UnauthorizedSSOTokenError(), 1, "aws sso login"),
    (EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"), 1,
     "cannot reach https://dynamodb.eu-west-1.amazonaws.com/"),
    (_client_error("ExpiredTokenException", "The security token included in the request is expired"), 1,
     "sign in again"),
    (_client_error("AccessDeniedException", "not authorized to perform: dynamodb:PutItem", "PutItem"), 1,
     "access denied for PutItem"),
    (_client_error("ResourceNotFoundException", "Requested resource not found"), 1, "does not exist"),
    (_client_error("ThrottlingException", "Rate exceeded"), 1, "AWS refused Query: ThrottlingException"),
    (ConfigError("invalid vpce-guard configuration: MODE: bad"), 2, "MODE: bad"),
    (ValueError("something nobody expected"), 1, "unexpected error: ValueError"),
])
def test_each_error_becomes_one_line_that_says_what_to_do(error: Exception, code: int, says: str) -> None:
    explained = cli.explain(error, tables={"ledger": "t"}, region="eu-west-1")
    assert explained.exit_code == code
    assert says in str(explained) and "\n" not in str(explained)


def test_a_wrapped_aws_error_is_explained_by_its_cause() -> None:
    try:
        try:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
        except EndpointConnectionError as inner:
            raise RuntimeError("Failed to save in progress record to idempotency store") from inner
    except RuntimeError as outer:
        assert "cannot reach http://127.0.0.1:9" in str(cli.explain(outer))
