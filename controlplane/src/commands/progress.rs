//! Progress of uploads and downloads as terminal bars: the `client` crate reports, this draws.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

/// Progress bars on stderr, one per phase; hidden with `--quiet`.
pub struct Bars {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new(quiet: bool) -> Bars {
        Bars {
            quiet,
            bar: Mutex::new(None),
        }
    }

    fn with_bar(&self, action: impl FnOnce(&mut Option<ProgressBar>)) {
        // A poisoned lock only means another bar update panicked; the bar is cosmetic.
        let mut guard = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        action(&mut guard);
    }
}

impl ::client::Progress for Bars {
    fn start(&self, phase: ::client::Phase, total_bytes: u64) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(match phase {
            ::client::Phase::Hash => "hash    ",
            ::client::Phase::Upload => "upload  ",
            ::client::Phase::Download => "download",
        });
        self.with_bar(|slot| {
            if let Some(old) = slot.replace(bar) {
                old.finish_and_clear();
            }
        });
    }

    fn advance(&self, bytes: u64) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.inc(bytes);
            }
        });
    }

    fn finish(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        });
    }
}
