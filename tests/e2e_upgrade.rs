//! A rolling upgrade of the operator on the real cluster of tests/cluster/:
//! while the old and the new version both run, only the holder of the
//! operator's Lease writes, so a function's Deployment moves from the old
//! template to the new one once and never back. Its own test binary: it
//! rolls the operator, which the tests of e2e_cluster.rs must not see.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The image the "new version" of the operator gives function pods: the
/// same image under a second name, so that only the template differs.
const NEXT_IMAGE: &str = "wasmless.test/wasmless:e2e-next";

/// Puts the operator back as the overlay installs it, whatever the test did.
struct RestoreOperator<'a>(&'a common::cluster::Installed);

impl Drop for RestoreOperator<'_> {
    fn drop(&mut self) {
        let _ = self.0.set_function_image(&self.0.wasmless_image());
    }
}

#[test]
fn during_a_rolling_upgrade_only_one_operator_version_writes() {
    let cluster = cluster_or_skip!("during_a_rolling_upgrade_only_one_operator_version_writes");
    let ns = cluster.namespace("upgrade");
    let old_image = cluster.wasmless_image();
    let tagged = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source tests/cluster/env.sh && ctr --address \"$CONTAINERD_SOCK\" -n k8s.io images tag --force \"$WASMLESS_IMAGE\" {NEXT_IMAGE}"
        ))
        .current_dir(common::root())
        .status()
        .expect("ctr");
    assert!(tagged.success(), "tagging {NEXT_IMAGE}");
    let dir = common::tempdir();
    let file = dir.join("steady.yaml");
    std::fs::write(
        &file,
        common::manifest_inline(
            "steady",
            &common::wat_writing("steady"),
            "  placement: Dedicated\n",
        ),
    )
    .expect("write");
    ns.kubectl_ok(&["apply", "-f", &file.display().to_string()]);
    let image = || {
        let out = ns.kubectl(&[
            "get",
            "deployment",
            "steady",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            .filter(|i| !i.is_empty())
    };
    cluster.eventually(
        "the function's Deployment",
        Duration::from_secs(120),
        image,
        || ns.describe(),
    );

    // Every image the function's Deployment has had, in order, from now on.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (seen, done) = (seen.clone(), done.clone());
        let kubeconfig = cluster.kubeconfig.clone();
        let namespace = ns.name.clone();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let out = std::process::Command::new("kubectl")
                    .args(["-n", &namespace, "get", "deployment", "steady", "-o"])
                    .arg("jsonpath={.spec.template.spec.containers[0].image}")
                    .env("KUBECONFIG", &kubeconfig)
                    .output();
                if let Ok(out) = out {
                    let image = String::from_utf8_lossy(&out.stdout).into_owned();
                    let mut seen = seen.lock().expect("samples");
                    if !image.is_empty() && seen.last() != Some(&image) {
                        seen.push(image);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // The new version: its pods give functions another template.
    let _restore = RestoreOperator(cluster);
    let rolled = cluster.set_function_image(NEXT_IMAGE);
    assert!(
        rolled.status.success(),
        "rolling the operator: {}",
        String::from_utf8_lossy(&rolled.stderr)
    );
    cluster.eventually(
        "the function on the new template",
        Duration::from_secs(120),
        || (image().as_deref() == Some(NEXT_IMAGE)).then_some(()),
        || ns.describe(),
    );
    // And it stays there.
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().expect("the sampler");
    let seen = seen.lock().expect("samples").clone();
    assert_eq!(
        seen,
        vec![old_image.clone(), NEXT_IMAGE.to_owned()],
        "the function's template went from the old version's to the new one's once\n{}",
        ns.describe()
    );
}
