//! Compatibility with the official 0G TypeScript SDK, run against the real SDK on every test run.
//!
//! Writes a few hundred random files (sizes log-uniform, plus every size around a chunk, a
//! segment and each power of two up to 32 MiB), runs `sdk/roots.cjs` once over all of them and
//! compares the SDK's file root, submission nodes and segment proofs with `FileTree`; every
//! SDK proof of a data segment must pass `verify_segment`. The SDK hashes at ~16 MB/s, so the
//! total stays near 300 MiB. The seed is printed; set `ZEROG_TEST_SEED` to replay one.
//!
//! The SDK is pinned in `sdk/package.json`; without `sdk/node_modules` this test fails (it
//! never skips) and says how to install it.

use harness::{random_bytes, require_node_js, sdk_with_package, test_seed};
use merkle::file::{FileLayout, FileTree, Proof, ProofError, SubmissionNode, verify_segment};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::Deserialize;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;
use types::{SEGMENT_BYTES, SegmentIndex};

const MIB: u64 = 1 << 20;
const MAX_RANDOM_SIZE_BYTES: u64 = 40 * MIB;
/// Random sizes: most small (log-uniform up to 2 MiB), a few big (log-uniform 2..40 MiB).
const SMALL_RANDOM_FILES: usize = 194;
const BIG_RANDOM_FILES: usize = 6;
const SMALL_RANDOM_MAX_BYTES: u64 = 2 * MIB;

#[derive(Deserialize)]
struct SdkProof {
    index: u64,
    lemma: Vec<types::H256>,
    path: Vec<bool>,
}

#[derive(Deserialize)]
struct SdkLine {
    file: String,
    size: Option<u64>,
    root: Option<types::H256>,
    nodes: Option<Vec<SubmissionNode>>,
    proofs: Option<Vec<SdkProof>>,
    error: Option<String>,
}

fn log_uniform(rng: &mut StdRng, low: u64, high: u64) -> u64 {
    let exponent = rng.gen_range((low as f64).ln()..=(high as f64).ln());
    (exponent.exp().round() as u64).clamp(low, high)
}

