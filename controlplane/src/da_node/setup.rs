//! From the command line to a running DA side, once the node's RPC server listens: connect to
//! the chain (the node's own facade with `--dev`), and with `--da` register the DA-node role and
//! start its pruner. A DA node that cannot register stops: it would store shards nobody asks it
//! for. A node that only disperses keeps trying to reach the chain and serves storage meanwhile.
//!
//! A dev node (`--dev` without `--da`) keeps its role's settings aside: the first dispersal on
//! a chain that has no signer registers this node as the signer, so `zerog da put` works
//! against a plain `zerog node --dev` from its first command.

use super::chain::DaChain;
use super::role::DaRole;
use crate::cli::NodeArgs;
use crate::node::Node;
use alloy_primitives::U256;
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// Shortest retention a DA node accepts: shards must outlive the dispersal that signs for them.
const MIN_DA_RETENTION_SECS: u64 = 60;
/// Longest pause between two attempts to reach the chain.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(30);

/// What the DA side of a node needs once its RPC server runs.
pub struct DaSetup {
    chain_url: String,
    payer: Option<Rc<client::Payer>>,
    /// Whether `da_putBlob` is served (it spends the chain account).
    disperse: bool,
    role: Option<RoleSetup>,
    /// With `--dev`: the role is registered on first need instead of at start.
    dev_lazy: bool,
}

/// The DA-node role's settings.
#[derive(Clone)]
pub struct RoleSetup {
    /// `--da-bls-seed`, else the seed kept in the data folder (made on first use).
    seed: Option<Vec<u8>>,
    data_dir: std::path::PathBuf,
    endpoint: String,
    stake: U256,
    retention: Duration,
    prune_every: Duration,
    quota_bytes: Option<u64>,
}

impl DaSetup {
    /// The DA side of `args`; `payer` is the node's account (`--chain-key`, or the first dev
    /// account with `--dev`).
    pub fn from_args(
        args: &NodeArgs,
        address: SocketAddr,
        payer: Option<Rc<client::Payer>>,
    ) -> anyhow::Result<DaSetup> {
        let own_url = crate::api::indexer::url_for_listen_address(address);
        let chain_url = args.chain_rpc.clone().unwrap_or_else(|| own_url.clone());
        let disperse = args.dev || args.da_disperse;
        if args.da_disperse && payer.is_none() {
            bail!("--da-disperse needs --chain-key: the disperser pays for certificates");
        }
        if args.da && payer.is_none() {
            bail!("--da needs --chain-key: a DA node registers itself and pays its stake");
        }
        let dev_lazy = args.dev && !args.da;
        let role = if args.da || dev_lazy {
            if args.da_retention_secs < MIN_DA_RETENTION_SECS {
                bail!("--da-retention-secs must be at least {MIN_DA_RETENTION_SECS}");
            }
            let seed = match &args.da_bls_seed {
                Some(seed) => Some(
                    hex::decode(seed.strip_prefix("0x").unwrap_or(seed))
                        .context("--da-bls-seed is not hex")?,
                ),
                None => None,
            };
            Some(RoleSetup {
                seed,
                data_dir: args.data_dir.clone(),
                endpoint: args.da_endpoint.clone().unwrap_or(own_url),
                stake: args.da_stake_wei.parse().context("--da-stake-wei")?,
                retention: Duration::from_secs(args.da_retention_secs),
                prune_every: Duration::from_secs(args.da_prune_secs.max(1)),
                quota_bytes: args.da_max_mib.map(|mib| mib << 20),
            })
        } else {
            None
        };
        Ok(DaSetup {
            chain_url,
            payer,
            disperse,
            role,
            dev_lazy,
        })
    }

    /// What the node can tell from its flags alone, before the chain is reached: whether it
    /// disperses and whether it has an account to pay with.
    pub fn configure(&self, node: &Node) {
        node.da.configure(self.disperse, self.payer.is_some());
    }

