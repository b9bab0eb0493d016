//! Real S3 clients against a real `zerog node --dev` with its built-in gateway, or a
//! standalone `zerog gateway` with several users: boto3 (the API surface,
//! `clients/boto3_suite.py`; who may do what, `clients/access_suite.py`), the awscli
//! (high-level copy with a 64 MiB multipart upload, `s3api` semantics, presigned expiry, ACLs,
//! CORS and versions, listing of 10 000 keys page by page), s3cmd and rclone; and durability:
//! an object the gateway acknowledged survives kill -9 of the gateway and the node.

mod common;

use common::{
    DevNode, Separate, aws, aws_as, python_script, python_script_with, random_bytes, run_fails,
    run_ok, system_program,
};
use std::process::Command;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn boto3_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("node"));
    let output = python_script("boto3_suite.py", &node.s3, &[]);
    let text = stdout(&output);
    assert!(text.contains(" passed, 0 failed"), "{text}");
}

#[test]
fn awscli_copies_a_64_mib_multipart_object_and_small_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("node"));
    run_ok(aws(&node.s3).args(["s3", "mb", "s3://cli"]));
    let big = random_bytes(64, 64 * 1024 * 1024);
    let big_path = dir.path().join("big.bin");
    std::fs::write(&big_path, &big).expect("write");
    // The awscli switches to multipart at 8 MiB: eight 8 MiB parts.
    run_ok(aws(&node.s3).args([
        "s3",
        "cp",
        "--quiet",
        big_path.to_str().expect("utf-8"),
        "s3://cli/deep/prefix/big file+&=%.bin",
    ]));
    let head = run_ok(aws(&node.s3).args([
        "s3api",
        "head-object",
        "--bucket",
        "cli",
        "--key",
        "deep/prefix/big file+&=%.bin",
    ]));
    let head = stdout(&head);
    assert!(
        head.contains("-8\\\""),
        "a multipart ETag ends in -8: {head}"
    );
    assert!(head.contains("\"ContentLength\": 67108864"), "{head}");
    let back = dir.path().join("big.back");
    run_ok(aws(&node.s3).args([
        "s3",
        "cp",
        "--quiet",
        "s3://cli/deep/prefix/big file+&=%.bin",
        back.to_str().expect("utf-8"),
    ]));
    assert!(
        std::fs::read(&back).expect("read") == big,
        "64 MiB round trip"
    );

    let tree = dir.path().join("tree");
    for (index, name) in ["a b.txt", "ünï/cødé.txt", "x/y/z/deep.txt", "p+q&r=s%t.txt"]
        .iter()
        .enumerate()
    {
        let path = tree.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, random_bytes(index as u64, 1000 + index * 100)).expect("write");
    }
    run_ok(aws(&node.s3).args([
        "s3",
        "sync",
        "--quiet",
        tree.to_str().expect("utf-8"),
        "s3://cli/tree",
    ]));
    let listing = stdout(&run_ok(aws(&node.s3).args([
        "s3",
        "ls",
        "--recursive",
        "s3://cli/tree/",
    ])));
    for name in ["a b.txt", "ünï/cødé.txt", "x/y/z/deep.txt", "p+q&r=s%t.txt"] {
        assert!(
            listing.contains(&format!("tree/{name}")),
            "{name} in {listing}"
        );
    }
    let copy = dir.path().join("copy");
    run_ok(aws(&node.s3).args([
        "s3",
        "sync",
        "--quiet",
        "s3://cli/tree",
        copy.to_str().expect("utf-8"),
    ]));
    for name in ["a b.txt", "ünï/cødé.txt", "x/y/z/deep.txt", "p+q&r=s%t.txt"] {
        assert_eq!(
            std::fs::read(copy.join(name)).expect("synced back"),
            std::fs::read(tree.join(name)).expect("original"),
            "{name}"
        );
    }
    // A presigned URL from the awscli works for a plain HTTP client.
    let url = stdout(&run_ok(aws(&node.s3).args([
        "s3",
        "presign",
        "s3://cli/tree/a b.txt",
    ])));
    let body = http_get_ok(url.trim());
    assert_eq!(body, std::fs::read(tree.join("a b.txt")).expect("original"));
    // An upload left incomplete does not keep the bucket from the cleanup a client does
    // (every object it lists, then the bucket): it is aborted with the bucket.
    let created = stdout(&run_ok(aws(&node.s3).args([
        "s3api",
        "create-multipart-upload",
        "--bucket",
        "cli",
        "--key",
        "never completed",
        "--query",
        "UploadId",
        "--output",
        "text",
    ])));
    let upload_id = created.trim();
    let part = dir.path().join("part");
    std::fs::write(&part, random_bytes(65, 1000)).expect("write");
    run_ok(aws(&node.s3).args([
        "s3api",
        "upload-part",
        "--bucket",
        "cli",
        "--key",
        "never completed",
        "--upload-id",
        upload_id,
        "--part-number",
        "1",
        "--body",
        part.to_str().expect("utf-8"),
    ]));
    run_ok(aws(&node.s3).args(["s3", "rm", "--quiet", "--recursive", "s3://cli/"]));
    run_ok(aws(&node.s3).args(["s3", "rb", "s3://cli"]));
    let gone =
        run_fails(aws(&node.s3).args(["s3api", "list-multipart-uploads", "--bucket", "cli"]));
    assert!(gone.contains("NoSuchBucket"), "{gone}");
}

