//! `soamcontrol agent log [-n N] [-f]`: the agent's log, read from its data folder
//! (not through the agent, so it works when the agent does not, which is when it is
//! wanted most). The last lines come from the rotated file too when the current one
//! is shorter; `-f` follows the file across rotations as `tail -F` does.

use anyhow::Context;
use soam_agent::logfile::rotated;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// How often `-f` looks for more.
const POLL: Duration = Duration::from_millis(200);

/// Prints the last `lines` lines of the log at `path`, then with `follow` what is
/// appended until interrupted (or until stdout is closed).
pub fn show(path: &Path, lines: usize, follow: bool) -> anyhow::Result<()> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no agent log at {}: no agent has run with this SOAM_HOME (see soamcontrol agent status for its store folder)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read the agent log {}", path.display())),
    };
    let mut out = std::io::stdout().lock();
    let mut parts = Vec::new();
    let (current, mut pos) = last_lines(&mut file, lines)?;
    let have = current.iter().filter(|&&b| b == b'\n').count();
    if have < lines
        && let Ok(mut older) = File::open(rotated(path, 1))
    {
        parts.push(last_lines(&mut older, lines - have)?.0);
    }
    parts.push(current);
    for p in &parts {
        out.write_all(p)?;
    }
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut buf = Vec::with_capacity(1 << 16);
    loop {
        buf.clear();
        if file.metadata()?.len() < pos {
            // Truncated under us (by hand): start over.
            pos = file.seek(SeekFrom::Start(0))?;
        }
        pos += file.read_to_end(&mut buf)? as u64;
        out.write_all(&buf)?;
        out.flush()?;
        // Rotated: what the old file still got was read above; go on with the one
        // written after it (not the newest: several rotations may fit in one poll).
        let ino = file.metadata()?.ino();
        if std::fs::metadata(path).is_ok_and(|m| m.ino() != ino)
            && let Some(next) = after(path, ino)
        {
            file = next;
            pos = 0;
            continue;
        }
        std::thread::sleep(POLL);
    }
}

/// The log file written after the one with inode `ino`: the rotation just below it, or
/// the oldest one left if it is gone (what lay between is lost; a larger logKeep keeps
/// it). None if the files moved while looking: the next poll looks again.
fn after(path: &Path, ino: u64) -> Option<File> {
    let mut files = Vec::new();
    for n in 0.. {
        match std::fs::metadata(rotated(path, n)) {
            Ok(m) => files.push((n, m.ino())),
            Err(_) if n == 0 => {}
            Err(_) => break,
        }
    }
    let want = match files.iter().find(|&&(_, i)| i == ino) {
        Some(&(n, _)) => files.iter().rev().find(|&&(k, _)| k < n)?,
        None => files.last()?,
    };
    let f = File::open(rotated(path, want.0)).ok()?;
    (f.metadata().ok()?.ino() == want.1).then_some(f)
}

/// The last `n` lines of `file` (an unfinished last line counts as one), and the end
/// position. Reads backwards in blocks, so a large log costs what is printed.
fn last_lines(file: &mut File, n: usize) -> anyhow::Result<(Vec<u8>, u64)> {
    const BLOCK: u64 = 64 << 10;
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok((Vec::new(), len));
    }
    let mut start = len;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        // The newline ending the last line is not a line break before it.
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        let breaks = body.iter().filter(|&&b| b == b'\n').count();
        if breaks >= n {
            // Keep what follows the n-th break from the end.
            let mut seen = 0;
            let cut = body
                .iter()
                .rposition(|&b| {
                    seen += (b == b'\n') as usize;
                    seen == n
                })
                .map_or(0, |i| i + 1);
            tail.drain(..cut);
            break;
        }
        if start == 0 {
            break;
        }
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
        start = from;
    }
    file.seek(SeekFrom::Start(len))?;
    Ok((tail, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(text: &str, n: usize) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, text).unwrap();
        let (b, end) = last_lines(&mut File::open(&p).unwrap(), n).unwrap();
        assert_eq!(end, text.len() as u64);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn last_lines_counts_lines_not_breaks() {
        assert_eq!(last("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last("a\nb\nc", 2), "b\nc");
        assert_eq!(last("a\nb\nc\n", 5), "a\nb\nc\n");
        assert_eq!(last("a\nb\nc\n", 0), "");
        assert_eq!(last("", 3), "");
        let big: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(last(&big, 3), "line 99997\nline 99998\nline 99999\n");
    }
}
