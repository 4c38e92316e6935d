//! Where task inputs come from: stdin lines (default), a file's lines, a folder's files,
//! `--task` texts, or `--count` empty tasks.

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct InputArgs {
    /// A task per line of FILE (without --input-file, --input-dir, --task or --count,
    /// a task per line of stdin)
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// A task per file in DIR (in name order)
    #[arg(long, value_name = "DIR")]
    pub input_dir: Option<PathBuf>,
    /// A task with this text (repeatable)
    #[arg(long, value_name = "TEXT")]
    pub task: Vec<String>,
    /// N tasks with empty input
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

fn lines(data: Vec<u8>) -> Vec<Bytes> {
    let data = Bytes::from(data);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            let end = if i > start && data[i - 1] == b'\r' { i - 1 } else { i };
            out.push(data.slice(start..end));
            start = i + 1;
        }
    }
    if start < data.len() {
        out.push(data.slice(start..));
    }
    out
}

impl InputArgs {
    pub fn read(&self) -> anyhow::Result<Vec<Bytes>> {
        if let Some(n) = self.count {
            return Ok(vec![Bytes::new(); n as usize]);
        }
        if !self.task.is_empty() {
            return Ok(self.task.iter().map(|t| Bytes::from(t.clone())).collect());
        }
        if let Some(f) = &self.input_file {
            return Ok(lines(std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?));
        }
        if let Some(d) = &self.input_dir {
            let mut files: Vec<PathBuf> = std::fs::read_dir(d)
                .with_context(|| format!("cannot read folder {}", d.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            return files
                .iter()
                .map(|p| {
                    Ok(Bytes::from(
                        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
                    ))
                })
                .collect();
        }
        let mut data = Vec::new();
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            // Otherwise a user who forgot the input waits on a silent command.
            eprintln!(
                "soamsession: reading tasks from the terminal, one per line; end with Ctrl-D \
                 (or give --task, --input-file or --input-dir)"
            );
        }
        std::io::stdin().read_to_end(&mut data).context("cannot read stdin")?;
        Ok(lines(data))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_lines() {
        let l = super::lines(b"a\r\nb\n\nc".to_vec());
        assert_eq!(l, vec![&b"a"[..], b"b", b"", b"c"]);
        assert!(super::lines(Vec::new()).is_empty());
    }
}
