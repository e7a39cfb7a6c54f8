//! Progress of long work (batch proving, key downloads): a bar on a terminal; when
//! stderr is piped or redirected, where a bar draws nothing, a line at every tenth of
//! the work and at the end, so a log or a CI run shows that it moves.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// What the work counts.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// Items, named in the singular and the plural (`proof`, `proofs`).
    Items(&'static str, &'static str),
    /// Bytes, written for people (`12.5 MiB`).
    Bytes,
}

impl Unit {
    fn amount(self, value: u64) -> String {
        match self {
            Unit::Items(one, _) if value == 1 => format!("1 {one}"),
            Unit::Items(_, many) => format!("{value} {many}"),
            Unit::Bytes => HumanBytes(value).to_string(),
        }
    }
}

/// The progress of one piece of work. Shared by reference across threads.
pub struct Progress {
    bar: ProgressBar,
    lines: Option<Lines>,
}

/// The piped form: what is printed, and the last tenth reported.
struct Lines {
    what: String,
    unit: Unit,
    state: Mutex<LineState>,
}

struct LineState {
    position: u64,
    length: u64,
    reported_tenths: u64,
}

impl Progress {
    /// Progress of `what`, `length` units in all (0 while unknown); nothing at all when
    /// not `visible`. `template` is the bar's indicatif template.
    pub fn new(visible: bool, what: &str, unit: Unit, length: u64, template: &str) -> Self {
        if !visible {
            return Self {
                bar: ProgressBar::hidden(),
                lines: None,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(length);
            bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
            return Self { bar, lines: None };
        }
        Self {
            bar: ProgressBar::hidden(),
            lines: Some(Lines {
                what: what.to_string(),
                unit,
                state: Mutex::new(LineState {
                    position: 0,
                    length,
                    reported_tenths: 0,
                }),
            }),
        }
    }

    /// The total, once known.
    pub fn set_length(&self, length: u64) {
        self.bar.set_length(length);
        if let Some(lines) = &self.lines {
            lines.lock().length = length;
        }
    }

    /// The work done so far.
    pub fn set_position(&self, position: u64) {
        self.bar.set_position(position);
        if let Some(lines) = &self.lines {
            lines.advance(|state| state.position = position);
        }
    }

    /// One more unit done.
    pub fn inc(&self) {
        self.bar.inc(1);
        if let Some(lines) = &self.lines {
            lines.advance(|state| state.position += 1);
        }
    }

    /// The work is over: the bar goes; piped, a last line unless the last one said 100%.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        if let Some(lines) = &self.lines {
            let mut state = lines.lock();
            if state.reported_tenths < 10 {
                state.reported_tenths = 10;
                eprintln!(
                    "  {}: done, {}",
                    lines.what,
                    lines.unit.amount(state.position)
                );
            }
        }
    }
}

impl Lines {
    fn lock(&self) -> std::sync::MutexGuard<'_, LineState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `step`, then prints a line when a new tenth of the known length is done.
    fn advance(&self, step: impl FnOnce(&mut LineState)) {
        let mut state = self.lock();
        step(&mut state);
        if state.length == 0 {
            return;
        }
        let tenths = (state.position.min(state.length) * 10) / state.length;
        if tenths > state.reported_tenths {
            state.reported_tenths = tenths;
            eprintln!(
                "  {}: {} of {} ({}%)",
                self.what,
                self.unit.amount(state.position),
                self.unit.amount(state.length),
                tenths * 10
            );
        }
    }
}
