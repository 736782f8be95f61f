//! `wasmless host` on a folder laid out as a kubelet projects a ConfigMap
//! volume (`..data` -> `..TIMESTAMP/`, and a link per file into `..data`):
//! each function is loaded once, and an update in place (a new timestamp
//! folder, `..data` swapped atomically) loads the new version.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Up, manifest_inline, tempdir, wat_writing};

/// Writes a new data folder with `function.yaml` and swaps `..data` to it,
/// as the kubelet's atomic writer does.
fn project(volume: &Path, stamp: &str, manifest: &str) {
    let data = volume.join(format!("..{stamp}"));
    std::fs::create_dir(&data).expect("data folder");
    std::fs::write(data.join("function.yaml"), manifest).expect("write");
    let tmp = volume.join("..data_tmp");
    std::os::unix::fs::symlink(data.file_name().expect("name"), &tmp).expect("link");
    std::fs::rename(&tmp, volume.join("..data")).expect("swap");
    let link = volume.join("function.yaml");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("..data/function.yaml", &link).expect("file link");
    }
}

#[tokio::test]
async fn a_configmap_volume_is_loaded_once_and_updated_in_place() {
    let volume = tempdir();
    project(
        &volume,
        "2026_12_01_08_00_00.000000001",
        &manifest_inline("projected", &wat_writing("v1"), ""),
    );
    let up = Up::host(&volume, &[("WASMLESS_FUNCTION", "projected".as_ref())]);
    assert_eq!(up.get("/").await, (200, "v1".into()));
    let loads = up.log().matches("loading projected from").count();
    assert_eq!(loads, 1, "{}", up.log());
    assert!(!up.log().contains("..data"), "{}", up.log());

    project(
        &volume,
        "2026_12_01_08_05_00.000000002",
        &manifest_inline("projected", &wat_writing("v2"), ""),
    );
    up.wait_for_swap("/", "v1", "v2", Duration::from_secs(10))
        .await;
    // The old data folder goes, as the kubelet removes it.
    std::fs::remove_dir_all(volume.join("..2026_12_01_08_00_00.000000001")).expect("remove");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(up.get("/").await, (200, "v2".into()));
    assert!(!up.log().contains("removed projected"), "{}", up.log());
}
