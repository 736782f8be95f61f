//! Running one event: a fresh store and instance per event (made ahead of
//! it where it can be, see `ready`), the memory cap and the deadline
//! installed, and the outcome sorted into a response or an [`InvokeError`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use super::bindings::wasmless::function::types as wit;
use super::error::{DeadlineExceeded, InvokeError, classify};
use super::event::{Event, Response};
use super::function::{FunctionSettings, LoadedFunction, Prepared};
use super::ready::{Instance, Ready, Token};
use super::state::{Captured, CommandState, ComponentState, LOG_CAPTURE, MemoryCap, wasi_builder};

/// Extra time allowed beyond the timeout for a function stuck in a host call
/// (where the epoch check cannot reach it) before the event is abandoned.
const HOST_CALL_GRACE: Duration = Duration::from_millis(50);

pub(crate) trait HasLimits {
    fn limits(&mut self) -> &mut MemoryCap;
    fn deadline(&self) -> Instant;
}

impl HasLimits for ComponentState {
    fn limits(&mut self) -> &mut MemoryCap {
        &mut self.limits
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl HasLimits for CommandState {
    fn limits(&mut self) -> &mut MemoryCap {
        &mut self.limits
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// A store with the memory cap and the deadline in its state installed.
pub(crate) fn new_store<T: HasLimits + Send + 'static>(engine: &Engine, state: T) -> Store<T> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| state.limits());
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|store| {
        if Instant::now() >= store.data().deadline() {
            Err(DeadlineExceeded.into())
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// The store of a component function's instance: its WASI grants, memory
/// cap and deadline; `extra` is added to its environment (the host's hints
/// to a runtime, such as [`super::ready::WARM_UP`]).
pub(crate) fn component_store(
    engine: &Engine,
    settings: &FunctionSettings,
    io: &Captured,
    deadline: Instant,
    extra: &[(&str, &str)],
) -> Store<ComponentState> {
    let outbound = super::outbound::Outbound::new(settings.outbound.clone(), io.stderr.clone());
    let mut builder = wasi_builder(&settings.env, &settings.mounts, io);
    builder.envs(extra);
    outbound.grant_sockets(&mut builder);
    new_store(
        engine,
        ComponentState::new(builder.build(), settings.memory_limit, deadline)
            .with_outbound(outbound),
    )
}

/// Where an event's instance comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Making {
    /// The instance made ahead of it if one is waiting; the spent instance
    /// is dropped, and the next one made, in the background.
    Ahead,
    /// An instance made for it, dropped before the event returns.
    Inline,
}

impl LoadedFunction {
    /// Runs one event in a fresh instance and returns the function's
    /// response, or why there is none. A component function's instance is
    /// made ahead of the event when it can be (see `ready`).
    pub async fn handle_event(&self, event: Event) -> Result<Response, InvokeError> {
        self.handle(event, Making::Ahead).await
    }

    /// Runs one event in an instance made for it and dropped before this
    /// returns, as every event did before instances were made ahead: for
    /// the host's one-off runs (a Python function's bytecode), where no next
    /// event follows, and for benchmarks that compare the two.
    pub async fn handle_event_inline(&self, event: Event) -> Result<Response, InvokeError> {
        self.handle(event, Making::Inline).await
    }

    /// Makes the function's next instance now unless one is waiting (a
    /// component function only), waiting for room when the instances held
    /// outside events (spent ones the background has not dropped yet) fill
    /// the pool's margin. Events make them by themselves; this is for
    /// benchmarks that time an event on a ready instance.
    pub async fn make_ready(&self) {
        if let Some(ready) = &self.ready {
            ready.fill_when_room().await;
        }
    }

    async fn handle(&self, event: Event, making: Making) -> Result<Response, InvokeError> {
        self.last_used
            .store(self.host.now_ms(), std::sync::atomic::Ordering::Relaxed);
        let timeout = self.settings.timeout;
        let deadline = Instant::now() + timeout;
        let run = async {
            match &self.prepared {
                Prepared::Wasmless(_) => self.run_wasmless(event, deadline, making).await,
                Prepared::HttpProxy(_) => self.run_http_proxy(event, deadline, making).await,
                Prepared::Command(pre) => self.run_command(pre, event, deadline).await,
            }
        };
        match tokio::time::timeout(timeout + HOST_CALL_GRACE, run).await {
            Ok(outcome) => outcome,
            Err(_) => Err(InvokeError::Timeout(timeout)),
        }
    }

    /// The event's instance: the ready one, or one made now. A failure to
    /// make it is logged with what it printed.
    async fn instance(&self, deadline: Instant, making: Making) -> Result<Ready, InvokeError> {
        let Some(slot) = &self.ready else {
            return Err(InvokeError::Trap(
                "a command's instance is made with its event".into(),
            ));
        };
        let (arrival, taken) = match making {
            Making::Ahead => (slot.arrive(), slot.take(deadline)),
            Making::Inline => (0, None),
        };
        let mut ready = match taken {
            Some(ready) => ready,
            None => slot.make(deadline).await.map_err(|failed| {
                self.log_output("stdout", &failed.io.stdout.contents());
                self.log_output("stderr", &failed.io.stderr.contents());
                classify(failed.error, self.settings.timeout)
            })?,
        };
        ready.arrival = arrival;
        Ok(ready)
    }

    /// Drops event number `arrival`'s spent store: in the background,
    /// making the next instance, or here.
    fn spent(
        &self,
        store: Store<ComponentState>,
        token: Option<Token>,
        arrival: u64,
        making: Making,
    ) {
        match (&self.ready, making) {
            (Some(slot), Making::Ahead) => slot.recycle(store, token, arrival),
            _ => drop((store, token)),
        }
    }

    /// After an event in `ready`, which ended `clean` (no trap, timeout or
    /// memory limit): keeps the instance for the next event when the spec
    /// allows reuse, else drops it as [`LoadedFunction::spent`].
    fn done_with(&self, ready: Ready, clean: bool, making: Making) {
        match (&self.ready, making) {
            (Some(slot), Making::Ahead) => slot.keep_or_recycle(ready, clean),
            _ => drop(ready),
        }
    }

    /// Creates a fresh store and instance, as an event does, and drops them
    /// without calling the function: the instantiation step alone, for
    /// benchmarks.
    pub async fn instantiate_only(&self) -> Result<(), InvokeError> {
        let deadline = Instant::now() + self.settings.timeout;
        match &self.prepared {
            Prepared::Command(pre) => {
                let io = Captured::new(LOG_CAPTURE);
                let builder = wasi_builder(&self.settings.env, &self.settings.mounts, &io);
                let state =
                    CommandState::new(Bytes::new(), builder, self.settings.memory_limit, deadline);
                let mut store = new_store(&self.engine, state);
                pre.instantiate_async(&mut store)
                    .await
                    .map(drop)
                    .map_err(|e| classify(e, self.settings.timeout))
            }
            _ => self.instance(deadline, Making::Inline).await.map(drop),
        }
    }

    async fn run_wasmless(
        &self,
        event: Event,
        deadline: Instant,
        making: Making,
    ) -> Result<Response, InvokeError> {
        let mut ready = self.instance(deadline, making).await?;
        ready.serve();
        let Instance::Wasmless(instance) = &ready.instance else {
            return Err(InvokeError::Trap(
                "the instance is not of the wasmless world".into(),
            ));
        };
        let wit_event = to_wit_event(event);
        let wit_context = self.wit_context();
        let timeout = self.settings.timeout;
        let outcome = instance
            .wasmless_function_handler()
            .call_handle(&mut ready.store, &wit_event, &wit_context)
            .await;
        let (stdout, stderr) = ready.new_output();
        self.done_with(ready, outcome.is_ok(), making);
        self.log_output("stdout", &stdout);
        self.log_output("stderr", &stderr);
        match outcome {
            Ok(Ok(response)) => Ok(Response {
                status: response.status,
                headers: response.headers,
                body: Bytes::from(response.body),
            }),
            Ok(Err(error)) => Err(InvokeError::Guest {
                status: if (400..=599).contains(&error.status) {
                    error.status
                } else {
                    500
                },
                message: error.message,
            }),
            Err(err) => Err(classify(err, timeout)),
        }
    }

    async fn run_http_proxy(
        &self,
        event: Event,
        deadline: Instant,
        making: Making,
    ) -> Result<Response, InvokeError> {
        let Ready {
            mut store,
            instance,
            io,
            token,
            arrival,
            ..
        } = self.instance(deadline, making).await?;
        let Instance::HttpProxy(proxy) = instance else {
            return Err(InvokeError::Trap(
                "the instance is not a wasi:http proxy".into(),
            ));
        };
        let timeout = self.settings.timeout;
        let trap = |e: wasmtime::Error| classify(e, timeout);
        let request = to_http_request(event)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(trap)?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(trap)?;
        // The guest may go on writing the body after it sets the response, so
        // the call and the reading of the body run side by side. The call
        // owns the store and lets go of it when it ends, so that a guest that
        // never answers drops the response channel.
        let call = async move {
            let called = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await;
            self.spent(store, token, arrival, making);
            called
        };
        let limit = self.host.config.max_response_bytes;
        let read = async {
            let response = match rx.await {
                Ok(Ok(response)) => response,
                Ok(Err(code)) => {
                    return Err(InvokeError::Trap(format!(
                        "function answered with error {code:?}"
                    )));
                }
                Err(_) => return Err(InvokeError::NoResponse),
            };
            let (parts, body) = response.into_parts();
            let body = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                    return Err(InvokeError::ResponseTooLarge(limit));
                }
                Err(e) => {
                    return Err(InvokeError::Trap(format!(
                        "reading the response body failed: {e}"
                    )));
                }
            };
            Ok((parts, body))
        };
        let (called, read) = tokio::join!(call, read);
        self.log_output("stdout", &io.stdout.contents());
        self.log_output("stderr", &io.stderr.contents());
        if let Err(err) = called {
            return Err(trap(err));
        }
        let (parts, body) = read?;
        let headers = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        Ok(Response {
            status: parts.status.as_u16(),
            headers,
            body,
        })
    }

    async fn run_command(
        &self,
        pre: &wasmtime::InstancePre<CommandState>,
        event: Event,
        deadline: Instant,
    ) -> Result<Response, InvokeError> {
        let limit = self.host.config.max_response_bytes;
        let io = Captured::new(limit);
        let env = self.command_env(&event);
        let mut builder = wasi_builder(&env, &self.settings.mounts, &io);
        builder.arg(&self.settings.name);
        let state = CommandState::new(event.data, builder, self.settings.memory_limit, deadline);
        let mut store = new_store(&self.engine, state);
        let outcome = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        }
        .await;
        let stdout = io.stdout.contents();
        let stderr = io.stderr.contents();
        self.log_output("stderr", &stderr);
        match outcome.map_err(|e| classify(e, self.settings.timeout)) {
            Ok(()) | Err(InvokeError::Exit { code: 0, .. }) => {}
            Err(InvokeError::Exit { code, .. }) => {
                return Err(InvokeError::Exit {
                    code,
                    stderr: tail(&stderr),
                });
            }
            Err(_) if stdout.len() >= limit => return Err(InvokeError::ResponseTooLarge(limit)),
            Err(err) => return Err(err),
        }
        let content_type = if std::str::from_utf8(&stdout).is_ok() {
            "text/plain; charset=utf-8"
        } else {
            "application/octet-stream"
        };
        Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: stdout,
        })
    }

