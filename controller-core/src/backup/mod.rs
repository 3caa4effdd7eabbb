//! Backups of a controller: one archive with a consistent snapshot of the SQLite database,
//! taken online (`VACUUM INTO` reads one transaction's view while `serve` keeps writing),
//! and the data directory's key material (CA, edge certificate and secrets), optionally
//! sealed with a passphrase. Restore unpacks an archive into a new or empty data directory
//! and leaves nothing behind when any check fails. With PostgreSQL the archive holds the keys
//! only; the database is `pg_dump`'s job.

pub mod archive;
pub mod retention;
pub mod sealed;

use crate::db::{Backend, Db, DbError, latest_schema_version, sqlite_url_for_dir};
use crate::pki;
use archive::{DatabaseKind, FileEntry, Manifest, SQLITE_FILE};
use std::fs;
use std::io::{BufReader, BufWriter, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a backup or a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Writing the archive failed.
    #[error("cannot write the archive: {0}")]
    Write(std::io::Error),
    /// Reading the archive failed (including a sealed chunk that does not authenticate).
    #[error("cannot read the archive: {0}")]
    Read(std::io::Error),
    /// The archive is not a backup, or not a whole one.
    #[error("not a usable backup: {0}")]
    Corrupt(String),
    /// Opening a sealed archive failed.
    #[error(transparent)]
    Sealed(#[from] sealed::OpenError),
    /// A sealed archive needs its passphrase.
    #[error("the archive is sealed: give its passphrase (--passphrase-file or --passphrase-stdin)")]
    NeedsPassphrase,
    /// The passphrase is too short to seal with.
    #[error(
        "the passphrase must be at least {} characters",
        sealed::MIN_PASSPHRASE
    )]
    ShortPassphrase,
    /// The archive's path is taken.
    #[error("{0} exists already; a backup never overwrites a file")]
    Exists(PathBuf),
    /// Restore needs a new or empty data directory.
    #[error("{dir} is not empty (it holds {entries}); restore into a new or empty data directory")]
    NotEmpty {
        /// The data directory.
        dir: PathBuf,
        /// Some of what is there.
        entries: String,
    },
    /// The archive's database is not the one the controller is configured with.
    #[error(
        "the archive was taken from {archive:?} but this controller is configured for {configured:?}"
    )]
    Mismatch {
        /// The archive's database.
        archive: DatabaseKind,
        /// The configured one.
        configured: DatabaseKind,
    },
    /// The archive comes from a newer controller.
    #[error(
        "the archive's database has schema version {archive}, newer than this controller's {ours}: restore it with that version or later"
    )]
    NewerSchema {
        /// The archive's schema version.
        archive: i64,
        /// This binary's newest migration.
        ours: i64,
    },
    /// The data directory has no certificate authority.
    #[error("{0} has no certificate authority (ca.crt, ca.key): is --data-dir right?")]
    NoCa(PathBuf),
    /// The restored database fails SQLite's integrity check.
    #[error("the restored database fails its integrity check: {0}")]
    Integrity(String),
    /// A database query failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl BackupError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
        move |source| BackupError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<Backend> for DatabaseKind {
    fn from(b: Backend) -> DatabaseKind {
        match b {
            Backend::Sqlite => DatabaseKind::Sqlite,
            Backend::Postgres => DatabaseKind::Postgres,
        }
    }
}

/// A private working directory beside a target path, removed with everything in it when
/// dropped (a failed backup or restore leaves no partial files).
struct Scratch(PathBuf);

impl Scratch {
    fn beside(target: &Path, what: &str) -> Result<Scratch, BackupError> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = parent.join(format!(".mikrobill-{what}-{:08x}", rand::random::<u32>()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(BackupError::io(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(BackupError::io(&dir))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn sync_dir(path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
}

/// Writes a backup of `db` and the key material in `data_dir` to `out` (which must not
/// exist), sealed when a passphrase is given; `now` is recorded as the time it was taken.
pub async fn create(
    db: &Db,
    data_dir: &Path,
    out: &Path,
    passphrase: Option<&str>,
    now: i64,
) -> Result<Manifest, BackupError> {
    if passphrase.is_some_and(|p| p.chars().count() < sealed::MIN_PASSPHRASE) {
        return Err(BackupError::ShortPassphrase);
    }
    if out.exists() {
        return Err(BackupError::Exists(out.to_path_buf()));
    }
    if pki::CA_FILES.iter().any(|f| !data_dir.join(f).exists()) {
        return Err(BackupError::NoCa(data_dir.to_path_buf()));
    }
    let scratch = Scratch::beside(out, "backup")?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if db.backend == Backend::Sqlite {
        let snapshot = scratch.0.join(SQLITE_FILE);
        sqlx::query("VACUUM INTO $1")
            .bind(snapshot.to_string_lossy().into_owned())
            .execute(&db.pool)
            .await
            .map_err(DbError::from)?;
        files.push((SQLITE_FILE.to_string(), snapshot));
    }
    for name in pki::DATA_FILES {
        let path = data_dir.join(name);
        if path.exists() {
            files.push((name.to_string(), path));
        }
    }
    let schema_version = db.schema_version().await?;
    let database = DatabaseKind::from(db.backend);
    let out = out.to_path_buf();
    let passphrase = passphrase.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut entries = Vec::with_capacity(files.len());
        for (name, path) in &files {
            let (size, sha256) = archive::digest_file(path)?;
            entries.push(FileEntry {
                name: name.clone(),
                size,
                sha256,
            });
        }
        let manifest = Manifest {
            format: archive::FORMAT,
            created_at: now,
            controller_version: env!("CARGO_PKG_VERSION").to_string(),
            database,
            schema_version,
            files: entries,
        };
        let partial = scratch.0.join("archive.partial");
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(BackupError::io(&partial))?;
        let file = BufWriter::new(file);
        let file = match passphrase {
            Some(p) => {
                let w = sealed::SealWriter::new(file, &p, sealed::KdfCost::DEFAULT)
                    .map_err(BackupError::Write)?;
                archive::write(w, &manifest, &files)?
                    .finish()
                    .map_err(BackupError::Write)?
            }
            None => archive::write(file, &manifest, &files)?,
        };
        let file = file
            .into_inner()
            .map_err(|e| BackupError::Write(e.into_error()))?;
        file.sync_all().map_err(BackupError::io(&partial))?;
        // A hard link fails when the target exists, so a backup never replaces a file.
        fs::hard_link(&partial, &out).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::Exists(out.clone())
            } else {
                BackupError::io(&out)(e)
            }
        })?;
        sync_dir(&out);
        drop(scratch);
        Ok(manifest)
    })
    .await
    .expect("backup task does not panic")
}

