//! The official EIP-4844 KZG vectors (consensus-specs, via c-kzg-4844; see
//! `testdata/kzg/PROVENANCE.md`) run against `da::kzg`, plus the functions the vector set does
//! not cover (blob proofs, batch verification, payload commitments) cross-checked against
//! c-kzg on the same trusted setup. A `null` output means the call must fail.

use da::kzg::{
    self, BYTES_PER_BLOB, CpuMsm, KzgCommitment, KzgError, KzgProof, PointRole, TrustedSetup,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kzg")
}

/// The `output` of a case.
#[derive(Debug)]
enum Output {
    Null,
    Bool(bool),
    Bytes(Vec<u8>),
    Pair(Vec<u8>, Vec<u8>),
}

struct Case {
    name: String,
    input: BTreeMap<String, Vec<u8>>,
    output: Output,
}

fn unquote_hex(text: &str) -> Vec<u8> {
    let text = text.trim().trim_matches('\'').trim_matches('"');
    hex::decode(text.strip_prefix("0x").expect("hex values start with 0x")).expect("valid hex")
}

/// Parses the vectors' one YAML shape: `input:` with indented `key: '0x…'` lines, then
/// `output:` with a scalar on the same line or a list of `- '0x…'` lines below it.
fn parse_case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).expect("vector file is readable");
    let mut input = BTreeMap::new();
    let mut output_scalar = None;
    let mut output_list = Vec::new();
    let mut section = "";
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("input:") {
            assert!(rest.trim().is_empty(), "{}: inline input", path.display());
            section = "input";
        } else if let Some(rest) = line.strip_prefix("output:") {
            section = "output";
            if !rest.trim().is_empty() {
                output_scalar = Some(rest.trim().to_string());
            }
        } else if section == "input" {
            let (key, value) = line.trim().split_once(':').expect("key: value");
            input.insert(key.trim().to_string(), unquote_hex(value));
        } else if section == "output" {
            let item = line.trim().strip_prefix("- ").expect("list item");
            output_list.push(unquote_hex(item));
        } else {
            panic!("{}: unexpected line {line:?}", path.display());
        }
    }
    let output = match (output_scalar.as_deref(), output_list.len()) {
        (Some("null"), 0) => Output::Null,
        (Some("true"), 0) => Output::Bool(true),
        (Some("false"), 0) => Output::Bool(false),
        (Some(value), 0) => Output::Bytes(unquote_hex(value)),
        (None, 2) => Output::Pair(output_list[0].clone(), output_list[1].clone()),
        other => panic!("{}: unexpected output {other:?}", path.display()),
    };
    Case {
        name: path.display().to_string(),
        input,
        output,
    }
}

fn cases(function: &str) -> Vec<Case> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(testdata().join(function))
        .expect("vector directory exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no vectors for {function}");
    paths.iter().map(|path| parse_case(path)).collect()
}

/// A field of fixed length, or `None` when the vector gives another length (which the spec
/// rejects; our fixed-size arguments cannot even express it).
fn fixed<const N: usize>(case: &Case, key: &str) -> Option<[u8; N]> {
    case.input
        .get(key)
        .unwrap_or_else(|| panic!("{}: missing input {key}", case.name))
        .as_slice()
        .try_into()
        .ok()
}

fn blob(case: &Case) -> Option<Box<[u8; BYTES_PER_BLOB]>> {
    let bytes = case.input.get("blob").expect("blob input");
    bytes.clone().into_boxed_slice().try_into().ok()
}

/// Checks one result against the expected output; `render` turns a success into the output's
/// shape.
fn check<T>(case: &Case, result: Option<Result<T, KzgError>>, render: impl Fn(T) -> Output) {
    match (&case.output, result) {
        (Output::Null, None | Some(Err(_))) => {}
        (Output::Null, Some(Ok(value))) => {
            panic!("{}: expected an error, got {:?}", case.name, render(value))
        }
        (expected, None) => panic!("{}: malformed input but expected {expected:?}", case.name),
        (expected, Some(Err(error))) => {
            panic!("{}: expected {expected:?}, got error {error}", case.name)
        }
        (expected, Some(Ok(value))) => {
            let got = render(value);
            let same = match (expected, &got) {
                (Output::Bool(a), Output::Bool(b)) => a == b,
                (Output::Bytes(a), Output::Bytes(b)) => a == b,
                (Output::Pair(a1, a2), Output::Pair(b1, b2)) => a1 == b1 && a2 == b2,
                _ => false,
            };
            assert!(same, "{}: expected {expected:?}, got {got:?}", case.name);
        }
    }
}

