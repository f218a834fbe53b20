//! How the `marlin` command shows the library's progress reports: a bar
//! (or a spinner, for tasks without steps) on stderr when it is a terminal,
//! nothing when it is piped; study stages and notes as plain lines.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use marlin::progress::{Reporter, TaskInfo, TaskView};

/// The command's reporter (installed by `cli::main`).
pub struct Bars;

impl Reporter for Bars {
    fn start(&self, task: &TaskInfo) -> Box<dyn TaskView> {
        Box::new(View(bar(task, ProgressDrawTarget::stderr())))
    }

    fn stage(&self, text: &str) {
        eprintln!("marlin run: {text}");
    }

    fn note(&self, text: &str) {
        eprintln!("marlin: {text}");
    }
}

/// The bar of `task`: with steps and a unit, a bar with its rate and time
/// left; otherwise a spinner with the elapsed time. A rate is shown to three
/// significant figures with an SI prefix ("7.59M/s", [`marlin::text::si`]),
/// not indicatif's full digits.
fn bar(task: &TaskInfo, target: ProgressDrawTarget) -> ProgressBar {
    let (bar, template) = match task.len {
        Some(len) if !task.unit.is_empty() => (
            ProgressBar::new(len),
            format!(
                "{} {{bar:30}} {{pos}}/{{len}} {} [{{elapsed_precise}} < {{eta_precise}}] {{rate}} {{msg}}",
                task.label, task.unit
            ),
        ),
        Some(len) => (
            ProgressBar::new(len),
            format!(
                "{{spinner}} {} {{pos}}/{{len}} [{{elapsed_precise}}] {{msg}}",
                task.label
            ),
        ),
        None => (
            ProgressBar::new_spinner(),
            format!("{{spinner}} {} [{{elapsed_precise}}] {{msg}}", task.label),
        ),
    };
    bar.set_draw_target(target);
    if let Ok(style) = ProgressStyle::with_template(template.trim_start()) {
        bar.set_style(
            style.with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", marlin::text::si(s.per_sec()));
            }),
        );
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

struct View(ProgressBar);

impl TaskView for View {
    fn position(&self, pos: u64) {
        self.0.set_position(pos);
    }

    fn message(&self, text: &str) {
        self.0.set_message(text.to_string());
    }

    fn end(&self, completed: bool) {
        if completed {
            self.0.finish_and_clear();
        } else {
            self.0.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal that keeps what indicatif writes.
    #[derive(Clone, Debug, Default)]
    struct Screen(std::sync::Arc<std::sync::Mutex<String>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_progress_bar_shows_its_rate_with_an_si_prefix() {
        let screen = Screen::default();
        let task = TaskInfo {
            label: "simulating".into(),
            unit: "ticks",
            len: Some(1 << 40),
        };
        let bar = bar(&task, ProgressDrawTarget::term_like(Box::new(screen.clone())));
        // Millions of ticks per second.
        for _ in 0..20 {
            bar.inc(200_000);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        bar.abandon();
        let shown = screen.0.lock().unwrap().clone();
        assert!(shown.contains("simulating") && shown.contains("ticks"), "{shown:?}");
        let rates: Vec<&str> = shown.split_whitespace().filter(|w| w.ends_with("/s")).collect();
        assert!(!rates.is_empty(), "no rate drawn: {shown:?}");
        for rate in rates {
            let number = rate.strip_suffix("/s").unwrap();
            let number = number
                .strip_suffix(['k', 'M', 'G'])
                .unwrap_or_else(|| panic!("no prefix: {rate:?}"));
            let digits = number.chars().filter(char::is_ascii_digit).count();
            assert_eq!(digits, 3, "three significant figures: {rate:?}");
            assert!(number.parse::<f64>().is_ok(), "{rate:?}");
        }
    }
}
