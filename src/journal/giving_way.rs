//! The block log's disk work gives way to answering: it runs at Linux's
//! lowest CPU priority (`SCHED_IDLE`), so a DNS reader that wakes takes its
//! core at once instead of waiting behind a batch of SQLite inserts for the
//! scheduler's turn (measured: the slowest answers at half load came every
//! 200 ms, the block log's flush, and went with it). When the log has
//! fallen a batch behind, or its work has given way for long enough to
//! show the machine is busy (the writer's `LONGEST_GIVING_WAY`), the work
//! goes on at the normal priority, so a loaded machine never starves the
//! evidence out.
//!
//! Only where the thread may be put back afterwards (`CAP_SYS_NICE`, as for
//! root, or an `RLIMIT_NICE` that allows its nice value, as the service
//! unit's `LimitNICE=+0` does): Linux lets no other thread leave
//! `SCHED_IDLE`, and a thread of the runtime's pool left there would run
//! everything after it at that priority. Elsewhere the work runs as before.

use std::sync::{Mutex, OnceLock, PoisonError};

/// `CAP_SYS_NICE`'s bit in the capability sets (linux/capability.h).
const CAP_SYS_NICE: u32 = 23;

/// The thread now doing the log's work at the idle priority, if one is,
/// so that the writer can put it back when the work takes too long.
#[derive(Default)]
pub(super) struct GivingWay {
    /// The thread's id and the policy it had.
    lowered: Mutex<Option<(libc::pid_t, libc::c_int)>>,
}

impl GivingWay {
    /// Runs `work` on this thread: at the idle priority, unless the log is
    /// `behind` or the thread could not be put back.
    pub(super) fn run<T>(&self, behind: bool, work: impl FnOnce() -> T) -> T {
        let _lowered = if behind { None } else { Lowered::lower(self) };
        work()
    }

    /// Puts the thread doing the work (if any) back at its priority: the
    /// work has waited for a core longer than answers may keep it waiting,
    /// so the machine is busy and the log must not fall behind.
    pub(super) fn stop(&self) {
        let mut lowered = self.lowered.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((thread, policy)) = lowered.take()
            && !set_policy(thread, policy)
        {
            warn_not_back();
        }
    }
}

/// The work's thread at `SCHED_IDLE` until dropped (also on a panic), then
/// back at the policy it had, unless [`GivingWay::stop`] put it back first.
struct Lowered<'a> {
    giving_way: &'a GivingWay,
}

impl<'a> Lowered<'a> {
    fn lower(giving_way: &'a GivingWay) -> Option<Lowered<'a>> {
        if !may_put_back() {
            return None;
        }
        // SAFETY: no pointers; 0 is the calling thread.
        let policy = unsafe { libc::sched_getscheduler(0) };
        // Real-time or already idle (set by the technician): left alone.
        if policy != libc::SCHED_OTHER && policy != libc::SCHED_BATCH {
            return None;
        }
        let mut lowered = giving_way
            .lowered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // SAFETY: no pointers.
        let thread = unsafe { libc::gettid() };
        if !set_policy(0, libc::SCHED_IDLE) {
            return None;
        }
        *lowered = Some((thread, policy));
        Some(Lowered { giving_way })
    }
}

impl Drop for Lowered<'_> {
    fn drop(&mut self) {
        // Under the lock, so `stop` never names a thread that has moved on.
        let mut lowered = self
            .giving_way
            .lowered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, policy)) = lowered.take()
            && !set_policy(0, policy)
        {
            warn_not_back();
        }
    }
}

fn warn_not_back() {
    tracing::warn!(
        error = %std::io::Error::last_os_error(),
        "a block log thread could not return to the normal CPU priority"
    );
}

