// The wasmless fallback runtime for Node.js.
//
// Runs a kubeless-style function that cannot run in wasm (a package with a
// native addon, say) on Node.js, with the same handler contract as the wasm
// runtime (runtimes/js/): `module.exports.handler = (event, context) => ...`,
// the same event and context fields, the same Express-like
// `event.extensions.request` and `response` (express.js, beside this file:
// the wasm runtime's own), a string or JSON result as
// the body, a throw or rejection as a 500 with its message, and a call past
// the timeout as a 408.
//
// Every event runs in a fresh worker thread, so no state leaks from one
// event to the next (as with one wasm instance per event), and a runaway
// call, synchronous or not, is stopped by terminating its worker.
//
// Node's standard library only. Configuration, all from the environment:
//   FUNC_DIR (default /kubeless), MOD_NAME, FUNC_HANDLER, FUNC_NAME,
//   FUNC_TIMEOUT (seconds, default 180), FUNC_RUNTIME, FUNC_MEMORY_LIMIT,
//   FUNC_LISTEN (default 0.0.0.0), FUNC_PORT (default 8080; 0 picks one).
// It prints "listening on http://HOST:PORT" once it serves, and serves
// /healthz and /metrics (the series names of wasmless host) besides the
// function at every other path.
"use strict";

const http = require("node:http");
const path = require("node:path");
const crypto = require("node:crypto");
const { Worker, isMainThread, parentPort, workerData } = require("node:worker_threads");

const env = process.env;
const FUNC_DIR = env.FUNC_DIR || "/kubeless";
const MOD_NAME = env.MOD_NAME || "";
const FUNC_HANDLER = env.FUNC_HANDLER || "";
const FUNC_NAME = env.FUNC_NAME || MOD_NAME;
const TIMEOUT = Number(env.FUNC_TIMEOUT || "180");
const CONTEXT = {
  "function-name": FUNC_NAME,
  timeout: String(Math.floor(TIMEOUT)),
  runtime: env.FUNC_RUNTIME || "nodejs2x",
  "memory-limit": env.FUNC_MEMORY_LIMIT || "0",
};
const EVENT_HEADERS = new Set(["event-id", "event-type", "event-time", "event-namespace", "event-request"]);
const ATTRIBUTE_PREFIX = "event-attribute-";
const HTTP_NAMESPACE = "http.wasmless.io";
const MAX_BODY = 16 << 20;
const BUCKETS = Array.from({ length: 12 }, (_, i) => 0.00001 * 4 ** i);

function loadHandler() {
  const module = require(path.join(FUNC_DIR, `${MOD_NAME}.js`));
  const handler = module && module[FUNC_HANDLER];
  if (typeof handler !== "function") {
    throw new TypeError(`${MOD_NAME}.js exports no function \`${FUNC_HANDLER}\` (spec.handler)`);
  }
  return handler;
}

// In a worker: run the handler on one event and post the outcome.
async function runEvent() {
  const { event, context, text } = workerData;
  try {
    const handler = loadHandler();
    // The wasm runtime's Express-like request and response.
    require(path.join(__dirname, "express.js"));
    const helpers = globalThis.__wasmless;
    const response = helpers.response();
    event.extensions.response = response;
    if (event.extensions.request) {
      event.extensions.request = helpers.request(event.extensions.request, text, event.data);
    }
    const result = await handler(event, context);
    let body;
    let contentType = "text/plain; charset=utf-8";
    if (response.finished) {
      body = response.body;
      contentType = "text/html; charset=utf-8";
    } else if (typeof result === "string") {
      body = result;
    } else if (result === undefined || result === null) {
      body = "";
    } else {
      body = JSON.stringify(result);
      contentType = "application/json";
    }
    const headers = { ...response.headers };
    if (!("content-type" in headers)) headers["content-type"] = contentType;
    parentPort.postMessage({ ok: true, status: response.statusCode, headers, body });
  } catch (error) {
    const text = String(error);
    console.error(error && error.stack ? error.stack : text);
    parentPort.postMessage({ ok: false, message: `${text}\n` });
  }
}

function parseData(raw, contentType) {
  const type = contentType.split(";")[0].trim().toLowerCase();
  const text = raw.toString("utf8");
  if (raw.length && (type === "application/json" || type.endsWith("+json"))) {
    try {
      return JSON.parse(text);
    } catch (_) {
      // not JSON after all: the text
    }
  }
  return text;
}

function toEvent(req, raw) {
  const url = new URL(req.url, "http://function");
  const headers = req.headers;
  const contentType = headers["event-type"] || headers["content-type"] || "application/octet-stream";
  const attributes = {};
  const requestHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    const text = Array.isArray(value) ? value.join(", ") : value;
    if (name.startsWith(ATTRIBUTE_PREFIX)) attributes[name.slice(ATTRIBUTE_PREFIX.length)] = text;
    else if (!EVENT_HEADERS.has(name)) requestHeaders[name] = text;
  }
  const request = headers["event-request"] === "none" ? null : {
    method: req.method,
    path: url.pathname,
    query: url.search.replace(/^\?/, ""),
    headers: requestHeaders,
  };
  return {
    data: parseData(raw, contentType),
    "event-id": headers["event-id"] || crypto.randomUUID(),
    "event-type": contentType,
    "event-time": headers["event-time"] || new Date().toISOString(),
    "event-namespace": headers["event-namespace"] || HTTP_NAMESPACE,
    extensions: { request, attributes },
  };
}

