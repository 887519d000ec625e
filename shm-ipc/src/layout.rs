//! The address-space claims, shown on a live process pair (N1, S1-S3, S5-S7): after fork a plain
//! variable is private (copy-on-write) at the same virtual address, while a SysV segment's bytes
//! are shared; and where things sit in a 64-bit address space, which is not the note's 0-3 GB /
//! 3-4 GB split (that is 32-bit x86 only).

use common::out::say;
use common::process::{fork_child, wait_printing_child};
use common::sysv::{self, Attached};
use common::{Error, Memory, MemoryMut, Result, SysResult};
use nix::sys::wait::WaitStatus;
use nix::unistd::getpid;

use crate::SIZE;

/// Runs the walk-through; returns the exit status.
pub fn run() -> Result<u8> {
    // IPC_PRIVATE and IPC_RMID at once: the segment is shared through fork only and goes away
    // when the last process detaches, even if this one is killed. Nothing can leak.
    let id = sysv::shmget_private(SIZE, libc::IPC_CREAT | 0o600).sys("shmget", "IPC_PRIVATE")?;
    let attached = Attached::read_write(id);
    let removed = sysv::shm_remove(id).sys("shmctl(IPC_RMID)", format!("segment id {id}"));
    let mut seg = attached.sys("shmat", format!("segment id {id}"))?;
    removed?;
    seg.write_c_string(b"(nothing yet)");
    let mut plain = Box::new(42u64); // a heap variable: private to each process after fork
    let plain_at = &*plain as *const u64;
    let stack_var = 0u8;

    say(&format!("pointer width: {} bits; this process: pid {}", usize::BITS, getpid()));
    // The layout binary starts no thread, so fork is safe here.
    let child = fork_child(|| {
        *plain = 99;
        let me = getpid();
        seg.write_c_string(format!("hello from the child, pid {me}").as_bytes());
        say(&format!("child  pid {me}: wrote 99 to the plain variable at {plain_at:p}"));
        say(&format!("child  pid {me}: wrote a string into the segment at {:p}", seg.base()));
        0
    })?;
    match wait_printing_child(child, None)? {
        WaitStatus::Exited(_, 0) => {}
        other => return Err(Error::Failed(format!("the child ended with {other:?}"))),
    }
    let me = getpid();

    claim("N1, S1", "processes cannot touch each other's data: Linux keeps their address spaces fully separate");
    say(&format!(
        "parent pid {me}: reads {} from the plain variable at {plain_at:p}: same virtual address, its own copy (N1, S1: separate address spaces, copy-on-write after fork)",
        *plain
    ));

    claim("S2, S3", "each process has 4 GB, user space 0-3 GB and the kernel 3-4 GB; virtual memory, not RAM");
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    for (what, addr) in [("heap variable", plain_at as usize), ("stack variable", &stack_var as *const u8 as usize)] {
        say_mapping(&maps, what, addr);
    }
    let top = top_of_user_space(&maps);
    say(&format!("  highest user mapping ends at {top:#x} ({:.1} TiB)", top as f64 / (1u64 << 40) as f64));
    say("  The 0-3 GB / 3-4 GB split is 32-bit x86 only. On x86-64 user space is the lower half of a 48-bit");
    say("  address space, 0 to 0x7fffffffffff (128 TiB); the kernel has the upper half. All of it is virtual (S3).");

    claim("S4", "all processes share the kernel part");
    kernel_half_is_closed()?;

    claim(
        "S5, S6, S7",
        "shared memory is made in kernel space and used like a variable, with no copying; a key lets processes attach it",
    );
    say(&format!(
        "parent pid {me}: reads {:?} from the segment at {:p}: the same physical pages, mapped into both (S5-S7)",
        String::from_utf8_lossy(&seg.read_c_string()),
        seg.base()
    ));
    say_mapping(&maps, "segment", seg.base().as_ptr() as usize);
    say("  The segment is not \"in kernel space\": the kernel owns its pages,");
    say("  but shmat mapped them into this process's own user address space (the segment line above),");
    say("  so reading and writing it are plain memory accesses with no system call and no copy.");
    say("  The key is how unrelated processes find it (shmget).");
    Ok(0)
}

/// A claim's heading: its id and what the note says.
fn claim(id: &str, note: &str) {
    say(&format!("\n{id} the note: {note}"));
}

/// The line of /proc/self/maps that holds `addr`: its range and what is mapped there.
fn say_mapping(maps: &str, what: &str, addr: usize) {
    for (lo, hi, name) in maps.lines().filter_map(mapping) {
        if (lo..hi).contains(&addr) {
            say(&format!("  {what:<15} {addr:#014x}  in {lo:#014x}-{hi:#014x} {name}"));
        }
    }
}

/// The end of the highest user mapping ([vsyscall] is the kernel's, mapped for old binaries).
fn top_of_user_space(maps: &str) -> usize {
    maps.lines().filter(|l| !l.contains("[vsyscall]")).filter_map(mapping).map(|(_, hi, _)| hi).max().unwrap_or(0)
}

/// `lo-hi perms offset dev inode name` into (lo, hi, name).
fn mapping(line: &str) -> Option<(usize, usize, &str)> {
    let (range, rest) = line.split_once(' ')?;
    let (lo, hi) = range.split_once('-')?;
    let name = rest.split_whitespace().nth(4).unwrap_or("");
    Some((usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?, name))
}

/// S4: every process shares the kernel's half, but user code cannot touch it: a forked child
/// that reads a kernel address is killed by SIGSEGV.
fn kernel_half_is_closed() -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    const KERNEL_HALF: usize = 0xffff_8000_0000_0000;
    #[cfg(not(target_arch = "x86_64"))]
    const KERNEL_HALF: usize = usize::MAX & !0xfff;
    let child = fork_child(|| {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        // SAFETY: not safe, on purpose: the read faults and the kernel kills the child.
        let byte = unsafe { std::ptr::read_volatile(KERNEL_HALF as *const u8) };
        say(&format!("child: read {byte} from the kernel's half?!"));
        1
    })?;
    match wait_printing_child(child, None)? {
        WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGSEGV, _) => {
            say(&format!(
                "  a child that read kernel address {KERNEL_HALF:#x} was killed by SIGSEGV: the kernel's half is in every address space, but closed to user mode"
            ));
            Ok(())
        }
        other => Err(Error::Failed(format!("the child reading kernel memory ended with {other:?}"))),
    }
}
