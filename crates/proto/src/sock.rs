//! A connected Unix stream socket that tokio watches for reading only.
//!
//! tokio registers a `UnixStream` for reading and writing at once. On a Unix stream
//! socket every read by one side tells the other side's epoll that it may write again
//! (the kernel's `unix_write_space`), so with both registered, each message that the
//! peer reads wakes this side's thread for nothing: on one task's round trip that is
//! three wake-ups more than the four the messages need, each a cross-CPU interrupt on a
//! virtual machine. [`Sock`] registers the socket for reading only and writes without
//! asking (non-blocking). Only when the socket is full does a duplicate of the
//! descriptor get registered for writing, and it is dropped once a write goes through
//! again, so a writer that is not waiting is never woken.
//!
//! Both the agent (its client connections) and the client library use it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// See the module documentation.
#[derive(Debug)]
pub struct Sock {
    /// The socket, registered for reading only.
    read: AsyncFd<OwnedFd>,
    /// A duplicate registered for writing, there only while a write waits for room.
    write: Mutex<Option<AsyncFd<OwnedFd>>>,
}

impl Sock {
    /// Takes a connected stream socket (made non-blocking here); must be called within
    /// a tokio runtime.
    pub fn new(fd: OwnedFd) -> io::Result<Sock> {
        set_nonblocking(fd.as_raw_fd())?;
        Ok(Sock {
            read: register(fd, Interest::READABLE)?,
            write: Mutex::new(None),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.read.get_ref().as_raw_fd()
    }

    /// One non-blocking `sendmsg` of `bufs`, as much as the socket takes now, without
    /// waiting or registering anything: for a writer that hands what is left to
    /// someone who can wait (the agent's core, which must never block).
    pub fn send(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: a zeroed msghdr is valid; the iovecs point at `bufs`, which outlive
        // the call, and IoSlice is ABI compatible with iovec.
        let n = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = bufs.len().min(1024) as _;
            libc::sendmsg(self.fd(), &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
        };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    }

    fn poll_send(&self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let mut slot = self.write.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match self.send(bufs) {
                Ok(n) => {
                    // Room again: stop watching for it.
                    *slot = None;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
            if slot.is_none() {
                let dup = self.read.get_ref().as_fd().try_clone_to_owned()?;
                *slot = Some(register(dup, Interest::WRITABLE)?);
            }
            let w = slot.as_ref().expect("set above");
            let mut guard = ready!(w.poll_write_ready(cx))?;
            // Room was reported: try again, and if the socket is still full, wait for
            // the next report.
            guard.clear_ready();
        }
    }
}

fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the descriptor and neither closes nor replaces it while
    // it is registered; dropping the AsyncFd deregisters it before closing.
    Ok(unsafe { AsyncFd::register_with_interest(fd, interest)? })
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with flag arguments only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl AsyncRead for &Sock {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.read.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let want = unfilled.len();
            // SAFETY: recv writes at most `want` bytes into the initialized buffer.
            let n = unsafe {
                libc::recv(
                    guard.get_inner().as_raw_fd(),
                    unfilled.as_mut_ptr().cast(),
                    want,
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        continue;
                    }
                    io::ErrorKind::Interrupted => continue,
                    _ => return Poll::Ready(Err(e)),
                }
            }
            let n = n as usize;
            if n > 0 && n < want {
                // A short read emptied the socket (tokio's own streams reason the same
                // way): wait for the next readiness rather than ask again and be told
                // it is empty. Bytes that came meanwhile are a new readiness event,
                // which this does not clear.
                guard.clear_ready();
            }
            buf.advance(n);
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for &Sock {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: shutdown on our own descriptor.
        if unsafe { libc::shutdown(self.fd(), libc::SHUT_WR) } < 0 {
            return Poll::Ready(Err(io::Error::last_os_error()));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair() -> (Sock, Sock) {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        (Sock::new(a.into()).unwrap(), Sock::new(b.into()).unwrap())
    }

    /// More than the socket holds goes through whole and in order: the writer waits for
    /// room on its duplicate descriptor while the reader drains.
    #[tokio::test]
    async fn a_full_socket_waits_for_room_and_loses_nothing() {
        let (a, b) = pair();
        let data: Vec<u8> = (0..8 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let want = data.clone();
        let writer = async {
            let mut w = &a;
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
            assert!(
                a.write.lock().unwrap().is_none(),
                "still watching for room after the writes went through"
            );
        };
        let reader = async {
            let mut got = Vec::new();
            let mut r = &b;
            r.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(writer, reader);
        assert!(got == want, "bytes lost or reordered");
    }

    /// The epoll events `fd` is registered for, from the kernel's own account of this
    /// process's epoll instances (`/proc/self/fdinfo`), or None if it is in none.
    fn registered(fd: RawFd) -> Option<u32> {
        for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let is_epoll = std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == "anon_inode:[eventpoll]");
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", e.file_name().to_string_lossy()));
            let (true, Ok(info)) = (is_epoll, info) else { continue };
            for line in info.lines() {
                let mut w = line.split_whitespace();
                if w.next() == Some("tfd:") && w.next().and_then(|n| n.parse().ok()) == Some(fd) {
                    w.next(); // "events:"
                    return w.next().and_then(|x| u32::from_str_radix(x, 16).ok());
                }
            }
        }
        None
    }

    /// The socket is watched for reading only, so a peer's reads (each one "writable"
    /// for this side) wake nothing here; a write that finds the socket full watches a
    /// duplicate for room, and stops once it went through.
    #[tokio::test]
    async fn watched_for_writing_only_while_full() {
        let (a, b) = pair();
        let ev = registered(a.fd()).expect("the socket is registered");
        assert!(ev & libc::EPOLLIN as u32 != 0, "not watched for reading: {ev:#x}");
        assert!(ev & libc::EPOLLOUT as u32 == 0, "watched for writing: {ev:#x}");
        // Fill it: the write cannot finish until the peer reads.
        let data = vec![1u8; 8 << 20];
        let mut w = &a;
        let mut write = Box::pin(w.write_all(&data));
        assert!(poll_once(write.as_mut()).await.is_none(), "8 MiB fit a socket");
        let dup = a
            .write
            .lock()
            .unwrap()
            .as_ref()
            .map(|d| d.get_ref().as_raw_fd())
            .expect("a duplicate watches for room");
        let ev = registered(dup).expect("the duplicate is registered");
        assert!(ev & libc::EPOLLOUT as u32 != 0, "the duplicate does not watch for writing: {ev:#x}");
        let reader = async {
            let mut r = &b;
            let mut got = vec![0u8; data.len()];
            r.read_exact(&mut got).await.unwrap();
        };
        let (done, ()) = tokio::join!(write, reader);
        done.unwrap();
        assert!(a.write.lock().unwrap().is_none());
        assert_eq!(registered(dup), None, "the duplicate is still registered");
        let ev = registered(a.fd()).expect("the socket is still registered");
        assert!(ev & libc::EPOLLOUT as u32 == 0, "watched for writing afterwards: {ev:#x}");
    }

    /// Polls `f` once: its output if it was ready.
    async fn poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut f).poll(cx) {
                Poll::Ready(v) => Some(v),
                Poll::Pending => None,
            })
        })
        .await
    }
}
