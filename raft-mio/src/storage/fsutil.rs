//! Small durable-file helpers: fsync of a directory, atomic replacement of a file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::error::StorageError;

/// Makes the directory's entries (created, renamed, deleted files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io(dir, "fsync directory"))
}

/// Replaces `dir/name` with `bytes` atomically: write `name.tmp`, fsync it, rename it
/// over `name`, fsync the directory. A crash leaves either the old or the new file,
/// never a mixture (the leftover `.tmp` is removed at the next open).
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(StorageError::io(&tmp, "create"))?;
    file.write_all(bytes)
        .map_err(StorageError::io(&tmp, "write"))?;
    file.sync_all().map_err(StorageError::io(&tmp, "fsync"))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(StorageError::io(&path, "rename into place"))?;
    sync_dir(dir)
}

/// Removes `path` if it exists.
pub fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, "remove")(e)),
    }
}

/// Reserves disk blocks for `file` up to `len_bytes` without changing what reads see
/// before its current end (zeros after it). Best effort: where the platform cannot,
/// the file simply grows as it is written.
pub fn preallocate(file: &File, path: &Path, len_bytes: u64) {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{fallocate, FallocateFlags};
        if let Err(e) = fallocate(file, FallocateFlags::empty(), 0, len_bytes) {
            tracing::debug!(path = %path.display(), error = %e, "cannot preallocate a segment; it grows as written");
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, path, len_bytes);
    }
}
