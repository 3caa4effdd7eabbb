//! The archive inside a backup: a gzip-compressed tar whose first entry, `manifest.json`,
//! names every other entry with its size and SHA-256. Unpacking accepts only the file
//! names the manifest lists and a data directory may hold, writes them into one directory,
//! and checks every size and digest, so a damaged or doctored archive is refused whole.

use super::BackupError;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Name of the manifest entry.
pub const MANIFEST: &str = "manifest.json";
/// The archive format this controller writes and reads.
pub const FORMAT: u32 = 1;
/// Name of the SQLite snapshot inside an archive (and in a data directory).
pub const SQLITE_FILE: &str = "mikrobill.db";
const MANIFEST_MAX: u64 = 64 * 1024;

/// Which database the backup was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    /// The embedded SQLite file, which is in the archive.
    Sqlite,
    /// PostgreSQL, backed up with `pg_dump` on its own: the archive holds the keys only.
    Postgres,
}

/// One file in the archive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    /// Its name in the data directory.
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// SHA-256 of its contents, lower-case hex.
    pub sha256: String,
}

/// What an archive holds and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Archive format ([`FORMAT`]).
    pub format: u32,
    /// When the snapshot was taken, UTC unix milliseconds.
    pub created_at: i64,
    /// Version of the controller that wrote it.
    pub controller_version: String,
    /// The database it was taken from.
    pub database: DatabaseKind,
    /// Newest migration applied to the database (0 for PostgreSQL, not in the archive).
    pub schema_version: i64,
    /// The files after the manifest, in order.
    pub files: Vec<FileEntry>,
}

/// Digest and length of a file.
pub fn digest_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut f = fs::File::open(path).map_err(BackupError::io(path))?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut f, &mut hasher).map_err(BackupError::io(path))?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Writes the manifest and `files` (name in the archive, path on disk) as a tar.gz to `out`;
/// returns `out` once the compressed stream is complete.
pub fn write<W: Write>(
    out: W,
    manifest: &Manifest,
    files: &[(String, std::path::PathBuf)],
) -> Result<W, BackupError> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let json = serde_json::to_vec_pretty(manifest).expect("manifest serializes");
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    header.set_mtime((manifest.created_at / 1000).max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, MANIFEST, &json[..])
        .map_err(BackupError::Write)?;
    for (name, path) in files {
        let mut f = fs::File::open(path).map_err(BackupError::io(path))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(f.metadata().map_err(BackupError::io(path))?.len());
        header.set_mode(0o600);
        header.set_mtime((manifest.created_at / 1000).max(0) as u64);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, &mut f)
            .map_err(BackupError::Write)?;
    }
    let gz = tar.into_inner().map_err(BackupError::Write)?;
    gz.finish().map_err(BackupError::Write)
}

