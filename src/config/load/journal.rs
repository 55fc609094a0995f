//! `journal`: what is kept of each request, and for how long.

use std::time::Duration;

use super::Validator;
use crate::config::file::JournalFile;
use crate::journal::Settings;

impl Validator {
    pub(super) fn journal(&mut self, f: JournalFile) -> Settings {
        let d = Settings::default();
        let max_events = self.count("journal.max_events", f.max_events, d.max_events);
        let max_age = self.duration("journal.max_age", f.max_age, d.max_age.as_secs());
        if max_age < Duration::from_secs(1) {
            self.problem("journal.max_age", "must be at least 1s");
        }
        let max_body_bytes = self.size(
            "journal.max_body_bytes",
            f.max_body_bytes,
            d.max_body_bytes as u64,
        );
        let max_refusals_per_second = self.count(
            "journal.max_refusals_per_second",
            f.max_refusals_per_second,
            d.max_refusals_per_second as usize,
        );
        Settings {
            enabled: self.flag("journal.enabled", f.enabled, d.enabled),
            max_events,
            max_age,
            capture_body: self.flag("journal.capture_body", f.capture_body, d.capture_body),
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
            max_refusals_per_second: u32::try_from(max_refusals_per_second).unwrap_or(u32::MAX),
        }
    }
}
