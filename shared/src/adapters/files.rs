//! Files that hold secrets (the store, its key file, the outbox, the demo's settings) are
//! created owner-only (S26): mode 0600, folders 0700, whatever the process umask says.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Creates `dir` and any missing parents; the folders it creates are owner-only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Writes a new file, owner-only; fails with `AlreadyExists` if it is there.
pub(crate) fn write_private_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = private_options().create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes (or replaces) a file, owner-only even when it existed with a looser mode.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = private_options().create(true).truncate(true).open(path)?;
    restrict(&file)?;
    file.write_all(bytes)
}

/// Creates the file if it is missing and makes it owner-only (an SQLite file before SQLite
/// opens it, so its `-wal` and `-shm` files inherit the mode).
pub(crate) fn touch_private(path: &Path) -> std::io::Result<()> {
    let file = private_options().create(true).truncate(false).open(path)?;
    restrict(&file)
}

fn restrict(file: &File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}
