//! The one Ethereum transaction client: reads (`eth_call` views, final blocks) and signed
//! EIP-1559 transactions — gas price and limit asked of the chain, the nonce taken under the
//! payer's lock, the receipt awaited, a revert explained by replaying the call. The CLI's
//! uploads, the S3 gateway, the DA node and disperser and the benchmarks all send through it.

use crate::error::Error;
use crate::rpc::Client;
use crate::wire::{self, hex_data};
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use types::H256;

/// How long a sent transaction's receipt may take to appear.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest pause between two receipt polls (they start at 1 ms and double: a zerog node seals
/// within milliseconds, a remote chain within its block time).
const MAX_RECEIPT_POLL: Duration = Duration::from_millis(50);

/// The key that signs and pays, with the lock that keeps this process's transactions from
/// taking the same nonce.
pub struct Payer {
    key: PrivateKeySigner,
    nonce_lock: tokio::sync::Mutex<()>,
}

impl Payer {
    pub fn new(key: PrivateKeySigner) -> Payer {
        Payer {
            key,
            nonce_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// A 0x-hex private key.
    pub fn from_hex(text: &str) -> Result<Payer, Error> {
        let key: PrivateKeySigner = text.parse().map_err(|_| Error::BadKey)?;
        Ok(Payer::new(key))
    }

    pub fn address(&self) -> [u8; 20] {
        self.key.address().into_array()
    }

    pub fn address_hex(&self) -> String {
        hex_data(self.key.address().as_slice())
    }

    /// Signs `transaction` for `chain_id`: the raw EIP-2718 bytes `eth_sendRawTransaction` takes.
    pub fn sign(&self, chain_id: u64, transaction: &Transaction) -> Result<Vec<u8>, Error> {
        let unsigned = TxEip1559 {
            chain_id,
            nonce: transaction.nonce,
            gas_limit: transaction.gas_limit,
            max_fee_per_gas: transaction.max_fee_per_gas,
            max_priority_fee_per_gas: 0,
            to: TxKind::Call(transaction.to.into()),
            value: transaction.value,
            input: transaction.input.clone().into(),
            access_list: Default::default(),
        };
        let signature = self
            .key
            .sign_hash_sync(&unsigned.signature_hash())
            .map_err(|source| Error::Sign {
                detail: source.to_string(),
            })?;
        Ok(TxEnvelope::Eip1559(unsigned.into_signed(signature)).encoded_2718())
    }
}

/// What a transaction does and what it may spend; the priority fee is always zero.
#[derive(Clone, Debug)]
pub struct Transaction {
    pub nonce: u64,
    pub gas_limit: u64,
    pub max_fee_per_gas: u128,
    pub to: [u8; 20],
    pub value: U256,
    pub input: Vec<u8>,
}

/// A log of a successful transaction's receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptLog {
    pub address: [u8; 20],
    pub topics: Vec<H256>,
    pub data: Vec<u8>,
}

/// The receipt of a transaction that succeeded (a revert is [`Error::Reverted`]).
#[derive(Clone, Debug)]
pub struct Receipt {
    pub transaction_hash: H256,
    pub block_number: u64,
    pub logs: Vec<ReceiptLog>,
}

/// A chain reached over JSON-RPC, with its chain id read once.
#[derive(Clone)]
pub struct Chain {
    rpc: Client,
    chain_id: u64,
}

impl Chain {
    /// Asks `rpc` for its chain id.
    pub async fn connect(rpc: Client) -> Result<Chain, Error> {
        let chain_id = wire::read_u64(&rpc.call("eth_chainId", json!([])).await?, "eth_chainId")?;
        Ok(Chain { rpc, chain_id })
    }

