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

    /// One non-blocking `sendmsg` of `bufs`, as much as the socket takes now.
    fn send(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
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

    /// Reading tells the peer nothing: a writer that is not waiting is not registered
    /// for room, so the peer's reads cannot wake it.
    #[tokio::test]
    async fn a_writer_with_room_watches_for_nothing() {
        let (a, b) = pair();
        let mut w = &a;
        w.write_all(b"ping").await.unwrap();
        assert!(a.write.lock().unwrap().is_none());
        let mut buf = [0u8; 4];
        let mut r = &b;
        r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        drop(a);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "end of stream once the peer is gone");
    }
}
