//! Source functions: the runtime component of each language (read once per
//! process, compiled once per host through the compile cache) and the
//! function's files, written to a folder that the function reads at
//! `/kubeless`.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::host::FunctionSettings;
use crate::runtimes::Language;

/// Where a source function's files are, in its sandbox.
pub const CODE_MOUNT: &str = "/kubeless";
/// The largest unpacked zip accepted.
const MAX_UNZIPPED: u64 = 256 << 20;
/// The most files a zip may hold.
const MAX_ENTRIES: usize = 10_000;

/// A language's runtime component and its digest.
pub struct RuntimeComponent {
    /// The component's bytes.
    pub bytes: Arc<[u8]>,
    /// Their SHA-256, the compile cache's key.
    pub digest: [u8; 32],
}

/// The runtime components, read from one folder on first use.
pub struct SourceRuntimes {
    dir: Option<PathBuf>,
    loaded: Mutex<HashMap<&'static str, Arc<RuntimeComponent>>>,
}

impl SourceRuntimes {
    /// Runtimes in `dir` (`runtimes/dist` after `bash examples/build.sh`).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            loaded: Mutex::default(),
        }
    }

    /// The runtime component of `language`.
    pub fn component(&self, language: Language) -> Result<Arc<RuntimeComponent>, String> {
        let file = language.component_file();
        if let Some(loaded) = self.lock().get(file) {
            return Ok(loaded.clone());
        }
        let bytes = match (&self.dir, crate::runtimes::embedded::get(file)) {
            (Some(dir), _) => {
                let path = dir.join(file);
                std::fs::read(&path).map_err(|e| {
                    format!(
                        "spec.runtime: the {language:?} runtime is not at {} ({e}); build it with `bash runtimes/build.sh`, or point --runtimes-dir at it",
                        path.display()
                    )
                })?
            }
            // Built into the binary (build.rs).
            (None, Some(bytes)) => bytes.to_vec(),
            (None, None) => {
                return Err(format!(
                    "spec.runtime: this wasmless has no {} runtime: it was built without runtimes/dist and no runtimes folder is set; in a checkout, `bash runtimes/build.sh` then `cargo install --path .` embeds them, or give --runtimes-dir (WASMLESS_RUNTIMES_DIR) the folder holding {file}",
                    language.title()
                ));
            }
        };
        let component = Arc::new(RuntimeComponent {
            digest: Sha256::digest(&bytes).into(),
            bytes: bytes.into(),
        });
        self.lock().insert(file, component.clone());
        Ok(component)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Arc<RuntimeComponent>>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a function's files could not be made ready.
#[derive(Debug)]
pub enum CodeError {
    /// A dependency needs native code, which wasm cannot run.
    Native {
        /// The package.
        package: String,
        /// The native file it installed.
        file: String,
        /// The dependency file that asked for it.
        manifest: &'static str,
    },
    /// Anything else, said for the user.
    Other(String),
}

impl std::fmt::Display for CodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodeError::Native {
                package,
                file,
                manifest,
            } => write!(
                f,
                "{manifest}: package `{package}` contains native code ({file}), which cannot run in wasm; run this function on a container-image runtime instead"
            ),
            CodeError::Other(message) => f.write_str(message),
        }
    }
}

impl From<String> for CodeError {
    fn from(message: String) -> Self {
        CodeError::Other(message)
    }
}

/// Which installation a function's dependencies get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// For a wasm runtime: wheels only, no install scripts, and a package
    /// with native code is refused.
    Wasm,
    /// For the local fallback process: what the installer does normally.
    Native,
}

/// Who installs a source function's packages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Installer {
    /// This process, with the `python3 -m pip` and `npm` on its PATH
    /// (`wasmless up`).
    #[default]
    Local,
    /// The installer containers of a pool's pod (the wasmless image has no
    /// pip or npm): this folder, shared with them, holds the functions'
    /// files, and each container installs the packages of the folders that
    /// ask for its language ([`installer_script`]).
    Containers(PathBuf),
}

