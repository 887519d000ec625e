//! Volatile copies between shared memory and private buffers: every shared byte is read or
//! written exactly once, by a volatile access, so the compiler neither assumes it stable nor
//! invents accesses to it; the private side is an ordinary slice. Aligned vector chunks in the
//! middle (32 bytes with AVX, else 16 with SSE2, which every x86-64 CPU has; 8-byte words on
//! other CPUs) keep a copy close to memcpy's speed; words and bytes only at the unaligned ends.
//! A short copy of whole words from an 8-aligned address (a message in a ring slot) takes an
//! inlined path instead, 16-byte chunks between at most two words, so its set-up costs nothing.

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
#[inline]
pub(super) unsafe fn out_of(src: *const u8, out: &mut [u8]) {
    if short_words(src.addr(), out.len()) {
        // SAFETY: the caller's range, 8-aligned and whole words (short_words).
        return unsafe { short_out_of(src, out) };
    }
    // SAFETY: the caller's range.
    unsafe { out_of_any(src, out) }
}

/// Copies `data` into shared memory at `dst`.
///
/// # Safety
///
/// `dst..dst + data.len()` must be writable memory that is not a Rust object (no reference to it
/// exists): another process may read or write it meanwhile.
#[inline]
pub(super) unsafe fn into(data: &[u8], dst: *mut u8) {
    if short_words(dst.addr(), data.len()) {
        // SAFETY: the caller's range, 8-aligned and whole words (short_words).
        return unsafe { short_into(data, dst) };
    }
    // SAFETY: the caller's range.
    unsafe { into_any(data, dst) }
}

/// Whether a copy takes the short path: under [`SHORT`] bytes, whole words from an 8-aligned
/// address (a message in a ring slot). Such a copy is a few loads and stores, so it is inlined
/// into its caller with no alignment prologue, no byte loops and no call: the general path's
/// set-up would cost as much as the copy.
#[inline(always)]
fn short_words(addr: usize, n: usize) -> bool {
    n < SHORT && (addr | n).is_multiple_of(WORD)
}

/// Copies below this many bytes may take the short path.
const SHORT: usize = 256;
/// The short path's 16 bytes: an SSE2 register on x86-64 (one aligned load or store).
#[cfg(target_arch = "x86_64")]
type Chunk = std::arch::x86_64::__m128i;
#[cfg(not(target_arch = "x86_64"))]
type Chunk = u128;

/// The short path of [`out_of`]: one word if `src` is not 16-aligned, then 16-byte chunks
/// (aligned to 16 on the shared side), then a last word if one is left.
///
/// # Safety
///
/// As for `out_of`, and `src` is 8-aligned and `out.len()` a multiple of 8.
#[inline(always)]
unsafe fn short_out_of(src: *const u8, out: &mut [u8]) {
    let (n, mut i) = (out.len(), 0);
    let p = out.as_mut_ptr();
    if n >= WORD && !src.addr().is_multiple_of(16) {
        // SAFETY: 8 bytes inside the range, 8-aligned; the private side is inside `out`.
        unsafe { p.cast::<u64>().write_unaligned(src.cast::<u64>().read_volatile()) };
        i = WORD;
    }
    while n - i >= 16 {
        // SAFETY: 16 bytes inside the range, 16-aligned (src + i is, after the word above); the
        // private side is inside `out`, written unaligned.
        unsafe { p.add(i).cast::<Chunk>().write_unaligned(src.add(i).cast::<Chunk>().read_volatile()) };
        i += 16;
    }
    if n - i >= WORD {
        // SAFETY: the last 8 bytes of the range, 8-aligned; inside `out`.
        unsafe { p.add(i).cast::<u64>().write_unaligned(src.add(i).cast::<u64>().read_volatile()) };
    }
}

/// The short path of [`into`] (see [`short_out_of`]).
///
/// # Safety
///
/// As for `into`, and `dst` is 8-aligned and `data.len()` a multiple of 8.
#[inline(always)]
unsafe fn short_into(data: &[u8], dst: *mut u8) {
    let (n, mut i) = (data.len(), 0);
    let p = data.as_ptr();
    if n >= WORD && !dst.addr().is_multiple_of(16) {
        // SAFETY: 8 bytes inside the range, 8-aligned; the private side is inside `data`.
        unsafe { dst.cast::<u64>().write_volatile(p.cast::<u64>().read_unaligned()) };
        i = WORD;
    }
    while n - i >= 16 {
        // SAFETY: 16 bytes inside the range, 16-aligned (see short_out_of); inside `data`.
        unsafe { dst.add(i).cast::<Chunk>().write_volatile(p.add(i).cast::<Chunk>().read_unaligned()) };
        i += 16;
    }
    if n - i >= WORD {
        // SAFETY: the last 8 bytes of the range, 8-aligned; inside `data`.
        unsafe { dst.add(i).cast::<u64>().write_volatile(p.add(i).cast::<u64>().read_unaligned()) };
    }
}

/// The general [`out_of`]: any address, any length.
///
/// # Safety
///
/// As for `out_of`.
#[inline(never)]
unsafe fn out_of_any(src: *const u8, out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
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

/// The general [`into`]: any address, any length.
///
/// # Safety
///
/// As for `into`.
#[inline(never)]
unsafe fn into_any(data: &[u8], dst: *mut u8) {
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
