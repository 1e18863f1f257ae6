//! Black-box tests of the HTTP surface live in `tests/`; this crate has no code of its own.
