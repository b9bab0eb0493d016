//! `zerog validator-init`: keys and a genesis for a new network of validators on one host.

use super::genesis_file::{
    GENESIS_FILE_FORMAT, GenesisFile, LimitsEntry, ValidatorEntry, public_key_hex, write_key,
};
use anyhow::{Context as _, bail};
use chain_lite::ChainConfig;
use consensus::{BlockLimits, Genesis};
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Most validators one `validator-init` creates.
pub const MAX_VALIDATORS: u32 = 100;
pub const GENESIS_FILE: &str = "genesis.json";
pub const KEY_FILE: &str = "key";

/// What `validator-init` wrote.
pub struct Initialized {
    pub genesis_path: PathBuf,
    pub genesis_hash: String,
    /// Per validator: its key file and the command that starts it.
    pub validators: Vec<(PathBuf, String)>,
}

/// The folder of validator `index` under `dir`.
pub fn validator_dir(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("validator-{index}"))
}

/// The chain every validator network starts from: the dev chain's configuration (its funded
/// dev accounts, chain id 31337), so wallets and the SDK work against it as against `--dev`.
pub fn chain_config() -> ChainConfig {
    ChainConfig {
        chain_id: crate::chain::DEV_CHAIN_ID,
        ..ChainConfig::default()
    }
}

/// Validator `index` listens for peers on `base_port + 2 index` and serves JSON-RPC on the
/// port after it, both on loopback.
fn addresses(base_port: u16, index: u32) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let p2p = u32::from(base_port) + 2 * index;
    let rpc = p2p + 1;
    let port = |port: u32| {
        u16::try_from(port).with_context(|| {
            format!("port {port} of validator {index} is above 65535; lower --base-port")
        })
    };
    Ok((
        SocketAddr::new(loopback, port(p2p)?),
        SocketAddr::new(loopback, port(rpc)?),
    ))
}

fn random_seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .context("reading a random seed from /dev/urandom")?;
    Ok(seed)
}

/// Creates `count` validator keys from a fresh random seed and writes `dir/genesis.json` and
/// `dir/validator-i/key`. Refuses a folder that already holds a genesis.
pub fn init(count: u32, dir: &Path, base_port: u16) -> anyhow::Result<Initialized> {
    if count == 0 || count > MAX_VALIDATORS {
        bail!("--count must be 1 to {MAX_VALIDATORS}, not {count}");
    }
    let genesis_path = dir.join(GENESIS_FILE);
    if genesis_path.exists() {
        bail!(
            "{} exists already; pick another --dir (keys are never overwritten)",
            genesis_path.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let keys = consensus::validator_keys(&random_seed()?, count);
    let public_keys = consensus::public_keys(&keys);
    let mut entries = Vec::with_capacity(keys.len());
    for (index, public_key) in (0..count).zip(&public_keys) {
        let (p2p, rpc) = addresses(base_port, index)?;
        entries.push(ValidatorEntry {
            public_key: public_key_hex(public_key),
            p2p,
            rpc,
        });
    }
    let file = GenesisFile {
        format: GENESIS_FILE_FORMAT,
        chain: chain_config(),
        limits: LimitsEntry::from(BlockLimits::DEFAULT),
        validators: entries,
    };
    let genesis = Genesis::new(file.chain.clone(), public_keys, BlockLimits::DEFAULT)?;
    let mut validators = Vec::with_capacity(keys.len());
    for (index, key) in (0..count).zip(&keys) {
        let folder = validator_dir(dir, index);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let key_path = folder.join(KEY_FILE);
        write_key(&key_path, key)?;
        let command = format!(
            "zerog validator --genesis {} --key {} --data-dir {}",
            genesis_path.display(),
            key_path.display(),
            folder.join("data").display()
        );
        validators.push((key_path, command));
    }
    // The genesis last: a folder with a genesis has all its keys.
    let mut json = serde_json::to_vec_pretty(&file).context("encoding the genesis")?;
    json.push(b'\n');
    std::fs::write(&genesis_path, json)
        .with_context(|| format!("writing {}", genesis_path.display()))?;
    Ok(Initialized {
        genesis_path,
        genesis_hash: hex::encode(genesis.hash().0),
        validators,
    })
}

/// `zerog validator-init`: writes the network's files and prints how to start each validator.
pub fn run(count: u32, dir: &Path, base_port: u16) -> anyhow::Result<()> {
    let initialized = init(count, dir, base_port)?;
    println!(
        "genesis {} (hash 0x{})",
        initialized.genesis_path.display(),
        initialized.genesis_hash
    );
    for (index, (key_path, command)) in initialized.validators.iter().enumerate() {
        println!("validator {index}: key {}", key_path.display());
        println!("  {command}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::genesis_file::read_key;
    use commonware_cryptography::Signer as _;
    use std::collections::HashSet;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn init_writes_keys_and_a_genesis_that_loads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let network = dir.path().join("net");
        let initialized = init(4, &network, 40_000).expect("init");
        let loaded = GenesisFile::load(&initialized.genesis_path).expect("genesis loads");
        assert_eq!(
            hex::encode(loaded.genesis.hash().0),
            initialized.genesis_hash,
            "the hash printed is the hash of the file"
        );
        assert_eq!(loaded.genesis.chain().chain_id, crate::chain::DEV_CHAIN_ID);
        assert_eq!(loaded.genesis.limits(), BlockLimits::DEFAULT);
        let mut seen = HashSet::new();
        for (index, (key_path, command)) in initialized.validators.iter().enumerate() {
            let mode = std::fs::metadata(key_path)
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key_path.display());
            let key = read_key(key_path).expect("key reads back");
            let public_key = key.public_key();
            assert!(seen.insert(public_key.clone()), "keys are distinct");
            let entry = loaded.entry(&public_key).expect("each key is a validator");
            assert_eq!(entry.p2p.port(), 40_000 + 2 * index as u16);
            assert_eq!(entry.rpc.port(), 40_001 + 2 * index as u16);
            assert!(loaded.genesis.signer(key).is_some());
            assert!(command.contains(&key_path.display().to_string()));
        }
        assert_eq!(seen.len(), 4);
        let again = init(4, &network, 40_000);
        assert!(again.is_err(), "an existing genesis is never overwritten");
        let other = init(4, &dir.path().join("other"), 40_000).expect("init");
        assert_ne!(
            other.genesis_hash, initialized.genesis_hash,
            "every init draws new keys"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("genesis.json");
        let error = format!("{:#}", GenesisFile::load(&missing).err().expect("missing"));
        assert!(
            error.contains("genesis.json") && error.contains("cannot read"),
            "{error}"
        );
        std::fs::write(&missing, b"{\"format\": 1}").expect("write");
        let error = format!("{:#}", GenesisFile::load(&missing).err().expect("bad"));
        assert!(error.contains("not a valid genesis file"), "{error}");

        let initialized = init(1, &dir.path().join("net"), 40_000).expect("init");
        let key_path = &initialized.validators[0].0;
        std::fs::set_permissions(key_path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = format!("{:#}", read_key(key_path).expect_err("readable by others"));
        assert!(error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(key_path, b"abcd\n").expect("write");
        let error = format!("{:#}", read_key(key_path).expect_err("short"));
        assert!(error.contains("2 bytes"), "{error}");
        assert!(init(0, &dir.path().join("none"), 40_000).is_err());
        assert!(init(4, &dir.path().join("high"), 65_530).is_err());
    }
}