/// How a function's packages are installed.
#[derive(Clone, Copy, Debug)]
pub struct Install<'a> {
    /// Wheels and no install scripts (wasm), or what the installer does.
    pub target: Target,
    /// Who runs the installer.
    pub by: &'a Installer,
    /// The function's env: the variables of [`INSTALLER_ENV`] reach the
    /// installer (where packages come from), the rest does not.
    pub env: &'a [(String, String)],
}

/// The variables of a Function's env that reach its package installer:
/// where packages come from (a mirror, a proxy), as they do in a pod's
/// install container. No others: a pool's installer serves every function
/// of the namespace, and variables such as `PYTHONPATH` or `NODE_OPTIONS`
/// would run the function's own code in it.
pub const INSTALLER_ENV: &[&str] = &[
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_FIND_LINKS",
    "npm_config_registry",
    "NPM_CONFIG_REGISTRY",
    "npm_config_strict_ssl",
    "NPM_CONFIG_STRICT_SSL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// The part of `env` that reaches the installer, in order.
fn installer_env(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter()
        .filter(|(name, _)| INSTALLER_ENV.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// A folder of a function's files being written: the folder that asks an
/// installer container for its packages is one of these.
const STAGING_PREFIX: &str = ".staging-";
/// An installer container's mark in the shared folder (with the language's
/// name): it is there, watching.
const INSTALLER_MARK: &str = ".wasmless-installer-";
/// A staging folder's request to the installer of a language (with the
/// language's name).
const INSTALL_REQUEST: &str = ".wasmless-install-";
/// The installer's env for the request, one `NAME=value` per line.
const INSTALL_ENV_FILE: &str = ".wasmless-install.env";
/// What the installer printed.
const INSTALL_LOG: &str = ".wasmless-install.log";
/// Its exit status, written last.
const INSTALL_EXIT: &str = ".wasmless-install.exit";
/// How long a load waits for an installer container to start (a pod's
/// containers start together).
const INSTALLER_START: std::time::Duration = std::time::Duration::from_secs(20);
/// How long a load waits for an installer container.
const INSTALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The shell loop an installer container of `language` runs in `root`
/// (the pool's shared folder of functions' files): for every staging
/// folder that asks for its language, `command` (the catalog's install
/// command on the wasm path, with `/kubeless` as that folder) with the
/// request's env, its output and exit status left beside it.
pub fn installer_script(root: &str, language: Language, command: &[String]) -> String {
    let quote = |arg: &str| format!("'{}'", arg.replace('\'', r"'\''"));
    let relative = |arg: &String| match arg.strip_prefix(CODE_MOUNT) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!(".{rest}"),
        _ => arg.clone(),
    };
    let command = command
        .iter()
        .map(|arg| quote(&relative(arg)))
        .collect::<Vec<_>>()
        .join(" ");
    let tag = language.tag();
    format!(
        r#"trap 'exit 0' TERM INT
cd {root} || exit 1
touch {INSTALLER_MARK}{tag} || exit 1
echo "installing {title} packages for the functions of this pod (requests in {root})"
while :; do
  for request in {STAGING_PREFIX}*/{INSTALL_REQUEST}{tag}; do
    [ -f "$request" ] || continue
    dir="${{request%/*}}"
    echo "$dir: installing"
    (set -f; cd "$dir" && exec env $(cat {INSTALL_ENV_FILE}) {command}) >"$dir/{INSTALL_LOG}" 2>&1
    status=$?
    echo "$dir: exit $status"
    echo "$status" >"$dir/{INSTALL_EXIT}.tmp" && mv "$dir/{INSTALL_EXIT}.tmp" "$dir/{INSTALL_EXIT}"
    rm -f "$request"
  done
  sleep 0.5
done
"#,
        root = quote(root),
        title = language.title(),
    )
}

/// Writes a function's files below `root`, in a folder named after their
/// content (so a redeploy of the same files reuses it), and returns it. A
/// zip is unpacked; a single source becomes `<module>.<extension>`. The
/// handler's module must be there.
pub fn write_code(
    root: &Path,
    source: &[u8],
    zip: bool,
    module: &str,
    language: Language,
    install: &Install<'_>,
) -> Result<PathBuf, CodeError> {
    let target = install.target;
    let mut hasher = Sha256::new();
    hasher.update([u8::from(zip), u8::from(target == Target::Native)]);
    hasher.update(module.as_bytes());
    hasher.update([0]);
    for (name, value) in installer_env(install.env) {
        hasher.update(name.as_bytes());
        hasher.update([b'=']);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hasher.update(source);
    let dir = root.join(hex::encode(&hasher.finalize()[..16]));
    let module_file = format!("{module}.{}", language.extension());
    if dir.join(&module_file).is_file() {
        return Ok(dir);
    }
    let staging = root.join(format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&staging).map_err(|e| {
        CodeError::Other(format!(
            "cannot write the function's files to {}: {e}",
            staging.display()
        ))
    })?;
    let written = if zip {
        unzip(source, &staging)
    } else {
        std::fs::write(staging.join(&module_file), source).map_err(|e| e.to_string())
    };
    let checked = written
        .and_then(|()| {
            if staging.join(&module_file).is_file() {
                Ok(())
            } else {
                Err(format!(
                    "spec.handler: the handler's module {module_file} is not in the zip"
                ))
            }
        })
        .map_err(CodeError::Other)
        .and_then(|()| match language {
            Language::Python => install_requirements(&staging, install),
            Language::JavaScript => install_packages(&staging, install),
        });
    if let Err(message) = checked {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(message);
    }
    match std::fs::rename(&staging, &dir) {
        Ok(()) => Ok(dir),
        // Another load wrote the same files first.
        Err(_) if dir.join(&module_file).is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(dir)
        }
        Err(e) => Err(CodeError::Other(format!(
            "cannot write the function's files to {}: {e}",
            dir.display()
        ))),
    }
}

/// A function's files that a pod's init containers already unpacked into
/// `dir`, with their packages installed: checked as [`write_code`] checks
/// what it writes (the handler's module is there, no native code).
pub fn prepared(dir: &Path, module: &str, language: Language) -> Result<PathBuf, CodeError> {
    let module_file = format!("{module}.{}", language.extension());
    if !dir.join(&module_file).is_file() {
        return Err(CodeError::Other(format!(
            "spec.handler: the handler's module {module_file} is not in {}",
            dir.display()
        )));
    }
    no_native_code(dir, language)?;
    Ok(dir.to_owned())
}

/// Unpacks a zip into `dir`, refusing paths that leave it and archives
/// that unpack to more than [`MAX_UNZIPPED`].
pub fn unzip(bytes: &[u8], dir: &Path) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("spec.function: not a valid zip: {e}"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!(
            "spec.function: the zip holds {} files, more than {MAX_ENTRIES}",
            archive.len()
        ));
    }
    let mut total = 0u64;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| format!("spec.function: reading the zip: {e}"))?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("entry {index}"));
        let relative = entry
            .enclosed_name()
            .ok_or_else(|| format!("spec.function: `{name}` in the zip points outside it"))?;
        let path = dir.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut content = Vec::new();
        let limit = MAX_UNZIPPED.saturating_sub(total) + 1;
        (&mut entry)
            .take(limit)
            .read_to_end(&mut content)
            .map_err(|e| format!("spec.function: unpacking `{name}`: {e}"))?;
        total += content.len() as u64;
        if total > MAX_UNZIPPED {
            return Err(format!(
                "spec.function: the zip unpacks to more than {} MiB",
                MAX_UNZIPPED >> 20
            ));
        }
        std::fs::write(&path, content).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Installs the packages of the function's `requirements.txt` into `.deps`