/// Sets a thread's policy (0: the calling thread; priority 0, as the
/// non-real-time policies take).
fn set_policy(thread: libc::pid_t, policy: libc::c_int) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` lives across the call.
    unsafe { libc::sched_setscheduler(thread, policy, &param) == 0 }
}

/// Whether a thread of this process may leave `SCHED_IDLE` again, worked
/// out once: its threads share the capabilities, the limit and (as
/// started) the nice value.
fn may_put_back() -> bool {
    static MAY: OnceLock<bool> = OnceLock::new();
    *MAY.get_or_init(|| {
        let capabilities = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| effective_capabilities(&status));
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid rlimit to write into.
        let limit = if unsafe { libc::getrlimit(libc::RLIMIT_NICE, &mut limit) } == 0 {
            limit.rlim_cur
        } else {
            0
        };
        // SAFETY: no pointers; reads the calling thread's nice value (a
        // nice value is never outside -20..=19, so -1 is a value here).
        let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        may_leave_idle(capabilities.unwrap_or(0), limit, nice)
    })
}

/// The kernel's rule for leaving `SCHED_IDLE` (`can_nice`): with
/// `CAP_SYS_NICE`, or when `RLIMIT_NICE` reaches `20 - nice`.
fn may_leave_idle(effective_capabilities: u64, nice_limit: libc::rlim_t, nice: i32) -> bool {
    let capable = effective_capabilities & (1 << CAP_SYS_NICE) != 0;
    let needed = libc::rlim_t::try_from(20 - nice.clamp(-20, 19)).unwrap_or(libc::rlim_t::MAX);
    capable || nice_limit == libc::RLIM_INFINITY || nice_limit >= needed
}

/// The `CapEff:` line of /proc/self/status.
fn effective_capabilities(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> libc::c_int {
        // SAFETY: no pointers; 0 is the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn the_work_runs_idle_and_the_thread_comes_back() {
        // The tests run as root, so the thread may be put back.
        std::thread::spawn(|| {
            let giving_way = GivingWay::default();
            assert!(may_put_back());
            assert_eq!(policy(), libc::SCHED_OTHER);
            assert_eq!(giving_way.run(false, policy), libc::SCHED_IDLE);
            assert_eq!(policy(), libc::SCHED_OTHER);
            assert_eq!(
                giving_way.run(true, policy),
                libc::SCHED_OTHER,
                "behind: normal"
            );
            let panicked =
                std::panic::catch_unwind(|| giving_way.run(false, || panic!("in the work")));
            assert!(panicked.is_err());
            assert_eq!(policy(), libc::SCHED_OTHER, "put back after a panic too");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn work_that_waits_too_long_is_put_back_while_it_runs() {
        let giving_way = std::sync::Arc::new(GivingWay::default());
        let (started, start) = std::sync::mpsc::channel();
        let (stopped, stop) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn({
            let giving_way = giving_way.clone();
            move || {
                giving_way.run(false, || {
                    started.send(policy()).unwrap();
                    stop.recv().unwrap();
                    policy()
                })
            }
        });
        assert_eq!(start.recv().unwrap(), libc::SCHED_IDLE);
        giving_way.stop();
        stopped.send(()).unwrap();
        assert_eq!(worker.join().unwrap(), libc::SCHED_OTHER);
        // Nothing left to put back.
        giving_way.stop();
    }

    #[test]
    fn only_a_thread_that_may_come_back_gives_way() {
        let none = 0;
        let sys_nice = 1 << CAP_SYS_NICE;
        // An unprivileged service with the default limit: never lowered.
        assert!(!may_leave_idle(none, 0, 0));
        assert!(!may_leave_idle(none, 0, 19));
        // LimitNICE=+0 (20) allows nice 0 and anything nicer.
        assert!(may_leave_idle(none, 20, 0));
        assert!(may_leave_idle(none, 20, 5));
        assert!(!may_leave_idle(none, 19, 0));
        assert!(!may_leave_idle(none, 20, -5));
        assert!(may_leave_idle(none, libc::RLIM_INFINITY, -20));
        assert!(may_leave_idle(sys_nice, 0, -20));
        assert_eq!(
            effective_capabilities("Name:\tx\nCapEff:\t0000000000800000\n"),
            Some(sys_nice)
        );
        assert_eq!(effective_capabilities("Name:\tx\n"), None);
    }
}
