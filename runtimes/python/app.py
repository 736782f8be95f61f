"""The wasmless Python runtime.

One component, compiled once per host, runs every Python function: the host
mounts the function's files read-only at /kubeless and names its handler in
MOD_NAME and FUNC_HANDLER (kubeless's variables). Each event gets a fresh
instance, so the function's module is imported (its module-level code runs)
once per instance, before its event: in `init` when the host makes the
instance ahead of its event, else at the start of the event. Where the spec
lets an instance serve several events in a row (``spec.instanceReuse``), the
imported module, and whatever its code keeps at module level, serve them all.

The handler is kubeless's: ``def handler(event, context)``;
``event["extensions"]["request"]`` answers the bottle request calls kubeless
functions make (``_wasmless_request.py``). ``event["data"]``
is the parsed JSON when the content type is JSON, else text (or bytes when
it is not UTF-8). A str or bytes result is the body; any other value is sent
as JSON; ``(body, status)`` or ``(body, status, headers)`` sets the status
and headers. An exception is a 500 with its message. An ``async def``
handler is run to completion (it may await other coroutines; there is no
event loop for I/O in the sandbox).
"""

import gc
import importlib
import importlib.util
import inspect
import json
import marshal
import os
import py_compile
import sys
import traceback
import types

# The standard library is not on a file system inside the sandbox: a module
# is there only if it was imported when the runtime was built (and
# snapshotted). So the runtime imports the pure-Python standard library a
# function is likely to use; `STDLIB` is the list, and a module missing from
# this build of CPython is skipped.
STDLIB = """
abc argparse array ast asyncio base64 binascii bisect calendar cmath codecs
collections collections.abc colorsys contextlib copy csv dataclasses datetime
decimal difflib email email.message email.utils encodings.idna enum errno fnmatch fractions
functools gettext glob graphlib gzip hashlib heapq hmac html html.entities
html.parser http http.cookies importlib.metadata importlib.resources io
ipaddress itertools json keyword locale logging marshal math mimetypes numbers
operator pathlib pickle pkgutil platform pprint py_compile queue quopri random re
reprlib secrets shlex shutil statistics string stringprep struct sys
tempfile textwrap threading time timeit tokenize tomllib traceback types
typing unicodedata urllib urllib.parse uuid warnings weakref xml
xml.dom.minidom xml.etree.ElementTree zipfile zlib zoneinfo
""".split()

# Outgoing HTTP through the host (before anything imports urllib.request,
# which looks for http.client's HTTPS support when it is imported).
import _wasmless_http  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

for _name in STDLIB:
    try:
        importlib.import_module(_name)
    except Exception:  # not in this build of CPython, or needs the OS
        pass

from _wasmless_request import Request
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import Context, Error, Event, Extensions, HttpRequest, Response

CODE_DIR = "/kubeless"
# Set by the host for its own run that compiles a function's files to
# bytecode (see `_compile_all`), whose event comes from HOST_NAMESPACE, which
# no event from outside the host has: a function's own environment that
# sets it does not turn its events into that run.
PRECOMPILE = "WASMLESS_PRECOMPILE"
HOST_NAMESPACE = "host.wasmless.io"
# The host's folder of that bytecode (read-only to events): the import
# system's `sys.pycache_prefix`, so /kubeless/a/b.py is compiled to
# <folder>/kubeless/a/b.<TAG>.pyc.
PYCACHE = "WASMLESS_PYCACHE"
TAG = sys.implementation.cache_tag
# The flags word of a hash-based .pyc that is not checked against its source
# (PEP 552): what `_compile_all` writes.
UNCHECKED_HASH = 0b01
# Set by the host only for its run that makes a snapshot of a function (its
# module imported, the event path rehearsed) to start each of its instances
# from: the handler's module source, given here because that run must not
# touch the file system. An open file or folder would live on in the
# snapshot as a handle that no later instance has (the host refuses a
# snapshot whose run kept one).
SNAPSHOT_SOURCE = "WASMLESS_SNAPSHOT_SOURCE"


def _data(event):
    raw = bytes(event.data)
    content_type = event.event_type.split(";")[0].strip().lower()
    if raw and (content_type == "application/json" or content_type.endswith("+json")):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _event(event):
    request = event.extensions.request
    return {
        "data": _data(event),
        "event-id": event.event_id,
        "event-type": event.event_type,
        "event-time": event.event_time,
        "event-namespace": event.event_namespace,
        "extensions": {
            "request": None
            if request is None
            else Request(
                request.method, request.path, request.query, request.headers, bytes(event.data)
            ),
            "attributes": dict(event.extensions.attributes),
        },
    }


