//! `wasmless bench`: measurements users can run against their own host.
//!
//! - `cold-start`: deploy fresh functions and time each from the deploy call
//!   to its first successful response, with the compile cache cold (every
//!   module distinct) and warm (the module compiled before, deployed under a
//!   new name), per kind of function; with `--cluster`, on a cluster
//!   ([`cluster`]), pool and dedicated placement side by side.
//! - `warm`: time requests to functions that are loaded and have answered
//!   before, one request at a time with a pause between them, per kind of
//!   function.
//! - `deploy`: deploy many distinct copies of a module (to measure the
//!   memory an idle function costs).
//! - `ceiling`: a bare hyper server answering `hello world`, the ceiling
//!   HTTP benchmarks compare with.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use crate::client::Admin;
use crate::client::Http;
use crate::up::DeployRequest;

pub mod cluster;

/// The name of the custom section that makes a module distinct.
const NONCE_SECTION: &str = "wasmless-bench-nonce";

/// One kind of function to measure (its first call is a POST).
#[derive(Clone, Debug)]
pub struct Subject {
    /// The kind's name, for the table.
    pub kind: String,
    /// The module's bytes, or the source of a source function.
    pub module: Vec<u8>,
    /// The runtime of a source function (`python3.x`); `None` for wasm.
    pub runtime: Option<String>,
    /// The handler of a source function.
    pub handler: Option<String>,
    /// A container image: the function runs on its runtime's image (under
    /// `up`, a local process of the runtime's server).
    pub image: Option<String>,
}

impl Subject {
    /// A subject from a module file; `kind` names it in the table.
    pub fn from_file(kind: &str, path: &Path) -> anyhow::Result<Self> {
        let module = std::fs::read(path).with_context(|| {
            format!(
                "reading {} (run `bash examples/build.sh` for the examples)",
                path.display()
            )
        })?;
        Ok(Self {
            kind: kind.to_owned(),
            module,
            runtime: None,
            handler: None,
            image: None,
        })
    }

    /// The example module of each kind, from `dir` (`examples/wasm`), and
    /// the Python and JavaScript examples beside it.
    pub fn examples(dir: &Path) -> anyhow::Result<Vec<Self>> {
        let mut subjects = [
            ("wasmless", "hello.wasm"),
            ("wasi-http", "http-hello.wasm"),
            ("wasi-command", "command.wasm"),
        ]
        .into_iter()
        .map(|(kind, file)| Self::from_file(kind, &dir.join(file)))
        .collect::<anyhow::Result<Vec<_>>>()?;
        for (kind, file, runtime) in [
            ("python", "../python-hello/hello.py", "python3.x"),
            ("javascript", "../js-hello/hello.js", "nodejs20"),
        ] {
            let mut subject = Self::from_file(kind, &dir.join(file))?;
            subject.runtime = Some(runtime.into());
            subject.handler = Some("hello.handler".into());
            subjects.push(subject);
        }
        // The same sources on their container-image runtimes, when this
        // machine has the interpreter `up` runs them with.
        let catalog = crate::runtimes::Catalog::built_in();
        for (kind, file, runtime, interpreter) in [
            (
                "python-image",
                "../python-hello/hello.py",
                "python3.x",
                "python3",
            ),
            (
                "javascript-image",
                "../js-hello/hello.js",
                "nodejs20",
                "node",
            ),
        ] {
            let present = std::process::Command::new(interpreter)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
            if !present {
                eprintln!("{kind}: skipped, `{interpreter}` is not installed");
                continue;
            }
            let mut subject = Self::from_file(kind, &dir.join(file))?;
            subject.runtime = Some(runtime.into());
            subject.handler = Some("hello.handler".into());
            subject.image = catalog.find(runtime).and_then(|e| e.image.clone());
            subjects.push(subject);
        }
        Ok(subjects)
    }

    /// A version no cache knows: a nonce in a custom section of a module,
    /// or in a comment of a source.
    fn distinct(&self, nonce: &str) -> Vec<u8> {
        match &self.runtime {
            None => with_nonce(&self.module, nonce),
            Some(_) => {
                let mut source = self.module.clone();
                // A comment in both Python (`#`) and JavaScript (`//`).
                let comment = match self.runtime.as_deref() {
                    Some(r) if r.starts_with("python") => "#",
                    _ => "//",
                };
                source.extend_from_slice(format!("\n{comment} {nonce}\n").as_bytes());
                source
            }
        }
    }
}

