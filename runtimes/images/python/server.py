"""The wasmless fallback runtime for Python.

Runs a kubeless-style function that cannot run in wasm (a package with
native code, say) as an ordinary process, with the same handler contract as
the wasm runtime (runtimes/python/app.py): ``def handler(event, context)``,
the same event and context fields, the same result rules, an exception is a
500 with its message, and a call past the timeout is a 408.

Every event runs in a fresh child process forked from the server after the
function's module was imported, so no state leaks from one event to the
next (as with one wasm instance per event) and a runaway call can be killed.

It uses the standard library only. Configuration, all from the environment:

  FUNC_DIR           the function's files (default /kubeless); packages are
                     looked up in FUNC_DIR/.deps too
  MOD_NAME           the handler's module, FUNC_HANDLER its function
  FUNC_NAME          the function's name (context["function-name"])
  FUNC_TIMEOUT       seconds per event (default 180)
  FUNC_RUNTIME       the runtime from the spec (context["runtime"])
  FUNC_MEMORY_LIMIT  bytes (context["memory-limit"])
  FUNC_LISTEN        the address to listen on (default 0.0.0.0)
  FUNC_PORT          the port (default 8080; 0 picks a free one)

It prints "listening on http://HOST:PORT" once it serves. Besides the
function at every path it serves /healthz and /metrics (Prometheus text, the
same series names as wasmless host).
"""

import importlib
import inspect
import json
import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
import uuid
import warnings
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from _wasmless_request import Request

# Forking per event from a threaded server is what this runtime does on
# purpose: the child only runs the handler and exits.
warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")

FUNC_DIR = os.environ.get("FUNC_DIR", "/kubeless")
MOD_NAME = os.environ.get("MOD_NAME", "")
FUNC_HANDLER = os.environ.get("FUNC_HANDLER", "")
FUNC_NAME = os.environ.get("FUNC_NAME", MOD_NAME)
TIMEOUT = float(os.environ.get("FUNC_TIMEOUT", "180"))
CONTEXT = {
    "function-name": FUNC_NAME,
    "timeout": str(int(TIMEOUT)),
    "runtime": os.environ.get("FUNC_RUNTIME", "python3.x"),
    "memory-limit": os.environ.get("FUNC_MEMORY_LIMIT", "0"),
}
# Headers that carry the event's fields (set by wasmless when it forwards an
# event); they are not part of the request the function sees.
EVENT_HEADERS = ("event-id", "event-type", "event-time", "event-namespace", "event-request")
ATTRIBUTE_PREFIX = "event-attribute-"
HTTP_NAMESPACE = "http.wasmless.io"
MAX_BODY = 16 << 20
# The listening socket's descriptor, closed in each event's child.
LISTENER_FD = None
# Duration buckets of wasmless host: 10 us, then x4, twelve of them.
BUCKETS = [0.00001 * 4**i for i in range(12)]


def load_handler():
    sys.path.insert(0, FUNC_DIR)
    deps = os.path.join(FUNC_DIR, ".deps")
    if os.path.isdir(deps):
        sys.path.insert(1, deps)
    module = importlib.import_module(MOD_NAME)
    handler = getattr(module, FUNC_HANDLER, None)
    if not callable(handler):
        raise AttributeError(f"{MOD_NAME}.py has no function {FUNC_HANDLER!r} (spec.handler)")
    return handler


def now_rfc3339():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The contract's rules below (data, body, response) are the same as the wasm
# runtime's in runtimes/python/app.py, written again because this file must
# stand alone in its image; tests/fallback.rs checks that both agree.


def parse_data(raw, content_type):
    content_type = content_type.split(";")[0].strip().lower()
    if raw and (content_type == "application/json" or content_type.endswith("+json")):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def body_of(value):
    if value is None:
        return b"", "text/plain; charset=utf-8"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), "application/octet-stream"
    if isinstance(value, str):
        return value.encode("utf-8"), "text/plain; charset=utf-8"
    return json.dumps(value).encode("utf-8"), "application/json"


def response_of(result):
    status, headers = 200, {}
    if isinstance(result, tuple) and 2 <= len(result) <= 3:
        if len(result) == 3:
            result, status, headers = result
        else:
            result, status = result
    body, content_type = body_of(result)
    headers = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    headers.setdefault("content-type", content_type)
    return int(status), headers, body


def run_to_completion(awaitable):
    """Runs a coroutine; unlike the wasm sandbox, real I/O may be awaited."""
    import asyncio

    async def wrap():
        return await awaitable

    return asyncio.run(wrap())


