//! Service packages, as Symphony's `soamdeploy` has them: an archive (tar.gz or zip) of
//! a service's files, deployed under a name that profiles give as `packageName`.
//!
//! Each version is kept as uploaded, named by its SHA-256 (`PACKAGES/<sha>.pkg`), and
//! listed in `PACKAGES/index.json` ([`Index`]: name → versions, the last one current).
//! A host unpacks a version once into its cache (`CACHE/<sha>/`, [`unpack`]): into a
//! temporary folder beside it, checked entry by entry as it goes, and renamed into place
//! only when whole, so a bad archive leaves nothing behind. `${SOAM_DEPLOY_DIR}` is that
//! folder.

use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The largest archive taken.
pub const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
/// The most its files may hold once unpacked.
pub const MAX_UNPACKED_BYTES: u64 = 4 << 30;
/// The most entries (files, folders, links) it may have.
pub const MAX_FILES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("not an archive (valid: tar.gz or zip)")]
    NotAnArchive,
    #[error("the archive is damaged: {0}")]
    Damaged(String),
    #[error("'{0}' would be written outside the package's folder (valid: relative paths without '..')")]
    Escapes(String),
    #[error("'{0}' is a link pointing outside the package's folder")]
    LinkOut(String),
    #[error("'{0}' is a {1}, which a package may not hold (valid: files, folders, links inside it)")]
    Kind(String, &'static str),
    #[error("it holds more bytes once unpacked than a package may (the limit is {MAX_UNPACKED_BYTES})")]
    TooLarge,
    #[error("it is over {MAX_ARCHIVE_BYTES} bytes")]
    ArchiveTooLarge,
    #[error("it holds more files than a package may (the limit is {MAX_FILES})")]
    TooManyFiles,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What an unpacked version holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contents {
    pub files: u64,
    pub bytes: u64,
}

/// The SHA-256 of a file, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// An upload being written: the archive's bytes as they come, hashed on the way.
pub struct Upload {
    file: std::fs::File,
    path: PathBuf,
    hash: sha2::Sha256,
    bytes: u64,
}

impl Upload {
    /// A new upload in `dir` (a temporary file there, removed unless [`Upload::finish`]).
    pub fn new(dir: &Path) -> std::io::Result<Upload> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!(".upload-{}", random_suffix()));
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(Upload {
            file,
            path,
            hash: sha2::Sha256::new(),
            bytes: 0,
        })
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), PackageError> {
        self.bytes += data.len() as u64;
        if self.bytes > MAX_ARCHIVE_BYTES {
            return Err(PackageError::ArchiveTooLarge);
        }
        self.hash.update(data);
        self.file.write_all(data)?;
        Ok(())
    }

    /// The archive, kept as `dir/<sha>.pkg`; its SHA-256 and size.
    pub fn finish(mut self, dir: &Path) -> Result<(String, u64, PathBuf), PackageError> {
        self.file.sync_all()?;
        let sha = hex(&std::mem::take(&mut self.hash).finalize());
        let kept = dir.join(format!("{sha}.pkg"));
        std::fs::rename(&self.path, &kept)?;
        self.path = PathBuf::new();
        Ok((sha, self.bytes, kept))
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    hex(&b)
}

/// `path` (an archive entry's name) as a relative path with no `..`, or why not.
fn inside(name: &str) -> Result<PathBuf, PackageError> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return Err(PackageError::Escapes(name.to_string())),
        }
    }
    Ok(out)
}

/// Whether a link at `at` (relative to the package's folder) pointing to `target` stays
/// inside the folder.
fn link_inside(at: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: usize = at.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => return false,
        }
    }
    true
}

/// How much an archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub bytes: u64,
    pub files: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            bytes: MAX_UNPACKED_BYTES,
            files: MAX_FILES as u64,
        }
    }
}

/// Keeps count of what an archive has unpacked, refusing past the limits.
struct Count(Contents, Limits);

impl Count {
    fn entry(&mut self) -> Result<(), PackageError> {
        self.0.files += 1;
        if self.0.files > self.1.files {
            return Err(PackageError::TooManyFiles);
        }
        Ok(())
    }

    /// Copies a file's bytes, counting them against the unpacked limit whatever its
    /// header said its size was.
    fn copy(&mut self, from: &mut dyn Read, to: &Path, mode: Option<u32>) -> Result<(), PackageError> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.map_or(0o644, |m| m & 0o755))
            .open(to)?;
        let left = self.1.bytes.saturating_sub(self.0.bytes);
        let n = std::io::copy(&mut from.take(left + 1), &mut out)?;
        self.0.bytes += n;
        if self.0.bytes > self.1.bytes {
            return Err(PackageError::TooLarge);
        }
        Ok(())
    }
}

