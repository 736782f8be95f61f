"""Outgoing HTTP for Python functions: ``http.client`` and
``urllib.request`` over the host's ``wasmless:function/outbound`` import.

HTTP does not go through the sandbox's sockets (a function has those only
for its ``tcp://`` entries, and there is no ``ssl`` module):
``http.client.HTTPConnection`` (and an ``HTTPSConnection`` of the same kind,
since the host does TLS) gets a stand-in for its socket: it gathers the request the connection writes and,
once the request is whole, has the host send it. The host checks it
against the function's ``spec.allowedOutboundHosts`` and the address the
name resolves to, and returns the whole answer, which the connection then
reads as it would from a socket. Everything built on ``http.client`` works
unchanged: ``urllib.request.urlopen`` (which follows redirects itself, each
one a new request the host checks again), ``http.client`` by hand.

A refusal is an ``OutboundDenied`` (a ``PermissionError``), any other
failure an ``OutboundError`` (an ``OSError``): ``urlopen`` reports both as
``urllib.error.URLError`` with the host's message as its reason.
"""

import http
import http.client
import io

from componentize_py_types import Err
from wit_world.imports import outbound


class OutboundError(OSError):
    """The destination did not answer, or the request cannot be sent."""


class OutboundDenied(OutboundError, PermissionError):
    """The function's allow-list does not grant the destination."""


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}


def _dechunk(body):
    """The bytes of a chunked body, or None while it is not whole."""
    out = bytearray()
    rest = bytes(body)
    while True:
        line, sep, after = rest.partition(b"\r\n")
        if not sep:
            return None
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # The last chunk, then trailers, then an empty line.
            whole = after.startswith(b"\r\n") or b"\r\n\r\n" in after
            return bytes(out) if whole else None
        if len(after) < size + 2:
            return None
        out += after[:size]
        rest = after[size + 2 :]


class _Socket:
    """What ``http.client`` takes for its socket."""

    def __init__(self, scheme, host, port):
        self._scheme = scheme
        self._host = host
        self._port = port
        self._out = bytearray()
        self._answers = []

    def sendall(self, data):
        self._out += data
        self._exchange_when_whole()

    def send(self, data):
        self.sendall(data)
        return len(data)

    def makefile(self, mode="rb", buffering=None):
        if not self._answers:
            raise OutboundError("no request was sent on this connection")
        return io.BufferedReader(io.BytesIO(self._answers.pop(0)))

    def settimeout(self, timeout):
        pass

    def setsockopt(self, *args):
        pass

    def close(self):
        self._out.clear()

    def _exchange_when_whole(self):
        head_end = self._out.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self._out[:head_end]).decode("iso-8859-1")
        body = bytes(self._out[head_end + 4 :])
        lines = head.split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = []
        length = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            lower = name.lower()
            if lower == "content-length":
                length = int(value)
            elif lower == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            if lower not in _HOP_BY_HOP and lower != "host":
                headers.append((name, value))
        if chunked:
            whole = _dechunk(body)
            if whole is None:
                return
            body = whole
        elif length is not None:
            if len(body) < length:
                return
            body = body[:length]
        else:
            body = b""
        self._out.clear()
        self._answers.append(self._send(method, target, headers, body))

    def _url(self, target):
        if target.startswith(("http://", "https://")):
            return target
        host = f"[{self._host}]" if ":" in self._host else self._host
        default = 443 if self._scheme == "https" else 80
        port = "" if self._port in (None, default) else f":{self._port}"
        return f"{self._scheme}://{host}{port}{target}"

    def _send(self, method, target, headers, body):
        url = self._url(target)
        try:
            answer = outbound.send(outbound.Request(method, url, headers, body))
        except Err as failed:
            error = failed.value
            if isinstance(error, outbound.OutboundError_Denied):
                raise OutboundDenied(error.value) from None
            raise OutboundError(error.value) from None
        reason = ""
        try:
            reason = http.HTTPStatus(answer.status).phrase
        except ValueError:
            pass
        lines = [f"HTTP/1.1 {answer.status} {reason}"]
        length = None
        for name, value in answer.headers:
            lower = name.lower()
            if lower == "content-length":
                length = value
            if lower in _HOP_BY_HOP:
                continue
            lines.append(f"{name}: {value}")
        if method.upper() == "HEAD" and length is not None:
            lines.append(f"content-length: {length}")
        else:
            lines.append(f"content-length: {len(answer.body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1", "replace")
        return raw + bytes(answer.body)


def _connect(self):
    self.sock = _Socket(self._wasmless_scheme, self.host, self.port)


class HTTPSConnection(http.client.HTTPConnection):
    """An HTTPS connection whose TLS the host does (its roots, its checks)."""

    default_port = http.client.HTTPS_PORT
    _wasmless_scheme = "https"

    def __init__(self, host, port=None, *, key_file=None, cert_file=None, timeout=None, source_address=None, context=None, check_hostname=None, blocksize=8192):
        super().__init__(host, port, timeout=timeout, source_address=source_address, blocksize=blocksize)


http.client.HTTPConnection._wasmless_scheme = "http"
http.client.HTTPConnection.connect = _connect
http.client.HTTPSConnection = HTTPSConnection
# urllib.request asks http.client for an ssl context; the host has the TLS
# settings, so there is none to give.
http.client._create_https_context = lambda http_version: None
if "HTTPSConnection" not in http.client.__all__:
    http.client.__all__.append("HTTPSConnection")
