//! Test helpers shared by the workspace's tests; a dev-dependency only, never published.
//!
//! - [`wire`]: the secret-connection handshake run by hand, for peers that misbehave after it.
//!
//! A case that must leave nothing behind takes a [`Baseline`] first and ends with
//! [`Baseline::assert_restored`]: the process's open TCP sockets, the live tasks of the
//! current tokio runtime and the panics so far (spawned tasks included: tokio would swallow
//! them) must all be back where they were. Cases that share one process's counts should run
//! one at a time (a `static` `tokio::sync::Mutex<()>` held for the case).

pub mod wire;

use std::collections::HashSet;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Open TCP socket descriptors of this process: `/proc/self/fd` entries whose socket inode is
/// listed in `/proc/self/net/tcp{,6}`. Other descriptors (each test runtime's epoll and
/// eventfd, the harness's inherited stdio) come and go outside a case, so they are not
/// counted. Zero where `/proc` is missing.
pub fn open_tcp_sockets() -> usize {
    let mut inodes = HashSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(9) {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|target| inodes.contains(target.to_string_lossy().as_ref()))
            .count()
    })
}

/// Every open file descriptor of this process (`/proc/self/fd`; zero where it is missing).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Live tasks of the current tokio runtime.
///
/// # Panics
/// Outside a tokio runtime.
pub fn live_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Panics anywhere in the process so far, spawned tasks included. The first call installs a
/// panic hook that counts, then calls the hook it replaced.
pub fn panics() -> usize {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
    PANICS.load(Ordering::SeqCst)
}

/// What a case starts from: open TCP sockets (unless the case runs in memory), live tasks of
/// the current runtime, panics so far.
#[derive(Clone, Copy, Debug)]
pub struct Baseline {
    sockets: Option<usize>,
    tasks: usize,
    panics: usize,
}

impl Baseline {
    /// Sockets, tasks and panics, now.
    pub fn take() -> Self {
        Self {
            sockets: Some(open_tcp_sockets()),
            tasks: live_tasks(),
            panics: panics(),
        }
    }

    /// Tasks and panics only, for a case over in-memory connections (other tests' sockets
    /// in the same process would move the socket count).
    pub fn take_in_memory() -> Self {
        Self {
            sockets: None,
            tasks: live_tasks(),
            panics: panics(),
        }
    }

    /// Waits (bounded: 5 s) for the counts to come back, then asserts they did and that
    /// nothing panicked. The wait lets spawned tasks observe a close; the assertion is on the
    /// counts, not on the time.
    pub async fn assert_restored(self) {
        self.assert_restored_after_panics(0).await;
    }

    /// As [`Baseline::assert_restored`], for a case that makes `injected` panics on purpose
    /// (all of them caught).
    pub async fn assert_restored_after_panics(self, injected: usize) {
        let sockets_back = || self.sockets.is_none_or(|s| open_tcp_sockets() <= s);
        for _ in 0..500 {
            if sockets_back() && live_tasks() <= self.tasks {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(panics(), self.panics + injected, "something panicked");
        if let Some(sockets) = self.sockets {
            assert_eq!(open_tcp_sockets(), sockets, "TCP sockets leaked");
        }
        assert_eq!(live_tasks(), self.tasks, "tokio tasks leaked");
    }
}