/// Unpacks `archive` (tar.gz or zip, told by its first bytes) into `into`, which must
/// not exist: into a temporary folder beside it, checked entry by entry, then renamed.
/// Nothing is left behind when it fails. When `into` exists already (another unpacked
/// the same version first), that one is kept.
pub fn unpack(archive: &Path, into: &Path) -> Result<Contents, PackageError> {
    unpack_within(archive, into, Limits::default())
}

/// [`unpack`] within other limits.
pub fn unpack_within(archive: &Path, into: &Path, limits: Limits) -> Result<Contents, PackageError> {
    let parent = into.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".unpack-{}", random_suffix()));
    std::fs::create_dir(&tmp)?;
    let done = unpack_into(archive, &tmp, limits);
    let result = done.and_then(|c| match std::fs::rename(&tmp, into) {
        Ok(()) => Ok(c),
        Err(_) if into.is_dir() => Ok(c),
        Err(e) => Err(e.into()),
    });
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn unpack_into(archive: &Path, dir: &Path, limits: Limits) -> Result<Contents, PackageError> {
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(archive)?.read(&mut magic)?;
    match &magic[..n] {
        [0x1f, 0x8b, ..] => unpack_tar_gz(archive, dir, Count(Contents::default(), limits)),
        [b'P', b'K', 3, 4] => unpack_zip(archive, dir, Count(Contents::default(), limits)),
        _ => Err(PackageError::NotAnArchive),
    }
}

fn unpack_tar_gz(archive: &Path, dir: &Path, mut count: Count) -> Result<Contents, PackageError> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(archive)?);
    let mut tar = tar::Archive::new(gz);
    let damaged = |e: std::io::Error| PackageError::Damaged(e.to_string());
    for entry in tar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = inside(&name)?;
        count.entry()?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let to = dir.join(&rel);
        use tar::EntryType as T;
        match entry.header().entry_type() {
            T::Regular | T::Continuous => {
                let mode = entry.header().mode().ok();
                count.copy(&mut entry, &to, mode)?;
            }
            T::Directory => std::fs::create_dir_all(&to)?,
            T::Symlink => {
                let target = entry.link_name().map_err(damaged)?.unwrap_or_default().into_owned();
                if !link_inside(&rel, &target) {
                    return Err(PackageError::LinkOut(name));
                }
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::os::unix::fs::symlink(&target, &to)?;
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => {}
            T::Link => return Err(PackageError::Kind(name, "hard link")),
            T::Char | T::Block => return Err(PackageError::Kind(name, "device")),
            T::Fifo => return Err(PackageError::Kind(name, "pipe")),
            _ => return Err(PackageError::Kind(name, "special file")),
        }
    }
    Ok(count.0)
}

fn unpack_zip(archive: &Path, dir: &Path, mut count: Count) -> Result<Contents, PackageError> {
    let damaged = |e: zip::result::ZipError| PackageError::Damaged(e.to_string());
    let mut zip = zip::ZipArchive::new(std::fs::File::open(archive)?).map_err(damaged)?;
    if zip.len() as u64 > count.1.files {
        return Err(PackageError::TooManyFiles);
    }
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(damaged)?;
        let name = f.name().to_string();
        let rel = inside(&name)?;
        count.entry()?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let to = dir.join(&rel);
        if f.is_symlink() {
            let mut target = String::new();
            f.read_to_string(&mut target)?;
            if !link_inside(&rel, Path::new(&target)) {
                return Err(PackageError::LinkOut(name));
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink(&target, &to)?;
        } else if f.is_dir() {
            std::fs::create_dir_all(&to)?;
        } else {
            let mode = f.unix_mode();
            count.copy(&mut f, &to, mode)?;
        }
    }
    Ok(count.0)
}

/// One deployed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub sha256: String,
    pub archive_bytes: u64,
    pub contents: Contents,
    pub added_ms: u64,
}

/// Every deployed package: its versions, oldest first, the last one current.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub packages: BTreeMap<String, Vec<Version>>,
}

/// Versions kept per package besides the current one (instances started on an older
/// one finish on it).
pub const KEEP_VERSIONS: usize = 3;

impl Index {
    pub fn load(dir: &Path) -> std::io::Result<Index> {
        match std::fs::read(dir.join("index.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| std::io::Error::other(format!("{}: {e}", dir.join("index.json").display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e),
        }
    }

    /// Written whole to a temporary file, then renamed over the old one.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!(".index-{}", random_suffix()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join("index.json"))
    }

    pub fn current(&self, name: &str) -> Option<&Version> {
        self.packages.get(name).and_then(|v| v.last())
    }

    /// Makes `v` the current version of `name` (again, if it was an older one); returns
    /// the versions no longer kept.
    pub fn add(&mut self, name: &str, v: Version) -> Vec<Version> {
        let list = self.packages.entry(name.to_string()).or_default();
        list.retain(|o| o.sha256 != v.sha256);
        list.push(v);
        let drop = list.len().saturating_sub(KEEP_VERSIONS);
        list.drain(..drop).collect()
    }

