// The Worker's main module (`scripts/worker.sh build` installs it as build/index.js).
//
// `shim.mjs` is worker-build's bundle: the wasm-bindgen glue, the `Inbox` Durable Object class,
// and a default export that is a `WorkerEntrypoint` class behind a Proxy. workerd constructs that
// class for every request, and worker-build's Proxy wraps the instance, then its `fetch`, in two
// more Proxies and an `async` function: about a tenth of what a request costs this Worker under
// raw workerd (BENCHMARKS.md, "The Worker's entry module"). This module's default export is a
// plain `{ fetch }` object instead, which workerd calls as it is, and it hands the request to the
// same Rust handler with the same `env` and `ctx` (`fetch` in src/lib.rs, which returns the
// Response itself when nothing waits, else a promise of it).
//
// Panic recovery stays as worker-build built it. Before every call into the wasm instance, the
// glue checks whether a panic or a trap terminated it, and instantiates it afresh if so: that
// check is inside the handler called here. The class path also resets on `criticalError`, which
// the bundle sets when a WebAssembly.RuntimeError reaches its global `error` listener: while it
// is set, a request goes through the class, whose construction resets the instance and clears it.
import Entrypoint from "./shim.mjs";

export * from "./shim.mjs";

// worker-build defines it as `exports.fetch.call(this, request, this.env, this.ctx)`.
const handle = Entrypoint.prototype.fetch;
if (typeof handle !== "function") {
  throw new Error("worker-build's bundle has no Entrypoint.prototype.fetch: entry.mjs needs updating");
}
const initState = globalThis.__worker_init_state;

export default {
  fetch(request, env, ctx) {
    if (initState?.criticalError) return new Entrypoint(ctx, env).fetch(request);
    return handle.call({ env, ctx }, request);
  },
};
