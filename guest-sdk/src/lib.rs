//! The Rust SDK for wasmless functions.
//!
//! A function is a plain Rust function from an [`Event`] and a [`Context`]
//! to a response; [`handler!`] exports it as a component of the `wasmless`
//! world (wit/wasmless.wit):
//!
//! ```ignore
//! use wasmless_sdk::{Context, Event, Response};
//!
//! fn hello(event: Event, _context: Context) -> Response {
//!     Response::text(format!("Hello, {}!", event.text().unwrap_or("world")))
//! }
//!
//! wasmless_sdk::handler!(hello);
//! ```
//!
//! Work that every event needs but that does not depend on the event (parsing
//! a configuration file, building a table) can go in an init function,
//! `handler!(hello, init = setup)`: when the host makes an instance ahead of
//! its event, it runs `setup` then, so that the event does not wait for it.
//! The host may also not run it (an instance made for its event), so the
//! handler must not rely on it having run: keep its results in a
//! `std::sync::OnceLock` and have the handler fill it when it is empty.
//! The environment variable `WASMLESS_WARM_UP` is `0` in an instance made
//! under steady load (its event is already waiting): leave out optional
//! warm-up work then.
//!
//! Build it with `cargo build --release --target wasm32-wasip2` as a
//! `cdylib` crate; the `.wasm` file is the function. A handler may return a
//! [`Response`], a `String`, a `&'static str`, a `Vec<u8>`, or a `Result` of
//! one of these and an [`Error`]. An `Err` is answered with the error's
//! status and message; a panic is a trap, answered with 500.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "function-with-init",
        pub_export_macro: true,
        export_macro_name: "__export_function",
        default_bindings_module: "::wasmless_sdk::bindings",
    });
}

/// Outgoing HTTP requests, to what the function's
/// `spec.allowedOutboundHosts` grants (nothing by default):
///
/// ```ignore
/// use wasmless_sdk::outbound::{send, Request};
///
/// let answer = send(&Request {
///     method: "GET".into(),
///     url: "https://api.example.com/v1/items".into(),
///     headers: vec![("accept".into(), "application/json".into())],
///     body: Vec::new(),
/// })?;
/// ```
///
/// The request and the answer are whole; redirects are not followed, and a
/// refusal is `OutboundError::Denied` with the host's reason.
pub mod outbound {
    pub use crate::bindings::wasmless::function::outbound::{
        OutboundError, Request, Response, send,
    };
}

pub use bindings::wasmless::function::types::{
    Context, Error, Event, Extensions, HttpRequest, Response,
};

impl Event {
    /// The payload as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }

    /// The HTTP request the event came with, if any.
    pub fn request(&self) -> Option<&HttpRequest> {
        self.extensions.request.as_ref()
    }

    /// A request header by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request()?
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A source attribute (such as a Kafka message's `key`) by name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.extensions
            .attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Response {
    /// A 200 response with a body and no headers.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Response {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A 200 `text/plain` response.
    pub fn text(body: impl Into<String>) -> Self {
        Self::new(body.into()).with_header("content-type", "text/plain; charset=utf-8")
    }

    /// A 200 `application/json` response from JSON text.
    pub fn json(body: impl Into<String>) -> Self {
        Self::new(body.into()).with_header("content-type", "application/json")
    }

    /// The same response with another status code.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The same response with a header added.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl Error {
    /// An error answered with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
        }
    }

    /// A 400 error: the event was not acceptable.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
}

/// What a handler may return.
pub trait IntoOutcome {
    /// Converts into the result the host receives.
    fn into_outcome(self) -> Result<Response, Error>;
}

impl IntoOutcome for Response {
    fn into_outcome(self) -> Result<Response, Error> {
        Ok(self)
    }
}

impl IntoOutcome for String {
    fn into_outcome(self) -> Result<Response, Error> {
        Ok(Response::text(self))
    }
}

impl IntoOutcome for &'static str {
    fn into_outcome(self) -> Result<Response, Error> {
        Ok(Response::text(self))
    }
}

impl IntoOutcome for Vec<u8> {
    fn into_outcome(self) -> Result<Response, Error> {
        Ok(Response::new(self))
    }
}

impl<T: IntoOutcome> IntoOutcome for Result<T, Error> {
    fn into_outcome(self) -> Result<Response, Error> {
        self.and_then(IntoOutcome::into_outcome)
    }
}

/// Exports `fn(Event, Context) -> impl IntoOutcome` as the function's
/// handler, and optionally `fn()` as its init function (see the crate's
/// documentation). Use it once per crate.
#[macro_export]
macro_rules! handler {
    ($handler:path) => {
        $crate::handler!($handler, init = $crate::no_init);
    };
    ($handler:path, init = $init:path) => {
        struct __WasmlessHandler;

        impl $crate::bindings::exports::wasmless::function::init::Guest for __WasmlessHandler {
            fn init() {
                $init()
            }
        }

        impl $crate::bindings::exports::wasmless::function::handler::Guest for __WasmlessHandler {
            fn handle(
                event: $crate::Event,
                context: $crate::Context,
            ) -> ::core::result::Result<$crate::Response, $crate::Error> {
                $crate::IntoOutcome::into_outcome($handler(event, context))
            }
        }

        $crate::bindings::__export_function!(__WasmlessHandler);
    };
}

/// The init function of a handler that has none.
#[doc(hidden)]
pub fn no_init() {}
