// kubeless ran Node.js functions in Express: `event.extensions.request` was
// its request and `event.extensions.response` its response. These classes
// answer the calls kubeless functions make on them. The engine evaluates
// this once, when it is made (in the runtime's pre-initialized snapshot),
// so an event only makes two small objects.
(() => {
  const decode = (text) => {
    try {
      return decodeURIComponent(text.replace(/\+/g, " "));
    } catch (e) {
      return text;
    }
  };
  // `a=1&a=2&b` as Express's query parser gives it: repeated keys as arrays.
  const parseQuery = (text) => {
    const out = {};
    for (const part of (text || "").split("&")) {
      if (!part) continue;
      const at = part.indexOf("=");
      const key = decode(at < 0 ? part : part.slice(0, at));
      const value = at < 0 ? "" : decode(part.slice(at + 1));
      if (Object.prototype.hasOwnProperty.call(out, key)) {
        out[key] = [].concat(out[key], value);
      } else {
        out[key] = value;
      }
    }
    return out;
  };
  const mime = (type) => (type || "").split(";")[0].trim().toLowerCase();
  const SHORT = {
    json: "application/json",
    urlencoded: "application/x-www-form-urlencoded",
    multipart: "multipart/*",
    html: "text/html",
    text: "text/plain",
    xml: "application/xml",
  };
  const typeMatches = (actual, wanted) => {
    let pattern = SHORT[wanted] || wanted.toLowerCase();
    if (!pattern.includes("/")) pattern = "*/" + pattern;
    const [a1, a2] = actual.split("/");
    const [p1, p2] = pattern.split("/");
    if (p2 && p2.startsWith("*+")) return a1 === p1 || p1 === "*" ? (a2 || "").endsWith(p2.slice(1)) : false;
    return (p1 === "*" || p1 === a1) && (p2 === "*" || p2 === a2 || (p2 === "json" && (a2 || "").endsWith("+json")));
  };

  class Request {
    get(name) {
      const key = String(name).toLowerCase();
      if (key === "referer" || key === "referrer") return this.headers.referer || this.headers.referrer;
      return this.headers[key];
    }
    header(name) {
      return this.get(name);
    }
    is(...types) {
      const list = types.flat();
      const actual = mime(this.headers["content-type"]);
      if (!actual) return null;
      if (list.length === 0) return actual;
      for (const wanted of list) {
        if (typeMatches(actual, wanted)) return wanted;
      }
      return false;
    }
    accepts(...types) {
      const accept = this.headers.accept || "*/*";
      const list = types.flat();
      if (list.length === 0) return accept.split(",").map((t) => t.trim());
      for (const wanted of list) {
        for (const offered of accept.split(",")) {
          const type = mime(offered);
          if (type === "*/*" || typeMatches(SHORT[wanted] || wanted, type) || typeMatches(type, wanted)) return wanted;
        }
      }
      return false;
    }
    get hostname() {
      return (this.headers["x-forwarded-host"] || this.headers.host || "").split(":")[0];
    }
    get protocol() {
      return this.headers["x-forwarded-proto"] || "http";
    }
    get secure() {
      return this.protocol === "https";
    }
    get ip() {
      return (this.headers["x-forwarded-for"] || "").split(",")[0].trim() || undefined;
    }
  }

  const request = (raw, text, data) => {
    const req = Object.create(Request.prototype);
    const headers = {};
    for (const key of Object.keys(raw.headers || {})) headers[key.toLowerCase()] = raw.headers[key];
    const type = mime(headers["content-type"]);
    req.method = String(raw.method || "GET").toUpperCase();
    req.path = raw.path || "/";
    req.url = req.path + (raw.query ? "?" + raw.query : "");
    req.originalUrl = req.url;
    req.headers = headers;
    req.query = parseQuery(raw.query);
    // As Express's body parsers gave it: JSON parsed, a form as an object,
    // anything else as text.
    if (type === "application/json" || type.endsWith("+json")) {
      req.body = data;
    } else if (type === "application/x-www-form-urlencoded") {
      req.body = parseQuery(text);
    } else {
      req.body = text;
    }
    req.rawBody = text;
    return req;
  };

  class Response {
    status(code) {
      this.statusCode = Number(code);
      return this;
    }
    set(field, value) {
      if (field !== null && typeof field === "object") {
        for (const key of Object.keys(field)) this.set(key, field[key]);
      } else {
        this.headers[String(field).toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
      }
      return this;
    }
    setHeader(field, value) {
      return this.set(field, value);
    }
    header(field, value) {
      return this.set(field, value);
    }
    append(field, value) {
      const key = String(field).toLowerCase();
      const now = this.headers[key];
      return this.set(key, now === undefined ? value : now + ", " + value);
    }
    get(field) {
      return this.headers[String(field).toLowerCase()];
    }
    getHeader(field) {
      return this.get(field);
    }
    removeHeader(field) {
      delete this.headers[String(field).toLowerCase()];
    }
    type(value) {
      return this.set("content-type", value.includes("/") ? value : SHORT[value] || "application/" + value);
    }
    writeHead(code, headers) {
      this.status(code);
      if (headers) this.set(headers);
      return this;
    }
    write(chunk) {
      if (chunk !== undefined && chunk !== null) this._chunks.push(String(chunk));
      this.headersSent = true;
      return true;
    }
    end(chunk) {
      this.write(chunk);
      this.body = this._chunks.join("");
      this.finished = true;
      this.writableEnded = true;
      this.emit("finish");
      return this;
    }
    send(body) {
      if (body !== null && typeof body === "object") return this.json(body);
      if (this.get("content-type") === undefined && body !== undefined) {
        this.set("content-type", "text/html; charset=utf-8");
      }
      return this.end(body === undefined ? undefined : String(body));
    }
    json(value) {
      if (this.get("content-type") === undefined) this.set("content-type", "application/json");
      return this.end(JSON.stringify(value));
    }
    sendStatus(code) {
      this.status(code);
      return this.send(String(code));
    }
    // Enough of a writable stream for `readable.pipe(res)`.
    on(name, listener) {
      (this._listeners[name] = this._listeners[name] || []).push(listener);
      return this;
    }
    once(name, listener) {
      const wrapped = (...args) => {
        this.removeListener(name, wrapped);
        listener(...args);
      };
      return this.on(name, wrapped);
    }
    removeListener(name, listener) {
      this._listeners[name] = (this._listeners[name] || []).filter((l) => l !== listener);
      return this;
    }
    off(name, listener) {
      return this.removeListener(name, listener);
    }
    emit(name, ...args) {
      for (const listener of (this._listeners[name] || []).slice()) listener(...args);
      return true;
    }
  }

  const response = () => {
    const res = Object.create(Response.prototype);
    res.statusCode = 200;
    res.headers = {};
    res.finished = false;
    res.headersSent = false;
    res.writable = true;
    Object.defineProperty(res, "_chunks", { value: [], enumerable: false });
    Object.defineProperty(res, "_listeners", { value: {}, enumerable: false });
    return res;
  };

  // `fetch`, over the host's outbound import (`__wasmless_send`, installed
  // in Rust): the host checks each request against the function's
  // spec.allowedOutboundHosts. Redirects are followed here, each one a new
  // request the host checks again. The request is sent when `fetch` is
  // called; its promise is settled by then.
  class Headers {
    constructor(init) {
      Object.defineProperty(this, "_list", { value: [], enumerable: false });
      if (init instanceof Headers) init = init.entries();
      if (init && typeof init[Symbol.iterator] === "function") {
        for (const [name, value] of init) this.append(name, value);
      } else if (init) {
        for (const name of Object.keys(init)) this.append(name, init[name]);
      }
    }
    append(name, value) {
      this._list.push([String(name).toLowerCase(), String(value)]);
    }
    set(name, value) {
      this.delete(name);
      this.append(name, value);
    }
    delete(name) {
      const lower = String(name).toLowerCase();
      for (let i = this._list.length - 1; i >= 0; i--) {
        if (this._list[i][0] === lower) this._list.splice(i, 1);
      }
    }
    get(name) {
      const lower = String(name).toLowerCase();
      const found = this._list.filter(([n]) => n === lower).map(([, v]) => v);
      return found.length ? found.join(", ") : null;
    }
    has(name) {
      return this.get(name) !== null;
    }
    forEach(callback, self) {
      for (const [name, value] of this._list) callback.call(self, value, name, this);
    }
    entries() {
      return this._list.map(([n, v]) => [n, v])[Symbol.iterator]();
    }
    keys() {
      return this._list.map(([n]) => n)[Symbol.iterator]();
    }
    values() {
      return this._list.map(([, v]) => v)[Symbol.iterator]();
    }
    [Symbol.iterator]() {
      return this.entries();
    }
  }

  class FetchResponse {
    constructor(answer, url, redirected) {
      this.status = answer.status;
      this.statusText = answer.statusText || "";
      this.ok = answer.status >= 200 && answer.status < 300;
      this.headers = new Headers(answer.headers);
      this.url = url;
      this.redirected = redirected;
      this.type = "basic";
      this.bodyUsed = false;
      Object.defineProperty(this, "_answer", { value: answer, enumerable: false });
    }
    _take() {
      if (this.bodyUsed) throw new TypeError("the body of this response was already read");
      this.bodyUsed = true;
      return this._answer;
    }
    text() {
      try {
        return Promise.resolve(this._take().text);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    json() {
      return this.text().then((text) => JSON.parse(text));
    }
    arrayBuffer() {
      try {
        const binary = this._take().binary;
        const bytes = new Uint8Array(binary.length);
        for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
        return Promise.resolve(bytes.buffer);
      } catch (e) {
        return Promise.reject(e);
      }
    }
  }

  const binaryOf = (bytes) => {
    let out = "";
    for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]);
    return out;
  };

  // `location` against `base`: absolute, or from the origin, or beside it.
  const resolveUrl = (location, base) => {
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(location)) return location;
    const origin = base.match(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/)[0];
    if (location.startsWith("//")) return base.split(":")[0] + ":" + location;
    if (location.startsWith("/")) return origin + location;
    const path = base.slice(origin.length).split(/[?#]/)[0];
    return origin + path.slice(0, path.lastIndexOf("/") + 1) + location;
  };

  const fetchNow = (input, init) => {
    init = init || {};
    let url = typeof input === "string" ? input : String(input && input.url ? input.url : input);
    let method = String(init.method || (input && input.method) || "GET").toUpperCase();
    const headers = new Headers(init.headers || (input && input.headers));
    let body = init.body === undefined || init.body === null ? "" : init.body;
    let binary = false;
    if (body instanceof ArrayBuffer) body = new Uint8Array(body);
    if (ArrayBuffer.isView(body)) {
      body = binaryOf(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
      binary = true;
    } else if (typeof body !== "string") {
      body = String(body);
    }
    if (body && typeof init.body === "string" && !headers.has("content-type")) {
      headers.set("content-type", "text/plain;charset=UTF-8");
    }
    const mode = init.redirect || "follow";
    for (let hops = 0; ; hops++) {
      const answer = globalThis.__wasmless_send(method, url, [...headers], body, binary);
      const location = answer.headers.find(([n]) => n === "location");
      if (![301, 302, 303, 307, 308].includes(answer.status) || !location || mode === "manual") {
        return new FetchResponse(answer, url, hops > 0);
      }
      if (mode === "error") throw new TypeError(`fetch failed: ${url} redirected, and redirect is "error"`);
      if (hops >= 20) throw new TypeError(`fetch failed: more than 20 redirects from ${url}`);
      if (answer.status === 303 || ((answer.status === 301 || answer.status === 302) && method === "POST")) {
        if (method !== "HEAD") method = "GET";
        body = "";
        binary = false;
        headers.delete("content-type");
        headers.delete("content-length");
      }
      url = resolveUrl(location[1], url);
    }
  };

  const fetch = (input, init) => {
    try {
      return Promise.resolve(fetchNow(input, init));
    } catch (e) {
      return Promise.reject(e);
    }
  };
  for (const [name, value] of [["fetch", fetch], ["Headers", Headers], ["Response", FetchResponse]]) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }

  Object.defineProperty(globalThis, "__wasmless", {
    value: Object.freeze({ request, response }),
    enumerable: false,
  });
})();
