//! Work that runs beside the critical path, on threads that yield to it.
//!
//! On a machine with few cores the reading of a gzip layer keeps every core busy: one thread
//! inflates, the others hash and write. The inflater is the path everything waits on; the
//! threads that hash or finish files behind it have slack (they only have to keep up on
//! average). When more threads are runnable than there are cores, the scheduler shares time
//! by weight, so such helpers lower their own priority a little: the inflater then loses
//! less time to them, and they catch up when it waits.

/// How far helpers lower their priority (nice +5: about a third of a normal thread's weight
/// when they compete, nothing when a core is free).
const HELPER_NICE: i32 = 5;

/// Lowers the calling thread's priority; done once, by a helper thread we spawned, as it
/// starts. A failure is harmless and ignored: the thread runs at the usual priority.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `gettid` and `setpriority` take no pointers. On Linux the nice value is
        // a property of the thread, and `PRIO_PROCESS` with a thread id sets that thread's.
        unsafe {
            let tid = libc::gettid();
            let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            libc::setpriority(
                libc::PRIO_PROCESS,
                tid as libc::id_t,
                (now + HELPER_NICE).min(19),
            );
        }
    }
}
