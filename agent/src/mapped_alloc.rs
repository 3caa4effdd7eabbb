//! The static (musl) agent's global allocator: large allocations get anonymous pages of their
//! own, everything else goes to the system allocator.
//!
//! musl's `calloc` writes zeros over every page it returns, so a large zeroed allocation is
//! resident at once even if it is never used. sled allocates about 20 MiB of zeroed counters
//! at start (its metrics, allocated even when they are off) and its page table (6 MiB) the
//! same way: the static agent held 35 MiB before it cached anything, against 11 MiB for the
//! glibc build, whose `calloc` maps fresh pages that stay unbacked until written. Fresh
//! anonymous pages are zero by the kernel's guarantee, so here a large zeroed allocation costs
//! only what is written to it, as with glibc.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Allocations of at least this many bytes are mapped pages of their own (glibc's default
/// threshold).
pub const MAPPED_FROM: usize = 128 * 1024;

/// The alignment every mapping has.
const PAGE: usize = 4096;

/// Sends large allocations to `mmap`, the rest to [`System`].
#[derive(Debug, Default, Clone, Copy)]
pub struct MappedLarge;

/// Whether an allocation of `layout` is (or was) a mapping of its own. Decided by the layout
/// alone, which `dealloc` and `realloc` are given, so no bookkeeping is needed.
fn mapped(layout: Layout) -> bool {
    layout.size() >= MAPPED_FROM && layout.align() <= PAGE
}

/// Fresh zero pages, or null.
unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: every pointer handed out is either the system allocator's, for layouts it serves,
// or a mapping of at least `layout.size()` bytes aligned to a page, which satisfies any
// alignment `mapped` admits; each is released by the allocator that made it, as the layout
// (which the caller must pass unchanged) tells which.
unsafe impl GlobalAlloc for MappedLarge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(layout) {
            // Already zero: the point of this allocator.
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(layout) {
            // SAFETY: `ptr` is a mapping of `layout.size()` bytes made by `map`.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`, does not
        // overflow `isize`.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (mapped(layout), mapped(new)) {
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) => {
                // SAFETY: `ptr` is a whole mapping of `layout.size()` bytes; the kernel moves
                // or grows it and keeps its contents.
                let p = unsafe {
                    libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE)
                };
                if p == libc::MAP_FAILED {
                    ptr::null_mut()
                } else {
                    p.cast()
                }
            }
            // Crossing the threshold: a new allocation of the other kind, then a copy.
            _ => unsafe {
                let p = self.alloc(new);
                if !p.is_null() {
                    ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                p
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_large_zeroed_allocation_is_zero_and_not_resident_until_written() {
        let size = 64 << 20;
        let layout = Layout::from_size_align(size, 8).unwrap();
        let before = rss_kib();
        unsafe {
            let p = MappedLarge.alloc_zeroed(layout);
            assert!(!p.is_null());
            let grew = rss_kib().saturating_sub(before);
            assert!(grew < 8 << 10, "64 MiB zeroed made {grew} KiB resident");
            let bytes = std::slice::from_raw_parts_mut(p, size);
            assert!(bytes.iter().step_by(4093).all(|&b| b == 0));
            bytes[size - 1] = 7;
            MappedLarge.dealloc(p, layout);
        }
    }

    #[test]
    fn contents_survive_growing_and_shrinking_across_the_threshold() {
        let sizes = [
            16,
            MAPPED_FROM - 1,
            MAPPED_FROM,
            3 * MAPPED_FROM + 5,
            1 << 22,
            MAPPED_FROM + 1,
            100,
            8,
        ];
        unsafe {
            let mut layout = Layout::from_size_align(sizes[0], 8).unwrap();
            let mut p = MappedLarge.alloc(layout);
            for (i, b) in std::slice::from_raw_parts_mut(p, layout.size())
                .iter_mut()
                .enumerate()
            {
                *b = i as u8;
            }
            for &size in &sizes[1..] {
                let kept = layout.size().min(size);
                p = MappedLarge.realloc(p, layout, size);
                assert!(!p.is_null(), "realloc to {size}");
                layout = Layout::from_size_align(size, 8).unwrap();
                let bytes = std::slice::from_raw_parts_mut(p, size);
                assert!(
                    bytes[..kept].iter().enumerate().all(|(i, &b)| b == i as u8),
                    "contents lost at {size}"
                );
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = i as u8;
                }
            }
            MappedLarge.dealloc(p, layout);
        }
    }

    #[test]
    fn over_aligned_and_small_allocations_stay_with_the_system_allocator() {
        assert!(!mapped(Layout::from_size_align(1 << 20, 2 * PAGE).unwrap()));
        assert!(!mapped(
            Layout::from_size_align(MAPPED_FROM - 1, 8).unwrap()
        ));
        assert!(mapped(Layout::from_size_align(MAPPED_FROM, PAGE).unwrap()));
        unsafe {
            let layout = Layout::from_size_align(1 << 20, 2 * PAGE).unwrap();
            let p = MappedLarge.alloc_zeroed(layout);
            assert_eq!(p as usize % (2 * PAGE), 0);
            MappedLarge.dealloc(p, layout);
        }
    }
}
