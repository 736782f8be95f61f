//! `wasmless prepare`: the first init container of a function on the
//! container-image fallback. It writes the function's files from its
//! ConfigMap (the source as `<module>.<extension>`, or a zip unpacked) into
//! the folder the runtime reads, `/kubeless`, where the runtime's install
//! step and server find them.

use std::path::Path;

use crate::crd::ContentType;
use crate::manifest::{fetch_url, read_manifest, resolve_source};
/// Writes the files of the one Function in `function_dir` into `into`: a
/// zip unpacked, or the single source as `file` (`function` when not
/// given; the operator names it `<module>.<extension>`).
pub async fn prepare(function_dir: &Path, into: &Path, file: Option<&str>) -> anyhow::Result<()> {
    let manifest_path = function_dir.join("function.yaml");
    let (manifest, errors) = read_manifest(&manifest_path);
    if let Some(error) = errors.into_iter().next() {
        anyhow::bail!("{error}");
    }
    let Some(found) = manifest.functions.into_iter().next() else {
        anyhow::bail!("{}: holds no Function", manifest_path.display());
    };
    let function = found.function;
    let spec = &function.spec;
    let fetched = match (&spec.function_content_type, &spec.function) {
        (ContentType::Url, Some(url)) => Some(fetch_url(url).await?),
        _ => None,
    };
    let source = resolve_source(&function, Some(function_dir), fetched)?;
    std::fs::create_dir_all(into)?;
    let fetched_archive = spec.function_content_type == ContentType::Url
        && crate::archive::Archive::of(&source).is_some();
    if spec.function_content_type == ContentType::Base64Zip || fetched_archive {
        let zip = crate::archive::to_zip(&source).map_err(anyhow::Error::msg)?;
        crate::up::unzip(&zip, into).map_err(anyhow::Error::msg)?;
    } else if !source.is_empty() {
        let file = file.unwrap_or("function");
        anyhow::ensure!(
            !file.contains('/') && !file.starts_with('.'),
            "--file: `{file}` must be a plain file name"
        );
        std::fs::write(into.join(file), &source)?;
    }
    eprintln!(
        "prepared {} for {} in {}",
        function.name(),
        spec.runtime,
        into.display()
    );
    Ok(())
}
