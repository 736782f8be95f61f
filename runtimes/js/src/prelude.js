// The module system of the wasmless JavaScript runtime: CommonJS
// `require` over the function's files at /kubeless (and its node_modules).
(function (global) {
  const cache = {};
  const ROOT = "/kubeless";
  function dirname(path) {
    const i = path.lastIndexOf("/");
    return i <= 0 ? "/" : path.slice(0, i);
  }
  function normalize(path) {
    const out = [];
    for (const part of path.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") out.pop();
      else out.push(part);
    }
    return "/" + out.join("/");
  }
  function asFile(path) {
    for (const candidate of [path, path + ".js", path + ".json"]) {
      if (__wasmless_is_file(candidate)) return candidate;
    }
    if (__wasmless_is_file(path + "/package.json")) {
      const main = JSON.parse(__wasmless_read(path + "/package.json")).main;
      if (main) {
        const found = asFile(normalize(path + "/" + main));
        if (found) return found;
      }
    }
    if (__wasmless_is_file(path + "/index.js")) return path + "/index.js";
    return null;
  }
  function resolve(from, name) {
    if (name.startsWith("./") || name.startsWith("../") || name.startsWith("/")) {
      const base = name.startsWith("/") ? name : dirname(from) + "/" + name;
      return asFile(normalize(base));
    }
    let dir = dirname(from);
    while (true) {
      for (const modules of [dir + "/node_modules", dir + "/.deps/node_modules"]) {
        const found = asFile(normalize(modules + "/" + name));
        if (found) return found;
      }
      if (dir === "/" || dir === ROOT) break;
      dir = dirname(dir);
    }
    return null;
  }
  function load(path) {
    if (cache[path]) return cache[path].exports;
    const module = { exports: {}, filename: path };
    cache[path] = module;
    const source = __wasmless_read(path);
    if (path.endsWith(".json")) {
      module.exports = JSON.parse(source);
      return module.exports;
    }
    const wrapped = (0, eval)(
      "(function (exports, require, module, __filename, __dirname) {" + source + "\n})"
    );
    wrapped.call(module.exports, module.exports, makeRequire(path), module, path, dirname(path));
    return module.exports;
  }
  function makeRequire(from) {
    return function require(name) {
      const path = resolve(from, name);
      if (path === null) {
        throw new Error("Cannot find module '" + name + "' (from " + from + ")");
      }
      return load(path);
    };
  }
  global.__wasmless_load = load;
  // kubeless's `event.extensions.response`: set the status and headers.
  global.__wasmless_response = function () {
    return {
      statusCode: 200,
      headers: {},
      status(code) { this.statusCode = code; return this; },
      set(name, value) { this.headers[String(name).toLowerCase()] = String(value); return this; },
      setHeader(name, value) { return this.set(name, value); },
      header(name, value) { return this.set(name, value); },
    };
  };
  const write = (args) => __wasmless_print(args.map((a) =>
    typeof a === "string" ? a : (() => { try { return JSON.stringify(a); } catch (e) { return String(a); } })()
  ).join(" "));
  global.console = { log: (...a) => write(a), info: (...a) => write(a), warn: (...a) => write(a), error: (...a) => write(a), debug: (...a) => write(a) };
})(globalThis);