#[test]
fn every_official_vector_passes() {
    let functions: Vec<String> = std::fs::read_dir(testdata())
        .expect("testdata/kzg exists")
        .map(|entry| entry.expect("directory entry"))
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let mut checked = 0;
    for function in &functions {
        for case in cases(function) {
            match function.as_str() {
                "blob_to_kzg_commitment" => check(
                    &case,
                    blob(&case).map(|blob| kzg::blob_to_kzg_commitment(&blob, &CpuMsm)),
                    |commitment| Output::Bytes(commitment.0.to_vec()),
                ),
                "compute_kzg_proof" => check(
                    &case,
                    blob(&case)
                        .zip(fixed::<32>(&case, "z"))
                        .map(|(blob, z)| kzg::compute_kzg_proof(&blob, &z, &CpuMsm)),
                    |(proof, y)| Output::Pair(proof.0.to_vec(), y.to_vec()),
                ),
                "compute_blob_kzg_proof" => check(
                    &case,
                    blob(&case)
                        .zip(fixed::<48>(&case, "commitment"))
                        .map(|(blob, commitment)| {
                            kzg::compute_blob_kzg_proof(&blob, &KzgCommitment(commitment), &CpuMsm)
                        }),
                    |proof| Output::Bytes(proof.0.to_vec()),
                ),
                "verify_kzg_proof" => {
                    let inputs = fixed::<48>(&case, "commitment")
                        .zip(fixed::<32>(&case, "z"))
                        .zip(fixed::<32>(&case, "y"))
                        .zip(fixed::<48>(&case, "proof"));
                    check(
                        &case,
                        inputs.map(|(((commitment, z), y), proof)| {
                            kzg::verify_kzg_proof(
                                &KzgCommitment(commitment),
                                &z,
                                &y,
                                &KzgProof(proof),
                            )
                        }),
                        Output::Bool,
                    )
                }
                "verify_blob_kzg_proof" => {
                    let inputs = blob(&case)
                        .zip(fixed::<48>(&case, "commitment"))
                        .zip(fixed::<48>(&case, "proof"));
                    check(
                        &case,
                        inputs.map(|((blob, commitment), proof)| {
                            kzg::verify_blob_kzg_proof(
                                &blob,
                                &KzgCommitment(commitment),
                                &KzgProof(proof),
                            )
                        }),
                        Output::Bool,
                    );
                    // A batch of one must agree with the single verification.
                    let inputs = blob(&case)
                        .zip(fixed::<48>(&case, "commitment"))
                        .zip(fixed::<48>(&case, "proof"));
                    check(
                        &case,
                        inputs.map(|((blob, commitment), proof)| {
                            kzg::verify_blob_kzg_proof_batch(
                                &[&blob],
                                &[KzgCommitment(commitment)],
                                &[KzgProof(proof)],
                                &CpuMsm,
                            )
                        }),
                        Output::Bool,
                    );
                }
                other => panic!("vectors for {other} but no runner: add one"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} vectors found");
}

/// A blob of canonical random elements (top byte cleared).
fn random_blob(rng: &mut StdRng) -> Box<[u8; BYTES_PER_BLOB]> {
    let mut blob: Box<[u8; BYTES_PER_BLOB]> = vec![0u8; BYTES_PER_BLOB]
        .into_boxed_slice()
        .try_into()
        .expect("blob-sized");
    rng.fill(&mut blob[..]);
    for element in blob.chunks_exact_mut(32) {
        element[0] = 0;
    }
    blob
}

/// c-kzg's settings for the same file, loaded once per test binary (loading checks the setup
/// with an FFT over G1, which takes a while).
fn c_kzg_settings() -> &'static c_kzg::KzgSettings {
    static SETTINGS: OnceLock<c_kzg::KzgSettings> = OnceLock::new();
    SETTINGS.get_or_init(load_c_kzg_settings)
}

fn load_c_kzg_settings() -> c_kzg::KzgSettings {
    let path = testdata().join("trusted_setup.txt");
    let path = CString::new(path.to_str().expect("UTF-8 path")).expect("no NUL in the path");
    c_kzg::KzgSettings::load_trusted_setup_file(&path, 0).expect("c-kzg loads the same setup")
}

#[test]
fn blob_commitments_and_proofs_are_byte_identical_to_c_kzg_and_verify() {
    let settings = c_kzg_settings();
    let mut rng = StdRng::seed_from_u64(4844);
    for _ in 0..2 {
        let blob = random_blob(&mut rng);
        let reference_blob = c_kzg::Blob::new(*blob);
        let commitment = kzg::blob_to_kzg_commitment(&blob, &CpuMsm).expect("canonical blob");
        let reference = settings
            .blob_to_kzg_commitment(&reference_blob)
            .expect("c-kzg commits");
        assert_eq!(commitment.0, *reference.to_bytes());

        let proof = kzg::compute_blob_kzg_proof(&blob, &commitment, &CpuMsm).expect("valid inputs");
        let reference_proof = settings
            .compute_blob_kzg_proof(&reference_blob, &reference.to_bytes())
            .expect("c-kzg proves");
        assert_eq!(proof.0, *reference_proof.to_bytes());
        assert_eq!(
            kzg::verify_blob_kzg_proof(&blob, &commitment, &proof),
            Ok(true)
        );

        // Another blob under the same commitment and proof must not verify.
        let mut other = blob.clone();
        other[BYTES_PER_BLOB - 1] ^= 1;
        assert_eq!(
            kzg::verify_blob_kzg_proof(&other, &commitment, &proof),
            Ok(false)
        );
    }
}

#[test]
fn proofs_at_a_point_of_the_domain_match_c_kzg_and_verify() {
    let settings = c_kzg_settings();
    let mut rng = StdRng::seed_from_u64(7);
    let blob = random_blob(&mut rng);
    let commitment = kzg::blob_to_kzg_commitment(&blob, &CpuMsm).expect("canonical blob");
    // z = ω^k for some k exercises the quotient's within-domain case; y is then blob element i.
    let index = 1234;
    let z = TrustedSetup::mainnet().roots_of_unity_brp()[index].to_bytes_be();
    let (proof, y) = kzg::compute_kzg_proof(&blob, &z, &CpuMsm).expect("valid inputs");
    assert_eq!(y, blob[index * 32..(index + 1) * 32]);
    let (reference_proof, reference_y) = settings
        .compute_kzg_proof(&c_kzg::Blob::new(*blob), &c_kzg::Bytes32::new(z))
        .expect("c-kzg proves");
    assert_eq!(proof.0, *reference_proof.to_bytes());
    assert_eq!(y, *reference_y);
    assert_eq!(kzg::verify_kzg_proof(&commitment, &z, &y, &proof), Ok(true));
    let mut wrong_y = y;
    wrong_y[31] ^= 1;
    assert_eq!(
        kzg::verify_kzg_proof(&commitment, &z, &wrong_y, &proof),
        Ok(false)
    );
}

#[test]
fn batch_verification_accepts_valid_batches_and_refuses_bad_ones() {
    let settings = c_kzg_settings();
    let mut rng = StdRng::seed_from_u64(99);
    let blobs: Vec<Box<[u8; BYTES_PER_BLOB]>> = (0..3).map(|_| random_blob(&mut rng)).collect();
    let blob_refs: Vec<&[u8; BYTES_PER_BLOB]> = blobs.iter().map(|blob| &**blob).collect();
    let commitments: Vec<KzgCommitment> = blobs
        .iter()
        .map(|blob| kzg::blob_to_kzg_commitment(blob, &CpuMsm).expect("canonical"))
        .collect();
    let proofs: Vec<KzgProof> = blobs
        .iter()
        .zip(&commitments)
        .map(|(blob, commitment)| {
            kzg::compute_blob_kzg_proof(blob, commitment, &CpuMsm).expect("valid")
        })
        .collect();
    let reference_blobs: Vec<c_kzg::Blob> =
        blobs.iter().map(|blob| c_kzg::Blob::new(**blob)).collect();
    let reference_verdict = |proofs: &[KzgProof]| {
        let commitments: Vec<c_kzg::Bytes48> = commitments
            .iter()
            .map(|c| c_kzg::Bytes48::new(c.0))
            .collect();
        let proofs: Vec<c_kzg::Bytes48> = proofs.iter().map(|p| c_kzg::Bytes48::new(p.0)).collect();
        settings
            .verify_blob_kzg_proof_batch(&reference_blobs, &commitments, &proofs)
            .expect("c-kzg verifies")
    };

    assert_eq!(
        kzg::verify_blob_kzg_proof_batch(&blob_refs, &commitments, &proofs, &CpuMsm),
        Ok(true)
    );
    assert!(reference_verdict(&proofs));

    let mut swapped = proofs.clone();
    swapped.swap(0, 1);
    assert_eq!(
        kzg::verify_blob_kzg_proof_batch(&blob_refs, &commitments, &swapped, &CpuMsm),
        Ok(false)
    );
    assert!(!reference_verdict(&swapped));

    assert_eq!(
        kzg::verify_blob_kzg_proof_batch(&[], &[], &[], &CpuMsm),
        Ok(true),
        "the spec accepts an empty batch"
    );
    assert_eq!(
        kzg::verify_blob_kzg_proof_batch(&blob_refs, &commitments[..2], &proofs, &CpuMsm),
        Err(KzgError::BatchLengthMismatch {
            blobs: 3,
            commitments: 2,
            proofs: 3
        })
    );
    let mut bad_point = proofs.clone();
    bad_point[2].0[0] ^= 0x01; // leaves the flag bits, breaks the x coordinate
    assert!(matches!(
        kzg::verify_blob_kzg_proof_batch(&blob_refs, &commitments, &bad_point, &CpuMsm),
        Err(KzgError::InvalidPoint {
            role: PointRole::Proof,
            index: 2
        })
    ));
}

#[test]
fn payload_commitments_are_the_commitments_of_the_packed_sub_blobs() {
    let settings = c_kzg_settings();
    let mut rng = StdRng::seed_from_u64(31);
    let mut payload = vec![0u8; kzg::PAYLOAD_BYTES_PER_SUB_BLOB + 1000];
    rng.fill(&mut payload[..]);
    let commitments = kzg::commit_payload(&payload, &CpuMsm).expect("within the limit");
    let sub_blobs = kzg::pack_payload(&payload).expect("within the limit");
    assert_eq!(commitments.len(), 2);
    for (commitment, sub_blob) in commitments.iter().zip(&sub_blobs) {
        let reference = settings
            .blob_to_kzg_commitment(&c_kzg::Blob::new(**sub_blob))
            .expect("every packed sub-blob is a valid EIP-4844 blob");
        assert_eq!(commitment.0, *reference.to_bytes());
    }
    assert_eq!(kzg::commit_payload(&[], &CpuMsm), Ok(vec![]));
}

#[test]
fn a_non_canonical_blob_element_is_named_in_the_error() {
    let mut blob: Box<[u8; BYTES_PER_BLOB]> = vec![0u8; BYTES_PER_BLOB]
        .into_boxed_slice()
        .try_into()
        .expect("blob-sized");
    blob[77 * 32..78 * 32].fill(0xff);
    assert_eq!(
        kzg::blob_to_kzg_commitment(&blob, &CpuMsm),
        Err(KzgError::NonCanonicalScalar {
            role: kzg::ScalarRole::BlobElement { index: 77 }
        })
    );
}
