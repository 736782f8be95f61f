"""The HTTP request of an event, as kubeless's Python runtime gave it.

kubeless ran Python functions in bottle and put bottle's request in
``event['extensions']['request']``; functions call ``get_header``, read
``query``, ``forms``, ``files``, ``json`` and ``body``. This object answers
those calls from the event's request and data. It is also the mapping this
runtime gave before (``method``, ``path``, ``query``, ``headers`` as keys),
so both kinds of function keep working. Everything is worked out on first
use: an event whose function never looks costs nothing more.
"""

import email.parser
import email.policy
import io
import json
import urllib.parse


class FormsDict(dict):
    """bottle's FormsDict: the last value of a key by ``[]``, ``get`` and
    attribute (``''`` when missing); all values by ``getall``."""

    def __init__(self, pairs=()):
        super().__init__()
        self._all = {}
        for key, value in pairs:
            self._all.setdefault(key, []).append(value)
            dict.__setitem__(self, key, value)

    def getall(self, key):
        return list(self._all.get(key, []))

    getlist = getall

    def getunicode(self, name, default=None, encoding=None):
        value = self.get(name, default)
        if isinstance(value, bytes):
            return value.decode(encoding or "utf-8")
        return value

    def decode(self, encoding=None):
        return self

    def allitems(self):
        return [(k, v) for k, values in self._all.items() for v in values]

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name, "")


class HeaderDict(dict):
    """Request headers by any case of their name."""

    def __init__(self, pairs=()):
        super().__init__((k.lower(), v) for k, v in pairs)

    def __getitem__(self, key):
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key):
        return dict.__contains__(self, str(key).lower())

    def get(self, key, default=None):
        return dict.get(self, str(key).lower(), default)

    def raw(self, key, default=None):
        return self.get(key, default)


class FileUpload:
    """An uploaded file of a multipart form, as bottle's FileUpload."""

    def __init__(self, name, filename, content_type, data, headers):
        self.name = name
        self.raw_filename = filename
        self.filename = filename.replace("\\", "/").rsplit("/", 1)[-1]
        self.content_type = content_type
        self.content_length = len(data)
        self.headers = HeaderDict(headers)
        self.file = io.BytesIO(data)

    def save(self, destination, overwrite=False, chunk_size=2**16):
        if hasattr(destination, "write"):
            destination.write(self.file.getvalue())
            return
        import os

        if os.path.isdir(destination):
            destination = os.path.join(destination, self.filename)
        if not overwrite and os.path.exists(destination):
            raise IOError("File exists.")
        with open(destination, "wb") as out:
            out.write(self.file.getvalue())


class Request(dict):
    """The request, as bottle's ``request`` and as a mapping."""

    def __init__(self, method, path, query, headers, body):
        super().__init__(method=method, path=path, query=query, headers=dict(headers))
        self._method = method
        self._path = path or "/"
        self._query_string = query or ""
        self._header_pairs = headers
        self._raw = body
        self._cache = {}

    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # bottle's attributes. A dict key of the same name keeps its old value.
    @property
    def method(self):
        return self._method.upper()

    @property
    def path(self):
        return self._path

    @property
    def fullpath(self):
        return self._path

    @property
    def query_string(self):
        return self._query_string

    @property
    def headers(self):
        return self._cached("headers", lambda: HeaderDict(self._header_pairs))

    def get_header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    @property
    def content_length(self):
        return len(self._raw)

    @property
    def query(self):
        return self._cached(
            "query",
            lambda: FormsDict(urllib.parse.parse_qsl(self._query_string, keep_blank_values=True)),
        )

    GET = query

    @property
    def body(self):
        """The body, as a file (bottle gave a file-like object)."""
        return io.BytesIO(self._raw)

    @property
    def json(self):
        def parse():
            kind = self.content_type.split(";")[0].strip().lower()
            if kind == "application/json" or kind.endswith("+json"):
                if not self._raw:
                    return None
                return json.loads(self._raw)
            return None

        return self._cached("json", parse)

    def _form(self):
        kind = self.content_type.split(";")[0].strip().lower()
        fields, files = [], []
        if kind == "application/x-www-form-urlencoded":
            text = self._raw.decode("latin-1")
            fields = urllib.parse.parse_qsl(text, keep_blank_values=True)
        elif kind == "multipart/form-data":
            head = f"Content-Type: {self.content_type}\r\n\r\n".encode("latin-1")
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                head + self._raw
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name is None:
                    continue
                filename = part.get_filename()
                data = part.get_payload(decode=True) or b""
                if filename is None:
                    fields.append((name, data.decode(part.get_content_charset() or "utf-8")))
                else:
                    files.append(
                        (
                            name,
                            FileUpload(
                                name,
                                filename,
                                part.get_content_type(),
                                data,
                                list(part.items()),
                            ),
                        )
                    )
        return fields, files

    @property
    def forms(self):
        return self._cached("forms", lambda: FormsDict(self._cached("form", self._form)[0]))

    @property
    def files(self):
        return self._cached("files", lambda: FormsDict(self._cached("form", self._form)[1]))

    @property
    def POST(self):
        fields, files = self._cached("form", self._form)
        return FormsDict(fields + files)

    @property
    def params(self):
        return FormsDict(self.query.allitems() + self.forms.allitems())

    @property
    def cookies(self):
        def parse():
            import http.cookies

            jar = http.cookies.SimpleCookie(self.headers.get("cookie", ""))
            return FormsDict((k, m.value) for k, m in jar.items())

        return self._cached("cookies", parse)

    def get_cookie(self, key, default=None):
        return self.cookies.get(key, default)

    @property
    def url(self):
        scheme = self.headers.get("x-forwarded-proto", "http")
        host = self.headers.get("x-forwarded-host") or self.headers.get("host", "localhost")
        url = f"{scheme}://{host}{self._path}"
        if self._query_string:
            url += "?" + self._query_string
        return url

    @property
    def remote_addr(self):
        forwarded = self.headers.get("x-forwarded-for", "")
        return forwarded.split(",")[0].strip() or None

    def __getattr__(self, name):
        # Properties above are found first; other bottle names are not here.
        raise AttributeError(f"the request has no attribute {name!r}")
