//! Volatile copies between shared memory and private buffers: every shared byte is read or
//! written exactly once, by a volatile access, so the compiler neither assumes it stable nor
//! invents accesses to it; the private side is an ordinary slice. Aligned vector chunks in the
//! middle (32 bytes with AVX, else 16 with SSE2, which every x86-64 CPU has; 8-byte words on
//! other CPUs) keep a copy close to memcpy's speed; words and bytes only at the unaligned ends.

const WORD: usize = size_of::<u64>();
/// From this many bytes on, a copy takes the AVX path where the CPU has it.
#[cfg(target_arch = "x86_64")]
const LONG: usize = 256;

/// Copies `out.len()` bytes from shared memory at `src` into `out`.
///
/// # Safety
///
/// `src..src + out.len()` must be readable memory that is not a Rust object (no reference to it
/// exists): another process may write it meanwhile.
pub(super) unsafe fn out_of(src: *const u8, out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        // A short copy is done inline: the feature test and the call would cost more than AVX
        // saves.
        if out.len() >= LONG && std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: this CPU has AVX; the range is the caller's.
            return unsafe { x86::out_of_avx(src, out) };
        }
        // SAFETY: the caller's range; SSE2 is part of x86-64.
        unsafe { out_of_by::<std::arch::x86_64::__m128i>(src, out) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: the caller's range.
    unsafe {
        out_of_by::<u64>(src, out)
    }
}

/// Copies `data` into shared memory at `dst`.
///
/// # Safety
///
/// `dst..dst + data.len()` must be writable memory that is not a Rust object (no reference to it
/// exists): another process may read or write it meanwhile.
pub(super) unsafe fn into(data: &[u8], dst: *mut u8) {
    #[cfg(target_arch = "x86_64")]
    {
        if data.len() >= LONG && std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: this CPU has AVX; the range is the caller's.
            return unsafe { x86::into_avx(data, dst) };
        }
        // SAFETY: the caller's range; SSE2 is part of x86-64.
        unsafe { into_by::<std::arch::x86_64::__m128i>(data, dst) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: the caller's range.
    unsafe {
        into_by::<u64>(data, dst)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::__m256i;

    /// [`super::out_of`] in 32-byte chunks.
    ///
    /// # Safety
    ///
    /// As for `out_of`, and the CPU has AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn out_of_avx(src: *const u8, out: &mut [u8]) {
        // SAFETY: the caller's contract.
        unsafe { super::out_of_by::<__m256i>(src, out) }
    }

    /// [`super::into`] in 32-byte chunks.
    ///
    /// # Safety
    ///
    /// As for `into`, and the CPU has AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn into_avx(data: &[u8], dst: *mut u8) {
        // SAFETY: the caller's contract.
        unsafe { super::into_by::<__m256i>(data, dst) }
    }
}

/// [`out_of`] with chunks of type `C` (plain bytes, a multiple of 8 long, any bit pattern valid).
///
/// # Safety
///
/// As for `out_of`, and the CPU can load a `C`.
#[inline(always)]
unsafe fn out_of_by<C: Copy>(src: *const u8, out: &mut [u8]) {
    let chunk = size_of::<C>();
    let (n, mut i) = (out.len(), 0);
    let aligned = |i: usize, to: usize| (src.addr() + i).is_multiple_of(to);
    while i < n && !aligned(i, WORD) {
        // SAFETY: i < n: inside the caller's range.
        out[i] = unsafe { src.add(i).read_volatile() };
        i += 1;
    }
    while n - i >= WORD && (!aligned(i, chunk) || n - i < chunk) {
        // SAFETY: 8 bytes inside the range, 8-aligned.
        let v = unsafe { src.add(i).cast::<u64>().read_volatile() };
        out[i..i + WORD].copy_from_slice(&v.to_ne_bytes());
        i += WORD;
    }
    while n - i >= 4 * chunk {
        // SAFETY: four chunks inside the range, aligned to their size (the loop above ends only
        // there or near the end); the private side is inside `out`, written unaligned. Four
        // loads before their stores, as memcpy does, so the loop costs less per byte.
        unsafe {
            let s = src.add(i).cast::<C>();
            let v = [s.read_volatile(), s.add(1).read_volatile(), s.add(2).read_volatile(), s.add(3).read_volatile()];
            out.as_mut_ptr().add(i).cast::<[C; 4]>().write_unaligned(v);
        }
        i += 4 * chunk;
    }
    while n - i >= chunk {
        // SAFETY: a chunk inside the range, aligned to its size (see above); the private side
        // is inside `out`, written unaligned.
        unsafe {
            let v = src.add(i).cast::<C>().read_volatile();
            out.as_mut_ptr().add(i).cast::<C>().write_unaligned(v);
        }
        i += chunk;
    }
    while n - i >= WORD {
        // SAFETY: 8 bytes inside the range, 8-aligned.
        let v = unsafe { src.add(i).cast::<u64>().read_volatile() };
        out[i..i + WORD].copy_from_slice(&v.to_ne_bytes());
        i += WORD;
    }
    while i < n {
        // SAFETY: i < n: inside the caller's range.
        out[i] = unsafe { src.add(i).read_volatile() };
        i += 1;
    }
}

