"""LocalStack `start.d` init hook of `make rehearsal`: the named workarounds that run inside LocalStack.

LocalStack runs every `<FILESYSTEM_ROOT>/etc/localstack/init/start.d/*.py` in its own process (with `exec`, no
`__file__`), so this file reads what it needs from the environment the rehearsal started LocalStack with and
writes what it did to $VPCE_GUARD_WORKAROUND_STATUS (JSON: name → {"ok", "detail"}), which the rehearsal reads
and prints. Each workaround leans on internals of exactly LOCALSTACK_VERSION and is applied only there: on any
other version it is reported as not applied, by name, instead of patching something it was not written for.

* `dynamodb-on-moto`: DynamoDB as shipped downloads Java and DynamoDB Local from hosts that are unreachable
  here; the server LocalStack forwards DynamoDB requests to is started as moto's server on the same port.
* `cfn-list-parameter-on-delete`: the v2 engine splits a CommaDelimitedList parameter into a list for the
  template being deployed, not for the one being deleted, so DeleteStack of the hub fails on
  `!Select [0, !Ref SpokeRegions]` ("Fn::Select requires a list argument"); the deleted side is split alike.
* `lambda-image-local`: LocalStack pulls the runtime image before every first use of a function version; the
  locally built image (`make local-image`, named by LAMBDA_RUNTIME_IMAGE_MAPPING) is marked as pulled when it
  is present, so nothing is pulled from a registry.
* `cfn-getatt-sam-generated`: the v2 CloudFormation engine visits every Fn::GetAtt before it runs the SAM
  transform, and refuses a GetAtt of a resource the transform generates (`OnChangeFunctionRole.Arn`, which
  real CloudFormation resolves after the transform); such a GetAtt is left for after the transform, as the
  engine already does for GetAtts it cannot resolve yet.
* `lambda-init-standin`: LocalStack downloads its own runtime init binary; the stand-in (`lambda_init.py`)
  and SAM CLI's stock emulator are put where the download would have gone, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from collections.abc import Callable

LOCALSTACK_VERSION = "2026.3.0"
STATUS = os.environ.get("VPCE_GUARD_WORKAROUND_STATUS", "")


def dynamodb_on_moto() -> str:
    from localstack.services.dynamodb.server import TMP_THREADS, DynamodbServer, ShellCommandThread

    def do_start_thread(self: DynamodbServer) -> ShellCommandThread:
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        thread = ShellCommandThread(cmd, strip_color=True, auto_restart=False, name="dynamodb-moto")
        TMP_THREADS.append(thread)
        thread.start()
        return thread

    if "do_start_thread" not in vars(DynamodbServer):
        raise RuntimeError("DynamodbServer.do_start_thread is gone")
    DynamodbServer.do_start_thread = do_start_thread  # type: ignore[method-assign]
    return f"DynamoDB answered by moto's server on port {DynamodbServer.get().port}"


def cfn_getatt_sam_generated() -> str:
    from localstack.services.cloudformation.engine.v2.change_set_model_transform import ChangeSetModelTransform
    from localstack.services.cloudformation.engine.validations import ValidationError

    original = ChangeSetModelTransform.visit_node_intrinsic_function_fn_get_att

    def visit_get_att(self: ChangeSetModelTransform, node: object) -> object:
        try:
            return original(self, node)
        except ValidationError as exc:
            if "Unresolved resource dependencies" not in str(exc):
                raise
            return self.visit(node.arguments)  # type: ignore[attr-defined]

    ChangeSetModelTransform.visit_node_intrinsic_function_fn_get_att = visit_get_att  # type: ignore[method-assign]
    return "GetAtt of SAM-generated resources resolved after the SAM transform"


def cfn_list_parameter_on_delete() -> str:
    from localstack.services.cloudformation.engine.v2.change_set_model_preproc import (
        ChangeSetModelPreproc,
        PreprocEntityDelta,
    )

    original = ChangeSetModelPreproc.visit_node_parameter

    def visit_parameter(self: ChangeSetModelPreproc, node: object) -> PreprocEntityDelta:
        delta = original(self, node)
        type_ = self.visit(node.type_).before  # type: ignore[attr-defined]
        if isinstance(delta.before, str) and isinstance(type_, str) and (
                type_ == "CommaDelimitedList" or type_.startswith("List<")):
            return PreprocEntityDelta(before=[item.strip() for item in delta.before.split(",")], after=delta.after)
        return delta

    ChangeSetModelPreproc.visit_node_parameter = visit_parameter  # type: ignore[method-assign]
    return "list parameters of a stack being deleted are split like those of a stack being deployed"


def lambda_image_local() -> str:
    from localstack.aws.api.lambda_ import Runtime
    from localstack.services.lambda_.invocation import docker_runtime_executor as dre
    from localstack.utils.docker_utils import DOCKER_CLIENT

    image = dre.resolver.get_image_for_runtime(Runtime.python3_13)
    DOCKER_CLIENT.inspect_image(image)  # raises NoSuchImage: `make local-image` has not built it
    platform = dre.docker_platform(dre.Architecture.x86_64)  # None under LAMBDA_IGNORE_ARCHITECTURE=1
    dre.PULLED_IMAGES.add((image, platform))
    return f"{image} (local, platform {platform or 'as built'}) is used without a pull"


def lambda_init_standin() -> str:
    from localstack.packages.api import InstallTarget
    from localstack.services.lambda_.packages import lambda_runtime_package

    installer = lambda_runtime_package.get_installer()
    rapid = os.path.join(installer._get_install_dir(InstallTarget.VAR_LIBS), "var", "rapid")
    marker = installer._get_install_marker_path(installer._get_install_dir(InstallTarget.VAR_LIBS))
    if marker != os.path.join(rapid, "init"):
        raise RuntimeError(f"the init binary is expected at {marker}, not {rapid}/init")
    os.makedirs(rapid, exist_ok=True)
    shutil.copyfile(os.environ["VPCE_GUARD_LAMBDA_INIT"], os.path.join(rapid, "init"))
    shutil.copyfile(os.environ["VPCE_GUARD_LAMBDA_RIE"], os.path.join(rapid, "aws-lambda-rie"))
    for name in ("init", "aws-lambda-rie"):
        os.chmod(os.path.join(rapid, name), 0o755)  # noqa: S103 - copied into the container, run there
    if not installer.is_installed():
        raise RuntimeError("LocalStack does not see the stand-in as installed")
    return f"stand-in init + stock aws-lambda-rie in {rapid}"


WORKAROUNDS: dict[str, Callable[[], str]] = {
    "dynamodb-on-moto": dynamodb_on_moto,
    "cfn-getatt-sam-generated": cfn_getatt_sam_generated,
    "cfn-list-parameter-on-delete": cfn_list_parameter_on_delete,
    "lambda-image-local": lambda_image_local,
    "lambda-init-standin": lambda_init_standin,
}


def apply_all() -> dict[str, dict[str, object]]:
    from localstack.version import __version__

    status: dict[str, dict[str, object]] = {}
    for name, apply in WORKAROUNDS.items():
        if __version__ != LOCALSTACK_VERSION:
            status[name] = {"ok": False,
                            "detail": f"written for LocalStack {LOCALSTACK_VERSION}, this is {__version__}"}
            continue
        try:
            status[name] = {"ok": True, "detail": apply()}
        except Exception as exc:  # reported by name, whatever broke
            status[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}",
                            "trace": traceback.format_exc(limit=3)}
    return status


if STATUS:  # run by LocalStack for the rehearsal (tests import this file only to read it)
    with open(STATUS + ".tmp", "w") as fh:
        json.dump(apply_all(), fh, indent=2)
    os.replace(STATUS + ".tmp", STATUS)