fn file_sizes(rng: &mut StdRng) -> Vec<u64> {
    let mut sizes = vec![1, 255, 256, 257, 262_143, 262_144, 262_145];
    for k in 8..=25u32 {
        let power = 1u64 << k;
        for size in [power - 1, power, power + 1] {
            if size <= MAX_RANDOM_SIZE_BYTES {
                sizes.push(size);
            }
        }
    }
    for _ in 0..SMALL_RANDOM_FILES {
        sizes.push(log_uniform(rng, 1, SMALL_RANDOM_MAX_BYTES));
    }
    for _ in 0..BIG_RANDOM_FILES {
        sizes.push(log_uniform(
            rng,
            SMALL_RANDOM_MAX_BYTES,
            MAX_RANDOM_SIZE_BYTES,
        ));
    }
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// The bytes the SDK uploads for `segment`: its data, zero-filled to whole chunks.
fn upload_bytes(data: &[u8], layout: &FileLayout, segment: u64) -> Vec<u8> {
    let start = (segment as usize) * SEGMENT_BYTES;
    let end = (start + SEGMENT_BYTES).min(data.len());
    let mut bytes = data[start..end].to_vec();
    bytes.resize(layout.segment_upload_bytes(segment) as usize, 0);
    bytes
}

fn check_line(line: &SdkLine, data: &[u8]) {
    let context = format!("file {} ({} bytes)", line.file, data.len());
    if let Some(error) = &line.error {
        panic!("{context}: the SDK failed: {error}");
    }
    assert_eq!(line.size, Some(data.len() as u64), "{context}: size");
    let tree = FileTree::from_bytes(data).expect("non-empty file");
    let root = line.root.expect("SDK printed a root");
    assert_eq!(tree.root(), root, "{context}: file root");
    let nodes = line.nodes.as_ref().expect("SDK printed nodes");
    assert_eq!(&tree.nodes(), nodes, "{context}: submission nodes");
    let from_roots = FileTree::from_segment_roots(data.len() as u64, tree.segment_roots().to_vec())
        .expect("roots of every data segment");
    assert_eq!(
        from_roots.root(),
        root,
        "{context}: root from segment roots"
    );

    let layout = *tree.layout();
    for sdk_proof in line.proofs.as_ref().expect("SDK printed proofs") {
        let segment = SegmentIndex(sdk_proof.index);
        let proof = Proof {
            lemma: sdk_proof.lemma.clone(),
            path: sdk_proof.path.clone(),
        };
        assert_eq!(
            tree.proof(segment).expect("index in range"),
            proof,
            "{context}: proof of {segment}"
        );
        if segment.0 < layout.data_segments {
            let bytes = upload_bytes(data, &layout, segment.0);
            let verified = verify_segment(&root, layout.size_bytes, segment, &bytes, &proof);
            assert_eq!(
                verified,
                Ok(tree.segment_roots()[segment.0 as usize]),
                "{context}: verify_segment of SDK proof {segment}"
            );
        } else {
            let verified = verify_segment(&root, layout.size_bytes, segment, &[], &proof);
            assert!(
                matches!(verified, Err(ProofError::IndexOutOfRange { .. })),
                "{context}: padding segment {segment} is never uploaded: {verified:?}"
            );
        }
    }
}

#[test]
fn file_trees_match_the_official_sdk() {
    let started = Instant::now();
    let script = sdk_with_package("@0gfoundation/0g-ts-sdk").join("roots.cjs");
    require_node_js();

    let seed = test_seed();
    println!("sdk_compat seed: {seed} (replay with ZEROG_TEST_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let sizes = file_sizes(&mut rng);

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sdk_compat_{seed}"));
    std::fs::create_dir_all(&dir).expect("create the test file folder");
    let mut paths = Vec::with_capacity(sizes.len());
    let mut total_bytes = 0u64;
    for (index, size) in sizes.iter().enumerate() {
        let data = random_bytes(rng.next_u64(), *size as usize);
        let path = dir.join(format!("{index:03}_{size}.bin"));
        std::fs::write(&path, &data).expect("write a test file");
        paths.push(path);
        total_bytes += size;
    }
    let list = dir.join("files.txt");
    let mut list_file = std::fs::File::create(&list).expect("create the file list");
    for path in &paths {
        writeln!(list_file, "{}", path.display()).expect("write the file list");
    }
    drop(list_file);
    println!(
        "{} files, {} MiB in all, written in {:?}",
        paths.len(),
        total_bytes / MIB,
        started.elapsed()
    );

    let mut child = Command::new("node")
        .arg(&script)
        .arg("--list")
        .arg(&list)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run `node` (Node.js 18+ must be on PATH)");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut checked = 0usize;
    // Compare each line as it comes, so our hashing overlaps the SDK's.
    for (line_text, path) in BufReader::new(stdout).lines().zip(&paths) {
        let line_text = line_text.expect("read a line from the SDK script");
        let line: SdkLine = serde_json::from_str(&line_text)
            .unwrap_or_else(|error| panic!("bad line from roots.cjs ({error}): {line_text}"));
        assert_eq!(
            Path::new(&line.file),
            path.as_path(),
            "lines come in list order"
        );
        let data = std::fs::read(path).expect("read back a test file");
        check_line(&line, &data);
        checked += 1;
    }
    let status = child.wait().expect("wait for node");
    assert!(status.success(), "roots.cjs exited with {status}");
    assert_eq!(checked, paths.len(), "one SDK line per file");
    std::fs::remove_dir_all(&dir).expect("remove the test files");
    println!(
        "checked {checked} files against the SDK in {:?} (seed {seed})",
        started.elapsed()
    );
}

#[test]
fn empty_file_has_no_tree() {
    assert_eq!(
        FileTree::from_bytes(&[]),
        Err(merkle::file::MerkleError::EmptyFile)
    );
    assert!(FileTree::builder(0).is_err());
}
