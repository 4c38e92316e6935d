//! A task's input or result held in one pointer: the length is stored in front of the
//! bytes, in the same allocation.
//!
//! Ten million tasks are held at once, each with an input and a result: a boxed slice
//! (pointer and length) costs 16 bytes a field where this costs 8, and `Option<Blob>`
//! is still 8. `thin-vec`'s `ThinVec<u8>` has the same layout but fills itself a byte at
//! a time (its `From<&[T]>` and `extend_from_slice` clone element by element), which
//! slowed large payloads (docs/benchmarks.md, "Big sessions"); this
//! copies with `memcpy`. Empty blobs share one
//! static header and allocate nothing.
//!
//! A large payload (at least [`SHARE_MIN`] bytes, 64 KiB) is not copied at all: the blob points
//! to a boxed [`Bytes`] instead (the pointer's low bit says which), so the buffer the
//! payload arrived in is the one the core keeps and the one it sends on, from the
//! client's frame to the service's pipe and from the service's reply to the client.
//! Each copy of a large payload is as many fresh pages to fault in; the box's few dozen
//! bytes are nothing next to the payload.

use bytes::Bytes;
use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

use soam_proto::frame::SHARE_MIN;

/// Bytes behind one pointer (see the module doc). Immutable once made.
pub(super) struct Blob {
    /// A `usize` length, then that many bytes; or [`EMPTY`]; or, with the low bit set,
    /// a `Box<Bytes>` (both are 8-aligned, so the bit is free).
    ptr: NonNull<usize>,
}

/// The header every empty blob points to; never freed.
static EMPTY: usize = 0;

// SAFETY: a Blob owns its allocation (or points to the immutable EMPTY) and never
// changes the bytes after making them, so moving or sharing it across threads is safe.
unsafe impl Send for Blob {}
// SAFETY: as above; `&Blob` only gives shared reads.
unsafe impl Sync for Blob {}

impl Blob {
    fn layout(len: usize) -> Layout {
        Layout::from_size_align(size_of::<usize>() + len, align_of::<usize>()).expect("a blob's size fits in memory")
    }

    pub fn new(bytes: &[u8]) -> Blob {
        if bytes.is_empty() {
            return Blob {
                ptr: NonNull::from(&EMPTY),
            };
        }
        let layout = Self::layout(bytes.len());
        // SAFETY: the layout has a non-zero size (a header at least); the header is
        // written before anything reads it, and the bytes go to the allocation's
        // remaining `bytes.len()` bytes, which do not overlap `bytes`.
        unsafe {
            let p = alloc(layout) as *mut usize;
            let Some(ptr) = NonNull::new(p) else { handle_alloc_error(layout) };
            p.write(bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(1) as *mut u8, bytes.len());
            Blob { ptr }
        }
    }

    /// Keeps `bytes` itself if it is large, else copies it (see [`SHARE_MIN`]).
    pub fn from_bytes(bytes: Bytes) -> Blob {
        if bytes.len() < SHARE_MIN {
            return Blob::new(&bytes);
        }
        let p = Box::into_raw(Box::new(bytes)) as *mut usize;
        // SAFETY: a Box is never null, and setting the low bit of an 8-aligned address
        // keeps it non-null; `shared` clears it again before any use.
        Blob {
            ptr: unsafe { NonNull::new_unchecked(p.map_addr(|a| a | 1)) },
        }
    }

    /// The bytes as a [`Bytes`]: the same buffer for a shared blob, a copy otherwise.
    pub fn to_bytes(&self) -> Bytes {
        match self.shared() {
            Some(b) => b.clone(),
            None => Bytes::copy_from_slice(self),
        }
    }

    /// The boxed `Bytes` of a shared blob.
    fn shared(&self) -> Option<&Bytes> {
        let p = self.ptr.as_ptr();
        // SAFETY: with the low bit set, the rest is the address `from_bytes` got from
        // `Box::into_raw`, alive until drop.
        (p.addr() & 1 == 1).then(|| unsafe { &*(p.map_addr(|a| a & !1) as *const Bytes) })
    }

    fn is_shared_empty(&self) -> bool {
        std::ptr::eq(self.ptr.as_ptr(), &EMPTY)
    }
}

impl std::ops::Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        if let Some(b) = self.shared() {
            return b;
        }
        // SAFETY: the header holds the length of the initialised bytes that follow it
        // (zero for EMPTY, where the slice reads nothing), and they live as long as self.
        unsafe {
            let len = self.ptr.as_ptr().read();
            std::slice::from_raw_parts(self.ptr.as_ptr().add(1) as *const u8, len)
        }
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        if self.is_shared_empty() {
            return;
        }
        if self.shared().is_some() {
            // SAFETY: the address `from_bytes` got from `Box::into_raw`, dropped once.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr().map_addr(|a| a & !1) as *mut Bytes) });
            return;
        }
        // SAFETY: not EMPTY nor shared, so allocated by `new` with the layout of this length.
        unsafe {
            let len = self.ptr.as_ptr().read();
            dealloc(self.ptr.as_ptr() as *mut u8, Self::layout(len));
        }
    }
}

impl Clone for Blob {
    fn clone(&self) -> Blob {
        match self.shared() {
            Some(b) => Blob::from_bytes(b.clone()),
            None => Blob::new(self),
        }
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.len())
    }
}

impl From<&[u8]> for Blob {
    fn from(b: &[u8]) -> Blob {
        Blob::new(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_its_bytes_in_one_pointer() {
        assert_eq!(size_of::<Blob>(), 8);
        assert_eq!(size_of::<Option<Blob>>(), 8);
        for len in [0, 1, 7, 8, 9, 4096, 1 << 20] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let b = Blob::new(&data);
            assert_eq!(&b[..], &data[..]);
            let c = b.clone();
            drop(b);
            assert_eq!(&c[..], &data[..]);
        }
        let e = Blob::new(&[]);
        assert!(e.is_empty() && e.is_shared_empty());
        assert_eq!(Some(Blob::new(b"x")).as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn shares_large_payloads_and_copies_small_ones() {
        for len in [0, 1, SHARE_MIN - 1, SHARE_MIN, 1 << 20] {
            let data = Bytes::from((0..len).map(|i| (i * 7 % 253) as u8).collect::<Vec<u8>>());
            let b = Blob::from_bytes(data.clone());
            assert_eq!(&b[..], &data[..], "{len} bytes");
            assert_eq!(b.shared().is_some(), len >= SHARE_MIN, "{len} bytes");
            // Shared: the same buffer all the way; copied: another one.
            let out = b.to_bytes();
            assert_eq!(out, data);
            if len > 0 {
                assert_eq!(out.as_ptr() == data.as_ptr(), len >= SHARE_MIN, "{len} bytes");
            }
            let c = b.clone();
            drop(b);
            drop(out);
            assert_eq!(&c[..], &data[..]);
            assert_eq!(c.len(), len);
        }
    }
}