/// A plain HTTP GET (for presigned URLs), through Python's standard library: the status and
/// the body, an error's included.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    const SCRIPT: &str = "import sys, urllib.request, urllib.error
try:
    response = urllib.request.urlopen(sys.argv[1])
    status, body = response.status, response.read()
except urllib.error.HTTPError as error:
    status, body = error.code, error.read()
sys.stdout.buffer.write(b'%d\\n' % status + body)
";
    let output = run_ok(Command::new(common::venv_bin("python")).args(["-c", SCRIPT, url]));
    let text = output.stdout;
    let newline = text
        .iter()
        .position(|&byte| byte == b'\n')
        .expect("the status line");
    let status = std::str::from_utf8(&text[..newline])
        .expect("utf-8")
        .parse()
        .expect("a status");
    (status, text[newline + 1..].to_vec())
}

/// The body of a GET that must answer 200.
fn http_get_ok(url: &str) -> Vec<u8> {
    let (status, body) = http_get(url);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

/// The awscli's `s3api` and `s3 presign` on what S3 tools rely on: `Expires` kept,
/// GetObjectAttributes, `?torrent` 404, an empty page for `max-keys=0`, an empty Content-MD5
/// refused, UploadPartCopy ranges checked, and presigned URLs' expiry (SigV2 as the awscli
/// signs by default, SigV4 as configured).
#[test]
fn awscli_object_semantics_and_presigned_expiry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("node"));
    let s3api = |args: &[&str]| {
        let mut command = aws(&node.s3);
        command.args(["s3api"]).args(args);
        command
    };
    run_ok(aws(&node.s3).args(["s3", "mb", "s3://semantics"]));
    let file = dir.path().join("object");
    std::fs::write(&file, b"0123456789").expect("write");
    let body = file.to_str().expect("utf-8");
    run_ok(&mut s3api(&[
        "put-object",
        "--bucket",
        "semantics",
        "--key",
        "k",
        "--body",
        body,
        "--expires",
        "2031-05-06T07:08:09Z",
    ]));
    let head = stdout(&run_ok(&mut s3api(&[
        "head-object",
        "--bucket",
        "semantics",
        "--key",
        "k",
    ])));
    assert!(
        head.contains("\"ExpiresString\": \"Tue, 06 May 2031 07:08:09 GMT\""),
        "{head}"
    );
    let attributes = stdout(&run_ok(&mut s3api(&[
        "get-object-attributes",
        "--bucket",
        "semantics",
        "--key",
        "k",
        "--object-attributes",
        "ETag",
        "ObjectSize",
        "StorageClass",
    ])));
    assert!(
        attributes.contains("\"ObjectSize\": 10")
            && attributes.contains("\"StorageClass\": \"STANDARD\"")
            && attributes.contains("781e5e245d69b566979b86e28d23f2c7"),
        "{attributes}"
    );
    let torrent = run_fails(&mut s3api(&[
        "get-object-torrent",
        "--bucket",
        "semantics",
        "--key",
        "k",
        dir.path().join("torrent").to_str().expect("utf-8"),
    ]));
    assert!(torrent.contains("NoSuchKey"), "{torrent}");
    for listing in ["list-objects", "list-objects-v2"] {
        let page = stdout(&run_ok(&mut s3api(&[
            listing,
            "--bucket",
            "semantics",
            "--max-keys",
            "0",
            "--no-paginate",
        ])));
        assert!(
            page.contains("\"IsTruncated\": false") && !page.contains("Contents"),
            "{listing}: {page}"
        );
    }
    let empty_md5 = run_fails(&mut s3api(&[
        "put-object",
        "--bucket",
        "semantics",
        "--key",
        "empty-md5",
        "--body",
        body,
        "--content-md5",
        "",
    ]));
    assert!(empty_md5.contains("InvalidDigest"), "{empty_md5}");
    let upload_id = stdout(&run_ok(&mut s3api(&[
        "create-multipart-upload",
        "--bucket",
        "semantics",
        "--key",
        "copied",
        "--query",
        "UploadId",
        "--output",
        "text",
    ])));
    let past_the_end = run_fails(&mut s3api(&[
        "upload-part-copy",
        "--bucket",
        "semantics",
        "--key",
        "copied",
        "--upload-id",
        upload_id.trim(),
        "--part-number",
        "1",
        "--copy-source",
        "semantics/k",
        "--copy-source-range",
        "bytes=0-10",
    ]));
    assert!(past_the_end.contains("InvalidRange"), "{past_the_end}");

    // Presigned URLs: the awscli signs SigV2 (an absolute expiry) unless configured for SigV4.
    let presign = |config: &str, expires_in: &str| {
        let url = stdout(&run_ok(aws(&node.s3).env("AWS_CONFIG_FILE", config).args(
            [
                "s3",
                "presign",
                "s3://semantics/k",
                "--expires-in",
                expires_in,
            ],
        )));
        http_get(url.trim())
    };
    let (status, answer) = presign("/dev/null", "-5");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        status == 403 && answer.contains("AccessDenied") && answer.contains("Request has expired"),
        "{status} {answer}"
    );
    let sigv4 = dir.path().join("sigv4-config");
    std::fs::write(&sigv4, "[default]\ns3 =\n  signature_version = s3v4\n").expect("config");
    let sigv4 = sigv4.to_str().expect("utf-8");
    let (status, answer) = presign(sigv4, "604801");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        status == 400 && answer.contains("AuthorizationQueryParametersError"),
        "{status} {answer}"
    );
    assert_eq!(presign(sigv4, "604800"), (200, b"0123456789".to_vec()));
}

