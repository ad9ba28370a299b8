#!/var/lang/bin/python3
"""Stand-in for LocalStack's Lambda init, run inside each function container as `/var/rapid/init`.

Workaround `lambda-init-standin` (LocalStack 2026.3.0): LocalStack downloads its own fork of the Lambda
runtime interface emulator from GitHub, which a machine that reaches package registries only cannot; SAM
CLI's bundled, stock emulator (`aws-lambda-rie`) is present but speaks another protocol. This program speaks
LocalStack's executor protocol on one side and forwards each invocation to the stock emulator on the other:

* ready:   POST {LOCALSTACK_RUNTIME_ENDPOINT}/status/{LOCALSTACK_RUNTIME_ID}/ready (or .../error)
* invoke:  LocalStack POSTs {"invoke-id", "invoked-function-arn", "payload", "trace-id"} to :9563/invoke
* result:  POST {endpoint}/invocations/{invoke-id}/logs  {"logs": …}, then .../response or .../error

Workaround `layers-into-opt` (same version): the community edition registers layers but does not put them in
the container, so before reporting ready this reads the function's layers through the Lambda API and unzips
each into /opt, in the function's layer order, as Lambda does.

Runs on the container's Python (the local image's /var/lang) with the standard library, plus boto3 from the
image's /var/runtime for the Lambda API. Nothing here is imported by vpce-guard itself.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INVOKE_PORT = 9563
RIE = "/var/rapid/aws-lambda-rie"
RIE_PORT = 8080
RIE_URL = f"http://127.0.0.1:{RIE_PORT}/2015-03-31/functions/function/invocations"
OPT = "/opt"


def log(message: str) -> None:
    print(f"[lambda-init-standin] {message}", file=sys.stderr, flush=True)


def post(url: str, body: bytes, content_type: str = "application/json") -> None:
    req = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - LocalStack's own http endpoint
                                 headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - LocalStack's own http endpoint
        resp.read()


def reachable(location: str, endpoint_url: str) -> str:
    """A layer's download URL, pointed at the address this container reaches LocalStack at (the URL names
    LocalStack's own host name, which does not resolve inside the container)."""
    loc, ep = urllib.parse.urlsplit(location), urllib.parse.urlsplit(endpoint_url)
    return urllib.parse.urlunsplit((ep.scheme, ep.netloc, loc.path, loc.query, loc.fragment))


def install_layers() -> list[str]:
    """Unzip the function's layers into /opt (workaround `layers-into-opt`); returns their ARNs."""
    sys.path.append("/var/runtime")
    import boto3  # the image's SDK (/var/runtime)

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or f"http://{os.environ['LOCALSTACK_HOSTNAME']}:4566"
    client = boto3.client("lambda", endpoint_url=endpoint)
    layers = client.get_function_configuration(FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"]).get("Layers", [])
    arns = []
    for layer in layers:
        content = client.get_layer_version_by_arn(Arn=layer["Arn"])["Content"]
        with urllib.request.urlopen(reachable(content["Location"], endpoint), timeout=60) as resp:  # noqa: S310
            data = resp.read()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.extractall(OPT)
        arns.append(layer["Arn"])
    return arns


class Emulator:
    """The stock runtime interface emulator, started once; its output is the function's log."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen([RIE, "--log-level", "error"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            with self._lock:
                self._lines.append(line)

    def take_logs(self) -> str:
        with self._lock:
            text, self._lines = "".join(self._lines), []
        return text

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{RIE_PORT}/", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # it answers (404 on /): listening
            except OSError:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    raise RuntimeError(f"aws-lambda-rie exited with {code}: {self.take_logs()}") from None
                time.sleep(0.05)
        raise RuntimeError("aws-lambda-rie is not listening after 30 s")

    def invoke(self, payload: str, trace_id: str) -> tuple[bytes, bool]:
        """The function's answer, and whether it is an error (the emulator marks one with a header or with
        the errorType/errorMessage shape of the body)."""
        req = urllib.request.Request(RIE_URL, data=payload.encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-Amzn-Trace-Id": trace_id})
        try:
            with urllib.request.urlopen(req, timeout=905) as resp:  # noqa: S310 - loopback
                body = resp.read()
                flagged = bool(resp.headers.get("X-Amz-Function-Error"))
        except urllib.error.HTTPError as exc:
            return exc.read() or json.dumps({"errorMessage": str(exc), "errorType": "Runtime.Unknown"}).encode(), True
        return body, flagged or _looks_like_error(body)


def _looks_like_error(body: bytes) -> bool:
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, dict) and set(value) >= {"errorMessage", "errorType"}


def main() -> None:
    base = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"].rstrip("/")
    runtime_id = os.environ["LOCALSTACK_RUNTIME_ID"]
    try:
        arns = install_layers()
        log(f"layers unzipped into {OPT}: {arns or 'none'}")
        emulator = Emulator()
        emulator.wait_listening()
    except Exception as exc:  # any start failure is reported to LocalStack, whatever it is
        log(f"start failed: {exc!r}")
        post(f"{base}/status/{runtime_id}/error", json.dumps({"errorMessage": repr(exc),
                                                                "errorType": "Runtime.InitStandInFailed"}).encode())
        raise

    def run(invocation: dict[str, str]) -> None:
        request_id = invocation["invoke-id"]
        body, is_error = emulator.invoke(invocation["payload"], invocation.get("trace-id", ""))
        post(f"{base}/invocations/{request_id}/logs", json.dumps({"logs": emulator.take_logs()}).encode())
        post(f"{base}/invocations/{request_id}/{'error' if is_error else 'response'}", body)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/invoke":
                self.send_response(404)
                self.end_headers()
                return
            invocation = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(200)
            self.end_headers()
            threading.Thread(target=run, args=(invocation,), daemon=True).start()

        def log_message(self, format: str, *args: object) -> None:  # the base class's signature
            return

    server = ThreadingHTTPServer(("0.0.0.0", INVOKE_PORT), Handler)  # noqa: S104 - inside the container
    post(f"{base}/status/{runtime_id}/ready", b"{}")
    log("ready")
    server.serve_forever()


if __name__ == "__main__":
    main()
