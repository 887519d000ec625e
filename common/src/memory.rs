//! Shared memory as the note uses it: a byte range mapped into each process's own address space
//! (S5: not "in kernel space"), read and written with plain memory accesses, no system call.

use std::ptr::NonNull;

/// A mapped shared region (SysV `Attached` or POSIX `Mapped`). Callers serialise access with a
/// semaphore, so plain copies are enough.
pub trait Memory {
    fn base(&self) -> NonNull<u8>;
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `out.len()` bytes from offset `at`.
    fn read(&self, at: usize, out: &mut [u8]) {
        assert!(at + out.len() <= self.len(), "read past the end of the segment");
        // SAFETY: in bounds of a live mapping; the caller holds the semaphore.
        unsafe { std::ptr::copy_nonoverlapping(self.base().as_ptr().add(at), out.as_mut_ptr(), out.len()) }
    }

    /// Copies `data` to offset `at` (a read-only attach would fault: only call on read-write ones).
    fn write(&mut self, at: usize, data: &[u8]) {
        assert!(at + data.len() <= self.len(), "write past the end of the segment");
        // SAFETY: in bounds of a live read-write mapping; the caller holds the semaphore.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.base().as_ptr().add(at), data.len()) }
    }

    /// The note's layout: a NUL-terminated C string at offset 0. Returns the text before the NUL
    /// (all of it if there is none).
    fn read_c_string(&self) -> Vec<u8> {
        // SAFETY: in bounds of a live mapping; the caller holds the semaphore, so nobody writes
        // while this view exists.
        let bytes = unsafe { std::slice::from_raw_parts(self.base().as_ptr(), self.len()) };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        bytes[..end].to_vec()
    }

    /// strcpy: the text and its NUL at offset 0. The caller checked it fits.
    fn write_c_string(&mut self, text: &[u8]) {
        self.write(0, text);
        self.write(text.len(), &[0]);
    }
}
