"""`sam local invoke` without containers: run a function of template.yaml in this process, as SAM would.

    vpce-guard invoke FUNCTION -e EVENT.json [--env-vars env.json] [--parameter-overrides Mode=dry_run ...]
        [--endpoint-url http://127.0.0.1:5000] [--profile P] [--region R] [--template template.yaml]
    vpce-guard invoke SweepWorkerFunction --from-queue QUEUE [--env-vars env.json] ...
    vpce-guard invoke --list
    (also: python -m devkit.local invoke …, python -m devkit.local list)

Why it exists: `sam local invoke` needs a container runtime and a Lambda base image; this needs neither, and
it runs the same handler, layer and environment, so it is the fast path for operators and the tested one.

What it copies from SAM CLI 1.170 (samcli/commands/local/lib/local_lambda.py, samcli/local/lambdafn/env_vars.py
and samcli/lib/intrinsic_resolver), so a command that works here works with `sam local invoke` too:
- the function's variables are the template's (Globals merged, parameters resolved with --parameter-overrides);
  a Ref to a resource resolves to its logical id, `!GetAtt X.Arn` to an ARN, pseudo parameters to SAM's
  local defaults (account 123456789012, stack "local", region from --region);
- then, for variables the template declares, a value in this shell's environment wins over the template's,
  the `--env-vars` file's "Parameters" section over that, and its "<FunctionName>" section over everything;
  variables the template does not declare are ignored (with a warning), as SAM ignores them;
- AWS_* variables: AWS_SAM_LOCAL=true, the function's name, memory, timeout and handler, the region, and the
  credentials of --profile (or the default chain) passed as AWS_ACCESS_KEY_ID/…; with no credentials at all,
  SAM's placeholders ("defaultkey"/"defaultsecret"), which is what a moto server needs;
- logs go to stderr, the function's return value is printed to stdout as one line of JSON.
Differences, on purpose: `--endpoint-url` (a shortcut for AWS_ENDPOINT_URL); an endpoint nothing listens on,
or no credentials and no endpoint, is refused before the handler runs; when the handler raises, one line says
why on stderr and the exit code is 1 (SAM prints the error as JSON and exits 0; --debug prints the traceback);
the timeout is reported, not enforced.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from devkit import template
from devkit.caches import reset_process_caches
from devkit.environ import patched_environ
from devkit.lambda_context import LocalLambdaContext
from devkit.sqs import DrainReport, drain
from vpce_guard import cli

#: SAM CLI's local values for pseudo parameters (samcli IntrinsicsSymbolTable.DEFAULT_PSEUDO_PARAM_VALUES).
SAM_ACCOUNT = "123456789012"
SAM_STACK_NAME = "local"
SAM_DEFAULT_REGION = "us-east-1"
#: SAM's placeholder credentials when none can be resolved (samcli EnvironmentVariables._DEFAULT_AWS_CREDS).
SAM_PLACEHOLDER_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "defaultkey", "AWS_SECRET_ACCESS_KEY": "defaultsecret"}
#: Process variables that would let credentials other than the ones chosen here leak into the invocation.
_CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


class LocalInvokeError(cli.UsageError, ValueError):
    """The invocation cannot be set up (unknown function, bad event or --env-vars file, unresolvable template
    value): the command line is wrong (exit code 2)."""


@dataclass(frozen=True)
class Result:
    """What an invocation produced: the handler's return value, or the error Lambda would report."""

    function: str
    payload: Any
    error: dict[str, Any] | None
    environment: dict[str, str]
    duration_ms: float
    timed_out: bool
    #: What the handler raised (for the command line's one-line explanation and --debug's traceback).
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_parameter_overrides(items: list[str] | None) -> dict[str, str]:
    """`Key=Value` pairs, as `sam local invoke --parameter-overrides` takes them (one string or several)."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in shlex.split(item):
            if part.startswith("ParameterKey="):  # SAM also accepts ParameterKey=K,ParameterValue=V
                fields = dict(p.split("=", 1) for p in part.split(",", 1))
                out[fields["ParameterKey"]] = fields.get("ParameterValue", "")
                continue
            key, sep, value = part.partition("=")
            if not sep or not key:
                raise LocalInvokeError(f"--parameter-overrides: expected Key=Value, got {part!r}")
            out[key] = value
    return out


def load_env_vars(path: str | Path | None) -> dict[str, dict[str, str]]:
    """SAM's --env-vars file: {"FunctionName": {...}, "Parameters": {...}}; every value a JSON object."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LocalInvokeError(f"--env-vars {path}: no such file (`vpce-guard sandbox` writes one, "
                               ".local/sandbox/env.json)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise LocalInvokeError(f"--env-vars {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise LocalInvokeError(f"--env-vars {path}: expected {{\"FunctionName\": {{...}}, \"Parameters\": {{...}}}}")
    return {k: {n: _stringify(v) for n, v in section.items()} for k, section in data.items()}


def _stringify(value: Any) -> str:
    """SAM's rules: booleans lower-case, lists/dicts/None blank, everything else str()."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None or isinstance(value, dict | list | tuple):
        return ""
    return str(value)


def sam_symbols(tpl: dict[str, Any], *, region: str) -> dict[str, str]:
    """What SAM local resolves intrinsics to: a resource's Ref is its logical id, GetAtt X.Arn an ARN."""
    symbols = {"AWS::Region": region, "AWS::AccountId": SAM_ACCOUNT, "AWS::StackName": SAM_STACK_NAME,
               "AWS::Partition": "aws"}
    for logical_id, res in tpl.get("Resources", {}).items():
        symbols[logical_id] = logical_id
        service = str(res.get("Type", "AWS::Unknown::X")).split("::")[1].lower()
        suffix = f"function:{logical_id}" if service in {"lambda", "serverless"} else logical_id
        symbols[f"{logical_id}.Arn"] = f"arn:aws:{'lambda' if service == 'serverless' else service}:{region}:" \
                                       f"{SAM_ACCOUNT}:{suffix}"
    return symbols


def declared_variables(tpl: dict[str, Any], function: str) -> list[str]:
    glob = tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = tpl["Resources"][function].get("Properties", {}).get("Environment", {}).get("Variables", {})
    return list(dict.fromkeys([*glob, *own]))


def function_environment(tpl: dict[str, Any], function: str, *, parameter_overrides: Mapping[str, str],
                         env_vars: Mapping[str, Mapping[str, str]], shell_env: Mapping[str, str],
                         region: str) -> tuple[dict[str, str], list[str]]:
    """The function's own variables with SAM's precedence; returns them and the names SAM would ignore."""
    unknown = set(parameter_overrides) - set(tpl.get("Parameters", {}))
    if unknown:
        raise LocalInvokeError(f"--parameter-overrides: {sorted(unknown)} not parameters of the template")
    try:
        spec = template.function_spec(function, resources=sam_symbols(tpl, region=region),
                                      overrides=parameter_overrides, tpl=tpl)
    except KeyError as exc:
        raise LocalInvokeError(f"{function}: {exc.args[0]}") from None
    declared = declared_variables(tpl, function)
    env = {name: spec.environment.get(name, "") for name in declared}
    for name in declared:
        if name in shell_env:
            env[name] = shell_env[name]
    props = tpl["Resources"][function].get("Properties", {})
    overrides = {**env_vars.get("Parameters", {}),
                 **(env_vars.get(function) or env_vars.get(str(props.get("FunctionName", ""))) or {})}
    ignored = sorted(set(overrides) - set(declared))
    env.update({k: v for k, v in overrides.items() if k in declared})
    return env, ignored


def _credentials(profile: str | None, region: str | None) -> tuple[dict[str, str], str | None]:
    """Credentials as SAM passes them to the container: resolved once from the profile or default chain."""
    session = boto3.Session(profile_name=profile, region_name=region)
    creds = session.get_credentials()
    if creds is None:
        return dict(SAM_PLACEHOLDER_CREDENTIALS), session.region_name
    frozen = creds.get_frozen_credentials()
    out = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
    if frozen.token:
        out["AWS_SESSION_TOKEN"] = frozen.token
    return out, session.region_name


@dataclass(frozen=True)
class Prepared:
    """A function set up to run as SAM would: its template, environment (to set, and to unset) and context."""

    function: str
    tpl: dict[str, Any]
    parameter_overrides: Mapping[str, str]
    region: str
    environment: dict[str, str]
    unset: tuple[str, ...]
    context: LocalLambdaContext
    timeout: int


def prepare(function: str, *, env_vars: Mapping[str, Mapping[str, str]] | None = None,
            parameter_overrides: Mapping[str, str] | None = None, endpoint_url: str | None = None,
            profile: str | None = None, region: str | None = None,
            template_path: Path = template.TEMPLATE) -> Prepared:
    """Everything `sam local invoke` works out before it starts the container, checked: the function exists, its
    environment resolves, its endpoint (if any) answers, and it has credentials."""
    tpl = template.load(template_path)
    if function not in template.functions(tpl):
        raise LocalInvokeError(f"{function!r} is not a function of {template_path.name}; its functions: "
                               f"{', '.join(template.functions(tpl))}")
    credentials, session_region = _credentials(profile, region)
    region = region or session_region or os.environ.get("AWS_REGION") or SAM_DEFAULT_REGION
    env, ignored = function_environment(tpl, function, parameter_overrides=parameter_overrides or {},
                                        env_vars=env_vars or {}, shell_env=os.environ, region=region)
    for name in ignored:
        print(f"invoke: {name} is not declared in {template_path.name} for {function}; SAM ignores it, so do I",
              file=sys.stderr)
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    props = tpl["Resources"][function].get("Properties", {})
    glob = tpl.get("Globals", {}).get("Function", {})
    memory = int(props.get("MemorySize", glob.get("MemorySize", 128)))
    timeout = int(props.get("Timeout", glob.get("Timeout", 3)))
    handler = str(props.get("Handler", glob.get("Handler", "")))
    name = str(props.get("FunctionName") or function)
    lambda_env = {
        "AWS_SAM_LOCAL": "true", "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout), "AWS_LAMBDA_FUNCTION_HANDLER": handler,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": f"aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST", "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
        "AWS_ACCOUNT_ID": SAM_ACCOUNT, **credentials,
    }
    full_env = {**lambda_env, **env}
    # An empty AWS_ENDPOINT_URL means "the real endpoints" (botocore ignores it); removing it keeps it so.
    remove = (*_CREDENTIAL_VARS, *(k for k, v in full_env.items() if not v and k in template.DECLARED_FOR_SAM_LOCAL))
    full_env = {k: v for k, v in full_env.items() if k not in remove or k in credentials}
    _check_reachable(full_env, endpoint_url, using_placeholders=credentials == SAM_PLACEHOLDER_CREDENTIALS)
    context = LocalLambdaContext(function_name=name, memory_limit_in_mb=memory, timeout_seconds=timeout,
                                 region=region, account=SAM_ACCOUNT, log_group_name=f"aws/lambda/{name}")
    return Prepared(function, tpl, dict(parameter_overrides or {}), region, full_env, remove, context, timeout)


def run_prepared(prepared: Prepared, event: Any) -> Result:
    """Run the prepared function's handler on EVENT, a cold start each time; the process environment is
    restored afterwards."""
    with patched_environ(prepared.environment, unset=prepared.unset):
        reset_process_caches()
        spec = template.function_spec(prepared.function, resources=sam_symbols(prepared.tpl, region=prepared.region),
                                      overrides=prepared.parameter_overrides, tpl=prepared.tpl)
        start = time.monotonic()
        raised: BaseException | None = None
        try:
            payload: Any = spec.load_handler()(event, prepared.context)
            error = None
        except Exception as exc:  # reported as Lambda reports an unhandled error (never swallowed)
            payload, error, raised = None, {"errorMessage": str(exc), "errorType": type(exc).__name__,
                                            "stackTrace": traceback.format_exception(exc)}, exc
        finally:
            reset_process_caches()
        duration_ms = (time.monotonic() - start) * 1000
    return Result(prepared.function, payload, error, prepared.environment, duration_ms,
                  duration_ms > prepared.timeout * 1000, raised)


def invoke(function: str, event: Any, *, env_vars: Mapping[str, Mapping[str, str]] | None = None,
           parameter_overrides: Mapping[str, str] | None = None, endpoint_url: str | None = None,
           profile: str | None = None, region: str | None = None,
           template_path: Path = template.TEMPLATE) -> Result:
    """Run FUNCTION's handler on EVENT as `sam local invoke` would, in this process (a cold start each time).

    The process environment is restored afterwards; logs go wherever stdout goes (the CLI sends them to stderr).
    """
    return run_prepared(prepare(function, env_vars=env_vars, parameter_overrides=parameter_overrides,
                                endpoint_url=endpoint_url, profile=profile, region=region,
                                template_path=template_path), event)


def sqs_batch_size(prepared: Prepared) -> int:
    """The BatchSize of the function's SQS event source, as the template sets it."""
    props = prepared.tpl["Resources"][prepared.function].get("Properties", {})
    for event in (props.get("Events") or {}).values():
        if event.get("Type") == "SQS":
            params = template.parameter_values(prepared.tpl, prepared.parameter_overrides)
            size = template.resolve(event.get("Properties", {}).get("BatchSize", 10), params, {},
                                    template.list_parameters(prepared.tpl))
            return int(size)
    raise LocalInvokeError(f"{prepared.function} has no SQS event source in the template: --from-queue is for "
                           "functions an SQS queue triggers (SweepWorkerFunction)")


def drain_queue(prepared: Prepared, queue: str) -> DrainReport:
    """Invoke the function on batches from an SQS queue until it is empty, as Lambda's event source mapping
    does (devkit.sqs.drain): the function's own endpoint and credentials read the queue."""
    batch_size = sqs_batch_size(prepared)
    with patched_environ(prepared.environment, unset=prepared.unset):
        sqs = boto3.client("sqs")
        try:
            url = queue if "://" in queue else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        except ClientError as exc:
            if "NonExistentQueue" in str(exc) or "does not exist" in str(exc):
                raise cli.CliError(f"--from-queue {queue}: no such queue in {prepared.region}; pass its URL or "
                                   "name (the stack output SweepQueueUrl; the sandbox's is vpce-guard-sweep)") from exc
            raise

        failures: list[cli.CliError] = []

        def handler(event: dict[str, Any]) -> dict[str, Any]:
            result = run_prepared(prepared, event)
            if not result.ok:
                failures.append(failure(result))
                raise failures[-1] from result.exception
            return dict(result.payload or {})

        report = drain(sqs, url, handler, batch_size=batch_size)
    if report.failed_deliveries:
        last = f"; the last invocation: {failures[-1]}" if failures else "; the batch responses say which"
        raise cli.CliError(f"{prepared.function}: {len(report.failed_deliveries)} deliveries failed (retried, then "
                           f"dead-lettered){last}")
    return report


def _check_reachable(env: Mapping[str, str], endpoint_url: str | None, *, using_placeholders: bool) -> None:
    """Refuse, before the handler runs, what can only end in errors: an endpoint nothing listens on, or no
    credentials at all for real AWS (SAM's placeholders are only good for a local endpoint)."""
    url = env.get("AWS_ENDPOINT_URL", "")
    if url:
        cli.ensure_reachable(url, "--endpoint-url" if endpoint_url else "AWS_ENDPOINT_URL (environment or --env-vars)")
    elif using_placeholders:
        raise cli.CliError(cli.NO_CREDENTIALS)


def failure(result: Result) -> cli.CliError:
    """One line for a handler that raised: what failed and what to do."""
    for exc in cli.causes(result.exception) if result.exception else ():
        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            tables = ", ".join(sorted(template.table_env(template.tables_for("…"))))
            return cli.CliError(f"{result.function} failed: a table it uses does not exist "
                                f"({exc.response['Error'].get('Message', '')}): name the tables in the --env-vars "
                                f"file ({tables}), as `vpce-guard sandbox` writes it")
    if result.exception is None:
        return cli.CliError(f"{result.function} failed: {result.error}")
    explained = cli.explain(result.exception)
    detail = explained if not str(explained).startswith("unexpected error") else \
        f"{type(result.exception).__name__}: {result.exception}"
    return type(explained)(f"{result.function} failed: {detail}")


def _read_event(path: str | None) -> Any:
    if path is None:
        return {}
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except FileNotFoundError:
        raise LocalInvokeError(f"--event {path}: no such file (events/ holds one for every function; "
                               "`vpce-guard sandbox` writes them with its ids)") from None
    except OSError as exc:
        raise LocalInvokeError(f"--event {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocalInvokeError(f"--event {path}: not JSON ({exc})") from None


def _list(ctx: cli.Context) -> None:
    tpl = template.load(Path(ctx.args.template).resolve())
    for fn in template.functions(tpl):
        props = tpl["Resources"][fn]["Properties"]
        print(f"{fn}\t{props.get('CodeUri')}{props.get('Handler')}\t{' '.join(declared_variables(tpl, fn))}",
              file=ctx.out)


def _invoke(ctx: cli.Context) -> int:
    args = ctx.args
    if args.list:
        _list(ctx)
        return 0
    if not args.function:
        raise cli.UsageError("name the function to invoke, e.g. OnChangeFunction (`vpce-guard invoke --list` "
                             "lists them)")
    if args.from_queue and args.event:
        raise cli.UsageError("--from-queue builds the events from the queue's messages: leave out -e/--event")
    # Powertools logs (and EMF metrics) go to stdout inside Lambda; here they go to stderr, so that stdout
    # carries only the result, as with SAM.
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # Powertools warns when an invocation published no metric; in Lambda that lands in the logs, here it
        # would be noise around the one result or error line.
        warnings.filterwarnings("ignore", "No application metrics to publish")
        # What the command line names is checked first (exit 2), then what AWS or the environment says (1).
        event = None if args.from_queue else _read_event(args.event)
        prepared = prepare(args.function, env_vars=load_env_vars(args.env_vars),
                           parameter_overrides=parse_parameter_overrides(args.parameter_overrides),
                           endpoint_url=ctx.arg("endpoint_url"), profile=ctx.arg("profile"),
                           region=ctx.arg("region"), template_path=Path(args.template).resolve())
        if args.from_queue:
            report = drain_queue(prepared, args.from_queue)
        else:
            result = run_prepared(prepared, event)
    if args.from_queue:
        print(json.dumps({"invocations": report.invocations, "processed": report.processed,
                          "responses": report.responses}, default=str), file=ctx.out)
        return 0
    if not result.ok:
        raise failure(result) from result.exception
    print(f"invoke: {args.function} ran in {result.duration_ms:.0f} ms"
          + (f" (LONGER than its {result.environment['AWS_LAMBDA_FUNCTION_TIMEOUT']} s timeout: Lambda would "
             "have stopped it)" if result.timed_out else ""), file=sys.stderr)
    print(json.dumps(result.payload, default=str), file=ctx.out)
    return 0


HELP = """Run a function of template.yaml on one event in this process, as `sam local invoke` runs it in a
container: the template's environment (Globals, parameters, --parameter-overrides), then this shell's value of
each declared variable, then the --env-vars file; the credentials of --profile (or the default chain; none at
all is fine for a local --endpoint-url). Logs go to stderr, the function's result to stdout as one line of JSON.
The rules it copies from SAM CLI, and where it differs: devkit/local.py.

examples:
  vpce-guard invoke --list
  vpce-guard invoke OnChangeFunction -e .local/sandbox/events/modify-vpc-endpoint.json \\
      --env-vars .local/sandbox/env.json
  vpce-guard invoke SweepWorkerFunction --from-queue vpce-guard-sweep --env-vars .local/sandbox/env.json
  vpce-guard invoke OnChangeFunction -e my-event.json --env-vars env.json --profile hub-admin \\
      --region eu-west-1 --parameter-overrides Mode=dry_run"""


def register(commands: cli.Commands) -> None:
    """Add `invoke` to a command line."""
    inv = commands.add("invoke", help="run one function of template.yaml on one event, as `sam local invoke` "
                                      "does, in this process (no container)", description=HELP, run=_invoke)
    inv.add_argument("function", nargs="?", help="the function's logical id in the template, e.g. OnChangeFunction")
    inv.add_argument("--list", action="store_true",
                     help="list the template's functions, their handlers and the variables each reads")
    inv.add_argument("-e", "--event", help="event JSON file ('-' for stdin; default: {}); events/ has one per "
                                           "function")
    inv.add_argument("-n", "--env-vars", help="SAM --env-vars file: {\"FunctionName\": {...}, \"Parameters\": "
                                              "{...}} (`vpce-guard sandbox` writes one)")
    inv.add_argument("--from-queue", metavar="QUEUE",
                     help="instead of -e: invoke on batches received from this SQS queue (URL or name) until it is "
                          "empty, as Lambda's event source mapping does, e.g. SweepWorkerFunction on the sweep's "
                          "units; prints a summary of the batches")
    inv.add_argument("--parameter-overrides", nargs="+", metavar="KEY=VALUE",
                     help="template parameters, e.g. Mode=dry_run")
    inv.add_argument("-t", "--template", default=str(template.TEMPLATE), help="SAM template (default: template.yaml)")


def main(argv: list[str] | None = None) -> int:
    """`python -m devkit.local invoke …` is `vpce-guard invoke …`; `… list` is `vpce-guard invoke --list`."""
    from devkit import cli as vpce_guard_cli

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["list"]:
        argv = ["--list", *argv[1:]]
    elif argv[:1] == ["invoke"]:
        argv = argv[1:]
    return vpce_guard_cli.main(["invoke", *argv])


if __name__ == "__main__":
    sys.exit(main())