/// beside its files (the runtime puts it on `sys.path`), with `python3 -m
/// pip` (or the pool's installer container), wheels only. A package with
/// native code cannot run in wasm: it is refused, by name.
fn install_requirements(dir: &Path, install: &Install<'_>) -> Result<(), CodeError> {
    if !dir.join("requirements.txt").is_file() {
        return Ok(());
    }
    run_installer(
        dir,
        install,
        Language::Python,
        ("requirements.txt", "pip"),
        || {
            let mut command = std::process::Command::new("python3");
            command.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
            ]);
            if install.target == Target::Wasm {
                command.arg("--only-binary=:all:");
            }
            command
                .arg("--target")
                .arg(dir.join(".deps"))
                .args(["-r", "requirements.txt"]);
            (command, "`python3 -m pip`", "install Python 3 with pip")
        },
    )
}

/// Runs a language's package installer (`(file, tool)`: its dependency
/// file and installer, for messages) on the function folder `dir`: the
/// command `local` gives (with the program's name and how to get it, for
/// the error when it is missing) in this process's environment plus the
/// installer's part of the function's env, or the pool's installer
/// container; then, on the wasm path, refuses native code.
fn run_installer(
    dir: &Path,
    install: &Install<'_>,
    language: Language,
    (file, tool): (&str, &str),
    local: impl FnOnce() -> (std::process::Command, &'static str, &'static str),
) -> Result<(), CodeError> {
    let what = &format!("{file}: {tool}");
    match install.by {
        Installer::Local => {
            let (mut command, program, remedy) = local();
            let output = command
                .envs(installer_env(install.env))
                .current_dir(dir)
                .output()
                .map_err(|e| {
                    format!("{file}: cannot run {program} ({e}); {remedy} where wasmless runs")
                })?;
            installed(&output, what)?;
        }
        Installer::Containers(root) => in_container(root, dir, language, install.env, what)?,
    }
    if install.target == Target::Wasm {
        no_native_code(dir, language)?;
    }
    Ok(())
}

