//! A task's input or result held in one pointer: the length is stored in front of the
//! bytes, in the same allocation.
//!
//! Ten million tasks are held at once, each with an input and a result: a boxed slice
//! (pointer and length) costs 16 bytes a field where this costs 8, and `Option<Blob>`
//! is still 8. `thin-vec`'s `ThinVec<u8>` has the same layout but fills itself a byte at
//! a time (its `From<&[T]>` and `extend_from_slice` clone element by element), which
//! halved the rate of 1 MiB payloads; this copies with `memcpy`. Empty blobs share one
//! static header and allocate nothing.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

/// Bytes behind one pointer (see the module doc). Immutable once made.
pub(super) struct Blob {
    /// A `usize` length, then that many bytes; or [`EMPTY`].
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

    fn is_shared_empty(&self) -> bool {
        std::ptr::eq(self.ptr.as_ptr(), &EMPTY)
    }
}

impl std::ops::Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
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
        // SAFETY: not EMPTY, so allocated by `new` with the layout of this length.
        unsafe {
            let len = self.ptr.as_ptr().read();
            dealloc(self.ptr.as_ptr() as *mut u8, Self::layout(len));
        }
    }
}

impl Clone for Blob {
    fn clone(&self) -> Blob {
        Blob::new(self)
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
}
