//! The live display of a phase on standard error: an indicatif bar (phase,
//! operations, ops/s, p99, errors, ETA) when standard error is a terminal,
//! else one plain line every few seconds (like YCSB's status lines), so a
//! log or CI output gets a readable trace and no control characters.
//! Standard output carries only the results.

use super::args::ProgressArg;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// What the sampler knows at the end of an interval.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub elapsed: Duration,
    /// Operations completed so far.
    pub done: u64,
    /// Operations of the phase, when bounded by count.
    pub total: Option<u64>,
    /// Over the last interval.
    pub ops_per_sec: f64,
    /// Response-time p99 of the last interval.
    pub p99_us: Option<u64>,
    pub errors: u64,
    pub eta: Option<Duration>,
}

#[derive(Debug)]
enum Mode {
    Bar(ProgressBar),
    Lines {
        every: Duration,
        next_at: Duration,
        last_done: u64,
        last_at: Duration,
    },
    Off,
}

#[derive(Debug)]
pub struct Progress {
    phase: &'static str,
    mode: Mode,
}

impl Progress {
    /// `every`: the interval between plain lines.
    pub fn new(
        phase: &'static str,
        total: Option<u64>,
        display: ProgressArg,
        every: Duration,
    ) -> Self {
        let lines = Mode::Lines {
            every,
            next_at: every,
            last_done: 0,
            last_at: Duration::ZERO,
        };
        let mode = match display {
            ProgressArg::Off => Mode::Off,
            ProgressArg::Lines => lines,
            ProgressArg::Auto if std::io::stderr().is_terminal() => Mode::Bar(bar(phase, total)),
            ProgressArg::Auto => lines,
        };
        Progress { phase, mode }
    }

    pub fn update(&mut self, s: &Snapshot) {
        let phase = self.phase;
        match &mut self.mode {
            Mode::Off => {}
            Mode::Bar(bar) => {
                bar.set_position(s.done);
                bar.set_message(format!(
                    "{:>9.0} ops/s  p99 {:>8}  errors {}  ETA {}",
                    s.ops_per_sec,
                    millis(s.p99_us),
                    s.errors,
                    eta(s.eta)
                ));
            }
            Mode::Lines {
                every,
                next_at,
                last_done,
                last_at,
            } => {
                if s.elapsed < *next_at {
                    return;
                }
                let span = (s.elapsed - *last_at).as_secs_f64().max(1e-9);
                let rate = (s.done - *last_done) as f64 / span;
                eprintln!("{}", line(phase, s, rate));
                *last_done = s.done;
                *last_at = s.elapsed;
                while *next_at <= s.elapsed {
                    *next_at += *every;
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish();
        }
    }
}

fn bar(phase: &str, total: Option<u64>) -> ProgressBar {
    let template = match total {
        Some(_) => "{prefix:>4} [{elapsed_precise}] [{bar:30}] {pos}/{len} ops {msg}",
        None => "{prefix:>4} [{elapsed_precise}] {pos} ops {msg}",
    };
    let style = ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr()).with_style(style);
    bar.set_prefix(phase.to_string());
    bar
}

/// YCSB's status line, with the p99 and errors added.
fn line(phase: &str, s: &Snapshot, rate: f64) -> String {
    let of = s.total.map_or(String::new(), |t| format!(" of {t}"));
    format!(
        "[{phase}] {:.0} sec: {}{of} operations; {:.1} current ops/sec; p99 {}; {} errors; est completion in {}",
        s.elapsed.as_secs_f64(),
        s.done,
        rate,
        millis(s.p99_us),
        s.errors,
        eta(s.eta)
    )
}

fn millis(us: Option<u64>) -> String {
    us.map_or("-".into(), |us| format!("{:.2} ms", us as f64 / 1000.0))
}

fn eta(d: Option<Duration>) -> String {
    match d.map(|d| d.as_secs()) {
        None => "?".into(),
        Some(s) if s < 60 => format!("{s} s"),
        Some(s) if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        Some(s) => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_read_like_ycsb_status_lines() {
        let s = Snapshot {
            elapsed: Duration::from_secs(10),
            done: 12_345,
            total: Some(100_000),
            ops_per_sec: 1234.0,
            p99_us: Some(2310),
            errors: 2,
            eta: Some(Duration::from_secs(75)),
        };
        assert_eq!(
            line("run", &s, 1234.5),
            "[run] 10 sec: 12345 of 100000 operations; 1234.5 current ops/sec; p99 2.31 ms; \
             2 errors; est completion in 1 min 15 s"
        );
        let unbounded = Snapshot {
            total: None,
            p99_us: None,
            eta: None,
            ..s
        };
        assert!(
            line("load", &unbounded, 0.0).contains("12345 operations; 0.0 current ops/sec; p99 -;")
        );
    }
}
