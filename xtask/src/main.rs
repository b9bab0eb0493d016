//! `cargo xtask tidy`: the house rules that review should not have to remember. Each rule says
//! why it exists; `tests` at the bottom runs them on every `cargo test`.
#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Crates that stay pure: no IO runtime, no async runtime, no storage engine.
const PURE: &[&str] = &["types", "merkle", "chain-lite", "da"];
/// What a pure crate may never depend on.
const IO_CRATES: &[&str] = &[
    "tokio", "glommio", "hyper", "reqwest", "redb", "io-uring", "rtrb",
];
/// Workspace crates each crate may depend on: the dependency direction in ARCHITECTURE.md.
const ALLOWED: &[(&str, &[&str])] = &[
    ("types", &[]),
    ("merkle", &["types"]),
    ("chain-lite", &["types", "merkle", "da"]),
    ("da", &["types", "merkle"]),
    ("kernel-bypass", &["types"]),
    (
        "dataplane",
        &["types", "merkle", "kernel-bypass", "da", "kvstore"],
    ),
    ("compute", &["types", "da"]),
    ("client", &["types", "merkle", "chain-lite"]),
    // Orders chain-lite blocks with a BFT engine; the control plane drives it.
    ("consensus", &["types", "chain-lite"]),
    (
        "controlplane",
        &[
            "types",
            "merkle",
            "chain-lite",
            "consensus",
            "dataplane",
            "compute",
            "da",
            "client",
            "gateway",
            "kvstore",
            "harness",
        ],
    ),
    (
        "gateway",
        &["types", "merkle", "chain-lite", "client", "kvstore"],
    ),
    // The one redb major and the upgrade of redb 2 files: a storage crate under the stores.
    ("kvstore", &["types"]),
    // Starts real zerog processes for tests and benchmarks; test crates take it as a
    // dev-dependency, which this table does not govern.
    ("harness", &["types", "merkle"]),
    (
        "bench",
        &[
            "harness",
            "types",
            "merkle",
            "kernel-bypass",
            "dataplane",
            "da",
            "chain-lite",
            "compute",
            "client",
            "gateway",
            "kvstore",
        ],
    ),
    ("xtask", &[]),
];
/// What running cargo looks like in Rust source, spaces removed. Tests and the harness never
/// run cargo: a test that builds something races the `cargo test` that is running it (for the
/// build directory's lock, or for the files it is executing), and hides a build step that
/// `scripts/test` must take before the tests. They find the binaries they need instead.
const CARGO_INVOCATIONS: &[&str] = &[
    "Command::new(\"cargo\"",
    "Command::new(cargo",
    "Command::new(&cargo",
    "(\"CARGO\")",
];
/// Longest function in the control plane, in lines: a function longer than a screen or two is
/// a room that wants splitting (the node grew into one object for everything once).
const MAX_CONTROLPLANE_FUNCTION_LINES: usize = 120;
/// What may stand before `fn ` in a function's declaration.
const FUNCTION_QUALIFIERS: &[&str] = &[
    "pub(crate) ",
    "pub(super) ",
    "pub ",
    "async ",
    "const ",
    "unsafe ",
];
/// Signing an Ethereum transaction: only the `client` crate's chain module does it in library
/// and binary code, so nonces, gas and receipts are handled one way everywhere.
const TRANSACTION_SIGNING: &[&str] = &["sign_hash_sync(", "SignableTransaction"];

/// The only places `unsafe` may appear: the kernel-bypass crate and the SIMD kernels (Keccak,
/// the GF(2^16) FFT engine of the DA code).
const UNSAFE_ALLOWED: &[&str] = &[
    "kernel-bypass/",
    "merkle/src/keccak/avx512.rs",
    "merkle/src/keccak/avx2.rs",
    "da/src/codec/gfni.rs",
];

fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("tidy") => {
            let problems = tidy(&workspace_root())?;
            if problems.is_empty() {
                println!("tidy: ok");
                Ok(())
            } else {
                bail!(
                    "tidy found {} problem(s):\n{}",
                    problems.len(),
                    problems.join("\n")
                )
            }
        }
        _ => bail!("usage: cargo xtask tidy"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// Every rule, over the whole workspace; returns one line per problem.
fn tidy(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for (krate, allowed) in ALLOWED {
        let manifest_path = root.join(krate).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let manifest: toml::Table = text
            .parse()
            .with_context(|| format!("parsing {}", manifest_path.display()))?;
        let dependencies = manifest
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        for name in dependencies.keys() {
            let workspace_crate = ALLOWED.iter().any(|(other, _)| other == name);
            if workspace_crate && !allowed.contains(&name.as_str()) {
                problems.push(format!(
                    "{krate} depends on {name}, against the dependency direction in ARCHITECTURE.md"
                ));
            }
            if PURE.contains(krate) && IO_CRATES.contains(&name.as_str()) {
                problems.push(format!(
                    "{krate} is pure (no IO, no async runtime) but depends on {name}"
                ));
            }
        }
        for entry in ["src/lib.rs", "src/main.rs"] {
            let path = root.join(krate).join(entry);
            if let Ok(source) = std::fs::read_to_string(&path)
                && !source.trim_start().starts_with("//!")
            {
                problems.push(format!(
                    "{krate}/{entry} must open with a //! paragraph on the crate's key decision"
                ));
            }
        }
    }
    problems.extend(cargo_in_tests(root)?);
    problems.extend(long_functions(
        root,
        "controlplane/src",
        MAX_CONTROLPLANE_FUNCTION_LINES,
    )?);
    problems.extend(signing_outside_client(root)?);
    let mut sources = Vec::new();
    collect_rust_files(root, root, &mut sources)?;
    for relative in sources {
        let source = std::fs::read_to_string(root.join(&relative))?;
        let lines: Vec<&str> = source.lines().collect();
        for (number, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !(code.contains("unsafe {")
                || code.contains("unsafe fn")
                || code.contains("unsafe impl"))
            {
                continue;
            }
            if !UNSAFE_ALLOWED
                .iter()
                .any(|allowed| relative.starts_with(allowed))
            {
                problems.push(format!(
                    "{relative}:{}: unsafe outside the fenced modules",
                    number + 1
                ));
                continue;
            }
            let documented = lines[number.saturating_sub(6)..number]
                .iter()
                .any(|above| above.contains("// SAFETY:") || above.contains("/// # Safety"));
            if code.contains("unsafe {") && !documented && !code.contains("// SAFETY:") {
                problems.push(format!(
                    "{relative}:{}: unsafe block without a // SAFETY: comment above it",
                    number + 1
                ));
            }
        }
    }
    Ok(problems)
}

/// The places under `<crate>/tests/` and `harness/src/` that run cargo.
fn cargo_in_tests(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).with_context(|| format!("listing {}", root.display()))? {
        let tests = entry?.path().join("tests");
        if tests.is_dir() {
            collect_rust_files(root, &tests, &mut files)?;
        }
    }
    let harness = root.join("harness/src");
    if harness.is_dir() {
        collect_rust_files(root, &harness, &mut files)?;
    }
    let mut problems = Vec::new();
    for relative in files {
        let source = std::fs::read_to_string(root.join(&relative))?;
        // The code without comments or spaces, and the line each line's code starts at, so a
        // call split over lines is found too.
        let mut code = String::new();
        let mut line_starts = Vec::new();
        for line in source.lines() {
            line_starts.push(code.len());
            let without_comment = line.split("//").next().unwrap_or("");
            code.extend(without_comment.split_whitespace());
        }
        for pattern in CARGO_INVOCATIONS {
            for (at, _) in code.match_indices(pattern) {
                let line = line_starts.partition_point(|&start| start <= at);
                problems.push(format!(
                    "{relative}:{line}: runs cargo (`{pattern}`): tests and the harness find the \
                     binaries they need, and scripts/test builds them first"
                ));
            }
        }
    }
    Ok(problems)
}

/// Functions under `dir` longer than `max_lines`, from their `fn` line to their closing brace
/// (found at the `fn` line's indentation, as rustfmt writes it).
fn long_functions(root: &Path, dir: &str, max_lines: usize) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    collect_rust_files(root, &root.join(dir), &mut files)?;
    let mut problems = Vec::new();
    for relative in files {
        let source = std::fs::read_to_string(root.join(&relative))?;
        let lines: Vec<&str> = source.lines().collect();
        for (start, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            // Past the visibility and qualifiers, a declaration starts with `fn `.
            let mut rest = code;
            while let Some(qualifier) = FUNCTION_QUALIFIERS
                .iter()
                .find(|qualifier| rest.starts_with(**qualifier))
            {
                rest = &rest[qualifier.len()..];
            }
            if !rest.starts_with("fn ") || code.ends_with(';') {
                continue;
            }
            let indent = line.len() - code.len();
            let closing = format!("{}}}", " ".repeat(indent));
            let Some(length) = lines[start..]
                .iter()
                .position(|later| later.trim_end() == closing)
            else {
                continue;
            };
            if length + 1 > max_lines {
                problems.push(format!(
                    "{relative}:{}: a function of {} lines (at most {max_lines} in {dir}): split it",
                    start + 1,
                    length + 1
                ));
            }
        }
    }
    Ok(problems)
}

/// Library and binary code, outside the `client` crate, that signs Ethereum transactions.
fn signing_outside_client(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(root).with_context(|| format!("listing {}", root.display()))? {
        let krate = entry?.path();
        let source_dir = krate.join("src");
        if !source_dir.is_dir() || krate == root.join("client") {
            continue;
        }
        let mut files = Vec::new();
        collect_rust_files(root, &source_dir, &mut files)?;
        for relative in files {
            let source = std::fs::read_to_string(root.join(&relative))?;
            for (number, line) in source.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if let Some(pattern) = TRANSACTION_SIGNING.iter().find(|p| code.contains(**p)) {
                    problems.push(format!(
                        "{relative}:{}: signs a transaction (`{pattern}`): send through the \
                         client crate's chain module (client::Chain, client::Payer)",
                        number + 1
                    ));
                }
            }
        }
    }
    Ok(problems)
}

