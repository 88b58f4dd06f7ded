//! `berth ca [--install]`: berth's root CA, printed or added to the system's trust store (Debian/Ubuntu
//! `update-ca-certificates`, Fedora/Arch `trust anchor`), or the steps to do it by hand where neither exists.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::exit;
use crate::output::Format;

/// Debian and Ubuntu read local CAs from here.
const DEBIAN_DIR: &str = "/usr/local/share/ca-certificates";
/// Overrides [`DEBIAN_DIR`] for tests: the file is written there and no system tool runs.
pub const DIR_ENV: &str = "BERTH_CA_CERTS_DIR";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Add the CA to this machine's trust store (where it can; otherwise say how). Run as root (sudo).
    #[arg(long)]
    pub install: bool,
}

/// Prints the PEM, or installs it; returns the exit code.
pub fn run(args: &Args, format: Format, pem_path: &Path) -> i32 {
    let pem = match std::fs::read_to_string(pem_path) {
        Ok(pem) => pem,
        Err(e) => {
            fail(format, &format!("reading {}: {e}", pem_path.display()), "start berth first with `berth up`");
            return exit::UNREACHABLE;
        }
    };
    if !args.install {
        match format {
            Format::Json => println!("{}", json!({"path": pem_path.display().to_string(), "pem": pem})),
            _ => print!("{pem}"),
        }
        return exit::OK;
    }
    install(format, pem_path, &pem)
}

fn fail(format: Format, message: &str, hint: &str) {
    if format == Format::Json {
        println!("{}", json!({"error": {"code": "Failed", "message": message}}));
    }
    eprintln!("berth: error: {message}");
    if !hint.is_empty() {
        eprintln!("  hint: {hint}");
    }
}

fn report(format: Format, file: &Path, method: &str, already: bool) {
    match format {
        Format::Json => println!(
            "{}",
            json!({"installed": true, "file": file.display().to_string(), "method": method, "alreadyInstalled": already})
        ),
        Format::Text => println!("{}\t{method}\t{}", file.display(), if already { "unchanged" } else { "installed" }),
        Format::Table if method == "directory" => println!(
            "berth's CA {} {} ({DIR_ENV}: no system tool ran)",
            if already { "is already in" } else { "written to" },
            file.display()
        ),
        Format::Table if already => println!("berth's CA is already trusted: {} ({method})", file.display()),
        Format::Table => println!("berth's CA is now trusted system-wide: {} ({method})", file.display()),
    }
}

/// A stable name for this CA (FNV-1a of the PEM): two berths on one machine get two files.
pub fn file_name(pem: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pem.trim().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("berth-{h:016x}.crt")
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn install(format: Format, pem_path: &Path, pem: &str) -> i32 {
    let override_dir = std::env::var_os(DIR_ENV).map(PathBuf::from);
    // With the override (tests), the file is only written: the system's tool reads its own directory.
    let updater = if override_dir.is_some() { None } else { on_path("update-ca-certificates") };
    let method = if override_dir.is_some() { "directory" } else { "update-ca-certificates" };
    if override_dir.is_some() || updater.is_some() {
        let dir = override_dir.unwrap_or_else(|| PathBuf::from(DEBIAN_DIR));
        let file = dir.join(file_name(pem));
        if std::fs::read_to_string(&file).is_ok_and(|old| old.trim() == pem.trim()) {
            report(format, &file, method, true);
            return exit::OK;
        }
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, pem)) {
            fail(format, &format!("cannot write {}: {e}", file.display()), "run it as root: sudo berth ca --install");
            return exit::FAILED;
        }
        if let Some(updater) = updater {
            match Command::new(&updater).output() {
                Ok(out) if out.status.success() => {}
                Ok(out) => {
                    let _ = std::fs::remove_file(&file);
                    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
                    fail(
                        format,
                        &format!("{} failed: {why}", updater.display()),
                        "run it as root: sudo berth ca --install",
                    );
                    return exit::FAILED;
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&file);
                    fail(format, &format!("cannot run {}: {e}", updater.display()), "");
                    return exit::FAILED;
                }
            }
        }
        report(format, &file, method, false);
        return exit::OK;
    }
    if let Some(trust) = on_path("trust") {
        return match Command::new(&trust).args(["anchor", "--store"]).arg(pem_path).output() {
            Ok(out) if out.status.success() => {
                report(format, pem_path, "trust anchor", false);
                exit::OK
            }
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if why.contains("already") {
                    report(format, pem_path, "trust anchor", true);
                    return exit::OK;
                }
                fail(format, &format!("trust anchor failed: {why}"), "run it as root: sudo berth ca --install");
                exit::FAILED
            }
            Err(e) => {
                fail(format, &format!("cannot run {}: {e}", trust.display()), "");
                exit::FAILED
            }
        };
    }
    let p = pem_path.display();
    fail(
        format,
        "this system has neither update-ca-certificates (Debian, Ubuntu) nor trust (Fedora, Arch): add the CA by hand",
        &format!(
            "macOS: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {p}\n  \
             other Linux: copy {p} into the system's CA directory and run its update tool\n  \
             Firefox and Chromium on Linux keep their own NSS store: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n berth -i {p}\n  \
             or just point tools at it: curl --cacert {p}, AWS_CA_BUNDLE={p}"
        ),
    );
    exit::FAILED
}
