//! The files a validator starts from: `genesis.json` (what every validator of a network must
//! hold byte for byte: chain configuration, validators with their addresses, block limits) and
//! its key file (the ed25519 secret as hex, readable by its owner only).
//!
//! The genesis file lists each validator's p2p and RPC address beside its public key, so one
//! file tells every validator where its peers listen; the consensus genesis (and its hash)
//! commits to the chain configuration, the keys and the limits, not to the addresses.

use anyhow::{Context as _, bail};
use chain_lite::ChainConfig;
use commonware_codec::{DecodeExt as _, Encode as _};
use consensus::{BlockLimits, Genesis, PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

/// The version of `genesis.json` this build reads and writes.
pub const GENESIS_FILE_FORMAT: u64 = 1;
/// Largest genesis file read (a network of thousands of validators fits).
const MAX_GENESIS_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes of an ed25519 secret key.
const SECRET_KEY_BYTES: usize = 32;

/// One validator as the genesis file lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidatorEntry {
    /// The ed25519 public key, hex.
    pub public_key: String,
    /// Where the validator accepts consensus connections.
    pub p2p: SocketAddr,
    /// Where the validator serves the Ethereum JSON-RPC facade.
    pub rpc: SocketAddr,
}

/// [`BlockLimits`] as the genesis file spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsEntry {
    pub max_transactions: u32,
    pub max_transaction_bytes: u32,
    pub max_block_bytes: u32,
}

impl From<BlockLimits> for LimitsEntry {
    fn from(limits: BlockLimits) -> LimitsEntry {
        LimitsEntry {
            max_transactions: limits.max_transactions,
            max_transaction_bytes: limits.max_transaction_bytes,
            max_block_bytes: limits.max_block_bytes,
        }
    }
}

impl From<LimitsEntry> for BlockLimits {
    fn from(limits: LimitsEntry) -> BlockLimits {
        BlockLimits {
            max_transactions: limits.max_transactions,
            max_transaction_bytes: limits.max_transaction_bytes,
            max_block_bytes: limits.max_block_bytes,
        }
    }
}

/// `genesis.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisFile {
    pub format: u64,
    pub chain: ChainConfig,
    pub limits: LimitsEntry,
    pub validators: Vec<ValidatorEntry>,
}

/// A parsed genesis file and the consensus genesis it describes.
pub struct LoadedGenesis {
    pub file: GenesisFile,
    /// The validators' public keys, in file order.
    pub keys: Vec<PublicKey>,
    pub genesis: Genesis,
}

impl LoadedGenesis {
    /// The file's entry of validator `key`, if it is one.
    pub fn entry(&self, key: &PublicKey) -> Option<&ValidatorEntry> {
        self.keys
            .iter()
            .position(|listed| listed == key)
            .map(|position| &self.file.validators[position])
    }
}

impl GenesisFile {
    /// Checks the file's contents and builds the consensus genesis.
    pub fn check(self) -> anyhow::Result<LoadedGenesis> {
        if self.format != GENESIS_FILE_FORMAT {
            bail!(
                "format {} is not the genesis format {GENESIS_FILE_FORMAT} this build reads",
                self.format
            );
        }
        let mut keys = Vec::with_capacity(self.validators.len());
        for (position, entry) in self.validators.iter().enumerate() {
            let key = public_key_from_hex(&entry.public_key)
                .with_context(|| format!("validator {position}: publicKey"))?;
            keys.push(key);
        }
        let genesis = Genesis::new(self.chain.clone(), keys.clone(), self.limits.into())?;
        Ok(LoadedGenesis {
            file: self,
            keys,
            genesis,
        })
    }

    /// Reads and checks a genesis file; every error names the file and what is wrong.
    pub fn load(path: &Path) -> anyhow::Result<LoadedGenesis> {
        let context = || format!("genesis file {}", path.display());
        let metadata =
            std::fs::metadata(path).with_context(|| format!("{}: cannot read it", context()))?;
        if metadata.len() > MAX_GENESIS_FILE_BYTES {
            bail!(
                "{}: {} bytes is more than a genesis file may hold ({MAX_GENESIS_FILE_BYTES})",
                context(),
                metadata.len()
            );
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read it", context()))?;
        let file: GenesisFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a valid genesis file", context()))?;
        file.check().with_context(context)
    }
}

pub fn public_key_hex(key: &PublicKey) -> String {
    hex::encode(key.encode())
}

pub fn public_key_from_hex(text: &str) -> anyhow::Result<PublicKey> {
    let bytes = hex::decode(text.trim_start_matches("0x")).context("not hex")?;
    PublicKey::decode(bytes::Bytes::from(bytes))
        .map_err(|error| anyhow::anyhow!("not an ed25519 public key: {error}"))
}

/// Writes `key` as hex to `path`, readable and writable by its owner only (mode 0600 from the
/// moment the file exists). Refuses to overwrite an existing key.
pub fn write_key(path: &Path, key: &PrivateKey) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating key file {}", path.display()))?;
    let mut text = hex::encode(key.encode());
    text.push('\n');
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing key file {}", path.display()))
}

/// Reads a key file written by [`write_key`]; refuses one that others may read.
pub fn read_key(path: &Path) -> anyhow::Result<PrivateKey> {
    use std::os::unix::fs::PermissionsExt as _;
    let context = || format!("key file {}", path.display());
    let metadata =
        std::fs::metadata(path).with_context(|| format!("{}: cannot read it", context()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{}: mode {mode:o} lets other users read the key; chmod 600 it",
            context()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{}: cannot read it", context()))?;
    let bytes = hex::decode(text.trim().trim_start_matches("0x"))
        .with_context(|| format!("{}: not hex", context()))?;
    if bytes.len() != SECRET_KEY_BYTES {
        bail!(
            "{}: {} bytes, an ed25519 secret key is {SECRET_KEY_BYTES}",
            context(),
            bytes.len()
        );
    }
    PrivateKey::decode(bytes::Bytes::from(bytes))
        .map_err(|error| anyhow::anyhow!("{}: not an ed25519 secret key: {error}", context()))
}
