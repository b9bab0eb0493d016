//! Where the workspace is, and the checks for the JavaScript tooling that some tests drive.
//! Tests fail here, never skip, when something they need is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the parent of this crate), as it was when the harness was built.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The npm folder `sdk/`, checked to hold `package` (`sdk/node_modules/<package>`).
///
/// # Panics
/// When the package is not installed, saying to run `npm ci --prefix sdk`.
pub fn sdk_with_package(package: &str) -> PathBuf {
    let sdk = workspace_root().join("sdk");
    let installed = sdk.join("node_modules").join(package).join("package.json");
    assert!(
        installed.is_file(),
        "npm package {package} is not installed: {} is missing; run `npm ci --prefix sdk` \
         (pinned in sdk/package.json and sdk/package-lock.json)",
        installed.display()
    );
    sdk
}

/// Checks that Node.js (`node` on the PATH) runs.
///
/// # Panics
/// When it does not, with what went wrong.
pub fn require_node_js() {
    match Command::new("node").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`node --version` failed ({}): Node.js is needed to run the sdk/ scripts",
            output.status
        ),
        Err(error) => {
            panic!("cannot run `node` ({error}): Node.js is needed to run the sdk/ scripts")
        }
    }
}
