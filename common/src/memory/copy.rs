//! Volatile copies between shared memory and private buffers: every shared byte is read or
//! written exactly once, by a volatile access, so the compiler neither assumes it stable nor
//! invents accesses to it; the private side is an ordinary slice. Aligned 8-byte words in the
//! middle keep a copy about as fast as memcpy for the bench's message sizes.

const WORD: usize = size_of::<u64>();

/// Copies `out.len()` bytes from shared memory at `src` into `out`.
///
/// # Safety
///
/// `src..src + out.len()` must be readable memory that is not a Rust object (no reference to it
/// exists): another process may write it meanwhile.
pub(super) unsafe fn out_of(src: *const u8, out: &mut [u8]) {
    let head = src.align_offset(WORD).min(out.len());
    let (first, rest) = out.split_at_mut(head);
    for (i, b) in first.iter_mut().enumerate() {
        // SAFETY: i < head <= out.len(): inside the caller's range.
        *b = unsafe { src.add(i).read_volatile() };
    }
    // SAFETY: head <= out.len(), inside the range; from here src is word-aligned.
    let src = unsafe { src.add(head) };
    let done = rest.len() - rest.len() % WORD;
    let (words, tail) = rest.split_at_mut(done);
    for (i, w) in words.chunks_exact_mut(WORD).enumerate() {
        // SAFETY: word i lies inside the range, aligned.
        let v = unsafe { src.cast::<u64>().add(i).read_volatile() };
        w.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in tail.iter_mut().enumerate() {
        // SAFETY: done + i < rest.len(): inside the range.
        *b = unsafe { src.add(done + i).read_volatile() };
    }
}

/// Copies `data` into shared memory at `dst`.
///
/// # Safety
///
/// `dst..dst + data.len()` must be writable memory that is not a Rust object (no reference to it
/// exists): another process may read or write it meanwhile.
pub(super) unsafe fn into(data: &[u8], dst: *mut u8) {
    let head = dst.align_offset(WORD).min(data.len());
    let (first, rest) = data.split_at(head);
    for (i, &b) in first.iter().enumerate() {
        // SAFETY: i < head <= data.len(): inside the caller's range.
        unsafe { dst.add(i).write_volatile(b) };
    }
    // SAFETY: head <= data.len(), inside the range; from here dst is word-aligned.
    let dst = unsafe { dst.add(head) };
    let words = rest.chunks_exact(WORD);
    let tail = words.remainder();
    for (i, w) in words.enumerate() {
        let v = u64::from_ne_bytes(w.try_into().unwrap_or_default());
        // SAFETY: word i lies inside the range, aligned.
        unsafe { dst.cast::<u64>().add(i).write_volatile(v) };
    }
    let done = rest.len() - tail.len();
    for (i, &b) in tail.iter().enumerate() {
        // SAFETY: done + i < rest.len(): inside the range.
        unsafe { dst.add(done + i).write_volatile(b) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every offset and length around the word boundaries, against a plain copy.
    #[test]
    fn copies_match_a_plain_copy_at_every_alignment() {
        let src: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37) | 1).collect();
        for at in 0..17 {
            for len in 0..40 {
                let mut out = vec![0u8; len];
                // SAFETY: at + len <= 64; src is a private Vec nobody else writes.
                unsafe { out_of(src.as_ptr().add(at), &mut out) };
                assert_eq!(out, src[at..at + len], "read at {at}, {len} bytes");
                let mut dst = vec![0u8; 64];
                // SAFETY: at + len <= 64; dst is not borrowed during the copy.
                unsafe { into(&src[..len], dst.as_mut_ptr().add(at)) };
                assert_eq!(dst[at..at + len], src[..len], "write at {at}, {len} bytes");
                assert!(dst[..at].iter().chain(&dst[at + len..]).all(|&b| b == 0), "write at {at} spilled");
            }
        }
    }
}