/// Unpacks an archive read from `input` into the existing, empty directory `into`,
/// accepting only files named in the manifest and in `allowed`; returns the manifest once
/// every listed file is there with its size and digest.
pub fn unpack<R: Read>(input: R, into: &Path, allowed: &[&str]) -> Result<Manifest, BackupError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(input));
    let mut entries = archive.entries().map_err(BackupError::Read)?;
    let first = entries
        .next()
        .ok_or_else(|| BackupError::Corrupt("the archive is empty".into()))?
        .map_err(BackupError::Read)?;
    if first.path().map_err(BackupError::Read)?.as_os_str() != MANIFEST {
        return Err(BackupError::Corrupt(format!(
            "the archive does not start with {MANIFEST}: not a MikroBill backup"
        )));
    }
    let mut json = Vec::new();
    first
        .take(MANIFEST_MAX + 1)
        .read_to_end(&mut json)
        .map_err(BackupError::Read)?;
    if json.len() as u64 > MANIFEST_MAX {
        return Err(BackupError::Corrupt(format!("{MANIFEST} is too large")));
    }
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| BackupError::Corrupt(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Corrupt(format!(
            "archive format {} is not one this controller reads ({FORMAT})",
            manifest.format
        )));
    }
    for f in &manifest.files {
        if !allowed.contains(&f.name.as_str()) {
            return Err(BackupError::Corrupt(format!(
                "the manifest lists {:?}, which is not a file of a data directory",
                f.name
            )));
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(BackupError::Read)?;
        let name = entry
            .path()
            .map_err(BackupError::Read)?
            .to_string_lossy()
            .into_owned();
        let Some(listed) = manifest.files.iter().find(|f| f.name == name) else {
            return Err(BackupError::Corrupt(format!(
                "the archive holds {name:?}, which its manifest does not list"
            )));
        };
        if seen.contains(&listed.name.as_str()) {
            return Err(BackupError::Corrupt(format!("{name:?} appears twice")));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BackupError::Corrupt(format!(
                "{name:?} is not a plain file"
            )));
        }
        let path = into.join(&listed.name);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(BackupError::io(&path))?;
        let mut hasher = Sha256::new();
        let mut limited = entry.take(listed.size + 1);
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = limited.read(&mut buf).map_err(BackupError::Read)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(BackupError::io(&path))?;
            size += n as u64;
        }
        out.sync_all().map_err(BackupError::io(&path))?;
        if size != listed.size || hex::encode(hasher.finalize()) != listed.sha256 {
            return Err(BackupError::Corrupt(format!(
                "{name:?} does not match its manifest (size or SHA-256): the archive is damaged"
            )));
        }
        seen.push(&listed.name);
    }
    if let Some(missing) = manifest
        .files
        .iter()
        .find(|f| !seen.contains(&f.name.as_str()))
    {
        return Err(BackupError::Corrupt(format!(
            "{:?} is listed in the manifest but missing from the archive (cut short?)",
            missing.name
        )));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: Vec<FileEntry>) -> Manifest {
        Manifest {
            format: FORMAT,
            created_at: 0,
            controller_version: "test".into(),
            database: DatabaseKind::Sqlite,
            schema_version: 1,
            files,
        }
    }

    fn entry(name: &str, data: &[u8]) -> FileEntry {
        FileEntry {
            name: name.into(),
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(data)),
        }
    }

    #[test]
    fn only_data_directory_names_are_unpacked() {
        let src = tempfile::tempdir().unwrap();
        let evil = src.path().join("evil");
        fs::write(&evil, b"x").unwrap();
        for name in ["../ca.key", "/etc/passwd", "authorized_keys"] {
            let m = manifest(vec![entry(name, b"x")]);
            // tar itself refuses to write `..`; the manifest is what is checked first.
            let bytes = write(Vec::new(), &m, &[("evil".to_string(), evil.clone())]).unwrap();
            let into = tempfile::tempdir().unwrap();
            let err = unpack(&bytes[..], into.path(), &["ca.key"]).unwrap_err();
            assert!(
                err.to_string().contains("not a file of a data directory"),
                "{err}"
            );
            assert_eq!(fs::read_dir(into.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn an_entry_the_manifest_does_not_list_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let key = src.path().join("ca.key");
        fs::write(&key, b"k").unwrap();
        let m = manifest(vec![entry("ca.key", b"k")]);
        let files = [
            ("ca.key".to_string(), key.clone()),
            ("edge.key".to_string(), key),
        ];
        let bytes = write(Vec::new(), &m, &files).unwrap();
        let into = tempfile::tempdir().unwrap();
        let err = unpack(&bytes[..], into.path(), &["ca.key", "edge.key"]).unwrap_err();
        assert!(err.to_string().contains("does not list"), "{err}");
    }

    #[test]
    fn a_file_that_differs_from_its_manifest_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let key = src.path().join("ca.key");
        fs::write(&key, b"the real key").unwrap();
        let m = manifest(vec![entry("ca.key", b"another key!")]);
        let bytes = write(Vec::new(), &m, &[("ca.key".to_string(), key.clone())]).unwrap();
        let into = tempfile::tempdir().unwrap();
        let err = unpack(&bytes[..], into.path(), &["ca.key"]).unwrap_err();
        assert!(
            err.to_string().contains("does not match its manifest"),
            "{err}"
        );
        // Listed but absent.
        let m = manifest(vec![
            entry("ca.key", b"the real key"),
            entry("ca.crt", b"c"),
        ]);
        let bytes = write(Vec::new(), &m, &[("ca.key".to_string(), key)]).unwrap();
        let into = tempfile::tempdir().unwrap();
        let err = unpack(&bytes[..], into.path(), &["ca.key", "ca.crt"]).unwrap_err();
        assert!(
            err.to_string().contains("missing from the archive"),
            "{err}"
        );
    }
}
