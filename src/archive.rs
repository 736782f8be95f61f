//! Source archives as kubeless took them: a zip, or a tar archive that is
//! plain or compressed with gzip, bzip2 or xz. A function's files travel
//! as a zip (`base64+zip`); a tar archive is turned into one, with the same
//! limits the host puts on unpacking.

use std::io::{Read, Write};

/// The most bytes an archive may unpack to.
pub const MAX_UNPACKED: u64 = 256 << 20;
/// The most files an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// What kind of archive some bytes are, by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Archive {
    /// A zip.
    Zip,
    /// An uncompressed tar archive.
    Tar,
    /// A tar archive compressed with gzip (`.tar.gz`, `.tgz`).
    TarGz,
    /// A tar archive compressed with bzip2 (`.tar.bz2`).
    TarBz2,
    /// A tar archive compressed with xz (`.tar.xz`).
    TarXz,
}

impl Archive {
    /// The archive `bytes` are, if any.
    pub fn of(bytes: &[u8]) -> Option<Archive> {
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            Some(Archive::Zip)
        } else if bytes.starts_with(&[0x1f, 0x8b]) {
            Some(Archive::TarGz)
        } else if bytes.starts_with(b"BZh") {
            Some(Archive::TarBz2)
        } else if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Archive::TarXz)
        } else if bytes.len() >= 512 && &bytes[257..262] == b"ustar" {
            Some(Archive::Tar)
        } else {
            None
        }
    }
}

/// The bytes as a zip: a zip as it is, a tar archive (compressed or not)
/// converted. Paths that leave the archive (`..`, absolute), links and
/// archives over the limits are refused, naming the entry.
pub fn to_zip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let reader: Box<dyn Read + '_> = match Archive::of(bytes) {
        Some(Archive::Zip) => return Ok(bytes.to_vec()),
        Some(Archive::Tar) => Box::new(bytes),
        Some(Archive::TarGz) => Box::new(flate2::read::GzDecoder::new(bytes)),
        Some(Archive::TarBz2) => Box::new(bzip2::read::BzDecoder::new(bytes)),
        Some(Archive::TarXz) => Box::new(liblzma::read::XzDecoder::new(bytes)),
        None => {
            return Err(
                "not an archive: expected a zip or a tar archive (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz)"
                    .to_owned(),
            );
        }
    };
    // Decompressed bytes are bounded however the stream claims its size.
    let mut tar = tar::Archive::new(reader.take(MAX_UNPACKED + (64 << 20)));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut total = 0u64;
    let mut count = 0usize;
    let entries = tar
        .entries()
        .map_err(|e| format!("reading the tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading the tar archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("reading the tar archive: {e}"))?
            .into_owned();
        let shown = path.display().to_string();
        let mut relative = std::path::PathBuf::new();
        for part in path.components() {
            match part {
                std::path::Component::Normal(p) => relative.push(p),
                std::path::Component::CurDir => {}
                _ => return Err(format!("`{shown}` in the archive points outside it")),
            }
        }
        let Some(name) = relative.to_str().map(str::to_owned) else {
            return Err(format!("`{shown}` in the archive is not a UTF-8 name"));
        };
        count += 1;
        if count > MAX_ENTRIES {
            return Err(format!("the archive holds more than {MAX_ENTRIES} files"));
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                if !name.is_empty() {
                    zip.add_directory(&name, options)
                        .map_err(|e| format!("writing `{name}`: {e}"))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut content = Vec::new();
                let limit = MAX_UNPACKED.saturating_sub(total) + 1;
                (&mut entry)
                    .take(limit)
                    .read_to_end(&mut content)
                    .map_err(|e| format!("unpacking `{name}`: {e}"))?;
                total += content.len() as u64;
                if total > MAX_UNPACKED {
                    return Err(format!(
                        "the archive unpacks to more than {} MiB",
                        MAX_UNPACKED >> 20
                    ));
                }
                zip.start_file(&name, options)
                    .and_then(|()| zip.write_all(&content).map_err(Into::into))
                    .map_err(|e| format!("writing `{name}`: {e}"))?;
            }
            // pax and GNU long-name headers are read by the tar crate.
            tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            other => {
                return Err(format!(
                    "`{name}` in the archive is a {other:?} entry: only files and folders are taken"
                ));
            }
        }
    }
    let written = zip.finish().map_err(|e| format!("writing the zip: {e}"))?;
    Ok(written.into_inner())
}

/// A zip of `files` (name, bytes), as a source with dependencies is sent.
pub fn zip_files(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (name, content) in files {
        zip.start_file(name.as_str(), options)
            .and_then(|()| zip.write_all(content).map_err(Into::into))
            .map_err(|e| format!("writing `{name}`: {e}"))?;
    }
    let written = zip.finish().map_err(|e| format!("writing the zip: {e}"))?;
    Ok(written.into_inner())
}

/// The files of a zip, by name (for adding one to it).
pub fn zip_entries(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a valid zip: {e}"))?;
    let mut files = Vec::new();
    let mut total = 0u64;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| format!("reading the zip: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .map_err(|e| format!("reading the zip: {e}"))?;
        let mut content = Vec::new();
        (&mut entry)
            .take(MAX_UNPACKED.saturating_sub(total) + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("unpacking `{name}`: {e}"))?;
        total += content.len() as u64;
        if total > MAX_UNPACKED {
            return Err(format!(
                "the zip unpacks to more than {} MiB",
                MAX_UNPACKED >> 20
            ));
        }
        files.push((name, content));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, *content)
                .expect("appending to a tar in memory");
        }
        builder.into_inner().expect("finishing a tar in memory")
    }

    #[test]
    fn every_compression_of_a_tar_becomes_the_same_zip_content() {
        let tar = tarball(&[
            ("hello.py", b"def hello(e, c):\n    return 'hi'\n"),
            ("lib/util.py", b"X = 1\n"),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).expect("bzip2");
        let bz = bz.finish().expect("bzip2");
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&tar).expect("xz");
        let xz = xz.finish().expect("xz");
        for (bytes, kind) in [
            (&tar, Archive::Tar),
            (&gz, Archive::TarGz),
            (&bz, Archive::TarBz2),
            (&xz, Archive::TarXz),
        ] {
            assert_eq!(Archive::of(bytes), Some(kind));
            let zip = to_zip(bytes).expect("converts");
            assert_eq!(Archive::of(&zip), Some(Archive::Zip));
            let mut files = zip_entries(&zip).expect("reads back");
            files.sort();
            assert_eq!(
                files,
                vec![
                    (
                        "hello.py".to_owned(),
                        b"def hello(e, c):\n    return 'hi'\n".to_vec()
                    ),
                    ("lib/util.py".to_owned(), b"X = 1\n".to_vec()),
                ],
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_tar_entry_leaving_the_archive_is_refused_by_name() {
        let mut tar = tarball(&[("ok.py", b"")]);
        // A second entry named ../evil.py, written by hand: the builder
        // refuses such names.
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..11].copy_from_slice(b"../evil.py\0");
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let end = tar.len() - 1024;
        tar.truncate(end);
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(&[0; 1024]);
        let err = to_zip(&tar).expect_err("refused");
        assert!(err.contains("../evil.py"), "{err}");
    }

    #[test]
    fn text_is_not_an_archive() {
        assert_eq!(Archive::of(b"def f(e, c): pass\n"), None);
        assert!(to_zip(b"def f(e, c): pass\n").is_err());
    }
}
