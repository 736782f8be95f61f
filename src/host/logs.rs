//! The recent output of each function, kept by the host so that `wasmless
//! function logs` can show it for a local `up` (in a cluster the pod's log
//! holds it). Bounded: the last lines of each function only.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How many lines are kept per function.
pub const KEPT_LINES: usize = 1000;

/// Recent log lines by function name.
#[derive(Debug, Default)]
pub struct FunctionLogs {
    lines: Mutex<HashMap<String, VecDeque<String>>>,
}

impl FunctionLogs {
    /// Appends a line of `function`'s output, dropping its oldest line
    /// beyond [`KEPT_LINES`].
    pub fn push(&self, function: &str, line: String) {
        let mut lines = self.lines.lock().expect("the lock is never poisoned");
        let kept = lines.entry(function.to_owned()).or_default();
        if kept.len() == KEPT_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }

    /// The last `tail` lines of `function` (all kept lines when `None`).
    pub fn tail(&self, function: &str, tail: Option<usize>) -> Vec<String> {
        let lines = self.lines.lock().expect("the lock is never poisoned");
        let Some(kept) = lines.get(function) else {
            return Vec::new();
        };
        let skip = kept.len().saturating_sub(tail.unwrap_or(KEPT_LINES));
        kept.iter().skip(skip).cloned().collect()
    }

    /// Forgets a deleted function's lines.
    pub fn forget(&self, function: &str) {
        self.lines
            .lock()
            .expect("the lock is never poisoned")
            .remove(function);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_of_each_function() {
        let logs = FunctionLogs::default();
        for i in 0..KEPT_LINES + 5 {
            logs.push("a", format!("line {i}"));
        }
        logs.push("b", "other".into());
        let all = logs.tail("a", None);
        assert_eq!(all.len(), KEPT_LINES);
        assert_eq!(all[0], "line 5");
        assert_eq!(
            logs.tail("a", Some(2)),
            [
                format!("line {}", KEPT_LINES + 3),
                format!("line {}", KEPT_LINES + 4)
            ]
        );
        logs.forget("a");
        assert!(logs.tail("a", None).is_empty());
        assert_eq!(logs.tail("b", None), ["other"]);
    }
}