    /// A command learns about its event from CGI-style variables, next to the
    /// environment its spec grants.
    fn command_env(&self, event: &Event) -> Vec<(String, String)> {
        let mut env = self.settings.env.clone();
        let request = event.request.clone().unwrap_or_default();
        env.extend([
            ("EVENT_ID".into(), event.id.clone()),
            ("EVENT_TYPE".into(), event.event_type.clone()),
            ("EVENT_TIME".into(), event.time_rfc3339()),
            ("EVENT_NAMESPACE".into(), event.namespace.clone()),
            ("FUNCTION_NAME".into(), self.settings.name.clone()),
            ("REQUEST_METHOD".into(), request.method),
            ("PATH_INFO".into(), request.path),
            ("QUERY_STRING".into(), request.query),
        ]);
        env
    }

    fn wit_context(&self) -> wit::Context {
        wit::Context {
            function_name: self.settings.name.clone(),
            timeout: u64::try_from(self.settings.timeout.as_millis()).unwrap_or(u64::MAX),
            runtime: self.settings.runtime.clone(),
            memory_limit: self.settings.memory_limit,
        }
    }

    fn log_output(&self, stream: &str, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        for line in String::from_utf8_lossy(bytes).lines() {
            tracing::info!(function = %self.settings.name, stream, "{line}");
            self.host.logs().push(&self.settings.name, line.to_owned());
        }
    }
}

