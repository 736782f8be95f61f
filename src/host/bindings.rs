//! Host bindings of the `wasmless` WIT world (wit/wasmless.wit).

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "wit",
    world: "function",
    imports: { default: async },
    exports: { default: async },
});
