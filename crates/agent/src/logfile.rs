//! The agent's log file, rotated by size: `soamd.log` grows to a limit, then becomes
//! `soamd.log.1` (older ones move up to `.N`, the last one dropped) and a new file starts.
//!
//! Everything the agent logs comes here through tracing, service stderr included
//! (tagged with application and instance, see [`crate::service_stderr`]).
//! An agent started by a command has its stderr on this file too, so that what is
//! written there outside tracing (a panic message, a library's warning) lands beside
//! the log; after a rotation fd 2 is moved to the new file, or such lines would go
//! on into the rotated one.
//!
//! Written here rather than taken from a rotation crate: the ones looked at panic when
//! the folder is gone or a file cannot be opened, and the agent must go on (writing to
//! the file it has) when its disk is full or its data folder misbehaves; none moves
//! stderr along.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A size-rotated log file. One writer per file: the agent holds it behind a mutex.
pub struct RotatingLog {
    /// `soamd.log`; rotated files are this with `.1` .. `.keep` appended.
    path: PathBuf,
    /// Rotate once a write has taken the file to this size or past it, so lines stay
    /// whole.
    max_bytes: u64,
    /// Rotated files kept (0: the full file is simply started over).
    keep: u32,
    file: File,
    /// Bytes in `file`, counted from its size at open; appends of other writers (the
    /// stderr of an older agent) are not counted, which only delays a rotation.
    len: u64,
    /// Whether fd 2 was this file at open, and so follows it to each new file.
    stderr_follows: bool,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// The file for rotation `n` (0: the log itself).
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

impl RotatingLog {
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<RotatingLog> {
        let file = open_append(path)?;
        let meta = file.metadata()?;
        // Same device and inode as fd 2: a command started us with stderr on the log.
        // SAFETY: fstat writes only into the zeroed struct it is given.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let stderr_follows = unsafe { libc::fstat(2, &mut st) } == 0 && st.st_dev == meta.dev() && st.st_ino == meta.ino();
        Ok(RotatingLog {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1),
            keep,
            len: meta.len(),
            file,
            stderr_follows,
        })
    }

    /// Whether the process's stderr is this file already (an agent a command started):
    /// then logging to both would write every line twice.
    pub fn is_stderr(&self) -> bool {
        self.stderr_follows
    }

    /// Moves the files up one and starts a new log. On any failure the current file is
    /// kept and written on; the next try comes after another tenth of the limit.
    fn rotate(&mut self) {
        let moved = if self.keep == 0 {
            std::fs::remove_file(&self.path)
        } else {
            // The oldest first, so nothing is overwritten before it has moved.
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))
        };
        let next = moved.and_then(|()| open_append(&self.path));
        match next {
            Ok(file) => {
                if self.stderr_follows {
                    // SAFETY: both descriptors are open; dup2 replaces fd 2 atomically.
                    unsafe { libc::dup2(file.as_raw_fd(), 2) };
                }
                self.file = file;
                self.len = 0;
            }
            Err(_) => self.len = self.max_bytes - self.max_bytes / 10,
        }
    }
}

impl Write for RotatingLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.len += n as u64;
        if self.len >= self.max_bytes && buf[..n].ends_with(b"\n") {
            self.rotate();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_limit_keeping_whole_lines_and_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("soamd.log");
        let mut log = RotatingLog::open(&path, 100, 2).unwrap();
        let lines = |r: std::ops::Range<u32>| r.map(|i| format!("line {i:02} of the log.....\n")).collect::<String>();
        // 24 bytes a line: the fifth line takes a file past 100 bytes and ends it.
        for i in 0..28 {
            log.write_all(lines(i..i + 1).as_bytes()).unwrap();
        }
        let read = |n| std::fs::read_to_string(rotated(&path, n)).unwrap();
        assert_eq!(read(0), lines(25..28));
        assert_eq!(read(1), lines(20..25));
        assert_eq!(read(2), lines(15..20));
        assert!(!rotated(&path, 3).exists(), "only two rotated files are kept");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn goes_on_writing_when_the_folder_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("data");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("soamd.log");
        let mut log = RotatingLog::open(&path, 10, 1).unwrap();
        std::fs::remove_dir_all(&sub).unwrap();
        for _ in 0..5 {
            writeln!(log, "still here").unwrap();
        }
    }
}
