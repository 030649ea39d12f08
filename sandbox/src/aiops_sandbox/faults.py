"""A fault-injecting HTTP proxy in front of the emulator (test helper; the product never imports it).

Point an AWS connection's ``endpoint_url`` at :attr:`FaultProxy.endpoint` and every request is
forwarded to the emulator, except those matching a :class:`Fault` rule, which get the AWS error that
rule names instead — throttling N times then success, AccessDenied for a whole service, ... The
error is written in the wire format of the request's protocol (JSON 1.0/1.1, Smithy RPC v2 CBOR,
query XML, EC2 XML, REST-JSON), so botocore parses the error code exactly as it would from AWS.

The service is read from the SigV4 credential scope (``.../us-east-1/monitoring/aws4_request``),
the operation from ``X-Amz-Target`` (JSON), the CBOR path (``/operation/GetMetricData``) or the
``Action=`` form field (query/EC2).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass
class Fault:
    """Answer ``times`` matching requests (None: all) with ``code`` / HTTP ``status``."""

    service: str  # SigV4 signing name: monitoring, ce, ssm, ec2, iam, sqs, securityhub, ...
    code: str = "ThrottlingException"
    status: int = 400
    times: int | None = 1
    operation: str | None = None  # e.g. GetMetricData; None: every operation of the service
    message: str = "injected by the fault proxy"
    hits: int = 0

    def take(self, service: str, operation: str | None) -> bool:
        if service != self.service or (self.operation and operation != self.operation):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


@dataclass
class FaultProxy:
    """``with FaultProxy(upstream) as proxy: proxy.add(Fault("ce", "LimitExceededException", times=3))``."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str | None, bool]] = field(default_factory=list)  # (service, operation, faulted)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.seen.clear()

    def calls(self, service: str, operation: str | None = None) -> int:
        return sum(1 for s, o, _ in self.seen if s == service and (operation is None or o == operation))

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        proxy = self
        up = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                service, operation = _service_and_operation(self.path, dict(self.headers.items()), body)
                with proxy._lock:
                    fault = next((f for f in proxy.faults if f.take(service, operation)), None)
                    proxy.seen.append((service, operation, fault is not None))
                if fault is not None:
                    status, headers, payload = error_response(fault, service, dict(self.headers.items()))
                else:
                    conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=60)
                    fwd = {k: v for k, v in self.headers.items() if k.lower() not in {"connection"}}
                    conn.request(self.command, self.path, body=body, headers=fwd)
                    resp = conn.getresponse()
                    payload = resp.read()
                    status = resp.status
                    headers = [(k, v) for k, v in resp.getheaders()
                               if k.lower() not in {"transfer-encoding", "connection", "content-length"}]
                    conn.close()
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fault-proxy").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _service_and_operation(path: str, headers: dict[str, str], body: bytes) -> tuple[str, str | None]:
    lower = {k.lower(): v for k, v in headers.items()}
    m = _SCOPE.search(lower.get("authorization", ""))
    service = m.group(1) if m else ""
    target = lower.get("x-amz-target")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if "/operation/" in path:  # Smithy RPC v2 CBOR: /service/<Service>/operation/<Operation>
        return service, path.rsplit("/operation/", 1)[1].split("?")[0]
    if "x-www-form-urlencoded" in lower.get("content-type", ""):
        action = parse_qs(body.decode(errors="replace")).get("Action")
        return service, action[0] if action else None
    return service, None


def _cbor_text(s: str) -> bytes:
    raw = s.encode()
    n = len(raw)
    if n < 24:
        head = bytes([0x60 + n])
    elif n < 256:
        head = bytes([0x78, n])
    else:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    return head + raw


def error_response(fault: Fault, service: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """The error in the wire format botocore expects for the request's protocol."""
    lower = {k.lower(): v for k, v in headers.items()}
    ctype = lower.get("content-type", "")
    rid = [("x-amzn-RequestId", "00000000-0000-4000-8000-00000000fa17")]
    if lower.get("smithy-protocol") == "rpc-v2-cbor" or "cbor" in ctype:
        body = bytes([0xA2]) + _cbor_text("__type") + _cbor_text(fault.code) + _cbor_text("message") + \
            _cbor_text(fault.message)
        return fault.status, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"), *rid], body
    if "amz-json" in ctype or ("json" in ctype and lower.get("x-amz-target")):
        body = json.dumps({"__type": fault.code, "message": fault.message}).encode()
        return fault.status, [("Content-Type", ctype or "application/x-amz-json-1.1"),
                              ("x-amzn-query-error", f"{fault.code};Sender"), *rid], body
    if service == "ec2":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{fault.code}</Code>"
                f"<Message>{fault.message}</Message></Error></Errors><RequestID>fa17</RequestID></Response>").encode()
        return fault.status, [("Content-Type", "text/xml"), *rid], body
    if "x-www-form-urlencoded" in ctype:  # query protocol (IAM, STS, SNS, ...)
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code><Message>{fault.message}"
                f"</Message></Error><RequestId>fa17</RequestId></ErrorResponse>").encode()
        return fault.status, [("Content-Type", "text/xml"), *rid], body
    # REST-JSON (Security Hub, SESv2, ...) and anything else
    body = json.dumps({"message": fault.message}).encode()
    return fault.status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", fault.code), *rid], body
