//! Which alerts to send: at most one per dedup key within its window.
//!
//! [`Alert`]s carry a dedup key (error code + failing URL) and a window. A shell keeps one
//! [`AlertWindows`] per process (or per Worker isolate) and asks it before sending; the clock is
//! passed in, so the rule is the same everywhere and testable without waiting.
//!
//! ```
//! use std::time::Duration;
//! use twiml_fallback::edge::{Alert, AlertWindows, OutboundRequest, Redirects};
//!
//! let alert = Alert {
//!     request: OutboundRequest {
//!         method: http::Method::POST,
//!         url: "https://hooks.example.com/alerts".to_owned(),
//!         headers: Vec::new(),
//!         body: Some("{}".to_owned()),
//!         timeout: Duration::from_secs(10),
//!         max_answer_bytes: 4096,
//!         redirects: Redirects::Never,
//!     },
//!     dedup_key: "11200 https://app.example.com/sms".to_owned(),
//!     dedup_seconds: 300,
//! };
//! let mut windows = AlertWindows::default();
//! assert!(windows.first_in_window(&alert, 1_000));
//! assert!(!windows.first_in_window(&alert, 200_000)); // inside the 300 s window
//! assert!(windows.first_in_window(&alert, 301_000)); // a new window
//! ```

use std::collections::HashMap;

use super::Alert;

/// How many keys to hold before expired ones are swept.
const SWEEP_ABOVE: usize = 4096;

/// The most keys held at once. Keys come only from verified requests, so nearing this takes
/// thousands of distinct failing URLs inside one window. When a sweep still finds half this many
/// live keys, those whose windows end soonest are forgotten: at least half of them, all of them
/// if every window ends at the same millisecond (their alerts may repeat: better twice than a map
/// without bound).
pub const MAX_ALERT_KEYS: usize = 16 * 1024;

/// Dedup keys and when their windows end (milliseconds, the shell's clock).
#[derive(Debug, Default)]
pub struct AlertWindows {
    until_ms: HashMap<String, u64>,
    /// Sweep when the map reaches this size (doubling with what survives: amortised O(1)).
    sweep_at: usize,
}

impl AlertWindows {
    /// Whether `alert` opens a new window at `now_ms` — then it is recorded and should be sent;
    /// `false` while an earlier alert with the same key is inside its window. An alert with a
    /// zero window is always sent.
    pub fn first_in_window(&mut self, alert: &Alert, now_ms: u64) -> bool {
        if alert.dedup_seconds == 0 {
            return true;
        }
        if self.until_ms.len() >= self.sweep_at.max(SWEEP_ABOVE) {
            self.until_ms.retain(|_, until| *until > now_ms);
            if self.until_ms.len() >= MAX_ALERT_KEYS / 2 {
                let mut ends: Vec<u64> = self.until_ms.values().copied().collect();
                let middle = ends.len() / 2;
                let (_, median, _) = ends.select_nth_unstable(middle);
                let median = *median;
                self.until_ms.retain(|_, until| *until > median);
            }
            self.sweep_at = (2 * self.until_ms.len()).min(MAX_ALERT_KEYS);
        }
        match self.until_ms.get(&alert.dedup_key) {
            Some(until) if *until > now_ms => false,
            _ => {
                self.until_ms.insert(alert.dedup_key.clone(), alert.window_end(now_ms));
                true
            }
        }
    }

    /// How many keys are held (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.until_ms.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.until_ms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::{OutboundRequest, Redirects};

    fn alert(key: &str, dedup_seconds: u64) -> Alert {
        Alert {
            request: OutboundRequest {
                method: http::Method::POST,
                url: "https://hooks.example.com/a".to_owned(),
                headers: Vec::new(),
                body: None,
                timeout: std::time::Duration::from_secs(10),
                max_answer_bytes: 0,
                redirects: Redirects::Never,
            },
            dedup_key: key.to_owned(),
            dedup_seconds,
        }
    }

    #[test]
    fn one_alert_per_key_per_window() {
        let mut windows = AlertWindows::default();
        assert!(windows.first_in_window(&alert("a", 60), 0));
        assert!(!windows.first_in_window(&alert("a", 60), 59_999));
        assert!(windows.first_in_window(&alert("b", 60), 1), "keys are independent");
        assert!(
            windows.first_in_window(&alert("a", 60), 60_000),
            "the window ends after 60 s"
        );
        assert!(
            !windows.first_in_window(&alert("a", 60), 60_001),
            "and a new one starts"
        );
    }

    #[test]
    fn a_zero_window_always_sends_and_records_nothing() {
        let mut windows = AlertWindows::default();
        assert!(windows.first_in_window(&alert("a", 0), 0));
        assert!(windows.first_in_window(&alert("a", 0), 0));
        assert!(windows.is_empty());
    }

    #[test]
    fn expired_keys_are_swept_and_live_ones_kept() {
        let mut windows = AlertWindows::default();
        assert!(windows.first_in_window(&alert("live", 3600), 0));
        // 100,000 one-second windows, one every 10 ms: about 100 alive at any time.
        for key in 0..100_000u64 {
            assert!(windows.first_in_window(&alert(&key.to_string(), 1), key * 10));
            assert!(windows.len() <= SWEEP_ABOVE + 1, "{} keys held", windows.len());
        }
        assert!(
            !windows.first_in_window(&alert("live", 3600), 999_000),
            "a live key survives the sweeps"
        );
    }

    #[test]
    fn live_keys_are_capped() {
        let mut windows = AlertWindows::default();
        for key in 0..3 * MAX_ALERT_KEYS as u64 {
            // All live: each window ends later than the previous one.
            assert!(windows.first_in_window(&alert(&key.to_string(), 3600), key));
            assert!(windows.len() <= MAX_ALERT_KEYS, "{} keys", windows.len());
        }
        // The latest keys are the ones kept.
        let last = (3 * MAX_ALERT_KEYS - 1).to_string();
        assert!(!windows.first_in_window(&alert(&last, 3600), 3 * MAX_ALERT_KEYS as u64));
    }

    #[test]
    fn huge_windows_do_not_overflow() {
        let mut windows = AlertWindows::default();
        assert!(windows.first_in_window(&alert("a", u64::MAX), u64::MAX - 1));
        assert!(!windows.first_in_window(&alert("a", u64::MAX), u64::MAX - 1));
    }
}
