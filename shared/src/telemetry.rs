//! Log set-up shared by every binary.

use std::io::IsTerminal;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// JSON lines when `json` (Lambda, where CloudWatch parses them), human-readable otherwise,
/// coloured only when standard output is a terminal and `NO_COLOR` is not set: a log file, a
/// pipe or CloudWatch gets no escape codes. The level comes from `RUST_LOG`, else
/// `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init(json: bool) {
    let filter = log_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(colour_wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
    log_panics_without_their_messages();
    let registry = tracing_subscriber::registry().with(filter);
    // A second initialisation (tests, embedding) keeps the first subscriber.
    let _ = if json {
        registry.with(layer.json().flatten_event(true)).try_init()
    } else {
        registry.with(layer).try_init()
    };
}

/// `RUST_LOG`'s directives (`info`, `passwordless=debug,hyper=warn`), else the Lambda log
/// level, else `info`. Targets rather than tracing-subscriber's `EnvFilter`: the same
/// directives without span and field filters, and without the regular-expression engine those
/// need, which was about half a megabyte of every function's binary.
fn log_filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    let info = || Targets::new().with_default(tracing::Level::INFO);
    // An empty RUST_LOG would parse to a filter that lets nothing through.
    rust_log
        .filter(|directives| !directives.trim().is_empty())
        .and_then(|directives| directives.parse().ok())
        .or_else(|| lambda_level.and_then(|level| level.to_lowercase().parse().ok()))
        .unwrap_or_else(info)
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
    use super::{colour_wanted, log_filter};
    use tracing::Level;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())));
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None));
    }

    #[test]
    fn the_log_level_comes_from_rust_log_then_the_lambda_level_then_info() {
        let filter = log_filter(Some("warn,passwordless=debug"), Some("ERROR"));
        assert!(filter.would_enable("passwordless::flows", &Level::DEBUG));
        assert!(!filter.would_enable("hyper", &Level::INFO));
        assert!(filter.would_enable("hyper", &Level::WARN));

        let lambda = log_filter(None, Some("ERROR"));
        assert!(lambda.would_enable("passwordless", &Level::ERROR));
        assert!(!lambda.would_enable("passwordless", &Level::WARN));

        let neither = log_filter(None, None);
        assert!(neither.would_enable("passwordless", &Level::INFO));
        assert!(!neither.would_enable("passwordless", &Level::DEBUG));
    }

    #[test]
    fn an_unreadable_or_empty_rust_log_falls_back_to_the_lambda_level_or_info() {
        let filter = log_filter(Some("passwordless=loud"), Some("debug"));
        assert!(filter.would_enable("passwordless", &Level::DEBUG));
        assert!(!filter.would_enable("passwordless", &Level::TRACE));

        let empty = log_filter(Some(" "), None);
        assert!(empty.would_enable("passwordless", &Level::INFO));
    }
}