// Runs one event in a fresh worker; resolves to {status, headers, body, error}.
function call(event, text) {
  return new Promise((resolve) => {
    const worker = new Worker(__filename, { workerData: { event, context: CONTEXT, text } });
    let settled = false;
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.terminate();
      resolve(outcome);
    };
    const plain = { "content-type": "text/plain; charset=utf-8" };
    const timer = setTimeout(
      () => finish({ status: 408, headers: plain, body: "Request timeout exceeded\n", error: "timeout" }),
      TIMEOUT * 1000,
    );
    worker.on("message", (m) => finish(m.ok
      ? { status: m.status, headers: m.headers, body: m.body, error: null }
      : { status: 500, headers: plain, body: m.message, error: "error" }));
    worker.on("error", (e) => finish({ status: 500, headers: plain, body: `${String(e)}\n`, error: "error" }));
    worker.on("exit", () => finish({ status: 500, headers: plain, body: "the function's worker exited without an answer\n", error: "error" }));
  });
}

const metrics = { calls: 0, failures: {}, counts: BUCKETS.map(() => 0), total: 0 };

function observe(seconds, failure) {
  metrics.calls += 1;
  metrics.total += seconds;
  BUCKETS.forEach((bound, i) => { if (seconds <= bound) metrics.counts[i] += 1; });
  if (failure) metrics.failures[failure] = (metrics.failures[failure] || 0) + 1;
}

function metricsText() {
  const label = `function="${FUNC_NAME.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  const lines = [
    "# HELP wasmless_function_calls Events handled, per function.",
    "# TYPE wasmless_function_calls counter",
    `wasmless_function_calls_total{${label}} ${metrics.calls}`,
    "# HELP wasmless_function_failures Events that ended in an error, per function and reason.",
    "# TYPE wasmless_function_failures counter",
  ];
  for (const reason of Object.keys(metrics.failures).sort()) {
    lines.push(`wasmless_function_failures_total{${label},reason="${reason}"} ${metrics.failures[reason]}`);
  }
  lines.push("# HELP wasmless_function_duration_seconds Time to handle an event.");
  lines.push("# TYPE wasmless_function_duration_seconds histogram");
  BUCKETS.forEach((bound, i) => {
    lines.push(`wasmless_function_duration_seconds_bucket{${label},le="${bound}"} ${metrics.counts[i]}`);
  });
  lines.push(`wasmless_function_duration_seconds_bucket{${label},le="+Inf"} ${metrics.calls}`);
  lines.push(`wasmless_function_duration_seconds_sum{${label}} ${metrics.total}`);
  lines.push(`wasmless_function_duration_seconds_count{${label}} ${metrics.calls}`);
  return `${lines.join("\n")}\n# EOF\n`;
}

function reply(res, status, headers, body) {
  const bytes = Buffer.from(body);
  res.writeHead(status, { ...headers, "content-length": bytes.length });
  res.end(bytes);
}

function serve() {
  try {
    loadHandler();
  } catch (error) {
    console.error(error && error.stack ? error.stack : String(error));
    console.error(`cannot load the handler ${MOD_NAME}.${FUNC_HANDLER} from ${FUNC_DIR}`);
    process.exit(1);
  }
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, "http://function").pathname;
    if (pathname === "/healthz") return reply(res, 200, { "content-type": "text/plain" }, "ok\n");
    if (pathname === "/metrics") {
      return reply(res, 200, { "content-type": "text/plain; version=0.0.4" }, metricsText());
    }
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on("end", async () => {
      if (size > MAX_BODY) return reply(res, 413, { "content-type": "text/plain" }, "request body too large\n");
      const started = process.hrtime.bigint();
      const raw = Buffer.concat(chunks);
      const outcome = await call(toEvent(req, raw), raw.toString("utf8"));
      observe(Number(process.hrtime.bigint() - started) / 1e9, outcome.error);
      const headers = { ...outcome.headers };
      if (outcome.error) headers["wasmless-error"] = outcome.error;
      reply(res, outcome.status, headers, outcome.body);
    });
  });
  const port = Number(env.FUNC_PORT || "8080");
  server.listen(port, env.FUNC_LISTEN || "0.0.0.0", () => {
    const address = server.address();
    console.log(`listening on http://${address.address}:${address.port}`);
  });
  process.on("SIGTERM", () => process.exit(0));
  // Exit with the process that started this one (wasmless up).
  const parent = Number(env.FUNC_PARENT_PID || 0);
  if (parent) {
    setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();
  }
}

if (isMainThread) serve();
else runEvent();
