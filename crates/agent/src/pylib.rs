//! The pure-Python part of the `soam` package, given to every service instance on
//! `PYTHONPATH`, so that a Python service (`from soam.service import Service`, and
//! Symphony's `import soamapi`) runs on any Python 3 on any host where an instance starts,
//! a Slurm node included, with nothing installed there.
//!
//! Data flow: the files are compiled into the agent and the worker (`include_str!` from
//! `crates/python/python`); the first instance to start writes them once into a folder
//! named after their checksum under the temporary folder (`soam-python-UID-HASH`), and
//! every instance's `PYTHONPATH` starts with that folder, before any the profile's `env`
//! or the agent's environment gives. The bundled `soam/__init__.py` extends its package
//! path (`pkgutil.extend_path`), so where the wheel is installed too its compiled client
//! is still found. A folder of that name that this uid does not own, or that others can
//! write, is never used (someone could have planted code there): another name is made.

use std::hash::{Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// (path under the folder, contents). Only what a service needs: the client itself is
/// compiled and comes with the wheel.
const FILES: &[(&str, &str)] = &[
    ("soam/__init__.py", include_str!("../../python/python/soam/__init__.py")),
    ("soam/errors.py", include_str!("../../python/python/soam/errors.py")),
    ("soam/service.py", include_str!("../../python/python/soam/service.py")),
    ("soamapi/__init__.py", include_str!("../../python/python/soamapi/__init__.py")),
    (
        "soamapiversion/__init__.py",
        include_str!("../../python/python/soamapiversion/__init__.py"),
    ),
];

/// The folder holding the files, written on first use; `None` (logged once) when it
/// cannot be written, in which case instances start without it.
pub fn dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| match write(&std::env::temp_dir()) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!("Python services will not find the soam package: {e}");
            None
        }
    })
    .as_deref()
}

/// `PYTHONPATH` for an instance: the folder first, then `rest` (the profile's or the
/// agent's own), if any.
pub fn python_path(rest: Option<&std::ffi::OsStr>) -> Option<std::ffi::OsString> {
    let d = dir()?;
    let mut p = d.as_os_str().to_owned();
    if let Some(r) = rest.filter(|r| !r.is_empty()) {
        p.push(":");
        p.push(r);
    }
    Some(p)
}

fn checksum() -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    FILES.hash(&mut h);
    h.finish()
}

/// Ours to use, and whole: a real folder (not a link) owned by this uid that nobody
/// else can write, holding every file.
fn usable(p: &Path) -> bool {
    trusted(p) && FILES.iter().all(|(f, _)| p.join(f).is_file())
}

/// A real folder (not a link) owned by this uid that nobody else can write.
fn trusted(p: &Path) -> bool {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir() && m.uid() == me && m.mode() & 0o022 == 0)
}

/// Writes the files under `tmp` (once per checksum) and returns their folder.
fn write(tmp: &Path) -> Result<PathBuf, String> {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let name = format!("soam-python-{me}-{:016x}", checksum());
    let dest = tmp.join(&name);
    if usable(&dest) {
        return Ok(dest);
    }
    // Written whole in a fresh private folder, then renamed into place: an instance never
    // sees half a package, and two agents racing both end with a complete one.
    let stage = tempfile::Builder::new()
        .prefix(&format!("{name}."))
        .tempdir_in(tmp)
        .map_err(|e| format!("cannot create a folder in {}: {e}", tmp.display()))?;
    for (f, text) in FILES {
        let path = stage.path().join(f);
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
    }
    // Readable by the users a shared agent runs services as.
    std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let staged = stage.keep();
    if std::fs::rename(&staged, &dest).is_ok() || usable(&dest) {
        if staged.exists() {
            let _ = std::fs::remove_dir_all(&staged);
        }
        return Ok(dest);
    }
    // The name is taken by something that is not ours: use the private one as it is.
    tracing::warn!("{} is not this user's own folder; using {}", dest.display(), staged.display());
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once_and_a_planted_folder_is_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write(tmp.path()).unwrap();
        assert!(a.join("soam/service.py").is_file());
        assert_eq!(std::fs::metadata(&a).unwrap().mode() & 0o777, 0o755);
        // Again: the same folder, nothing new beside it.
        assert_eq!(write(tmp.path()).unwrap(), a);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        // A folder of that name others can write is someone else's: not used.
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o777)).unwrap();
        let b = write(tmp.path()).unwrap();
        assert_ne!(b, a);
        assert!(b.join("soam/errors.py").is_file());
    }
}
