//! The floor soam's latency and payload figures are measured against: the same three
//! processes and four hops as one task's round trip (client -> Unix socket -> agent ->
//! pipe -> service -> pipe -> agent -> socket -> client), doing nothing but blocking
//! reads and writes of length-prefixed messages. No scheduler, no store, no framing
//! beyond the length: what the kernel and the machine cost, measured on the same run.
//!
//! `soambench` runs itself as the middle process (`--floor-relay SOCKET HOW`: for one
//! round trip at a time one thread that reads and writes in turn, for streams one thread
//! per direction) and as the service (`--floor-echo`); these are internal modes, not
//! part of its interface.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `argv[1]` for the middle process and for the echo service.
pub const RELAY_ARG: &str = "--floor-relay";
pub const ECHO_ARG: &str = "--floor-echo";

/// Reads one message (u32 little-endian length, then the bytes) into `buf`; false at
/// a clean end of input.
fn read_msg(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let n = u32::from_le_bytes(len) as usize;
    // Sized once: zeroing a megabyte per message would be work soam does not do.
    if buf.len() < 4 + n {
        buf.resize(4 + n, 0);
    }
    buf.truncate(4 + n);
    buf[..4].copy_from_slice(&len);
    r.read_exact(&mut buf[4..])?;
    Ok(true)
}

/// Copies whole messages from `r` to `w` until `r` ends.
fn pump(r: impl Read, mut w: impl Write) -> io::Result<()> {
    // One read takes a message's length and body together where they have both
    // arrived, as soam's readers do; reads larger than the buffer go straight through.
    let mut r = io::BufReader::with_capacity(READ_BUF, r);
    let mut buf = Vec::new();
    while read_msg(&mut r, &mut buf)? {
        w.write_all(&buf)?;
        // Stdout is line-buffered, and these bytes have no lines.
        w.flush()?;
    }
    Ok(())
}

/// Read buffer of the floor's processes, as large as the agent's (`server::READ_BUF`).
const READ_BUF: usize = 8 << 10;

/// The service: every message straight back.
pub fn echo_main() -> i32 {
    let r = pump(io::stdin().lock(), io::stdout().lock());
    i32::from(r.is_err())
}

/// How the middle process relays.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Relay {
    /// One thread: read a message from the client, write it to the echo, read its
    /// answer, write that back. The least a one-at-a-time round trip can cost, with no
    /// hand-off between threads; it cannot stream (it would block writing to the echo
    /// while the echo blocks writing back).
    PingPong,
    /// One thread per direction, for streams.
    Duplex,
}

impl Relay {
    fn arg(self) -> &'static str {
        match self {
            Relay::PingPong => "pingpong",
            Relay::Duplex => "duplex",
        }
    }

    pub fn from_arg(arg: &str) -> Option<Relay> {
        [Relay::PingPong, Relay::Duplex].into_iter().find(|r| r.arg() == arg)
    }
}

/// The middle process: accepts one client on `socket`, starts the echo service with
/// pipes, and relays (as `how` says) until the client goes.
pub fn relay_main(socket: &Path, how: Relay) -> i32 {
    let run = || -> io::Result<()> {
        let listener = UnixListener::bind(socket)?;
        let (client, _) = listener.accept()?;
        let mut echo = Command::new(std::env::current_exe()?)
            .arg(ECHO_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut to_echo = echo.stdin.take().expect("piped");
        let from_echo = echo.stdout.take().expect("piped");
        match how {
            Relay::PingPong => {
                let mut up = io::BufReader::with_capacity(READ_BUF, &client);
                let mut down = io::BufReader::with_capacity(READ_BUF, from_echo);
                let mut back = &client;
                let mut buf = Vec::new();
                while read_msg(&mut up, &mut buf)? {
                    to_echo.write_all(&buf)?;
                    if !read_msg(&mut down, &mut buf)? {
                        break;
                    }
                    back.write_all(&buf)?;
                }
                drop(to_echo);
            }
            Relay::Duplex => {
                let back = client.try_clone()?;
                let down = std::thread::spawn(move || pump(from_echo, back));
                pump(&client, to_echo)?;
                let _ = down.join();
            }
        }
        let _ = echo.wait();
        Ok(())
    };
    i32::from(run().is_err())
}

/// A running floor chain: the relay process (which started the echo) and our end of
/// its socket.
pub struct Floor {
    relay: Child,
    stream: UnixStream,
    /// Reads of our end, buffered as the client library's are.
    reader: io::BufReader<UnixStream>,
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let _ = self.relay.kill();
        let _ = self.relay.wait();
    }
}

