//! `wasmless convert`: kubeless's YAML as wasmless objects, for a
//! cluster (`wasmless convert -f function.yaml | kubectl apply -f -`).
//! `up` reads kubeless's YAML as it is.

use std::io::Read as _;
use std::path::PathBuf;

use clap::Args;

/// Options of `wasmless convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// YAML files of kubeless objects (`-` for stdin); other documents
    /// are printed as they are.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// The Kafka brokers converted KafkaTriggers name (kubeless's named
    /// none).
    #[arg(long)]
    pub brokers: Option<String>,
}

pub(super) fn run(args: ConvertArgs) -> anyhow::Result<()> {
    let catalog = crate::runtimes::Catalog::built_in();
    let mut out = Vec::new();
    let mut failed = 0;
    for file in &args.files {
        let text = if file.as_os_str() == "-" {
            let mut text = Vec::new();
            std::io::stdin().read_to_end(&mut text)?;
            text
        } else {
            std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
        };
        let options = serde_saphyr::options! { with_snippet: false };
        let mut reader = std::io::Cursor::new(text);
        let documents =
            serde_saphyr::read_with_options::<_, serde_json::Value>(&mut reader, options);
        for (index, document) in documents.enumerate() {
            let number = index + 1;
            let document = document.map_err(|e| {
                anyhow::anyhow!("{}: document {number}: not valid YAML: {e}", file.display())
            })?;
            if !crate::kubeless::is_kubeless(&document) {
                out.push(document);
                continue;
            }
            match crate::kubeless::convert(document, &catalog) {
                Ok(converted) => {
                    for note in converted
                        .notes
                        .iter()
                        .filter(|n| args.brokers.is_none() || !n.starts_with("spec.brokers"))
                    {
                        eprintln!("note: {}: document {number}: {note}", file.display());
                    }
                    for mut document in converted.documents {
                        if let (Some(brokers), Some("KafkaTrigger")) =
                            (&args.brokers, document["kind"].as_str())
                        {
                            document["spec"]["brokers"] = brokers.clone().into();
                        }
                        out.push(document);
                    }
                }
                Err(err) => {
                    failed += 1;
                    eprintln!("error: {}: document {number}: {err}", file.display());
                }
            }
        }
    }
    for document in &out {
        println!("---");
        print!("{}", serde_saphyr::to_string(document)?);
    }
    anyhow::ensure!(failed == 0, "{failed} document(s) could not be converted");
    Ok(())
}
