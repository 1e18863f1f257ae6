//! Log set-up shared by every binary.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// JSON lines when `json` (Lambda, where CloudWatch parses them), human-readable otherwise,
/// coloured only when standard output is a terminal and `NO_COLOR` is not set: a log file, a
/// pipe or CloudWatch gets no escape codes. The level comes from `RUST_LOG`, else
/// `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init(json: bool) {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_lowercase())
        .unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colour_wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
    log_panics_without_their_messages();
    // A second initialisation (tests, embedding) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Colour is for people at a terminal; `NO_COLOR` (any non-empty value, no-color.org) turns it
/// off there too.
fn colour_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Logs a panic's location as an event and leaves out its message: a message may quote the
/// data that caused it (an address, a name), which never reaches the logs (S12).
fn log_panics_without_their_messages() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %location, "panic");
    }));
}

#[cfg(test)]
mod tests {
    use super::colour_wanted;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())));
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None));
    }
}