    /// Connects DA to the chain and, with `--da`, registers the role and starts its pruner. A
    /// dev node whose account is already its chain's signer (it registered itself before a
    /// restart) takes its role back at once.
    pub async fn run(self, node: Rc<Node>) {
        if self.dev_lazy || self.role.is_none() {
            let chain = Rc::new(self.connect_until_reachable().await);
            if self.dev_lazy
                && let Some(role) = self.role
            {
                // The pruner has nothing to do until the dev node holds shards.
                tokio::task::spawn_local(super::prune::run(node.clone(), role.prune_every));
                match resume_dev_role(&chain, &role).await {
                    Ok(Some(da_role)) => {
                        let _ = node.da.role.set(Rc::new(da_role));
                    }
                    Ok(None) => *node.da.dev_signer.borrow_mut() = Some(role),
                    Err(error) => tracing::warn!(
                        error = %format!("{error:#}"),
                        "this dev node's account is a DA signer it cannot act as; DA stays off"
                    ),
                }
            }
            node.da.set(chain, None);
            return;
        }
        let result = async {
            let chain = DaChain::connect(&self.chain_url, self.payer.clone()).await?;
            let role = self.role.expect("checked above: --da has a role");
            start_role(&node, Rc::new(chain), role).await
        }
        .await;
        if let Err(error) = result {
            tracing::error!(error = %format!("{error:#}"), "DA setup failed; stopping");
            std::process::exit(1);
        }
    }

    async fn connect_until_reachable(&self) -> DaChain {
        let mut delay = Duration::from_millis(100);
        loop {
            match DaChain::connect(&self.chain_url, self.payer.clone()).await {
                Ok(chain) => return chain,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "cannot reach the chain for DA yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_CONNECT_BACKOFF);
                }
            }
        }
    }
}

impl RoleSetup {
    /// The role, its BLS key from the given seed or the data folder's.
    fn make(&self, address: chain_lite::Address) -> anyhow::Result<DaRole> {
        let seed = match &self.seed {
            Some(seed) => seed.clone(),
            None => seed_from_folder(&self.data_dir)?,
        };
        DaRole::new(&seed, address, self.retention, self.quota_bytes)
    }
}

/// Registers the role (unless its account already is a signer), hands it to the node and
/// starts its pruner.
async fn start_role(node: &Rc<Node>, chain: Rc<DaChain>, role: RoleSetup) -> anyhow::Result<()> {
    let address = chain
        .address()
        .context("a DA node needs a chain account (--chain-key)")?;
    let da_role = Rc::new(role.make(address)?);
    let registered = da_role.register(&chain, &role.endpoint, role.stake).await?;
    tracing::info!(
        signer = %client::wire::hex_data(&address),
        endpoint = %role.endpoint,
        newly_registered = registered,
        "DA node ready"
    );
    node.da.set(chain, Some(da_role));
    tokio::task::spawn_local(super::prune::run(node.clone(), role.prune_every));
    Ok(())
}

/// The dev node's role when its account is already a signer of the chain (registered by an
/// earlier run, with this data folder's key); `None` when it is not registered.
async fn resume_dev_role(chain: &DaChain, role: &RoleSetup) -> anyhow::Result<Option<DaRole>> {
    let address = chain
        .address()
        .context("the dev node has no chain account")?;
    if chain.signer(address).await?.stake.is_zero() {
        return Ok(None);
    }
    let da_role = role.make(address)?;
    // Registered already: this checks the key and the endpoint and sends nothing.
    da_role.register(chain, &role.endpoint, role.stake).await?;
    Ok(Some(da_role))
}

/// Makes a dev node its chain's DA signer; whether it registered now (a node that already holds
/// the role, or is not a dev node, answers `false`). A failed registration is tried again at the
/// next dispersal.
pub async fn register_dev_signer(node: &Node) -> anyhow::Result<bool> {
    let _turn = node.da.dev_registration.lock().await;
    if node.da.role.get().is_some() {
        return Ok(false);
    }
    let Some(role) = node.da.dev_signer.borrow().clone() else {
        return Ok(false);
    };
    let chain = node
        .da
        .chain()
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let address = chain
        .address()
        .context("the dev node has no chain account")?;
    let da_role = Rc::new(role.make(address)?);
    da_role.register(&chain, &role.endpoint, role.stake).await?;
    tracing::info!(
        signer = %client::wire::hex_data(&address),
        endpoint = %role.endpoint,
        "no DA signer on this dev chain: this node registered itself to hold every slot"
    );
    node.da.dev_signer.borrow_mut().take();
    let _ = node.da.role.set(da_role);
    Ok(true)
}

/// The DA BLS seed kept in the data folder, created (32 random bytes, owner-only) on first use.
fn seed_from_folder(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("da-bls.seed");
    if let Ok(seed) = std::fs::read(&path) {
        anyhow::ensure!(
            seed.len() >= 32,
            "{} is shorter than 32 bytes",
            path.display()
        );
        return Ok(seed);
    }
    let mut seed = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .context("reading /dev/urandom")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&seed)?;
    file.sync_all()?;
    Ok(seed)
}