/// Asks the installer container of `language` (watching `root`) to install
/// the packages of the staging folder `dir`, and waits for it.
fn in_container(
    root: &Path,
    dir: &Path,
    language: Language,
    env: &[(String, String)],
    what: &str,
) -> Result<(), String> {
    let tag = language.tag();
    let mark = root.join(format!("{INSTALLER_MARK}{tag}"));
    let started = std::time::Instant::now();
    while !mark.is_file() && started.elapsed() < INSTALLER_START {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if !mark.is_file() {
        return Err(format!(
            "{what}: this pool pod has no {} package installer yet (the operator adds one to the pool's pods when a Function of the namespace needs it; the next pods have it)",
            language.title()
        ));
    }
    let mut lines = String::new();
    for (name, value) in installer_env(env) {
        if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "spec.env: {name} reaches the pool's package installer, which takes values without spaces; `{value}` has some"
            ));
        }
        lines.push_str(&format!("{name}={value}\n"));
    }
    let write = |file: &str, content: &str| {
        std::fs::write(dir.join(file), content).map_err(|e| {
            format!(
                "{what}: cannot ask the installer ({}: {e})",
                dir.join(file).display()
            )
        })
    };
    write(INSTALL_ENV_FILE, &lines)?;
    // The request last: the installer reads the env when it sees it.
    let request = format!("{INSTALL_REQUEST}{tag}");
    write(&request, "")?;
    let exit = dir.join(INSTALL_EXIT);
    let deadline = std::time::Instant::now() + INSTALL_TIMEOUT;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&exit) {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = std::fs::remove_file(dir.join(&request));
            return Err(format!(
                "{what}: the pool's {} package installer did not finish within {} s",
                language.title(),
                INSTALL_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(dir.join(INSTALL_LOG)).unwrap_or_default();
    for file in [
        request.as_str(),
        INSTALL_ENV_FILE,
        INSTALL_LOG,
        INSTALL_EXIT,
    ] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    if status.trim() == "0" {
        Ok(())
    } else {
        Err(format!(
            "{what} could not install the packages: {}",
            last_lines(&log)
        ))
    }
}

/// Refuses a function folder whose installed packages (`.deps` for Python,
/// `node_modules` for JavaScript) hold native code, naming the package.
fn no_native_code(dir: &Path, language: Language) -> Result<(), CodeError> {
    let native = match language {
        Language::Python => native_code(&dir.join(".deps")).map(|n| (n, "requirements.txt")),
        Language::JavaScript => {
            native_addon(&dir.join("node_modules")).map(|n| (n, "package.json"))
        }
    };
    match native {
        Some(((package, file), manifest)) => Err(CodeError::Native {
            package,
            file,
            manifest,
        }),
        None => Ok(()),
    }
}

/// The first installed package holding a native library, and the file.
fn native_code(deps: &Path) -> Option<(String, String)> {
    let mut pending = vec![deps.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let native = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "so" | "pyd" | "dylib"));
            if native {
                let relative = path.strip_prefix(deps).ok()?;
                let package = relative.components().next()?.as_os_str().to_string_lossy();
                let package = package.trim_end_matches(".libs").to_owned();
                return Some((package, relative.display().to_string()));
            }
        }
    }
    None
}