def _context(context):
    return {
        "function-name": context.function_name,
        "timeout": str(context.timeout // 1000),
        "runtime": context.runtime,
        "memory-limit": str(context.memory_limit),
    }


def _body(value):
    """The body bytes and default content type of a handler's result."""
    if value is None:
        return b"", "text/plain; charset=utf-8"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), "application/octet-stream"
    if isinstance(value, str):
        return value.encode("utf-8"), "text/plain; charset=utf-8"
    return json.dumps(value).encode("utf-8"), "application/json"


def _response(result):
    status, headers = 200, {}
    if isinstance(result, tuple) and 2 <= len(result) <= 3:
        if len(result) == 3:
            result, status, headers = result
        else:
            result, status = result
    body, content_type = _body(result)
    headers = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    headers.setdefault("content-type", content_type)
    return Response(int(status), list(headers.items()), body)


def _load(name):
    """Imports the handler's module, which is /kubeless/<name>.py, without
    the import system's search (finders, path hooks, stat calls): that work
    ran on every event, each event being a fresh instance. Its bytecode is
    read from the host's bytecode folder when the host had it compiled
    (`_compile_all`), else the source is compiled. Modules it imports are
    found the usual way (and their bytecode too)."""
    path = os.path.join(CODE_DIR, name + ".py")
    source = os.environ.get(SNAPSHOT_SOURCE)
    code = compile(source, path, "exec") if source is not None else _bytecode(name)
    if code is None:
        if not os.path.isfile(path):
            return importlib.import_module(name)
        with open(path, "rb") as source:
            code = compile(source.read(), path, "exec")
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _bytecode(name):
    """The code of /kubeless/<name>.py from the .pyc that `_compile_all`
    wrote, or None when there is none from this CPython."""
    if not sys.pycache_prefix:
        return None
    try:
        fd = os.open(f"{sys.pycache_prefix}{CODE_DIR}/{name}.{TAG}.pyc", os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    magic, flags = data[:4], int.from_bytes(data[4:8], "little")
    if magic != importlib.util.MAGIC_NUMBER or flags != UNCHECKED_HASH:
        return None
    return marshal.loads(memoryview(data)[16:])


def _compile_all():
    """The host's own run, once per function's files, with the bytecode
    folder (`sys.pycache_prefix`) writable: compiles every .py file in
    /kubeless (the handler's module, its siblings, installed packages) into
    it, as .pyc files that are not checked against their source (the host's
    folder of a function's files never changes). Each event is a fresh
    instance; without this, each compiled the source of every module it
    imported."""
    if not sys.pycache_prefix:
        raise Err(Error(500, f"{PYCACHE} is not set: nowhere to write bytecode\n"))
    compiled, failed = 0, []
    for folder, dirs, files in os.walk(CODE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(folder, file)
            try:
                py_compile.compile(
                    path,
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                )
                compiled += 1
            except py_compile.PyCompileError as error:
                cause = error.exc_value
                line = getattr(cause, "lineno", None)
                where = f" (line {line})" if line else ""
                reason = getattr(cause, "msg", cause)
                failed.append(f"{path[len(CODE_DIR) + 1:]}: {error.exc_type_name}: {reason}{where}")
            except OSError as error:
                failed.append(f"{path[len(CODE_DIR) + 1:]}: {error}")
    summary = f"compiled {compiled} files"
    if failed:
        summary += f"; {len(failed)} did not compile: " + "; ".join(failed[:10])
    return Response(200, [("content-type", "text/plain; charset=utf-8")], summary.encode())


def _handler():
    module_name = os.environ.get("MOD_NAME", "")
    function_name = os.environ.get("FUNC_HANDLER", "")
    if CODE_DIR not in sys.path:
        sys.path.insert(0, CODE_DIR)
    deps = os.path.join(CODE_DIR, ".deps")
    # The snapshot's run has no files (and the host makes none for a
    # function with installed packages).
    snapshot = SNAPSHOT_SOURCE in os.environ
    if not snapshot and os.path.isdir(deps) and deps not in sys.path:
        sys.path.insert(1, deps)
    module = _load(module_name)
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise AttributeError(
            f"{module_name}.py has no function {function_name!r} (spec.handler)"
        )
    return handler


def _message(error):
    lines = traceback.format_exception_only(type(error), error)
    return "".join(lines).strip()


# What `init` found: the handler, or the exception that importing its
# module raised (reported by the event). None until `init` or the first
# event ran.
_prepared = None


# Set in the host's snapshot of a busy function (see SNAPSHOT_SOURCE): its
# instances start with the module imported and the event path rehearsed.
_snapshotted = False


# The host's hint to `init`: "0" when the instance is made under steady
# load, with no quiet time for the rehearsal before its event.
WARM_UP = "WASMLESS_WARM_UP"


def _prepare():
    """The handler, with its module imported (its module-level code run),
    or the exception that raised: once per instance."""
    global _prepared
    if _prepared is None:
        sys.pycache_prefix = os.environ.get(PYCACHE) or None
        try:
            _prepared = (_handler(), None)
        except Exception as error:
            _prepared = (None, error)
    return _prepared


def _rehearse():
    """Runs the runtime's own path of an event (`Handler.handle`) on two
    made-up events, with a stand-in for the function's handler, which it
    never calls. Each page of memory that an event is first to write costs
    it a page fault and a copy of the page, and CPython writes to every
    object it touches (its reference count): run here, ahead of the event,
    the same path writes to the same pages, and the event finds them in
    place (benches/README.md has the numbers)."""
    global _prepared
    prepared = _prepared
    _prepared = (_stand_in, None)
    try:
        for data, content_type in ((b'{"name": "a"}', "application/json"), (b"a", "text/plain")):
            request = HttpRequest("POST", "/", "", [("content-type", content_type)])
            event = Event(
                data,
                "rehearsal",
                content_type,
                "1970-01-01T00:00:00Z",
                "rehearsal",
                Extensions(request, [("a", "b")]),
            )
            Handler().handle(event, Context("rehearsal", 1000, "python", 1 << 20))
    finally:
        _prepared = prepared


def _freeze():
    """Leaves every object alive now out of the cyclic garbage collector's
    passes (`gc.freeze`), at the end of a snapshot. A collection during an
    event would otherwise walk the interpreter's and the function's objects,
    all of them in the snapshot, and write to each one's header: a page
    fault and a copy of the page for each page they are on, in every fresh
    instance, for objects that live as long as the instance anyway. Objects
    the event makes are collected as before."""
    gc.collect()
    gc.freeze()


def _stand_in(event, context):
    """The rehearsal's handler: what a handler typically does."""
    data = event["data"]
    if isinstance(data, dict):
        return {"greeting": f"Hello, {data.get('name', 'world')}!", "function": context["function-name"]}
    return f"Hello, {data or 'world'}!\n"


class Init(exports.Init):
    def init(self):
        # The host calls this when it makes an instance ahead of its event,
        # so that the event does not pay for the import, nor for the first
        # run of the runtime's own steps (an event on an instance made for
        # it does not rehearse: that would only add to it). Under steady
        # load the host says there is no quiet time before the event
        # (WASMLESS_WARM_UP=0): the rehearsal would then only add to the
        # CPU time each event costs, so it is left out.
        global _snapshotted
        if _snapshotted:
            # An instance of the function's snapshot: the module is
            # imported and the event path rehearsed already.
            return
        _, error = _prepare()
        if SNAPSHOT_SOURCE in os.environ:
            if error is not None:
                # Not a state to start every instance from: the host keeps
                # the function as it is, and its events report the error.
                raise error
            _rehearse()
            # The C library read the environment once and keeps it: what
            # the instances of the snapshot see is the function's own.
            del os.environ[SNAPSHOT_SOURCE]
            os.environ.pop(WARM_UP, None)
            _snapshotted = True
            _freeze()
            return
        if os.environ.get(WARM_UP, "1") != "0":
            _rehearse()


class Handler(exports.Handler):
    def handle(self, event, context):
        if event.event_namespace == HOST_NAMESPACE and os.environ.get(PRECOMPILE):
            sys.pycache_prefix = os.environ.get(PYCACHE) or None
            return _compile_all()
        try:
            handler, error = _prepare()
            if error is not None:
                raise error
            result = handler(_event(event), _context(context))
            if inspect.isawaitable(result):
                result = _run(result)
            return _response(result)
        except Exception as error:
            traceback.print_exc()
            raise Err(Error(500, _message(error) + "\n"))


def _run(awaitable):
    """Runs an async handler to completion. There is no event loop in the
    sandbox (no sockets or timers to wait on): an async handler may await
    other coroutines, not I/O."""
    steps = awaitable.__await__()
    try:
        while True:
            steps.send(None)
    except StopIteration as done:
        return done.value


# The runtime's own snapshot (componentize-py pre-initializes this module):
# the interpreter, the standard library imported above and this module.
_freeze()
