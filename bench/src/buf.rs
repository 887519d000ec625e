//! Page-aligned buffers: where a buffer starts decides how fast a copy from or to it runs (see
//! the 4 KiB aliasing note in the README), so the bench never leaves that to the allocator.

use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

pub const PAGE: usize = 4096;

/// A zeroed heap buffer that starts on a page boundary.
pub struct PageBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: PageBuf owns its bytes exclusively, like a Vec<u8>.
unsafe impl Send for PageBuf {}

impl PageBuf {
    pub fn new(len: usize) -> PageBuf {
        let layout = Self::layout(len);
        // SAFETY: the layout has a non-zero size (at least one page).
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout));
        PageBuf { ptr, len }
    }

    fn layout(len: usize) -> Layout {
        // Only a size near usize::MAX fails here; Vec aborts on that too.
        Layout::from_size_align(len.max(1).next_multiple_of(PAGE), PAGE).unwrap_or_else(|_| std::process::abort())
    }
}

impl Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr points at len initialised (zeroed) bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in new with this same layout, freed once.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.len)) }
    }
}