    /// Whether some package still lists this version.
    pub fn uses(&self, sha: &str) -> bool {
        self.packages.values().flatten().any(|v| v.sha256 == sha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, &[u8])], link: Option<(&str, &str)>) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_entry_type(tar::EntryType::Regular);
            // Written raw: the builder's own setter refuses `..`, an attacker's does not.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        if let Some((name, target)) = link {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, target).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    fn try_unpack(bytes: &[u8]) -> (Result<Contents, PackageError>, tempfile::TempDir) {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::write(&a, bytes).unwrap();
        let r = unpack(&a, &d.path().join("cache/x"));
        (r, d)
    }

    /// Nothing but the archive is left where a refused one was unpacked.
    fn left(d: &tempfile::TempDir) -> Vec<String> {
        std::fs::read_dir(d.path().join("cache"))
            .map(|r| r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_good_archive_unpacks_with_its_modes_and_inner_links() {
        let (r, d) = try_unpack(&tar_gz(
            &[("bin/run.sh", b"#!/bin/sh\n"), ("lib/x.py", b"x")],
            Some(("lib/run", "../bin/run.sh")),
        ));
        assert_eq!(r.unwrap(), Contents { files: 3, bytes: 11 });
        let run = d.path().join("cache/x/bin/run.sh");
        assert_eq!(std::fs::read(&run).unwrap(), b"#!/bin/sh\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&run).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(std::fs::read(d.path().join("cache/x/lib/run")).unwrap(), b"#!/bin/sh\n");
    }

    #[test]
    fn bad_archives_are_refused_and_leave_nothing() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"just some text, not an archive".to_vec(), "not an archive"),
            (
                tar_gz(&[("ok", b"1"), ("../evil", b"x")], None),
                "'../evil' would be written outside",
            ),
            (tar_gz(&[("/etc/evil", b"x")], None), "'/etc/evil' would be written outside"),
            (
                tar_gz(&[("ok", b"1")], Some(("out", "../../etc/passwd"))),
                "'out' is a link pointing outside",
            ),
            (
                tar_gz(&[("ok", b"1")], Some(("abs", "/etc/passwd"))),
                "'abs' is a link pointing outside",
            ),
            (vec![0x1f, 0x8b, 8, 0, 0, 0], "damaged"),
        ];
        for (bytes, said) in cases {
            let (r, d) = try_unpack(&bytes);
            let e = r.unwrap_err().to_string();
            assert!(e.contains(said), "{e} (wanted {said})");
            assert_eq!(left(&d), Vec::<String>::new(), "{said}");
        }
    }

    #[test]
    fn too_many_files_or_bytes_are_refused_whatever_the_headers_say() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::write(&a, tar_gz(&[("a", b"12345"), ("b", b"12345"), ("c", b"1")], None)).unwrap();
        let small = |bytes, files| unpack_within(&a, &d.path().join("cache/x"), Limits { bytes, files });
        assert!(small(100, 2).unwrap_err().to_string().contains("more files"));
        assert!(small(10, 100).unwrap_err().to_string().contains("more bytes"));
        assert_eq!(small(11, 3).unwrap(), Contents { files: 3, bytes: 11 });
    }

    #[test]
    fn zip_archives_unpack_and_escaping_names_are_refused() {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let o = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
            z.start_file("svc/run.sh", o).unwrap();
            z.write_all(b"#!/bin/sh\n").unwrap();
            z.finish().unwrap();
        }
        let (r, d) = try_unpack(buf.get_ref());
        assert_eq!(r.unwrap().files, 1);
        assert!(d.path().join("cache/x/svc/run.sh").is_file());
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            z.start_file("../up", zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(b"x").unwrap();
            z.finish().unwrap();
        }
        let (r, d) = try_unpack(buf.get_ref());
        assert!(r.unwrap_err().to_string().contains("'../up' would be written outside"));
        assert!(left(&d).is_empty());
    }

    #[test]
    fn the_index_keeps_the_last_versions_and_the_current_one_last() {
        let v = |s: &str| Version {
            sha256: s.into(),
            archive_bytes: 1,
            contents: Contents::default(),
            added_ms: 0,
        };
        let mut i = Index::default();
        for s in ["a", "b", "c"] {
            assert!(i.add("p", v(s)).is_empty());
        }
        assert_eq!(i.add("p", v("a")), Vec::<Version>::new());
        assert_eq!(i.current("p").unwrap().sha256, "a");
        assert_eq!(i.add("p", v("d")), vec![v("b")]);
        let d = tempfile::tempdir().unwrap();
        i.save(d.path()).unwrap();
        assert_eq!(Index::load(d.path()).unwrap(), i);
    }
}
