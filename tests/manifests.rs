//! The install manifests and the Dockerfile fit the code: the
//! kustomization lists every file, RBAC grants what the operator uses, the
//! operator Deployment runs the operator with the matching image.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use serde_json::Value;

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// Every document of every YAML file in manifests/.
fn documents() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(manifests()).expect("manifests/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for value in serde_saphyr::from_multiple::<Value>(&text).expect("valid YAML") {
            docs.push((name.clone(), value));
        }
    }
    docs
}

fn of_kind<'a>(docs: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|(_, d)| d["kind"] == kind)
        .map(|(_, d)| d)
        .collect()
}

#[test]
fn the_kustomization_installs_every_manifest() {
    let docs = documents();
    let kustomization = of_kind(&docs, "Kustomization")[0];
    let mut listed: Vec<String> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a file").to_owned())
        .collect();
    listed.sort();
    let mut files: Vec<String> = docs
        .iter()
        .map(|(file, _)| file.clone())
        .filter(|f| f != "kustomization.yaml")
        .collect();
    files.sort();
    files.dedup();
    assert_eq!(listed, files);
}

type Grants = std::collections::BTreeSet<(String, String, String)>;

fn granted_by(rules: &[k8s_openapi::api::rbac::v1::PolicyRule]) -> Grants {
    let mut granted = Grants::new();
    for rule in rules {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    granted.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    granted
}

fn used_of(permissions: &[(&str, &str, &[&str])]) -> Grants {
    let mut used = Grants::new();
    for (group, resource, verbs) in permissions {
        for verb in *verbs {
            used.insert((group.to_string(), resource.to_string(), verb.to_string()));
        }
    }
    used
}

#[test]
fn rbac_grants_the_operator_exactly_what_it_uses() {
    let docs = documents();
    let mut rules = Vec::new();
    for role in of_kind(&docs, "ClusterRole") {
        let role: ClusterRole = serde_json::from_value(role.clone()).expect("a ClusterRole");
        // The roles that aggregate into edit/view are for people.
        let aggregated = role.metadata.labels.as_ref().is_some_and(|l| {
            l.keys()
                .any(|k| k.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
        });
        let pool = role.metadata.name.as_deref() == Some("wasmless-pool");
        if pool {
            assert_eq!(
                granted_by(role.rules.as_deref().unwrap_or_default()),
                used_of(wasmless::operator::pool::POOL_PERMISSIONS),
                "the wasmless-pool ClusterRole grants exactly what a pool uses"
            );
        } else if !aggregated {
            rules.extend(role.rules.unwrap_or_default());
        }
    }
    for role in of_kind(&docs, "Role") {
        let role: Role = serde_json::from_value(role.clone()).expect("a Role");
        rules.extend(role.rules.unwrap_or_default());
    }
    let granted = granted_by(&rules);
    let used = used_of(wasmless::operator::run::PERMISSIONS);
    let missing: Vec<_> = used.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        missing.is_empty(),
        "manifests/rbac.yaml does not grant {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "manifests/rbac.yaml grants what the operator never uses: {unused:?}"
    );
    let wildcard = rules.iter().any(|rule| {
        rule.verbs.iter().any(|v| v == "*") || rule.resources.iter().flatten().any(|r| r == "*")
    });
    assert!(!wildcard, "least privilege: no wildcards");
}

#[test]
fn the_operator_deployment_runs_the_operator_with_its_own_image() {
    let docs = documents();
    let deployment: Deployment =
        serde_json::from_value(of_kind(&docs, "Deployment")[0].clone()).expect("a Deployment");
    let pod = deployment
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod spec");
    let container = &pod.containers[0];
    assert_eq!(
        container.args.as_deref(),
        Some(&["operator".to_owned()][..])
    );
    let env = container.env.clone().unwrap_or_default();
    let image = env
        .iter()
        .find(|e| e.name == "WASMLESS_IMAGE")
        .and_then(|e| e.value.clone());
    assert_eq!(
        image, container.image,
        "function pods run the operator's image"
    );
    for needed in ["POD_NAME", "POD_NAMESPACE"] {
        assert!(env.iter().any(|e| e.name == needed), "{needed} is set");
    }
    let accounts = of_kind(&docs, "ServiceAccount");
    assert_eq!(
        pod.service_account_name.as_deref(),
        accounts[0]["metadata"]["name"].as_str()
    );
    assert_eq!(
        pod.security_context.and_then(|s| s.run_as_non_root),
        Some(true)
    );
}

#[test]
fn the_image_runs_wasmless_as_a_numeric_non_root_user() {
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
            .expect("a Dockerfile at the root");
    let user = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER line");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap_or_default()
        .parse()
        .expect("a numeric user");
    assert_ne!(uid, 0);
    assert!(dockerfile.contains("--bin wasmless"));
    assert!(dockerfile.matches("FROM ").count() >= 2, "multi-stage");
}

/// The packages an `apt-get install` line of `text` after `from` installs.
fn apt_packages(text: &str, from: &str) -> Vec<String> {
    let rest = &text[text.find(from).expect("the marker")..];
    let line = rest
        .lines()
        .find(|l| l.contains("apt-get install"))
        .expect("an apt-get install");
    let mut packages: Vec<String> = line
        .split_whitespace()
        .skip_while(|w| *w != "install")
        .skip(1)
        .filter(|w| !w.starts_with('-') && *w != "\\" && *w != "&&")
        .take_while(|w| !w.starts_with("rm"))
        .map(str::to_owned)
        .collect();
    packages.sort();
    packages
}

#[test]
fn the_test_clusters_image_is_the_dockerfiles_runtime_stage() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    let images = std::fs::read_to_string(root.join("tests/cluster/images.sh")).expect("images.sh");
    // The runtimes by the recipe the tests and CI use.
    assert!(
        dockerfile.contains("bash runtimes/build.sh"),
        "the Dockerfile builds the runtimes with runtimes/build.sh"
    );
    let examples = std::fs::read_to_string(root.join("examples/build.sh")).expect("build.sh");
    assert!(examples.contains("bash runtimes/build.sh"));
    // The same runtime packages on the same Debian.
    let runtime_stage = apt_packages(&dockerfile, "FROM debian:bookworm-slim");
    let line = images
        .lines()
        .find(|l| l.contains("with_packages wasmless-base"))
        .expect("the wasmless root file system");
    let mut tested: Vec<String> = line
        .split("with_packages wasmless-base")
        .nth(1)
        .expect("packages")
        .trim_end_matches(')')
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    tested.sort();
    assert_eq!(
        runtime_stage, tested,
        "Dockerfile and tests/cluster/images.sh"
    );
    // The same layout, user and entry point.
    for (dockerfile_has, images_has) in [
        (
            "/usr/local/share/wasmless/runtimes/",
            "/usr/local/share/wasmless/runtimes",
        ),
        (
            "runtimes --precompile",
            "runtimes --precompile \"$wasmless_root/usr/local/share/wasmless/precompiled\"",
        ),
        (
            "/usr/local/share/wasmless/precompiled",
            "/usr/local/share/wasmless/precompiled",
        ),
        ("USER 65532:65532", "--config.user 65532:65532"),
        (
            "ENTRYPOINT [\"/usr/local/bin/wasmless\"]",
            "--config.entrypoint /usr/local/bin/wasmless",
        ),
        ("CMD [\"host\"]", "--config.cmd host"),
    ] {
        assert!(dockerfile.contains(dockerfile_has), "{dockerfile_has}");
        assert!(images.contains(images_has), "{images_has}");
    }
}