/// Restores the archive at `path` into `data_dir` (new, or an empty directory) for a
/// controller configured with `configured`: the files are unpacked and checked in a scratch
/// directory beside it, which becomes the data directory only when every check passed.
pub async fn restore(
    path: &Path,
    data_dir: &Path,
    passphrase: Option<&str>,
    configured: Backend,
) -> Result<Manifest, BackupError> {
    if data_dir.exists() {
        let entries: Vec<String> = fs::read_dir(data_dir)
            .map_err(BackupError::io(data_dir))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .take(5)
            .collect();
        if !entries.is_empty() {
            return Err(BackupError::NotEmpty {
                dir: data_dir.to_path_buf(),
                entries: entries.join(", "),
            });
        }
    }
    let scratch = Scratch::beside(data_dir, "restore")?;
    let path = path.to_path_buf();
    let into = scratch.0.clone();
    let passphrase = passphrase.map(str::to_string);
    let manifest = tokio::task::spawn_blocking(move || -> Result<Manifest, BackupError> {
        let mut file = BufReader::new(fs::File::open(&path).map_err(BackupError::io(&path))?);
        let mut start = [0u8; 64];
        let n = read_up_to(&mut file, &mut start).map_err(BackupError::io(&path))?;
        let head = std::io::Cursor::new(start[..n].to_vec()).chain(file);
        let mut allowed = vec![SQLITE_FILE];
        allowed.extend(pki::DATA_FILES);
        if sealed::is_sealed(&start[..n]) {
            let pass = passphrase.ok_or(BackupError::NeedsPassphrase)?;
            archive::unpack(sealed::OpenReader::new(head, &pass)?, &into, &allowed)
        } else {
            archive::unpack(head, &into, &allowed)
        }
    })
    .await
    .expect("restore task does not panic")?;
    let ours = latest_schema_version(configured);
    let configured = DatabaseKind::from(configured);
    if manifest.database != configured {
        return Err(BackupError::Mismatch {
            archive: manifest.database,
            configured,
        });
    }
    if manifest.schema_version > ours {
        return Err(BackupError::NewerSchema {
            archive: manifest.schema_version,
            ours,
        });
    }
    if let Some(missing) = pki::CA_FILES
        .iter()
        .find(|ca| manifest.files.iter().all(|f| f.name != **ca))
    {
        return Err(BackupError::Corrupt(format!(
            "the archive holds no {missing}"
        )));
    }
    if configured == DatabaseKind::Sqlite {
        if manifest.files.iter().all(|f| f.name != SQLITE_FILE) {
            return Err(BackupError::Corrupt("the archive holds no database".into()));
        }
        prepare_sqlite(&scratch.0).await?;
    }
    if data_dir.exists() {
        fs::remove_dir(data_dir).map_err(BackupError::io(data_dir))?;
    }
    fs::rename(&scratch.0, data_dir).map_err(BackupError::io(data_dir))?;
    sync_dir(data_dir);
    Ok(manifest)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Runs SQLite's integrity check on the restored file (the digests prove it is the file
/// that was backed up; this proves that file is a sound database) and starts a new sync
/// epoch in it, so every agent takes a snapshot instead of trusting its cursor.
async fn prepare_sqlite(dir: &Path) -> Result<(), BackupError> {
    let db = Db::connect(&sqlite_url_for_dir(dir)).await?;
    let result: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&db.pool)
        .await
        .map_err(DbError::from)?;
    if result == ["ok"] {
        crate::sync_log::start_new_epoch(&db).await?;
    }
    // Checkpoint so the restored directory is the single database file it came as.
    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&db.pool)
        .await;
    db.close().await;
    for name in ["mikrobill.db-wal", "mikrobill.db-shm"] {
        let _ = fs::remove_file(dir.join(name));
    }
    if result != ["ok"] {
        return Err(BackupError::Integrity(result.join("; ")));
    }
    Ok(())
}
