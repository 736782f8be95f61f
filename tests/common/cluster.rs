//! The test cluster of tests/cluster/ for the end-to-end tests: wasmless
//! installed on it once per test binary (the image of the binary under
//! test, the CRDs, RBAC and the operator of manifests/ through the test
//! overlay), a namespace per test, and kubectl and CLI helpers.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::root;

/// The installed cluster, or None when there is none here (outside CI).
pub fn cluster() -> Option<&'static Installed> {
    static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();
    INSTALLED.get_or_init(install).as_ref()
}

/// wasmless running on the test cluster.
pub struct Installed {
    /// The kubeconfig the tests use (cluster-admin).
    pub kubeconfig: PathBuf,
}

/// Skips the calling test, visibly, when there is no cluster; fails it in
/// CI, which always has one.
#[macro_export]
macro_rules! cluster_or_skip {
    ($test:expr) => {
        match common::cluster::cluster() {
            Some(cluster) => cluster,
            None => {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {}: no cluster here; bring one up with `export KUBECONFIG=$(bash tests/cluster/up.sh)`",
                    $test
                );
                return;
            }
        }
    };
}

fn install() -> Option<Installed> {
    let Some(kubeconfig) = std::env::var_os("KUBECONFIG").map(PathBuf::from) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs the end-to-end tests on the test cluster, but KUBECONFIG is not set: .ci/run must bring it up (tests/cluster/up.sh)"
        );
        return None;
    };
    // The image of the binary under test and of the runtimes the examples'
    // build made, so that the operator and function pods run what this test
    // run built.
    super::wasm("hello");
    let status = Command::new("bash")
        .arg(root().join("tests/cluster/images.sh"))
        .env("WASMLESS_BIN", env!("CARGO_BIN_EXE_wasmless"))
        .status()
        .expect("running tests/cluster/images.sh");
    assert!(status.success(), "tests/cluster/images.sh failed");
    let installed = Installed { kubeconfig };
    let overlay = root().join("tests/cluster/overlay");
    installed.kubectl_ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-k",
        &overlay.display().to_string(),
    ]);
    installed.kubectl_ok(&[
        "wait",
        "--for",
        "condition=Established",
        "crd/functions.wasmless.io",
        "--timeout=60s",
    ]);
    // A new image under the same tag: make the operator pods pick it up.
    installed.kubectl_ok(&[
        "-n",
        "wasmless",
        "rollout",
        "restart",
        "deployment/wasmless-operator",
    ]);
    let rolled = installed.operator_rollout();
    assert!(
        rolled.status.success(),
        "the operator's rollout: {}",
        String::from_utf8_lossy(&rolled.stderr)
    );
    Some(installed)
}

impl Installed {
    /// The wasmless image the operator and function pods run (env.sh's
    /// WASMLESS_IMAGE, the overlay's image).
    #[allow(dead_code)]
    pub fn wasmless_image(&self) -> String {
        "wasmless.test/wasmless:e2e".to_owned()
    }

    /// Waits for the operator's Deployment to finish rolling out.
    pub fn operator_rollout(&self) -> Output {
        self.kubectl(&[
            "-n",
            "wasmless",
            "rollout",
            "status",
            "deployment/wasmless-operator",
            "--timeout=180s",
        ])
    }

    /// Gives function pods `image` (the operator's WASMLESS_IMAGE), which
    /// rolls the operator, and waits for the rollout.
    #[allow(dead_code)]
    pub fn set_function_image(&self, image: &str) -> Output {
        let set = self.kubectl(&[
            "-n",
            "wasmless",
            "set",
            "env",
            "deployment/wasmless-operator",
            &format!("WASMLESS_IMAGE={image}"),
        ]);
        if !set.status.success() {
            return set;
        }
        self.operator_rollout()
    }

    /// Runs kubectl against the cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("running kubectl")
    }

    /// Runs kubectl and returns its stdout; panics with its output if it
    /// fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the wasmless CLI against the cluster; (success, stdout, stderr).
    pub fn wasmless(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmless"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("running wasmless");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A fresh namespace, deleted when the guard drops.
    pub fn namespace(&self, test: &str) -> Namespace<'_> {
        let name = format!("e2e-{test}-{}", std::process::id() % 100_000);
        let _ = self.kubectl(&["delete", "namespace", &name, "--wait=true", "--timeout=60s"]);
        self.kubectl_ok(&["create", "namespace", &name]);
        Namespace {
            cluster: self,
            name,
        }
    }

    /// Polls `probe` until it returns Some, or panics after `limit` with
    /// what `context` says about the cluster then.
    pub fn eventually<T>(
        &self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut() -> Option<T>,
        context: impl Fn() -> String,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = probe() {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}\n{}",
                context()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A namespace of one test.
pub struct Namespace<'a> {
    cluster: &'a Installed,
    /// Its name.
    pub name: String,
}

impl Namespace<'_> {
    /// kubectl in this namespace, which must succeed.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        self.cluster.kubectl_ok(&all)
    }

    /// kubectl in this namespace.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        self.cluster.kubectl(&all)
    }

    /// The wasmless CLI in this namespace.
    pub fn wasmless(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-n", &self.name]);
        self.cluster.wasmless(&all)
    }

    /// What a failing test should show: the namespace's objects and
    /// Events, and the operator's log.
    pub fn describe(&self) -> String {
        let text = |out: Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        };
        format!(
            "--- objects\n{}--- events\n{}--- operator\n{}",
            text(self.kubectl(&["get", "functions,deploy,pods,svc", "-o", "wide"])),
            text(self.kubectl(&["get", "events", "--sort-by=.lastTimestamp"])),
            text(self.cluster.kubectl(&[
                "-n",
                "wasmless",
                "logs",
                "deployment/wasmless-operator",
                "--tail=40",
            ])),
        )
    }
}

impl Drop for Namespace<'_> {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}