#[test]
fn listing_ten_thousand_keys_page_by_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("node"));
    let output = python_script("many_keys.py", &node.s3, &["10000"]);
    let text = stdout(&output);
    assert!(text.contains("listed 10000 keys"), "{text}");
    // The awscli's own paginator walks the same bucket (1000 keys a page).
    let listing = stdout(&run_ok(aws(&node.s3).args([
        "s3",
        "ls",
        "--recursive",
        "s3://many/",
    ])));
    assert_eq!(listing.lines().count(), 10_000);
}

#[test]
fn s3cmd_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("node"));
    let host = node.s3.trim_start_matches("http://").to_string();
    let config = dir.path().join("s3cfg");
    std::fs::write(
        &config,
        format!(
            "[default]\naccess_key = {}\nsecret_key = {}\nhost_base = {host}\nhost_bucket = {host}\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n",
            common::ACCESS_KEY,
            common::SECRET_KEY
        ),
    )
    .expect("config");
    let s3cmd = |args: &[&str]| {
        stdout(&run_ok(
            Command::new(system_program("s3cmd"))
                .arg("-c")
                .arg(&config)
                .args(args),
        ))
    };
    s3cmd(&["mb", "s3://tools"]);
    let file = dir.path().join("in file.bin");
    let data = random_bytes(5, 12 * 1024 * 1024 + 7);
    std::fs::write(&file, &data).expect("write");
    // 5 MiB chunks: a three-part multipart upload.
    s3cmd(&[
        "put",
        "--multipart-chunk-size-mb=5",
        file.to_str().expect("utf-8"),
        "s3://tools/dir/ünï file+&=.bin",
    ]);
    s3cmd(&[
        "put",
        file.to_str().expect("utf-8"),
        "s3://tools/dir/single.bin",
        "--disable-multipart",
    ]);
    let listing = s3cmd(&["ls", "--recursive", "s3://tools"]);
    assert!(
        listing.contains("s3://tools/dir/ünï file+&=.bin"),
        "{listing}"
    );
    assert!(listing.contains("s3://tools/dir/single.bin"), "{listing}");
    for key in ["dir/ünï file+&=.bin", "dir/single.bin"] {
        let out = dir.path().join("out.bin");
        let _ = std::fs::remove_file(&out);
        s3cmd(&[
            "get",
            &format!("s3://tools/{key}"),
            out.to_str().expect("utf-8"),
        ]);
        assert!(std::fs::read(&out).expect("read") == data, "{key}");
    }
    s3cmd(&["del", "s3://tools/dir/single.bin"]);
    s3cmd(&["del", "s3://tools/dir/ünï file+&=.bin"]);
    s3cmd(&["rb", "s3://tools"]);
    assert!(!s3cmd(&["ls"]).contains("s3://tools"));
}

