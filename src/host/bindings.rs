//! Host bindings of the `wasmless` WIT world (wit/wasmless.wit).

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "wit",
    world: "function",
    exports: { default: async },
});
