//! The `zerog` command line run to completion, for tests.

use crate::Zerog;

/// Runs `zerog ARGS…` and returns its stdout.
///
/// # Panics
/// When it cannot run or exits unsuccessfully (with its stderr).
pub fn cli(zerog: &Zerog, args: &[&str]) -> String {
    let output = zerog
        .command()
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", zerog.path().display()));
    assert!(
        output.status.success(),
        "zerog {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("zerog prints UTF-8")
}

/// Runs `zerog ARGS…` expecting it to fail, and returns its stderr.
///
/// # Panics
/// When it cannot run or succeeds.
pub fn cli_fails(zerog: &Zerog, args: &[&str]) -> String {
    let output = zerog
        .command()
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", zerog.path().display()));
    assert!(!output.status.success(), "zerog {args:?} should fail");
    String::from_utf8(output.stderr).expect("zerog prints UTF-8")
}
