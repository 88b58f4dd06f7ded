//! The exit codes scripts can rely on (docs/cli.md lists them; never renumber one).

/// Success.
pub const OK: i32 = 0;
/// The command ran but what it asked for did not happen (a deployment rolled back or failed, a plan that has
/// changes with `--exit-code`), or an unexpected failure.
pub const FAILED: i32 = 1;
/// Bad usage: an unknown flag, a bad value, a question with no terminal to ask it on and no `--yes`.
pub const USAGE: i32 = 2;
/// The named service (or resource) does not exist.
pub const NOT_FOUND: i32 = 3;
/// berth refused the caller: signature, unknown key, or an IAM policy that does not allow the action.
pub const DENIED: i32 = 4;
/// berth answered with another error (invalid parameter, limit, conflict).
pub const API: i32 = 5;
/// berth could not be reached, or no endpoint or credentials were found.
pub const UNREACHABLE: i32 = 6;
/// Interrupted (Ctrl-C); a deployment that was started keeps running.
pub const INTERRUPTED: i32 = 130;