def call(handler, event):
    """Runs the handler in a forked child; returns (status, headers, body,
    error) where error is None, "error" or "timeout"."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        # The child must not keep the server's socket open: if the server
        # died, new connections would queue on it with no one to accept.
        if LISTENER_FD is not None:
            try:
                os.close(LISTENER_FD)
            except OSError:
                pass
        try:
            result = handler(event, dict(CONTEXT))
            if inspect.isawaitable(result):
                result = run_to_completion(result)
            outcome = ("ok", response_of(result))
        except BaseException as error:  # noqa: BLE001 - reported to the caller
            traceback.print_exc()
            message = "".join(traceback.format_exception_only(type(error), error)).strip()
            outcome = ("error", message + "\n")
        try:
            payload = pickle.dumps(outcome)
        except Exception as error:  # noqa: BLE001
            payload = pickle.dumps(("error", f"the result cannot be sent: {error}\n"))
        sys.stdout.flush()
        sys.stderr.flush()
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + TIMEOUT
    chunks = []
    timed_out = False
    with os.fdopen(read_end, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([pipe], [], [], left)
            if not ready:
                continue
            chunk = os.read(pipe.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    if timed_out:
        return 408, {"content-type": "text/plain; charset=utf-8"}, b"Request timeout exceeded\n", "timeout"
    try:
        kind, value = pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001 - the child died before answering
        return 500, {"content-type": "text/plain; charset=utf-8"}, b"the function's process died\n", "error"
    if kind == "ok":
        status, headers, body = value
        return status, headers, body, None
    return 500, {"content-type": "text/plain; charset=utf-8"}, value.encode("utf-8"), "error"


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = 0
        self.failures = {}
        self.counts = [0] * len(BUCKETS)
        self.total = 0.0

    def observe(self, elapsed, failure):
        with self.lock:
            self.calls += 1
            self.total += elapsed
            for i, bound in enumerate(BUCKETS):
                if elapsed <= bound:
                    self.counts[i] += 1
            if failure:
                self.failures[failure] = self.failures.get(failure, 0) + 1

    def text(self):
        label = 'function="%s"' % FUNC_NAME.replace("\\", "\\\\").replace('"', '\\"')
        with self.lock:
            lines = [
                "# HELP wasmless_function_calls Events handled, per function.",
                "# TYPE wasmless_function_calls counter",
                "wasmless_function_calls_total{%s} %d" % (label, self.calls),
                "# HELP wasmless_function_failures Events that ended in an error, per function and reason.",
                "# TYPE wasmless_function_failures counter",
            ]
            for reason, count in sorted(self.failures.items()):
                lines.append('wasmless_function_failures_total{%s,reason="%s"} %d' % (label, reason, count))
            lines += [
                "# HELP wasmless_function_duration_seconds Time to handle an event.",
                "# TYPE wasmless_function_duration_seconds histogram",
            ]
            for bound, count in zip(BUCKETS, self.counts):
                lines.append('wasmless_function_duration_seconds_bucket{%s,le="%g"} %d' % (label, bound, count))
            lines.append('wasmless_function_duration_seconds_bucket{%s,le="+Inf"} %d' % (label, self.calls))
            lines.append("wasmless_function_duration_seconds_sum{%s} %f" % (label, self.total))
            lines.append("wasmless_function_duration_seconds_count{%s} %d" % (label, self.calls))
        return ("\n".join(lines) + "\n# EOF\n").encode("utf-8")


class Server(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    handler = None
    metrics = Metrics()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def reply(self, status, headers, body):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def event(self, raw):
        headers = {k.lower(): v for k, v in self.headers.items()}
        url = urlsplit(self.path)
        content_type = headers.get("event-type") or headers.get("content-type") or "application/octet-stream"
        attributes = {k[len(ATTRIBUTE_PREFIX):]: v for k, v in headers.items() if k.startswith(ATTRIBUTE_PREFIX)}
        request = None
        if headers.get("event-request") != "none":
            # The wasm runtime's request (bottle's calls), beside this file.
            request = Request(
                self.command,
                url.path or "/",
                url.query,
                [
                    (k, v)
                    for k, v in headers.items()
                    if k not in EVENT_HEADERS and not k.startswith(ATTRIBUTE_PREFIX)
                ],
                raw,
            )
        return {
            "data": parse_data(raw, content_type),
            "event-id": headers.get("event-id") or str(uuid.uuid4()),
            "event-type": content_type,
            "event-time": headers.get("event-time") or now_rfc3339(),
            "event-namespace": headers.get("event-namespace") or HTTP_NAMESPACE,
            "extensions": {"request": request, "attributes": attributes},
        }

    def handle_any(self):
        path = urlsplit(self.path).path
        if path == "/healthz":
            return self.reply(200, {"content-type": "text/plain"}, b"ok\n")
        if path == "/metrics":
            return self.reply(200, {"content-type": "text/plain; version=0.0.4"}, self.metrics.text())
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            return self.reply(413, {"content-type": "text/plain"}, b"request body too large\n")
        raw = self.rfile.read(length) if length else b""
        started = time.monotonic()
        status, headers, body, failure = call(self.handler, self.event(raw))
        self.metrics.observe(time.monotonic() - started, failure)
        if failure:
            headers["wasmless-error"] = failure
        self.reply(status, headers, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


def watch_parent():
    """Exits when the process that started this one (wasmless up, which
    sets FUNC_PARENT_PID) is gone, so that no server outlives it."""
    parent = int(os.environ.get("FUNC_PARENT_PID") or 0)
    while parent:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)


def main():
    threading.Thread(target=watch_parent, daemon=True).start()
    try:
        Server.handler = staticmethod(load_handler())
    except Exception:  # noqa: BLE001 - reported, then the server exits
        traceback.print_exc()
        print(f"cannot load the handler {MOD_NAME}.{FUNC_HANDLER} from {FUNC_DIR}", file=sys.stderr)
        sys.exit(1)
    listen = os.environ.get("FUNC_LISTEN", "0.0.0.0")
    port = int(os.environ.get("FUNC_PORT", "8080"))
    server = ThreadingHTTPServer((listen, port), Server)
    server.daemon_threads = True
    global LISTENER_FD
    LISTENER_FD = server.socket.fileno()
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