/// `module` with a custom section holding `nonce` appended: the same code,
/// a different SHA-256, so no cache knows it. Valid for core modules and
/// components alike.
pub fn with_nonce(module: &[u8], nonce: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    leb128(&mut payload, NONCE_SECTION.len() as u64);
    payload.extend_from_slice(NONCE_SECTION.as_bytes());
    payload.extend_from_slice(nonce.as_bytes());
    let mut out = module.to_vec();
    out.push(0); // custom section
    leb128(&mut out, payload.len() as u64);
    out.extend_from_slice(&payload);
    out
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Deploys `module` as `name` on the `up` whose admin API is `admin`.
pub async fn deploy(admin: &Admin, name: &str, module: Vec<u8>) -> anyhow::Result<()> {
    deploy_request(
        admin,
        name,
        DeployRequest {
            source: module,
            ..DeployRequest::default()
        },
    )
    .await
}

/// Deploys `subject`'s `source` (a module, or a source function's code).
async fn deploy_subject(
    admin: &Admin,
    name: &str,
    subject: &Subject,
    source: Vec<u8>,
) -> anyhow::Result<()> {
    let request = DeployRequest {
        source,
        runtime: subject.runtime.clone(),
        handler: subject.handler.clone(),
        image: subject.image.clone(),
        ..DeployRequest::default()
    };
    deploy_request(admin, name, request).await
}

async fn deploy_request(admin: &Admin, name: &str, request: DeployRequest) -> anyhow::Result<()> {
    let answer = admin
        .send(
            Method::PUT,
            &format!("functions/{name}"),
            Some("application/json"),
            serde_json::to_vec(&request)?,
        )
        .await?;
    if !answer.status.is_success() {
        anyhow::bail!(
            "deploying {name} failed: {}",
            String::from_utf8_lossy(&answer.body).trim()
        );
    }
    Ok(())
}

async fn delete(admin: &Admin, name: &str) -> anyhow::Result<()> {
    admin
        .send(
            Method::DELETE,
            &format!("functions/{name}"),
            None,
            Vec::new(),
        )
        .await?;
    Ok(())
}

/// One cold start: the deploy call's time and the total to the first
/// successful response.
#[derive(Clone, Copy, Debug)]
pub struct Trial {
    /// The deploy call alone.
    pub deploy: Duration,
    /// Deploy call plus first call.
    pub total: Duration,
}

async fn trial(
    http: &Http,
    admin: &Admin,
    name: &str,
    subject: &Subject,
    module: Vec<u8>,
) -> anyhow::Result<Trial> {
    let started = Instant::now();
    deploy_subject(admin, name, subject, module).await?;
    let deployed = started.elapsed();
    call(http, admin.url(), name).await?;
    let total = started.elapsed();
    // Untimed: let the background compile of the optimized code finish, so
    // that it does not compete with the next trial.
    settle(admin, name).await?;
    delete(admin, name).await?;
    Ok(Trial {
        deploy: deployed,
        total,
    })
}

/// Deploys `module` and waits until its optimized code is in place (and so
/// in the compile cache), then deletes it.
async fn prime(
    admin: &Admin,
    name: &str,
    subject: &Subject,
    module: Vec<u8>,
) -> anyhow::Result<()> {
    deploy_subject(admin, name, subject, module).await?;
    settle(admin, name).await?;
    delete(admin, name).await
}

/// Waits until `name` runs its optimized code.
async fn settle(admin: &Admin, name: &str) -> anyhow::Result<()> {
    let info_path = format!("functions/{name}");
    // A source runtime is a large component: its optimized compile can take
    // minutes on a small machine.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let answer = admin
            .send(Method::GET, &info_path, None, Vec::new())
            .await?;
        let info: Option<crate::up::FunctionInfo> = serde_json::from_slice(&answer.body).ok();
        if info.and_then(|i| i.code).as_deref() != Some("baseline") {
            break;
        }
        if Instant::now() > deadline {
            anyhow::bail!("{name} was not optimized within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Times of one kind with one cache state.
#[derive(Clone, Debug)]
pub struct Row {
    /// The kind of function.
    pub kind: String,
    /// `cold` or `warm`.
    pub cache: &'static str,
    /// The module's size in bytes.
    pub size: usize,
    /// Every trial, sorted by total.
    pub trials: Vec<Trial>,
}

impl Row {
    fn quantile(&self, q: f64) -> Duration {
        self.trials[quantile_index(self.trials.len(), q)].total
    }

    fn deploy_p50(&self) -> Duration {
        let mut deploys: Vec<Duration> = self.trials.iter().map(|t| t.deploy).collect();
        deploys.sort();
        deploys[deploys.len() / 2]
    }
}

/// A short id that keeps one run's function names apart from another's.
fn run_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..8].to_owned()
}

/// Sends `name` its bench request (a POST) and fails unless it succeeds.
async fn call(http: &Http, url: &str, name: &str) -> anyhow::Result<()> {
    let answer = http
        .send(
            Method::POST,
            &format!("{url}/{name}"),
            Some("text/plain"),
            b"bench".to_vec(),
        )
        .await?;
    if !answer.status.is_success() {
        anyhow::bail!(
            "{name} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body).trim()
        );
    }
    Ok(())
}

/// Runs `trials` cold and warm cold starts of each subject against the
/// `up` whose admin API is `up`.
pub async fn cold_start(
    up: &Admin,
    subjects: &[Subject],
    trials: usize,
) -> anyhow::Result<Vec<Row>> {
    let run = &run_id();
    let http = Http::default();
    let mut rows = Vec::new();
    for subject in subjects {
        for cache in ["cold", "warm"] {
            eprintln!(
                "{} ({}), compile cache {cache}: {trials} trials ...",
                subject.kind,
                size(subject.module.len())
            );
            let warm_module = subject.distinct(&format!("{run}-warm"));
            if cache == "warm" {
                // Compile it once, untimed, and wait for the optimized code.
                let name = format!("cs-{run}-{}-prime", subject.kind);
                prime(up, &name, subject, warm_module.clone()).await?;
            } else if subject.runtime.is_some() {
                // A source function's runtime is compiled once per host:
                // a new source must not compile anything, so the runtime is
                // compiled first, untimed.
                let name = format!("cs-{run}-{}-runtime", subject.kind);
                let module = subject.distinct(&format!("{run}-runtime"));
                prime(up, &name, subject, module).await?;
            }
            let mut times = Vec::with_capacity(trials);
            for i in 0..trials {
                let module = match cache {
                    "cold" => subject.distinct(&format!("{run}-{i}")),
                    _ => warm_module.clone(),
                };
                let name = format!("cs-{run}-{}-{cache}-{i}", subject.kind);
                times.push(trial(&http, up, &name, subject, module).await?);
            }
            times.sort_by_key(|t| t.total);
            rows.push(Row {
                kind: subject.kind.clone(),
                cache,
                size: subject.module.len(),
                trials: times,
            });
        }
    }
    Ok(rows)
}

/// A size for the table: KiB, or bytes below one KiB (a source file).
fn size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// The rows as a markdown table.
pub fn table(rows: &[Row]) -> String {
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    markdown(
        "| kind | module | compile cache | trials | min ms | p50 ms | p99 ms | p50 of the deploy call ms |\n|---|---:|---|---:|---:|---:|---:|---:|\n",
        rows.iter().map(|row| {
            vec![
                row.kind.clone(),
                size(row.size),
                row.cache.to_owned(),
                row.trials.len().to_string(),
                ms(row.trials[0].total),
                ms(row.quantile(0.5)),
                ms(row.quantile(0.99)),
                ms(row.deploy_p50()),
            ]
        }),
    )
}

/// A markdown table: `header` (its two lines), then a line per row.
fn markdown(header: &str, rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = String::from(header);
    for cells in rows {
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// Warm requests to one kind of function, sorted.
#[derive(Clone, Debug)]
pub struct WarmRow {
    /// The kind of function.
    pub kind: String,
    /// Each request's time, from sending it to the whole response, sorted.
    pub times: Vec<Duration>,
}

impl WarmRow {
    fn quantile(&self, q: f64) -> Duration {
        self.times[quantile_index(self.times.len(), q)]
    }
}

/// Where quantile `q` is among `len` sorted values (`len` > 0).
fn quantile_index(len: usize, q: f64) -> usize {
    (((len as f64 - 1.0) * q).round() as usize).min(len - 1)
}

/// Untimed requests before the timed ones: at least this many, and for at
/// least [`WARM_UP_FOR`], so that module-level code, connections and a
/// Python function's bytecode are in place.
const WARM_UP_REQUESTS: usize = 50;
const WARM_UP_FOR: Duration = Duration::from_secs(2);

/// Deploys each subject, waits for its optimized code, warms it up, and
/// times `requests` requests to it, each sent `pause` after the previous
/// one answered: what a function serving sporadic traffic sees.
pub async fn warm(
    up: &Admin,
    subjects: &[Subject],
    requests: usize,
    pause: Duration,
) -> anyhow::Result<Vec<WarmRow>> {
    let url = up.url();
    let run = &run_id();
    let http = Http::default();
    let mut rows = Vec::new();
    for subject in subjects {
        eprintln!(
            "{}: {requests} requests, {} ms apart ...",
            subject.kind,
            pause.as_millis()
        );
        let name = format!("warm-{run}-{}", subject.kind);
        deploy_subject(up, &name, subject, subject.module.clone()).await?;
        settle(up, &name).await?;
        let warming = Instant::now();
        let mut sent = 0;
        while sent < WARM_UP_REQUESTS || warming.elapsed() < WARM_UP_FOR {
            call(&http, url, &name).await?;
            tokio::time::sleep(pause).await;
            sent += 1;
        }
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            tokio::time::sleep(pause).await;
            let started = Instant::now();
            call(&http, url, &name).await?;
            times.push(started.elapsed());
        }
        delete(up, &name).await?;
        times.sort();
        rows.push(WarmRow {
            kind: subject.kind.clone(),
            times,
        });
    }
    Ok(rows)
}

/// The warm rows as a markdown table.
pub fn warm_table(rows: &[WarmRow]) -> String {
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
    markdown(
        "| kind | requests | min ms | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|\n",
        rows.iter().map(|row| {
            vec![
                row.kind.clone(),
                row.times.len().to_string(),
                ms(row.times[0]),
                ms(row.quantile(0.5)),
                ms(row.quantile(0.9)),
                ms(row.quantile(0.99)),
            ]
        }),
    )
}

/// Deploys `count` distinct copies of `module` named `<prefix>-<n>`.
pub async fn deploy_many(
    up: &Admin,
    module: &[u8],
    prefix: &str,
    count: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    for n in 0..count {
        let name = format!("{prefix}-{n}");
        deploy(up, &name, with_nonce(module, &name)).await?;
        if (n + 1) % 100 == 0 || n + 1 == count {
            eprintln!(
                "deployed {}/{count} ({:.1} s)",
                n + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Serves `hello world` on `listen` with a bare hyper HTTP/1 server, until
/// interrupted: the ceiling of HTTP benchmarks on this machine.
pub async fn ceiling(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    println!("ceiling: listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                    b"hello world",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_changes_the_digest_but_keeps_the_module_valid() {
        let module = wat::parse_str("(module (func (export \"_start\")))").expect("wat");
        let a = with_nonce(&module, "a");
        let b = with_nonce(&module, "b");
        assert_ne!(a, b);
        let mut validator = wasmtime::wasmparser::Validator::new();
        validator.validate_all(&a).expect("still valid");
        let sections: Vec<String> = wasmtime::wasmparser::Parser::new(0)
            .parse_all(&a)
            .filter_map(|p| match p {
                Ok(wasmtime::wasmparser::Payload::CustomSection(c)) => Some(c.name().to_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(sections, [NONCE_SECTION]);
    }
}

/// What a neighbour does while a function's latency is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Nothing: the function alone.
    None,
    /// Endless loops, each cut at the neighbour's timeout.
    EndlessLoop,
    /// Memory bombs, each cut at the neighbour's memory limit.
    MemoryBomb,
    /// A flood of cheap events, back to back.
    Flood,
}

impl Misbehaviour {
    /// Its name in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Misbehaviour::None => "alone",
            Misbehaviour::EndlessLoop => "beside endless loops",
            Misbehaviour::MemoryBomb => "beside memory bombs",
            Misbehaviour::Flood => "beside a flood",
        }
    }
}

/// One function's request times while a neighbour misbehaved.
#[derive(Clone, Debug)]
pub struct NeighbourRow {
    /// What the neighbour did.
    pub load: Misbehaviour,
    /// The measured function's request times, sorted.
    pub times: Vec<Duration>,
    /// The neighbour's requests answered meanwhile (any status).
    pub neighbour_requests: usize,
}

impl NeighbourRow {
    fn quantile(&self, q: f64) -> Duration {
        self.times[quantile_index(self.times.len(), q)]
    }
}

/// Measures `hello` (a module answering at once) one request at a time,
/// `pause` apart, alone and then while `clients` concurrent clients make a
/// neighbour misbehave: `misbehave` (examples' misbehave.wasm: `/loop`,
/// `/alloc`) with a 1 s timeout and a 64 MiB memory limit, and a copy of
/// `hello` flooded back to back. Everything runs on the one `up` at `url`.
pub async fn neighbours(
    up: &Admin,
    hello: Vec<u8>,
    misbehave: Vec<u8>,
    requests: usize,
    pause: Duration,
    clients: usize,
) -> anyhow::Result<Vec<NeighbourRow>> {
    let url = up.url();
    let run = &run_id();
    let http = Http::default();
    let measured = format!("nb-{run}-hello");
    let spinner = format!("nb-{run}-misbehave");
    let flooded = format!("nb-{run}-flood");
    deploy(up, &measured, hello.clone()).await?;
    deploy(up, &flooded, with_nonce(&hello, run)).await?;
    deploy_request(
        up,
        &spinner,
        DeployRequest {
            source: misbehave,
            timeout: Some("1s".into()),
            memory: Some("64Mi".into()),
            ..DeployRequest::default()
        },
    )
    .await?;
    for name in [&measured, &flooded, &spinner] {
        settle(up, name).await?;
    }
    for _ in 0..WARM_UP_REQUESTS {
        call(&http, url, &measured).await?;
        call(&http, url, &flooded).await?;
    }
    let mut rows = Vec::new();
    for load in [
        Misbehaviour::None,
        Misbehaviour::EndlessLoop,
        Misbehaviour::MemoryBomb,
        Misbehaviour::Flood,
    ] {
        eprintln!(
            "{}: {requests} requests to a hello, {} ms apart{} ...",
            load.as_str(),
            pause.as_millis(),
            if load == Misbehaviour::None {
                String::new()
            } else {
                format!(", {clients} clients on the neighbour")
            }
        );
        let target = match load {
            Misbehaviour::None => None,
            Misbehaviour::EndlessLoop => Some(format!("{url}/{spinner}/loop")),
            Misbehaviour::MemoryBomb => Some(format!("{url}/{spinner}/alloc")),
            Misbehaviour::Flood => Some(format!("{url}/{flooded}")),
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut load_tasks = Vec::new();
        if let Some(target) = &target {
            for _ in 0..clients {
                let (http, target, stop, answered) =
                    (http.clone(), target.clone(), stop.clone(), answered.clone());
                load_tasks.push(tokio::spawn(async move {
                    while !stop.is_cancelled() {
                        let sent = http.send(Method::GET, &target, None, Vec::new());
                        tokio::select! {
                            () = stop.cancelled() => break,
                            result = sent => if result.is_ok() {
                                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            },
                        }
                    }
                }));
            }
            // Let the load reach its steady state.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            tokio::time::sleep(pause).await;
            let started = Instant::now();
            call(&http, url, &measured).await?;
            times.push(started.elapsed());
        }
        stop.cancel();
        for task in load_tasks {
            let _ = task.await;
        }
        times.sort();
        rows.push(NeighbourRow {
            load,
            times,
            neighbour_requests: answered.load(std::sync::atomic::Ordering::Relaxed),
        });
    }
    for name in [&measured, &flooded, &spinner] {
        delete(up, name).await?;
    }
    Ok(rows)
}

/// The neighbour rows as a markdown table, each p50 and p99 beside the
/// function's own alone.
pub fn neighbours_table(rows: &[NeighbourRow]) -> String {
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
    let alone = rows.iter().find(|r| r.load == Misbehaviour::None);
    let ratio = |row: &NeighbourRow, q: f64| {
        alone.map_or_else(
            || "-".to_owned(),
            |a| {
                format!(
                    "{:.1}×",
                    row.quantile(q).as_secs_f64() / a.quantile(q).as_secs_f64().max(1e-9)
                )
            },
        )
    };
    markdown(
        "| neighbour | requests | neighbour's answers | p50 ms | p99 ms | p50 / alone | p99 / alone |\n|---|---:|---:|---:|---:|---:|---:|\n",
        rows.iter().map(|row| {
            vec![
                row.load.as_str().to_owned(),
                row.times.len().to_string(),
                row.neighbour_requests.to_string(),
                ms(row.quantile(0.5)),
                ms(row.quantile(0.99)),
                ratio(row, 0.5),
                ratio(row, 0.99),
            ]
        }),
    )
}