fn to_wit_event(event: Event) -> wit::Event {
    let time = event.time_rfc3339();
    wit::Event {
        data: event.data.to_vec(),
        event_id: event.id,
        event_type: event.event_type,
        event_time: time,
        event_namespace: event.namespace,
        extensions: wit::Extensions {
            request: event.request.map(|r| wit::HttpRequest {
                method: r.method,
                path: r.path,
                query: r.query,
                headers: r.headers,
            }),
            attributes: event.attributes,
        },
    }
}

/// The request a wasi:http function sees: the original HTTP request below
/// the function's mount point, or, for an event from another source, a POST
/// carrying the event fields as headers.
fn to_http_request(event: Event) -> Result<http::Request<Full<Bytes>>, InvokeError> {
    let time = event.time_rfc3339();
    let mut builder = http::Request::builder();
    let has_host;
    match event.request {
        Some(request) => {
            let uri = if request.query.is_empty() {
                request.path
            } else {
                format!("{}?{}", request.path, request.query)
            };
            has_host = request.headers.iter().any(|(k, _)| k == "host");
            builder = builder.method(request.method.as_str()).uri(uri);
            for (name, value) in request.headers {
                builder = builder.header(name, value);
            }
        }
        None => {
            has_host = false;
            builder = builder
                .method("POST")
                .uri("/")
                .header("content-type", event.event_type)
                .header("event-id", event.id)
                .header("event-time", time)
                .header("event-namespace", event.namespace);
        }
    }
    if !has_host {
        builder = builder.header("host", "localhost");
    }
    builder
        .body(Full::new(event.data))
        .map_err(|e| InvokeError::Trap(format!("the event is not a valid HTTP request: {e}")))
}

/// The last lines of a stream, for an error message.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    let start = text.len().saturating_sub(1024);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[start..].to_owned()
}
