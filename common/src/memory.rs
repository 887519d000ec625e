//! Shared memory as the note uses it: a byte range mapped into each process's own address space
//! (S5: not "in kernel space"), read and written with plain memory accesses, no system call.
//!
//! Another process can write the range at any moment (the note's C writer takes no semaphore),
//! so it is never viewed as a Rust slice: a `&[u8]` over bytes that change under it is a data
//! race, undefined behaviour, not just a torn read. Bytes go in and out by volatile copies, and
//! control words are atomics. Only the implementors of [`Memory`], which own their mapping, hold
//! its address.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

mod copy;

/// Whether a mapping may be written: part of its type, so a read-only attach has no `write`.
pub trait Access: sealed::Sealed {}

/// Mapped without write permission (SHM_RDONLY): a store would fault.
pub enum ReadOnly {}
/// Mapped readable and writable.
pub enum ReadWrite {}

impl Access for ReadOnly {}
impl Access for ReadWrite {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ReadOnly {}
    impl Sealed for super::ReadWrite {}
}

/// A mapped shared region (SysV `Attached` or POSIX `Mapped`), read by volatile copies.
///
/// # Safety
///
/// `base()..base() + len()` must be one readable mapping that stays at that address, with that
/// length, for as long as the implementor lives; both methods always return the same values, and
/// `base()` is 8-byte aligned (mmap and shmat give page-aligned addresses).
///
/// So safe code cannot lay a `Memory` over an arbitrary pointer:
/// ```compile_fail
/// struct Anywhere;
/// impl common::Memory for Anywhere {
///     fn base(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::dangling()
///     }
///     fn len(&self) -> usize {
///         1 << 20
///     }
/// }
/// ```
pub unsafe trait Memory {
    fn base(&self) -> NonNull<u8>;
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `out.len()` bytes from offset `at`.
    fn read(&self, at: usize, out: &mut [u8]) {
        let end = at.checked_add(out.len());
        assert!(end.is_some_and(|e| e <= self.len()), "read past the end of the segment");
        // SAFETY: at..at+out.len() is inside the mapping (checked above), which the trait's
        // contract keeps readable while self lives.
        unsafe { copy::out_of(self.base().as_ptr().add(at), out) }
    }

    /// The note's layout: a NUL-terminated C string at offset 0. Returns the text before the NUL
    /// (all of it if there is none). A byte at a time: it reads no further than the NUL.
    fn read_c_string(&self) -> Vec<u8> {
        let mut text = Vec::new();
        for at in 0..self.len() {
            // SAFETY: at < len, inside the mapping the trait's contract keeps readable.
            let b = unsafe { self.base().as_ptr().add(at).read_volatile() };
            if b == 0 {
                break;
            }
            text.push(b);
        }
        text
    }

    /// The `count` 8-byte words from offset `at` (a multiple of 8), little-endian as the bytes
    /// lie, each read when the iterator reaches it: for checking a message where it lies.
    fn le_words(&self, at: usize, count: usize) -> Words<'_> {
        let end = count.checked_mul(8).and_then(|n| n.checked_add(at));
        assert!(end.is_some_and(|e| e <= self.len()) && at.is_multiple_of(8), "words outside the segment");
        // SAFETY: at <= len, checked above.
        let next = unsafe { self.base().as_ptr().add(at) }.cast::<u64>();
        Words { next, left: count, _mem: std::marker::PhantomData }
    }
}

/// A [`Memory`] that may also be written.
///
/// # Safety
///
/// As for [`Memory`], and the whole range is also writable (mapped with write permission).
pub unsafe trait MemoryMut: Memory {
    /// Copies `data` to offset `at`.
    fn write(&mut self, at: usize, data: &[u8]) {
        let end = at.checked_add(data.len());
        assert!(end.is_some_and(|e| e <= self.len()), "write past the end of the segment");
        // SAFETY: at..at+data.len() is inside the mapping (checked above), which the trait's
        // contract keeps writable while self lives.
        unsafe { copy::into(data, self.base().as_ptr().add(at)) }
    }

    /// strcpy: the text and its NUL at offset 0. The caller checked it fits.
    fn write_c_string(&mut self, text: &[u8]) {
        self.write(0, text);
        self.write(text.len(), &[0]);
    }

    /// Writes `words` (at most `count` of them) from offset `at` (a multiple of 8), little-endian:
    /// for building a message where it lies.
    fn put_le_words(&mut self, at: usize, count: usize, words: impl IntoIterator<Item = u64>) {
        let end = count.checked_mul(8).and_then(|n| n.checked_add(at));
        assert!(end.is_some_and(|e| e <= self.len()) && at.is_multiple_of(8), "words outside the segment");
        // SAFETY: at <= len, checked above.
        let first = unsafe { self.base().as_ptr().add(at) }.cast::<u64>();
        for (i, w) in words.into_iter().take(count).enumerate() {
            // SAFETY: word i < count lies inside the mapping (checked above) and is aligned (base
            // is, and at is a multiple of 8); the mapping is writable by the trait's contract.
            unsafe { first.add(i).write_volatile(w.to_le()) }
        }
    }

    /// The 4 bytes at `at` (a multiple of 4) as an atomic, for a control word that both
    /// processes only ever access atomically.
    fn atomic_u32(&self, at: usize) -> &AtomicU32 {
        assert!(at.checked_add(4).is_some_and(|e| e <= self.len()) && at.is_multiple_of(4), "bad control word");
        // SAFETY: in bounds and aligned (checked above; base is 8-aligned); writable and live as
        // long as the returned borrow of self; atomics may alias another process's atomics.
        unsafe { AtomicU32::from_ptr(self.base().as_ptr().add(at).cast()) }
    }

    /// The 8 bytes at `at` (a multiple of 8) as an atomic (see [`MemoryMut::atomic_u32`]).
    fn atomic_u64(&self, at: usize) -> &AtomicU64 {
        assert!(at.checked_add(8).is_some_and(|e| e <= self.len()) && at.is_multiple_of(8), "bad control word");
        // SAFETY: as in atomic_u32, for 8 aligned bytes.
        unsafe { AtomicU64::from_ptr(self.base().as_ptr().add(at).cast()) }
    }
}

/// See [`Memory::le_words`]. Cloning starts over from the same word (a second look).
#[derive(Clone)]
pub struct Words<'a> {
    next: *const u64,
    left: usize,
    _mem: std::marker::PhantomData<&'a ()>,
}

impl Iterator for Words<'_> {
    type Item = u64;

    // Inline: the in-place ring checks every word of a message through this, from another crate.
    #[inline]
    fn next(&mut self) -> Option<u64> {
        if self.left == 0 {
            return None;
        }
        // SAFETY: le_words checked that `left` aligned words from `next` lie in the mapping, which
        // the borrow 'a keeps alive.
        let w = unsafe { self.next.read_volatile() };
        self.left -= 1;
        // SAFETY: at most one past the last word, still within (or at the end of) the mapping.
        self.next = unsafe { self.next.add(1) };
        Some(u64::from_le(w))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Words<'_> {}