#[test]
fn rclone_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("node"));
    let rclone = |args: &[&str]| {
        stdout(&run_ok(
            Command::new(system_program("rclone"))
                .args(args)
                // A CA bundle from the environment is for TLS elsewhere; the gateway here is
                // plain HTTP on loopback, and rclone refuses to start with one it cannot load.
                .env_remove("AWS_CA_BUNDLE")
                .env("RCLONE_CONFIG", dir.path().join("rclone.conf"))
                .env("RCLONE_CONFIG_ZG_TYPE", "s3")
                .env("RCLONE_CONFIG_ZG_PROVIDER", "Other")
                .env("RCLONE_CONFIG_ZG_ENDPOINT", &node.s3)
                .env("RCLONE_CONFIG_ZG_ACCESS_KEY_ID", common::ACCESS_KEY)
                .env("RCLONE_CONFIG_ZG_SECRET_ACCESS_KEY", common::SECRET_KEY)
                .env("RCLONE_CONFIG_ZG_REGION", "us-east-1")
                .env("RCLONE_CONFIG_ZG_FORCE_PATH_STYLE", "true"),
        ))
    };
    let source = dir.path().join("source");
    let names = [
        "a b.txt",
        "ünï/cødé.txt",
        "deep/1/2/3/4/5.txt",
        "p+q&r=s%t.txt",
        "big.bin",
    ];
    for (index, name) in names.iter().enumerate() {
        let path = source.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let size = if *name == "big.bin" {
            11 * 1024 * 1024
        } else {
            100 + index * 37
        };
        std::fs::write(&path, random_bytes(index as u64 + 10, size)).expect("write");
    }
    rclone(&["mkdir", "zg:rclone"]);
    // A 5 MiB upload cutoff and chunk size: big.bin goes up in three parts.
    rclone(&[
        "copy",
        "--s3-upload-cutoff=5M",
        "--s3-chunk-size=5M",
        source.to_str().expect("utf-8"),
        "zg:rclone/data",
    ]);
    let listing = rclone(&["ls", "zg:rclone/data"]);
    for name in names {
        assert!(listing.contains(name), "{name} in {listing}");
    }
    // check compares sizes and hashes (MD5 ETags for single-part objects).
    rclone(&["check", source.to_str().expect("utf-8"), "zg:rclone/data"]);
    let back = dir.path().join("back");
    rclone(&["copy", "zg:rclone/data", back.to_str().expect("utf-8")]);
    for name in names {
        assert!(
            std::fs::read(back.join(name)).expect("copied back")
                == std::fs::read(source.join(name)).expect("source"),
            "{name}"
        );
    }
    rclone(&["purge", "zg:rclone"]);
    assert!(!rclone(&["lsd", "zg:"]).contains(" rclone"));
}

/// The users of the standalone gateway's `--credentials` file (the gateway's `--access-key`
/// is a third).
const ALICE: (&str, &str) = ("alice", "alice-secret-key-0001");
const BOB: (&str, &str) = ("bob", "bob-secret-key-0002");

