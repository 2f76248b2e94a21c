//! The process's file limit (`RLIMIT_NOFILE`) and the cap on open HTTP
//! connections it leaves room for.
//!
//! Every socket is a file. At the soft limit (1024 is a common default) an
//! `accept`, the database, a recording and a provider's connection all fail
//! alike, so a crowd of idle sockets would end the calls in progress too. The
//! soft limit is first raised to the hard one, which any process may do
//! (<https://man7.org/linux/man-pages/man2/getrlimit.2.html>), then the
//! connections are capped below it with room kept for everything else.

/// Files kept for what is not an HTTP connection whatever the load: stdio,
/// the listener, the runtime's epoll and wakers, the database's connections
/// and its journal files, DNS lookups.
const FIXED_RESERVE: u64 = 64;
/// Files per call beyond its HTTP requests: its media stream's WebSocket (no
/// longer counted as a connection once upgraded), its recording, and its
/// connections to the speech-to-text, LLM and text-to-speech providers and to
/// Twilio's REST API, with room for a retry's new connection.
const PER_CALL_RESERVE: u64 = 8;
/// Connections allowed however low the file limit: fewer would make Pronto
/// unusable rather than safe.
const MIN_CONNECTIONS: usize = 16;

/// The soft file limit after [`raise`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLimit {
    /// The soft limit now in effect; `None` when it cannot be read (not
    /// Unix, or `getrlimit` failed), and then nothing is capped by it.
    pub soft: Option<u64>,
    /// The soft limit before, when it was raised.
    pub raised_from: Option<u64>,
    /// Why it could not be raised, when it was below the hard limit.
    pub error: Option<String>,
}

/// Raises the soft file limit to the hard limit, where allowed.
#[cfg(unix)]
pub fn raise() -> FileLimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to a valid one.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return FileLimit {
            soft: None,
            raised_from: None,
            error: Some(std::io::Error::last_os_error().to_string()),
        };
    }
    let before = widen(limit.rlim_cur);
    if limit.rlim_cur >= limit.rlim_max {
        return FileLimit {
            soft: Some(before),
            raised_from: None,
            error: None,
        };
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one `rlimit` through a pointer to a valid one.
    // macOS refuses an unlimited soft limit for files (EINVAL); the old one
    // then stays.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return FileLimit {
            soft: Some(before),
            raised_from: None,
            error: Some(std::io::Error::last_os_error().to_string()),
        };
    }
    FileLimit {
        soft: Some(widen(limit.rlim_max)),
        raised_from: Some(before),
        error: None,
    }
}

/// A limit as `u64`: `rlim_t` is `u64` on 64-bit targets but `u32` on
/// 32-bit Linux (a 32-bit Raspberry Pi OS).
#[cfg(unix)]
#[allow(clippy::useless_conversion)]
fn widen(limit: libc::rlim_t) -> u64 {
    u64::from(limit)
}

/// Without `RLIMIT_NOFILE`, nothing to raise and no limit known.
#[cfg(not(unix))]
pub fn raise() -> FileLimit {
    FileLimit {
        soft: None,
        raised_from: None,
        error: None,
    }
}

/// The connection cap: `configured` (`server.max_connections`), lowered so
/// that at the cap the files that `max_calls` calls and the rest need are
/// still free under `soft_limit`.
pub fn connection_cap(configured: usize, max_calls: usize, soft_limit: Option<u64>) -> usize {
    let Some(soft) = soft_limit else {
        return configured;
    };
    let calls = u64::try_from(max_calls).unwrap_or(u64::MAX);
    let reserve = FIXED_RESERVE.saturating_add(calls.saturating_mul(PER_CALL_RESERVE));
    let room = usize::try_from(soft.saturating_sub(reserve)).unwrap_or(usize::MAX);
    configured.min(room.max(MIN_CONNECTIONS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_cap_stands_when_the_limit_has_room() {
        assert_eq!(connection_cap(1000, 20, Some(1_048_576)), 1000);
        assert_eq!(connection_cap(1000, 20, None), 1000);
        assert_eq!(connection_cap(1000, 20, Some(u64::MAX)), 1000);
    }

    #[test]
    fn the_cap_leaves_room_under_the_limit_for_the_calls() {
        // 1024 files, 20 calls: 64 + 20 × 8 = 224 kept.
        assert_eq!(connection_cap(1000, 20, Some(1024)), 800);
        assert_eq!(connection_cap(1000, 100, Some(1024)), 160);
        // A limit below the reserve still lets a few connections in.
        assert_eq!(connection_cap(1000, 100, Some(256)), MIN_CONNECTIONS);
        // A smaller configured cap stands.
        assert_eq!(connection_cap(4, 100, Some(256)), 4);
        assert_eq!(
            connection_cap(1000, usize::MAX, Some(1024)),
            MIN_CONNECTIONS
        );
    }

    #[cfg(unix)]
    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one_where_allowed() {
        let after = raise();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in `raise`.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(after.soft, Some(widen(limit.rlim_cur)));
        if after.error.is_none() {
            assert_eq!(limit.rlim_cur, limit.rlim_max);
        }
    }
}