fn collect_rust_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // xtask's own rules name the patterns they look for.
        if name.starts_with('.')
            || name == "target"
            || name == "node_modules"
            || path == root.join("xtask")
        {
            continue;
        }
        if path.is_dir() {
            collect_rust_files(root, &path, out)?;
        } else if name.ends_with(".rs") && name != "main.rs"
            || (name == "main.rs" && !path.starts_with(root.join("xtask")))
        {
            let relative = path
                .strip_prefix(root)
                .expect("walked from the root")
                .to_string_lossy()
                .into_owned();
            out.push(relative);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_keeps_its_house_rules() {
        let problems = tidy(&workspace_root()).expect("tidy runs");
        assert!(
            problems.is_empty(),
            "house rules broken:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn running_cargo_from_a_test_is_caught() {
        let root = tempfile::tempdir().expect("a temporary folder");
        let write = |relative: &str, source: &str| {
            let path = root.path().join(relative);
            std::fs::create_dir_all(path.parent().expect("a folder")).expect("create folders");
            std::fs::write(path, source).expect("write a source file");
        };
        write(
            "gateway/tests/common/mod.rs",
            "fn zerog() {\n    let cargo = std::env::var(\"CARGO\").unwrap_or_default();\n    \
             std::process::Command::new(cargo)\n        .args([\"build\", \"--bin\", \"zerog\"]);\n}\n",
        );
        write(
            "controlplane/tests/e2e.rs",
            "fn build() {\n    Command::new(\n        \"cargo\",\n    );\n}\n",
        );
        write(
            "harness/src/lib.rs",
            "fn build() { std::process::Command::new(\"cargo\").arg(\"build\"); }\n",
        );
        // Naming cargo in a message or a comment, or the binary cargo built, is fine.
        write(
            "merkle/tests/fine.rs",
            "// Command::new(\"cargo\") is what the rule forbids.\n\
             const HINT: &str = \"run `cargo build --bin zerog` first\";\n\
             const ZEROG: &str = env!(\"CARGO_BIN_EXE_zerog\");\n",
        );
        // Sources outside tests/ and harness/src/ are other rules' business.
        write(
            "xtask/src/build.rs",
            "fn build() { Command::new(\"cargo\"); }\n",
        );
        let mut problems = cargo_in_tests(root.path()).expect("the rule runs");
        problems.sort();
        let places: Vec<&str> = problems
            .iter()
            .map(|problem| problem.split(": ").next().expect("a place"))
            .collect();
        assert_eq!(
            places,
            [
                "controlplane/tests/e2e.rs:2",
                "gateway/tests/common/mod.rs:2",
                "gateway/tests/common/mod.rs:3",
                "harness/src/lib.rs:1",
            ],
            "{problems:#?}"
        );
    }

    #[test]
    fn long_control_plane_functions_and_signing_outside_the_client_are_caught() {
        let root = tempfile::tempdir().expect("tempdir");
        let source = root.path().join("controlplane/src");
        std::fs::create_dir_all(&source).expect("mkdir");
        let body = "    step();\n".repeat(130);
        std::fs::write(
            source.join("long.rs"),
            format!(
                "pub fn short() {{\n    step();\n}}\n\npub(crate) async fn long() {{\n{body}}}\n"
            ),
        )
        .expect("write");
        std::fs::write(
            source.join("sign.rs"),
            "fn send() { let signature = key.sign_hash_sync(&hash); }\n",
        )
        .expect("write");
        let long = long_functions(root.path(), "controlplane/src", 120).expect("runs");
        assert_eq!(long.len(), 1, "{long:?}");
        assert!(
            long[0].contains("long.rs:5: a function of 132 lines"),
            "{long:?}"
        );
        let signing = signing_outside_client(root.path()).expect("runs");
        assert_eq!(signing.len(), 1, "{signing:?}");
        assert!(
            signing[0].starts_with("controlplane/src/sign.rs:1"),
            "{signing:?}"
        );
        let client = root.path().join("client/src");
        std::fs::create_dir_all(&client).expect("mkdir");
        std::fs::write(
            client.join("chain.rs"),
            "fn sign() { key.sign_hash_sync(&h); }\n",
        )
        .expect("write");
        assert_eq!(signing_outside_client(root.path()).expect("runs").len(), 1);
    }

    #[test]
    fn every_workspace_member_has_a_dependency_rule() {
        let text =
            std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("root manifest");
        let manifest: toml::Table = text.parse().expect("valid toml");
        let members = manifest["workspace"]["members"]
            .as_array()
            .expect("members")
            .clone();
        for member in members {
            let name = member.as_str().expect("member name");
            assert!(
                ALLOWED.iter().any(|(krate, _)| *krate == name),
                "{name} has no entry in ALLOWED"
            );
        }
    }
}