/// A standalone gateway with several users, in a region other than us-east-1: creating a
/// bucket one already owns is 409 BucketAlreadyOwnedByYou there, and the bucket is left as it
/// was; who may do what (`tests/clients/access_suite.py` with boto3, and the awscli).
#[test]
fn standalone_gateway_with_users_in_another_region() {
    let dir = tempfile::tempdir().expect("tempdir");
    let credentials = dir.path().join("s3-keys");
    std::fs::write(
        &credentials,
        format!(
            "# two users\n{} {}\n{} {}\n",
            ALICE.0, ALICE.1, BOB.0, BOB.1
        ),
    )
    .expect("credentials");
    let running = Separate::start_with(
        &dir.path().join("node"),
        &dir.path().join("gateway"),
        &[
            "--region",
            "eu-west-1",
            "--credentials",
            credentials.to_str().expect("utf-8"),
        ],
    );
    let create = |bucket: &str| {
        let mut command = aws(&running.s3);
        command.args([
            "s3api",
            "create-bucket",
            "--bucket",
            bucket,
            "--create-bucket-configuration",
            "LocationConstraint=eu-west-1",
        ]);
        command
    };
    run_ok(&mut create("regional"));
    let object = dir.path().join("object");
    std::fs::write(&object, b"kept").expect("write");
    run_ok(aws(&running.s3).args([
        "s3",
        "cp",
        "--quiet",
        object.to_str().expect("utf-8"),
        "s3://regional/kept",
    ]));
    let again = run_fails(&mut create("regional"));
    assert!(again.contains("BucketAlreadyOwnedByYou"), "{again}");
    let location = stdout(&run_ok(aws(&running.s3).args([
        "s3api",
        "get-bucket-location",
        "--bucket",
        "regional",
    ])));
    assert!(location.contains("eu-west-1"), "{location}");
    let listing = stdout(&run_ok(aws(&running.s3).args([
        "s3",
        "ls",
        "s3://regional/",
    ])));
    assert!(listing.contains("kept"), "{listing}");

    // The awscli: another user may not read the bucket until its ACL says so; anonymous
    // requests (--no-sign-request) get what public grants give; a PublicAccessBlock that
    // ignores public ACLs takes that back.
    let bob = || aws_as(&running.s3, BOB.0, BOB.1);
    let denied = run_fails(bob().args(["s3", "ls", "s3://regional/"]));
    assert!(denied.contains("AccessDenied"), "{denied}");
    run_ok(aws(&running.s3).args([
        "s3api",
        "put-bucket-acl",
        "--bucket",
        "regional",
        "--grant-read",
        &format!("id={}", BOB.0),
    ]));
    let acl = stdout(&run_ok(aws(&running.s3).args([
        "s3api",
        "get-bucket-acl",
        "--bucket",
        "regional",
    ])));
    assert!(acl.contains(&format!("\"ID\": \"{}\"", BOB.0)), "{acl}");
    assert!(stdout(&run_ok(bob().args(["s3", "ls", "s3://regional/"]))).contains("kept"));
    let anonymous = || {
        let mut command = aws(&running.s3);
        command.arg("--no-sign-request");
        command
    };
    assert!(run_fails(anonymous().args(["s3", "ls", "s3://regional/"])).contains("AccessDenied"));
    run_ok(aws(&running.s3).args([
        "s3api",
        "put-object-acl",
        "--bucket",
        "regional",
        "--key",
        "kept",
        "--acl",
        "public-read",
    ]));
    let fetched = dir.path().join("fetched");
    run_ok(anonymous().args([
        "s3",
        "cp",
        "--quiet",
        "s3://regional/kept",
        fetched.to_str().expect("utf-8"),
    ]));
    assert_eq!(std::fs::read(&fetched).expect("read"), b"kept");
    run_ok(aws(&running.s3).args([
        "s3api",
        "put-public-access-block",
        "--bucket",
        "regional",
        "--public-access-block-configuration",
        "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
    ]));
    let blocked = run_fails(anonymous().args([
        "s3",
        "cp",
        "s3://regional/kept",
        fetched.to_str().expect("utf-8"),
    ]));
    assert!(
        blocked.contains("403") || blocked.contains("Forbidden"),
        "{blocked}"
    );
    let policy = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::regional/*"}]}"#;
    let refused = run_fails(aws(&running.s3).args([
        "s3api",
        "put-bucket-policy",
        "--bucket",
        "regional",
        "--policy",
        policy,
    ]));
    assert!(refused.contains("AccessDenied"), "{refused}");

    // CORS rules with the awscli, only by the owner.
    let cors = r#"{"CORSRules":[{"AllowedOrigins":["https://site.example"],"AllowedMethods":["GET"],"MaxAgeSeconds":60}]}"#;
    run_ok(aws(&running.s3).args([
        "s3api",
        "put-bucket-cors",
        "--bucket",
        "regional",
        "--cors-configuration",
        cors,
    ]));
    let rules = stdout(&run_ok(aws(&running.s3).args([
        "s3api",
        "get-bucket-cors",
        "--bucket",
        "regional",
    ])));
    assert!(
        rules.contains("https://site.example") && rules.contains("\"MaxAgeSeconds\": 60"),
        "{rules}"
    );
    let refused = run_fails(bob().args([
        "s3api",
        "put-bucket-cors",
        "--bucket",
        "regional",
        "--cors-configuration",
        cors,
    ]));
    assert!(refused.contains("AccessDenied"), "{refused}");
    run_ok(aws(&running.s3).args(["s3api", "delete-bucket-cors", "--bucket", "regional"]));
    let gone =
        run_fails(aws(&running.s3).args(["s3api", "get-bucket-cors", "--bucket", "regional"]));
    assert!(gone.contains("NoSuchCORSConfiguration"), "{gone}");

    // Versioning with the awscli: two versions, each readable, listed newest first.
    run_ok(aws(&running.s3).args([
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        "regional",
        "--versioning-configuration",
        "Status=Enabled",
    ]));
    let mut version_ids = Vec::new();
    for content in [&b"first"[..], b"second"] {
        std::fs::write(&object, content).expect("write");
        let put = stdout(&run_ok(aws(&running.s3).args([
            "s3api",
            "put-object",
            "--bucket",
            "regional",
            "--key",
            "versioned",
            "--body",
            object.to_str().expect("utf-8"),
            "--query",
            "VersionId",
            "--output",
            "text",
        ])));
        version_ids.push(put.trim().to_string());
    }
    let listed = stdout(&run_ok(aws(&running.s3).args([
        "s3api",
        "list-object-versions",
        "--bucket",
        "regional",
        "--prefix",
        "versioned",
        "--query",
        "Versions[].VersionId",
        "--output",
        "text",
    ])));
    assert_eq!(
        listed.split_whitespace().collect::<Vec<_>>(),
        [version_ids[1].as_str(), version_ids[0].as_str()],
        "{listed}"
    );
    let first = dir.path().join("first");
    run_ok(aws(&running.s3).args([
        "s3api",
        "get-object",
        "--bucket",
        "regional",
        "--key",
        "versioned",
        "--version-id",
        &version_ids[0],
        first.to_str().expect("utf-8"),
    ]));
    assert_eq!(std::fs::read(&first).expect("read"), b"first");

    let suite = stdout(&python_script_with(
        "access_suite.py",
        &running.s3,
        &[],
        &[
            ("ALICE_KEYS", &format!("{} {}", ALICE.0, ALICE.1)),
            ("BOB_KEYS", &format!("{} {}", BOB.0, BOB.1)),
        ],
    ));
    assert!(suite.contains(" passed, 0 failed"), "{suite}");
}

#[test]
fn acknowledged_objects_survive_kill_9_of_gateway_and_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node_dir = dir.path().join("node");
    let gateway_dir = dir.path().join("gateway");
    let running = Separate::start(&node_dir, &gateway_dir);
    run_ok(aws(&running.s3).args(["s3", "mb", "s3://durable"]));
    let mut written = Vec::new();
    for (index, size) in [1usize, 4096, 300 * 1024, 9 * 1024 * 1024]
        .into_iter()
        .enumerate()
    {
        let data = random_bytes(100 + index as u64, size);
        let path = dir.path().join(format!("in-{index}"));
        std::fs::write(&path, &data).expect("write");
        let key = format!("k/{index} ü+&=");
        run_ok(aws(&running.s3).args([
            "s3",
            "cp",
            "--quiet",
            path.to_str().expect("utf-8"),
            &format!("s3://durable/{key}"),
        ]));
        written.push((key, data));
    }
    // Acknowledged: now kill both without warning.
    let Separate { node, gateway, .. } = running;
    gateway.kill9().expect("kill -9 the gateway");
    node.kill9().expect("kill -9 the node");
    let running = Separate::start(&node_dir, &gateway_dir);
    for (key, data) in &written {
        let out = dir.path().join("out");
        run_ok(aws(&running.s3).args([
            "s3",
            "cp",
            "--quiet",
            &format!("s3://durable/{key}"),
            out.to_str().expect("utf-8"),
        ]));
        assert!(
            std::fs::read(&out).expect("read") == *data,
            "{key} survived"
        );
    }
}
