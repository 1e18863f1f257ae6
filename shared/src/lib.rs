//! Passwordless magic-link login, wire-compatible with FusionAuth's passwordless API.
//!
//! `domain` holds the rules, `ports` the traits the flows need, `flows` the use cases,
//! `adapters` the stores and mailers, `http` the edge that every entry point shares.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod flows;
pub mod http;
pub mod kickstart;
pub mod ports;
pub mod telemetry;

pub use app::App;

/// The unit tests' allocator: the system's, with a ceiling a test can set (the memory
/// property test of S32). Past the ceiling an allocation fails and the test process aborts,
/// which fails the run loudly.
#[cfg(test)]
mod test_allocator {
    use std::alloc::System;

    #[global_allocator]
    static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, usize::MAX);

    /// Runs `work` with at most `extra` bytes allocated beyond what is allocated now.
    pub fn with_ceiling<T>(extra: usize, work: impl FnOnce() -> T) -> T {
        struct Lift;
        impl Drop for Lift {
            fn drop(&mut self) {
                let _ = ALLOCATOR.set_limit(usize::MAX);
            }
        }
        let _lift = Lift;
        let _ = ALLOCATOR.set_limit(ALLOCATOR.allocated().saturating_add(extra));
        work()
    }
}
