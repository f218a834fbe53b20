//! What long computations report while they run. The library says what it
//! is doing — a task's label, its length and unit, how far it got, a short
//! message, the stage of a study — and the program that uses it decides how
//! to show that: the `marlin` command draws progress bars on a terminal,
//! another program installs its own [`Reporter`] (once per process, with
//! [`set_reporter`]), and by default nothing is shown.
//!
//! Architecture invariant: the library never writes to the terminal. It
//! reports progress here and logs through `tracing`; what reaches the
//! screen is the program's choice.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What a task is, for whoever shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskInfo {
    /// What is being done ("solving λ", "bootstrap", "actor_critic_tabular").
    pub label: String,
    /// What its steps count ("ticks", "replicates"); empty for a task
    /// without steps.
    pub unit: &'static str,
    /// How many steps it takes, when known.
    pub len: Option<u64>,
}

/// Shows progress: installed once per process ([`set_reporter`]).
pub trait Reporter: Send + Sync {
    /// A task starts; what it returns shows it until the task ends.
    fn start(&self, task: &TaskInfo) -> Box<dyn TaskView>;
    /// A stage of a longer run begins (e.g. "training by decentralised
    /// learning" within `marlin run`).
    fn stage(&self, text: &str);
    /// A note a user running the computation should see (what it will or
    /// will not do, and why).
    fn note(&self, text: &str);
}

/// One task's display.
pub trait TaskView: Send + Sync {
    /// Steps done so far.
    fn position(&self, pos: u64);
    /// A short note on the task's state ("⟨r⟩ 0.512").
    fn message(&self, text: &str);
    /// The task ended: `completed`, or stopped before its end.
    fn end(&self, completed: bool);
}

static REPORTER: OnceLock<Box<dyn Reporter>> = OnceLock::new();

/// Install the process's reporter; false if one was installed already.
pub fn set_reporter(reporter: Box<dyn Reporter>) -> bool {
    REPORTER.set(reporter).is_ok()
}

/// Announce a stage of a longer run (nothing when `quiet`).
pub fn stage(quiet: bool, text: &str) {
    if let Some(r) = REPORTER.get().filter(|_| !quiet) {
        r.stage(text);
    }
}

/// A note for the user (nothing when `quiet`).
pub fn note(quiet: bool, text: &str) {
    if let Some(r) = REPORTER.get().filter(|_| !quiet) {
        r.note(text);
    }
}

/// A task in progress. Shared by reference between threads (a parallel
/// bootstrap counts its replicates through [`Task::inc`]).
pub struct Task {
    pos: AtomicU64,
    ended: AtomicBool,
    view: Option<Box<dyn TaskView>>,
}

impl Task {
    /// Start a task (shown unless `quiet` or no reporter is installed).
    pub fn start(label: impl Into<String>, unit: &'static str, len: Option<u64>, quiet: bool) -> Task {
        let info = TaskInfo {
            label: label.into(),
            unit,
            len,
        };
        let view = REPORTER.get().filter(|_| !quiet).map(|r| r.start(&info));
        Task {
            pos: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            view,
        }
    }

    /// `n` more steps done.
    pub fn inc(&self, n: u64) {
        let pos = self.pos.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(v) = &self.view {
            v.position(pos);
        }
    }

    /// Steps done so far (e.g. where a resumed run starts).
    pub fn set_position(&self, pos: u64) {
        self.pos.store(pos, Ordering::Relaxed);
        if let Some(v) = &self.view {
            v.position(pos);
        }
    }

    pub fn position(&self) -> u64 {
        self.pos.load(Ordering::Relaxed)
    }

    pub fn set_message(&self, text: impl AsRef<str>) {
        if let Some(v) = &self.view {
            v.message(text.as_ref());
        }
    }

    /// The task completed.
    pub fn finish(&self) {
        self.end(true);
    }

    /// The task stops before its end (an error, or Ctrl-C).
    pub fn abandon(&self) {
        self.end(false);
    }

    fn end(&self, completed: bool) {
        if !self.ended.swap(true, Ordering::Relaxed)
            && let Some(v) = &self.view
        {
            v.end(completed);
        }
    }
}

impl Drop for Task {
    /// A task dropped without ending (an early `?`) stopped before its end.
    fn drop(&mut self) {
        self.end(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    impl TaskView for Log {
        fn position(&self, pos: u64) {
            self.0.lock().unwrap().push(format!("pos {pos}"));
        }
        fn message(&self, text: &str) {
            self.0.lock().unwrap().push(format!("msg {text}"));
        }
        fn end(&self, completed: bool) {
            self.0.lock().unwrap().push(format!("end {completed}"));
        }
    }

    fn task_with(log: &Log) -> Task {
        Task {
            pos: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            view: Some(Box::new(log.clone())),
        }
    }

    #[test]
    fn a_task_reports_its_steps_and_ends_once() {
        let log = Log::default();
        let t = task_with(&log);
        t.set_position(5);
        t.inc(2);
        t.set_message("half");
        t.finish();
        t.abandon();
        drop(t);
        assert_eq!(*log.0.lock().unwrap(), ["pos 5", "pos 7", "msg half", "end true"]);
    }

    #[test]
    fn a_dropped_task_ended_early_and_counts_from_threads_add_up() {
        let log = Log::default();
        let t = task_with(&log);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..250).for_each(|_| t.inc(1)));
            }
        });
        assert_eq!(t.position(), 1000);
        drop(t);
        assert_eq!(log.0.lock().unwrap().last().unwrap(), "end false");
    }

    #[test]
    fn without_a_reporter_nothing_is_shown() {
        // The library's own tests install no reporter.
        let t = Task::start("x", "ticks", Some(10), false);
        assert!(t.view.is_none());
        t.inc(3);
        assert_eq!(t.position(), 3);
    }
}
