//! Progress on stderr: a bar per layer, when stderr is a terminal and not `-q`.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use flatten::{Download, Observer};

/// A progress bar per layer on stderr, when stderr is a terminal and not `-q`; above it,
/// one per blob being fetched from a registry.
pub(super) struct Bars {
    multi: MultiProgress,
    bar: Option<ProgressBar>,
    enabled: bool,
}

impl Bars {
    pub(super) fn new(quiet: bool) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bar: None,
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    pub(super) fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.clear();
    }
}

impl Observer for Bars {
    fn layer_start(&mut self, index: usize, count: usize, size: Option<u64>) {
        if !self.enabled {
            return;
        }
        self.clear();
        let bar = self.multi.add(byte_bar(
            size,
            "layer {msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ));
        bar.set_message(format!("{}/{count}", index + 1));
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    fn layer_done(&mut self, _index: usize) {
        self.clear();
    }

    fn spooled(&mut self, bytes: u64) {
        if !self.enabled {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::no_length());
            let style = ProgressStyle::with_template(
                "copying the archive to a temporary file {spinner} {bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar
        });
        bar.inc(bytes);
    }

    fn download(&mut self, what: &str, size: Option<u64>) -> Box<dyn Download> {
        if !self.enabled {
            return Box::new(());
        }
        let bar = self.multi.insert(
            0,
            byte_bar(
                size,
                "fetch {msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec}",
            ),
        );
        bar.set_message(flatten::error::short_digest(what).to_owned());
        Box::new(Fetching(bar))
    }
}

/// A bar of `size` bytes (a spinner's count when unknown) drawn by `template`.
fn byte_bar(size: Option<u64>, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(size.unwrap_or(0));
    if size.is_none() {
        bar.unset_length();
    }
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// The bar of one blob being fetched.
struct Fetching(ProgressBar);

impl Download for Fetching {
    fn advance(&mut self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&mut self) {
        self.0.finish_and_clear();
    }
}