/// [`into`] with chunks of type `C` (see [`out_of_by`]).
///
/// # Safety
///
/// As for `into`, and the CPU can store a `C`.
#[inline(always)]
unsafe fn into_by<C: Copy>(data: &[u8], dst: *mut u8) {
    let chunk = size_of::<C>();
    let (n, mut i) = (data.len(), 0);
    let aligned = |i: usize, to: usize| (dst.addr() + i).is_multiple_of(to);
    let word = |i: usize| u64::from_ne_bytes(data[i..i + WORD].try_into().unwrap_or_default());
    while i < n && !aligned(i, WORD) {
        // SAFETY: i < n: inside the caller's range.
        unsafe { dst.add(i).write_volatile(data[i]) };
        i += 1;
    }
    while n - i >= WORD && (!aligned(i, chunk) || n - i < chunk) {
        // SAFETY: 8 bytes inside the range, 8-aligned.
        unsafe { dst.add(i).cast::<u64>().write_volatile(word(i)) };
        i += WORD;
    }
    while n - i >= 4 * chunk {
        // SAFETY: four chunks inside the range, aligned to their size (see out_of_by); the
        // private side is inside `data`, read unaligned.
        unsafe {
            let v = data.as_ptr().add(i).cast::<[C; 4]>().read_unaligned();
            let d = dst.add(i).cast::<C>();
            d.write_volatile(v[0]);
            d.add(1).write_volatile(v[1]);
            d.add(2).write_volatile(v[2]);
            d.add(3).write_volatile(v[3]);
        }
        i += 4 * chunk;
    }
    while n - i >= chunk {
        // SAFETY: a chunk inside the range, aligned to its size (see out_of_by); the private
        // side is inside `data`, read unaligned.
        unsafe {
            let v = data.as_ptr().add(i).cast::<C>().read_unaligned();
            dst.add(i).cast::<C>().write_volatile(v);
        }
        i += chunk;
    }
    while n - i >= WORD {
        // SAFETY: 8 bytes inside the range, 8-aligned.
        unsafe { dst.add(i).cast::<u64>().write_volatile(word(i)) };
        i += WORD;
    }
    while i < n {
        // SAFETY: i < n: inside the caller's range.
        unsafe { dst.add(i).write_volatile(data[i]) };
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every offset and length around the word and chunk boundaries, short and long (the AVX
    /// path), against a plain copy.
    #[test]
    fn copies_match_a_plain_copy_at_every_alignment() {
        let src: Vec<u8> = (0..400u32).map(|b| (b as u8).wrapping_mul(37) | 1).collect();
        for at in 0..33 {
            for len in (0..96).chain(250..300) {
                let mut out = vec![0u8; len];
                // SAFETY: at + len <= 400; src is a private Vec nobody else writes.
                unsafe { out_of(src.as_ptr().add(at), &mut out) };
                let mut by_words = vec![0u8; len];
                // SAFETY: as above.
                unsafe { out_of_by::<u64>(src.as_ptr().add(at), &mut by_words) };
                assert_eq!(by_words, out, "read at {at}, {len} bytes, by words");
                assert_eq!(out, src[at..at + len], "read at {at}, {len} bytes");
                let mut dst = vec![0u8; 400];
                // SAFETY: at + len <= 400; dst is not borrowed during the copy.
                unsafe { into(&src[..len], dst.as_mut_ptr().add(at)) };
                assert_eq!(dst[at..at + len], src[..len], "write at {at}, {len} bytes");
                assert!(dst[..at].iter().chain(&dst[at + len..]).all(|&b| b == 0), "write at {at} spilled");
            }
        }
    }
}