/// Installs the dependencies of the function's `package.json` into its
/// `node_modules` with `npm` (or the pool's installer container), no
/// install scripts. A package with a native addon (a `.node` file) cannot
/// run in wasm: it is refused by name.
fn install_packages(dir: &Path, install: &Install<'_>) -> Result<(), CodeError> {
    if !dir.join("package.json").is_file() || dir.join("node_modules").is_dir() {
        return Ok(());
    }
    run_installer(
        dir,
        install,
        Language::JavaScript,
        ("package.json", "npm"),
        || {
            let mut command = std::process::Command::new("npm");
            command.args([
                "install",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                "--install-links",
                "--no-package-lock",
            ]);
            if install.target == Target::Wasm {
                command.arg("--ignore-scripts");
            }
            (command, "`npm`", "install Node.js with npm")
        },
    )
}

/// The first installed package holding a native addon, and the file.
fn native_addon(modules: &Path) -> Option<(String, String)> {
    let mut pending = vec![modules.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "node") || path.ends_with("binding.gyp")
            {
                let relative = path.strip_prefix(modules).ok()?;
                let mut parts = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy());
                let first = parts.next()?.into_owned();
                let package = if first.starts_with('@') {
                    format!("{first}/{}", parts.next().unwrap_or_default())
                } else {
                    first
                };
                return Some((package, relative.display().to_string()));
            }
        }
    }
    None
}

/// Whether an installer succeeded; if not, the last lines it wrote.
fn installed(output: &std::process::Output, what: &str) -> Result<(), String> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(format!(
        "{what} could not install the packages: {}",
        last_lines(&stderr)
    ))
}

/// The last five lines of an installer's output, on one line.
fn last_lines(output: &str) -> String {
    let mut last: Vec<&str> = output
        .lines()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(5)
        .collect();
    last.reverse();
    last.join(" / ")
}

/// Tells the Python runtime to compile the function's files to bytecode
/// instead of handling an event (`runtimes/python/app.py`).
const PRECOMPILE_ENV: &str = "WASMLESS_PRECOMPILE";
/// Where the Python runtime finds (and, in the host's own run, writes) the
/// bytecode of a function's files: its `sys.pycache_prefix`.
const PYCACHE_ENV: &str = "WASMLESS_PYCACHE";
/// The guest path of that folder.
pub(crate) const BYTECODE_MOUNT: &str = "/wasmless-bytecode";
/// The namespace of the host's own runs.
const HOST_NAMESPACE: &str = "host.wasmless.io";