    pub fn rpc(&self) -> &Client {
        &self.rpc
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// `eth_call` against the latest state: the view's return data.
    pub async fn view(&self, to: [u8; 20], input: &[u8]) -> Result<Vec<u8>, Error> {
        let answer = self
            .rpc
            .call(
                "eth_call",
                json!([{ "to": hex_data(&to), "data": hex_data(input) }, "latest"]),
            )
            .await?;
        Ok(wire::parse_data(&answer, "eth_call result", usize::MAX)?)
    }

    /// The latest final block: number and hash.
    pub async fn finalized_block(&self) -> Result<(u64, H256), Error> {
        let block = self
            .rpc
            .call("eth_getBlockByNumber", json!(["finalized", false]))
            .await?;
        if block.is_null() {
            return Err(Error::Answer {
                what: "the finalized block",
                detail: "the chain has no finalized block yet".to_string(),
            });
        }
        let number = wire::read_u64(&block["number"], "block number")?;
        let hash = wire::parse_hash(&block["hash"], "block hash")?;
        Ok((number, hash))
    }

    /// Signs and sends a call from `payer` with `value` wei, waits for its receipt and returns
    /// it; a revert is an error with the reason the chain gives when the call is replayed.
    pub async fn send(
        &self,
        payer: &Payer,
        to: [u8; 20],
        value: U256,
        input: Vec<u8>,
    ) -> Result<Receipt, Error> {
        let sender = payer.address_hex();
        let call = json!({
            "from": sender,
            "to": hex_data(&to),
            "data": hex_data(&input),
            "value": format!("{value:#x}"),
        });
        let max_fee_per_gas = self.quantity("eth_gasPrice", json!([])).await?;
        let gas_limit = self.u64("eth_estimateGas", json!([call])).await?;
        // From the nonce to the send, no other transaction of this payer may start: the chain
        // counts a transaction in the pending nonce once it has accepted it.
        let hash = {
            let _turn = payer.nonce_lock.lock().await;
            let nonce = self
                .u64("eth_getTransactionCount", json!([sender, "pending"]))
                .await?;
            let transaction = Transaction {
                nonce,
                gas_limit,
                max_fee_per_gas,
                to,
                value,
                input,
            };
            let raw = payer.sign(self.chain_id, &transaction)?;
            self.send_raw(&raw).await?
        };
        match self.wait_for_receipt(hash, RECEIPT_TIMEOUT).await {
            Err(Error::Reverted { hash, .. }) => {
                // Receipts carry no reason: replaying the call shows the one it hits now.
                let reason = match self.rpc.call("eth_call", json!([call, "latest"])).await {
                    Err(error) => error.to_string(),
                    Ok(_) => "no reason given".to_string(),
                };
                Err(Error::Reverted { hash, reason })
            }
            other => other,
        }
    }

    /// `eth_sendRawTransaction`: the transaction's hash.
    pub async fn send_raw(&self, raw: &[u8]) -> Result<H256, Error> {
        let answer = self
            .rpc
            .call("eth_sendRawTransaction", json!([hex_data(raw)]))
            .await?;
        Ok(wire::parse_hash(&answer, "transaction hash")?)
    }

    /// Polls for the receipt of `hash` for at most `timeout`; a receipt with status 0 is
    /// [`Error::Reverted`].
    pub async fn wait_for_receipt(&self, hash: H256, timeout: Duration) -> Result<Receipt, Error> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(1);
        loop {
            let receipt = self
                .rpc
                .call("eth_getTransactionReceipt", json!([hash]))
                .await?;
            if !receipt.is_null() {
                if receipt.get("status") != Some(&json!("0x1")) {
                    return Err(Error::Reverted {
                        hash,
                        reason: "status 0".to_string(),
                    });
                }
                return Ok(parse_receipt(&receipt)?);
            }
            if started.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: format!("the receipt of {hash}"),
                    seconds: timeout.as_secs(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RECEIPT_POLL);
        }
    }

    async fn quantity(&self, method: &'static str, params: Value) -> Result<u128, Error> {
        Ok(wire::read_quantity(
            &self.rpc.call(method, params).await?,
            method,
        )?)
    }

    async fn u64(&self, method: &'static str, params: Value) -> Result<u64, Error> {
        Ok(wire::read_u64(
            &self.rpc.call(method, params).await?,
            method,
        )?)
    }
}

fn parse_receipt(receipt: &Value) -> Result<Receipt, wire::WireError> {
    let transaction_hash = wire::parse_hash(&receipt["transactionHash"], "transactionHash")?;
    let block_number = wire::read_u64(&receipt["blockNumber"], "blockNumber")?;
    // The transport capped the whole answer; a log is as large as the answer allows.
    let no_logs = Vec::new();
    let logs = receipt["logs"].as_array().unwrap_or(&no_logs);
    let logs = logs
        .iter()
        .map(|log| {
            let topics = log["topics"]
                .as_array()
                .map(|topics| {
                    topics
                        .iter()
                        .map(|topic| wire::parse_hash(topic, "log topic"))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            Ok(ReceiptLog {
                address: wire::parse_fixed::<20>(&log["address"], "log address")?,
                topics,
                data: wire::parse_data(&log["data"], "log data", usize::MAX)?,
            })
        })
        .collect::<Result<Vec<_>, wire::WireError>>()?;
    Ok(Receipt {
        transaction_hash,
        block_number,
        logs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_parse_with_their_logs() {
        let topic = format!("0x{}", "11".repeat(32));
        let receipt = json!({
            "transactionHash": format!("0x{}", "aa".repeat(32)),
            "blockNumber": "0x7",
            "status": "0x1",
            "logs": [{ "address": format!("0x{}", "22".repeat(20)), "topics": [topic], "data": "0x0102" }],
        });
        let parsed = parse_receipt(&receipt).expect("a valid receipt");
        assert_eq!(parsed.block_number, 7);
        assert_eq!(parsed.transaction_hash.0, [0xaa; 32]);
        assert_eq!(
            parsed.logs,
            vec![ReceiptLog {
                address: [0x22; 20],
                topics: vec![H256([0x11; 32])],
                data: vec![1, 2],
            }]
        );
        assert!(parse_receipt(&json!({ "blockNumber": "0x7" })).is_err());
    }

    #[test]
    fn signed_transactions_recover_to_the_payer() {
        use alloy_consensus::transaction::SignerRecoverable;
        use alloy_eips::eip2718::Decodable2718;
        let payer = Payer::from_hex(chain_lite::DEV_ACCOUNTS[0].private_key).expect("a key");
        let raw = payer
            .sign(
                31337,
                &Transaction {
                    nonce: 3,
                    gas_limit: 21_000,
                    max_fee_per_gas: 7,
                    to: [9; 20],
                    value: U256::from(5u64),
                    input: vec![1, 2, 3],
                },
            )
            .expect("signs");
        let envelope = TxEnvelope::decode_2718(&mut raw.as_slice()).expect("decodes");
        assert_eq!(
            envelope.recover_signer().expect("recovers").into_array(),
            payer.address()
        );
        assert_eq!(payer.address(), chain_lite::DEV_ACCOUNTS[0].address);
    }
}