impl Floor {
    /// Starts a relay relaying as `how` says (with a socket in `dir`) and connects to it.
    pub fn start(dir: &Path, how: Relay) -> anyhow::Result<Floor> {
        let socket = dir.join(format!("floor-{}.sock", how.arg()));
        let _ = std::fs::remove_file(&socket);
        let relay = Command::new(std::env::current_exe()?)
            .arg(RELAY_ARG)
            .arg(&socket)
            .arg(how.arg())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => anyhow::bail!("the floor relay did not listen: {e}"),
            }
        };
        let reader = io::BufReader::with_capacity(64 << 10, stream.try_clone()?);
        Ok(Floor { relay, stream, reader })
    }

    /// `n` round trips of one `size`-byte message, one at a time, each one's time in
    /// µs, as soambench's latency does.
    pub fn rounds(&mut self, n: usize, size: usize, samples: &mut Vec<f64>) -> anyhow::Result<()> {
        let mut msg = (size as u32).to_le_bytes().to_vec();
        msg.resize(4 + size, 0);
        let mut buf = Vec::new();
        for _ in 0..n {
            let t0 = Instant::now();
            self.stream.write_all(&msg)?;
            anyhow::ensure!(read_msg(&mut self.reader, &mut buf)?, "the floor relay ended");
            samples.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        Ok(())
    }

    /// The middle process, whose switches and CPU time are the floor's.
    pub fn relay_pid(&self) -> u32 {
        self.relay.id()
    }

    /// `count` messages of `size` bytes streamed through and back (a writer thread,
    /// as soam's client sends while it collects): MB/s each way.
    pub fn stream(&mut self, count: usize, size: usize) -> anyhow::Result<f64> {
        let mut msg = (size as u32).to_le_bytes().to_vec();
        msg.resize(4 + size, 7);
        let mut w = self.stream.try_clone()?;
        let t0 = Instant::now();
        let writer = std::thread::spawn(move || -> io::Result<()> {
            for _ in 0..count {
                w.write_all(&msg)?;
            }
            Ok(())
        });
        let mut buf = Vec::new();
        for _ in 0..count {
            anyhow::ensure!(read_msg(&mut self.reader, &mut buf)?, "the floor relay ended");
        }
        let secs = t0.elapsed().as_secs_f64();
        writer.join().map_err(|_| anyhow::anyhow!("floor writer panicked"))??;
        Ok((count * size) as f64 / secs / 1e6)
    }
}

/// Where a latency phase's round trips fall, in µs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    /// The rare stalls p99 only glimpses: whether p99 stays within 2x of the floor's
    /// depends on how many of them fall into a contestant's blocks. With fewer than
    /// 1,000 samples (`--quick`) this is the longest round.
    pub p999: f64,
}

/// The percentiles of `samples` (nearest rank, rounded down); empty gives zeros.
pub fn percentiles(mut samples: Vec<f64>) -> Percentiles {
    if samples.is_empty() {
        return Percentiles {
            p50: 0.0,
            p99: 0.0,
            p999: 0.0,
        };
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    Percentiles {
        p50: pct(0.50),
        p99: pct(0.99),
        p999: pct(0.999),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_rank_from_sorted_samples() {
        // 1..=2000 shuffled by a stride coprime to the length: sorting is needed.
        let samples: Vec<f64> = (0..2000).map(|i| ((i * 7) % 2000 + 1) as f64).collect();
        assert_eq!(
            percentiles(samples),
            Percentiles {
                p50: 1001.0,
                p99: 1981.0,
                p999: 1999.0
            }
        );
    }

    #[test]
    fn with_few_samples_p999_is_the_longest_and_none_gives_zeros() {
        let samples: Vec<f64> = (1..=300).rev().map(f64::from).collect();
        let p = percentiles(samples);
        assert_eq!((p.p50, p.p99, p.p999), (151.0, 298.0, 300.0));
        assert_eq!(
            percentiles(Vec::new()),
            Percentiles {
                p50: 0.0,
                p99: 0.0,
                p999: 0.0
            }
        );
    }
}