/// Gives a Python function whose files are in `code` the folder below
/// `root` that holds their bytecode (one per folder of files, named as it
/// is: after its content in `up`), read-only, and tells the runtime where it
/// is. Without it (it cannot be made), events compile the source.
pub fn add_bytecode_folder(settings: &mut FunctionSettings, root: &Path, code: &Path) {
    let Some(name) = code.file_name() else {
        return;
    };
    let folder = root.join(name);
    if let Err(err) = std::fs::create_dir_all(&folder) {
        tracing::debug!(folder = %folder.display(), "no Python bytecode folder ({err}): events compile the source");
        return;
    }
    settings
        .env
        .push((PYCACHE_ENV.to_owned(), BYTECODE_MOUNT.to_owned()));
    settings.mounts.push(crate::host::Mount {
        host: folder,
        guest: BYTECODE_MOUNT.to_owned(),
        writable: false,
    });
}

/// The Python runtime's run that compiles a Python function's files (its
/// module, the modules beside it, its installed packages) to bytecode, once
/// per folder of files and runtime, into a folder of the host's beside the
/// function's files ([`bytecode_mount`]; the runtime's
/// `sys.pycache_prefix`): a fresh instance per event then loads compiled
/// code instead of compiling every module it imports. Until it is done, or
/// where it cannot be, events compile the source as before.
pub struct Bytecode {
    run: crate::host::LoadedFunction,
    marker: PathBuf,
}

impl Bytecode {
    /// The run for `function`, a Python function on its wasm runtime; `None`
    /// when its files are already compiled by this runtime or it has no
    /// bytecode folder.
    pub fn new(function: &crate::host::LoadedFunction) -> Option<Self> {
        let folder = function
            .settings()
            .mounts
            .iter()
            .find(|mount| mount.guest == BYTECODE_MOUNT)?
            .host
            .clone();
        let digest = function.digest();
        let marker = folder.join(format!(".wasmless-{}", &digest[..digest.len().min(16)]));
        if marker.exists() {
            return None;
        }
        let mut settings = function.settings().clone();
        // Only the bytecode folder is writable: the function's files stay
        // read-only.
        for mount in &mut settings.mounts {
            mount.writable = mount.guest == BYTECODE_MOUNT;
        }
        settings
            .env
            .push((PRECOMPILE_ENV.to_owned(), "1".to_owned()));
        // Many installed packages take a while; this is off the event path.
        settings.timeout = settings.timeout.max(std::time::Duration::from_secs(300));
        Some(Self {
            run: function.with_settings(settings),
            marker,
        })
    }

    /// Runs it, and leaves the marker that says it is done. A failure is
    /// logged: events then compile the source, as without this.
    pub async fn run(self, name: &str) {
        let started = std::time::Instant::now();
        let event = crate::host::Event::new(bytes::Bytes::new(), "text/plain", HOST_NAMESPACE);
        // A one-off run: no instance is made ahead of a next event.
        match self.run.handle_event_inline(event).await {
            Ok(response) if response.status == 200 => {
                let summary = String::from_utf8_lossy(&response.body).into_owned();
                if summary.contains("did not compile") {
                    tracing::warn!(function = %name, "compiling its Python files to bytecode: {summary}");
                }
                match std::fs::write(&self.marker, summary.as_bytes()) {
                    Ok(()) => tracing::debug!(
                        function = %name,
                        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                        "{summary}"
                    ),
                    Err(err) => {
                        tracing::debug!(function = %name, "python bytecode: cannot write {} ({err})", self.marker.display())
                    }
                }
            }
            Ok(response) => tracing::warn!(
                function = %name,
                "compiling its Python files to bytecode failed ({}: {}); events compile the source instead",
                response.status,
                String::from_utf8_lossy(&response.body).trim()
            ),
            Err(err) => tracing::warn!(
                function = %name,
                "compiling its Python files to bytecode failed ({err}); events compile the source instead"
            ),
        }
    }
}
