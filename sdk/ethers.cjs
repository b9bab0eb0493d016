// ethers v6, as a wallet or a dapp uses it, against the Ethereum facade of a zerog dev node.
//
// Usage: node sdk/ethers.cjs --rpc URL --key HEX [--account ADDRESS]...
//
// In order, with a `JsonRpcProvider` at --rpc (ethers' request cache off, so every read reaches the
// node) and a `Wallet` of --key (a funded dev key):
//   1. chain: `getNetwork()`, `getBlockNumber()`, `getBlock('latest')`, `getBlock('finalized')`,
//      `getFeeData()`; the balance and nonce of the wallet and of every --account;
//   2. every view of Flow, Market and Reward through `ethers.Contract` (human-readable ABIs below,
//      written from chain-lite's `abi.rs` and 0G's FixedPriceFlow / FixedPrice ABIs), with
//      `staticCall`, recording each value or ethers' revert reason; also which view functions the
//      official SDK's contract ABIs declare, and whether our fragments have the SDK's selectors;
//   3. `estimateGas` of a transfer, then `wallet.sendTransaction` of value to a fresh address and
//      `tx.wait()`: receipt, balances and nonces before and after, `getTransaction` round trip;
//   4. a contract deployment, through `ContractFactory.deploy()` and as a raw creation
//      transaction with its own gas limit: each error as ethers reports it;
//   5. a one-sector Flow `submit` through `ethers.Contract` (fee = pricePerSector), the views
//      again, and `getLogs` over blocks 0..latest (the Submit event decoded with the Flow ABI);
//   6. refusals: a transfer reusing nonce 0 (NONCE_EXPIRED) and a transfer from an unfunded key,
//      both as a wallet sends it (estimateGas first) and with an explicit gas limit
//      (eth_sendRawTransaction directly): INSUFFICIENT_FUNDS.
// One JSON object goes to stdout (numbers as decimal strings); a failure of the script itself is
// {"error": "..."} with exit status 1. Expected failures are recorded, never thrown.
'use strict';

const path = require('node:path');
const { createRequire } = require('node:module');

const local = createRequire(path.join(__dirname, 'package.json'));
const { ethers } = local('ethers');

const FLOW = '0x0000000000000000000000000000000000001000';
const MARKET = '0x0000000000000000000000000000000000001001';
const REWARD = '0x0000000000000000000000000000000000001002';

// Structs as 0G declares them; ethers names the tuple fields from these.
const MINE_CONTEXT =
  'tuple(uint256 epoch, uint256 mineStart, bytes32 flowRoot, uint256 flowLength, bytes32 blockDigest, bytes32 digest)';
const SUBMISSION =
  'tuple(tuple(uint256 length, bytes tags, tuple(bytes32 root, uint256 height)[] nodes) data, address submitter)';
const SUBMISSION_DATA =
  'tuple(uint256 length, bytes tags, tuple(bytes32 root, uint256 height)[] nodes)';

const FLOW_ABI = [
  // chain-lite's Flow (abi.rs), as FixedPriceFlow declares these functions.
  'function market() view returns (address)',
  'function numSubmissions() view returns (uint256)',
  'function submissionIndex() view returns (uint256)',
  'function getFlowRootByTxSeq(uint256 txSeq) view returns (bytes32)',
  'function computeFlowRoot() returns (bytes32)',
  'function tree() view returns (uint256 currentLength, uint256 unstagedHeight)',
  'function epoch() view returns (uint256)',
  'function epochStartPosition() view returns (uint256)',
  'function blocksPerEpoch() view returns (uint256)',
  'function firstBlock() view returns (uint256)',
  'function deployDelay() view returns (uint256)',
  'function paused() view returns (bool)',
  'function rootHistory() view returns (address)',
  `function getContext() view returns (${MINE_CONTEXT})`,
  'function makeContext()',
  `function makeContextWithResult() returns (${MINE_CONTEXT})`,
  'function makeContextFixedTimes(uint256 cnt)',
  'function getEpochRange(bytes32 digest) view returns (tuple(uint128 start, uint128 end))',
  'function getEpochRangeHistory(uint256 index) view returns (tuple(uint128 start, uint128 end, bytes32 digest))',
  'function queryContextAtPosition(uint128 targetPosition) returns (tuple(uint128 start, uint128 end, bytes32 digest) range)',
  `function submit(${SUBMISSION} submission) payable returns (uint256 index, bytes32 digest, uint256 startIndex, uint256 length)`,
  // FixedPriceFlow's access control and ERC-165 views, which chain-lite does not declare.
  'function DEFAULT_ADMIN_ROLE() view returns (bytes32)',
  'function PAUSER_ROLE() view returns (bytes32)',
  'function getRoleAdmin(bytes32 role) view returns (bytes32)',
  'function getRoleMember(bytes32 role, uint256 index) view returns (address)',
  'function getRoleMemberCount(bytes32 role) view returns (uint256)',
  'function hasRole(bytes32 role, address account) view returns (bool)',
  'function supportsInterface(bytes4 interfaceId) view returns (bool)',
  `event Submit(address indexed sender, bytes32 indexed identity, uint256 submissionIndex, uint256 startPos, uint256 length, ${SUBMISSION_DATA} submission)`,
];

const MARKET_ABI = [
  'function pricePerSector() view returns (uint256)',
  'function flow() view returns (address)',
  'function reward() view returns (address)',
  'function chargeFee(uint256 beforeLength, uint256 uploadSectors, uint256 paddingSectors)',
  'function DEFAULT_ADMIN_ROLE() view returns (bytes32)',
  'function PARAMS_ADMIN_ROLE() view returns (bytes32)',
  'function getRoleAdmin(bytes32 role) view returns (bytes32)',
  'function getRoleMember(bytes32 role, uint256 index) view returns (address)',
  'function getRoleMemberCount(bytes32 role) view returns (uint256)',
  'function hasRole(bytes32 role, address account) view returns (bool)',
  'function supportsInterface(bytes4 interfaceId) view returns (bool)',
];

const REWARD_ABI = [
  'function rewards(uint256 pricingIndex) view returns (uint256 total, uint256 released, uint256 claimed, uint256 startTime)',
  'function releaseSeconds() view returns (uint256)',
  'function claimMineReward(uint256 pricingIndex, address beneficiary, bytes32 minerId)',
];

// A creation transaction's init code: returns runtime code that answers 42. Any bytes would do:
// the point is that the chain refuses creation.
const INIT_CODE = '0x600a600c600039600a6000f3602a60005260206000f3';

function parseArgs(argv) {
  const args = { accounts: [] };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--rpc': args.rpc = next(); break;
      case '--key': args.key = next(); break;
      case '--account': args.accounts.push(next()); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!args.rpc || !args.key) throw new Error('usage: ethers.cjs --rpc URL --key HEX [--account ADDRESS]...');
  return args;
}

// JSON-safe: bigints as decimal strings, ethers Results as arrays (deep).
function plain(value) {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof ethers.Result) return value.toArray(true).map(plain);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [key, inner] of Object.entries(value)) out[key] = plain(inner);
    return out;
  }
  return value;
}

// What ethers says about an error: its code, reason and short message, and the node's own
// JSON-RPC error underneath (info.error) when there is one.
function describeError(error) {
  const rpc = (error.info && error.info.error) || error.error || null;
  return {
    code: error.code ?? null,
    reason: error.reason ?? null,
    shortMessage: error.shortMessage ?? String(error.message).split('\n')[0],
    data: typeof error.data === 'string' ? error.data : null,
    rpcCode: rpc && rpc.code !== undefined ? rpc.code : null,
    rpcMessage: rpc && typeof rpc.message === 'string' ? rpc.message : null,
  };
}

async function attempt(action) {
  try {
    return { ok: true, value: plain(await action()) };
  } catch (error) {
    if (!error || error.code === undefined) throw error;
    return { ok: false, ...describeError(error) };
  }
}

function blockSummary(block) {
  if (!block) return null;
  return {
    number: block.number,
    hash: block.hash,
    parentHash: block.parentHash,
    timestamp: block.timestamp,
    gasLimit: block.gasLimit.toString(),
    gasUsed: block.gasUsed.toString(),
    baseFeePerGas: block.baseFeePerGas === null ? null : block.baseFeePerGas.toString(),
    transactions: block.transactions,
  };
}

function receiptSummary(receipt) {
  return {
    hash: receipt.hash,
    status: receipt.status,
    type: receipt.type,
    from: receipt.from,
    to: receipt.to,
    contractAddress: receipt.contractAddress,
    blockNumber: receipt.blockNumber,
    blockHash: receipt.blockHash,
    index: receipt.index,
    gasUsed: receipt.gasUsed.toString(),
    cumulativeGasUsed: receipt.cumulativeGasUsed.toString(),
    gasPrice: receipt.gasPrice.toString(),
    fee: receipt.fee.toString(),
    logs: receipt.logs.length,
  };
}

// The official SDK's contract ABIs: which functions 0G declares as views, and their selectors.
function sdkAbi(file) {
  // By path: the package's `exports` map does not expose the market factory.
  const factory = require(path.join(__dirname, 'node_modules/@0gfoundation/0g-ts-sdk/lib.commonjs/contracts', file));
  const key = Object.keys(factory).find((name) => name.endsWith('__factory'));
  return new ethers.Interface(factory[key].abi);
}

function abiReport(ours, sdk) {
  const views = [];
  sdk.forEachFunction((fragment) => {
    if (fragment.constant) views.push(fragment.format('sighash'));
  });
  const mismatched = [];
  ours.forEachFunction((fragment) => {
    const theirs = sdk.getFunction(fragment.selector);
    if (!theirs || theirs.format('sighash') !== fragment.format('sighash')) {
      mismatched.push(fragment.format('sighash'));
    } else if (theirs.outputs.map((o) => o.format('sighash')).join(',') !==
      fragment.outputs.map((o) => o.format('sighash')).join(',')) {
      mismatched.push(`${fragment.format('sighash')} returns`);
    }
  });
  return { views, mismatched };
}

// Every view (and every function that only returns a value) of the modules, with the arguments
// to call it with. Functions that change state are called with staticCall: no transaction.
function viewCalls(sender) {
  const zero = ethers.ZeroHash;
  return [
    ['Flow', 'market()', []],
    ['Flow', 'numSubmissions()', []],
    ['Flow', 'submissionIndex()', []],
    ['Flow', 'getFlowRootByTxSeq(uint256)', [0]],
    ['Flow', 'getFlowRootByTxSeq(uint256)', [1]],
    ['Flow', 'computeFlowRoot()', []],
    ['Flow', 'tree()', []],
    ['Flow', 'epoch()', []],
    ['Flow', 'epochStartPosition()', []],
    ['Flow', 'blocksPerEpoch()', []],
    ['Flow', 'firstBlock()', []],
    ['Flow', 'deployDelay()', []],
    ['Flow', 'paused()', []],
    ['Flow', 'rootHistory()', []],
    ['Flow', 'getContext()', []],
    ['Flow', 'makeContext()', []],
    ['Flow', 'makeContextWithResult()', []],
    ['Flow', 'makeContextFixedTimes(uint256)', [1]],
    ['Flow', 'getEpochRange(bytes32)', [zero]],
    ['Flow', 'getEpochRangeHistory(uint256)', [0]],
    ['Flow', 'queryContextAtPosition(uint128)', [0]],
    ['Flow', 'DEFAULT_ADMIN_ROLE()', []],
    ['Flow', 'PAUSER_ROLE()', []],
    ['Flow', 'getRoleAdmin(bytes32)', [zero]],
    ['Flow', 'getRoleMember(bytes32,uint256)', [zero, 0]],
    ['Flow', 'getRoleMemberCount(bytes32)', [zero]],
    ['Flow', 'hasRole(bytes32,address)', [zero, sender]],
    ['Flow', 'supportsInterface(bytes4)', ['0x01ffc9a7']],
    ['Market', 'pricePerSector()', []],
    ['Market', 'flow()', []],
    ['Market', 'reward()', []],
    ['Market', 'chargeFee(uint256,uint256,uint256)', [0, 1, 0]],
    ['Market', 'DEFAULT_ADMIN_ROLE()', []],
    ['Market', 'PARAMS_ADMIN_ROLE()', []],
    ['Market', 'getRoleAdmin(bytes32)', [zero]],
    ['Market', 'getRoleMember(bytes32,uint256)', [zero, 0]],
    ['Market', 'getRoleMemberCount(bytes32)', [zero]],
    ['Market', 'hasRole(bytes32,address)', [zero, sender]],
    ['Market', 'supportsInterface(bytes4)', ['0x01ffc9a7']],
    ['Reward', 'rewards(uint256)', [0]],
    ['Reward', 'rewards(uint256)', [1]],
    ['Reward', 'releaseSeconds()', []],
    ['Reward', 'claimMineReward(uint256,address,bytes32)', [0, sender, zero]],
  ];
}

async function callViews(contracts, sender) {
  const results = [];
  for (const [module, signature, args] of viewCalls(sender)) {
    const result = await attempt(() => contracts[module].getFunction(signature).staticCall(...args));
    results.push({ module, function: signature, args: plain(args), ...result });
  }
  return results;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  // Blocks are sealed at once: poll fast so `tx.wait()` does not sleep ethers' default 4 s.
  // No request cache: by default ethers answers a request identical to one made in the last
  // 250 ms with that request's answer, without asking the node, so a balance read right after
  // `tx.wait()` could be the one read just before the transaction was sent.
  const provider = new ethers.JsonRpcProvider(args.rpc, undefined, { pollingInterval: 50, cacheTimeout: -1 });
  const wallet = new ethers.Wallet(args.key, provider);
  const sender = wallet.address;
  const out = { sender, cacheTimeout: provider._getOption('cacheTimeout') };

  // 1. The chain as ethers sees it.
  const network = await provider.getNetwork();
  out.network = { chainId: network.chainId.toString(), name: network.name };
  out.blockNumber = await provider.getBlockNumber();
  out.latest = blockSummary(await provider.getBlock('latest'));
  out.finalized = blockSummary(await provider.getBlock('finalized'));
  const fee = await provider.getFeeData();
  out.feeData = plain({
    gasPrice: fee.gasPrice,
    maxFeePerGas: fee.maxFeePerGas,
    maxPriorityFeePerGas: fee.maxPriorityFeePerGas,
  });
  out.accounts = {};
  for (const address of [sender, ...args.accounts]) {
    out.accounts[ethers.getAddress(address)] = {
      balance: (await provider.getBalance(address)).toString(),
      nonce: await provider.getTransactionCount(address),
      pendingNonce: await provider.getTransactionCount(address, 'pending'),
    };
  }
  out.code = {};
  for (const address of [FLOW, MARKET, REWARD, sender]) {
    out.code[ethers.getAddress(address)] = await provider.getCode(address);
  }

  // 2. Every module view, before anything was submitted.
  const contracts = {
    Flow: new ethers.Contract(FLOW, FLOW_ABI, wallet),
    Market: new ethers.Contract(MARKET, MARKET_ABI, wallet),
    Reward: new ethers.Contract(REWARD, REWARD_ABI, wallet),
  };
  out.abi = {
    Flow: abiReport(contracts.Flow.interface, sdkAbi('flow/factories/FixedPriceFlow__factory.js')),
    Market: abiReport(contracts.Market.interface, sdkAbi('market/factories/FixedPrice__factory.js')),
  };
  out.views = await callViews(contracts, sender);

  // 3. A value transfer to a fresh address.
  const recipient = ethers.Wallet.createRandom().address;
  const value = ethers.parseEther('1.5');
  const transfer = { to: recipient, value: value.toString() };
  transfer.estimateGas = (await provider.estimateGas({ from: sender, to: recipient, value })).toString();
  transfer.senderBalanceBefore = (await provider.getBalance(sender)).toString();
  transfer.senderNonceBefore = await provider.getTransactionCount(sender);
  transfer.recipientBalanceBefore = (await provider.getBalance(recipient)).toString();
  const response = await wallet.sendTransaction({ to: recipient, value });
  transfer.hash = response.hash;
  transfer.sent = plain({
    type: response.type,
    nonce: response.nonce,
    gasLimit: response.gasLimit,
    maxFeePerGas: response.maxFeePerGas,
    maxPriorityFeePerGas: response.maxPriorityFeePerGas,
    chainId: response.chainId,
  });
  const receipt = await response.wait();
  transfer.receipt = receiptSummary(receipt);
  transfer.senderBalanceAfter = (await provider.getBalance(sender)).toString();
  transfer.senderNonceAfter = await provider.getTransactionCount(sender);
  transfer.recipientBalanceAfter = (await provider.getBalance(recipient)).toString();
  const mined = await provider.getTransaction(response.hash);
  transfer.lookup = plain({
    type: mined.type,
    from: mined.from,
    to: mined.to,
    nonce: mined.nonce,
    value: mined.value,
    gasLimit: mined.gasLimit,
    blockNumber: mined.blockNumber,
    chainId: mined.chainId,
    // The fields and signature the node returned hash back to the transaction's hash.
    rehashes: ethers.Transaction.from({
      type: mined.type,
      to: mined.to,
      nonce: mined.nonce,
      gasLimit: mined.gasLimit,
      maxFeePerGas: mined.maxFeePerGas,
      maxPriorityFeePerGas: mined.maxPriorityFeePerGas,
      data: mined.data,
      value: mined.value,
      chainId: mined.chainId,
      accessList: mined.accessList,
      signature: mined.signature,
    }).hash === response.hash,
    confirmations: await mined.confirmations(),
  });
  transfer.block = blockSummary(await provider.getBlock(receipt.blockNumber));
  out.transfer = transfer;

  // 4. Contract creation: refused.
  const nonceBeforeDeploy = await provider.getTransactionCount(sender);
  const factory = new ethers.ContractFactory([], INIT_CODE, wallet);
  out.deploy = {
    factory: await attempt(async () => {
      const contract = await factory.deploy();
      await contract.waitForDeployment();
      return contract.target;
    }),
    rawCreation: await attempt(async () => {
      const tx = await wallet.sendTransaction({ data: INIT_CODE, gasLimit: 200000 });
      return (await tx.wait()).contractAddress;
    }),
  };
  out.deploy.nonceUnchanged = (await provider.getTransactionCount(sender)) === nonceBeforeDeploy;

  // 5. A one-sector Flow submission (256 bytes: one node of height 0), the views again, logs.
  const price = await contracts.Market.pricePerSector();
  const submission = {
    data: { length: 256, tags: '0x', nodes: [{ root: ethers.keccak256(ethers.toUtf8Bytes('zerog ethers.cjs')), height: 0 }] },
    submitter: sender,
  };
  const submitBalanceBefore = await provider.getBalance(sender);
  const rewardBalanceBefore = await provider.getBalance(REWARD);
  const submitted = await contracts.Flow.submit(submission, { value: price });
  const submitReceipt = await submitted.wait();
  out.submit = {
    root: submission.data.nodes[0].root,
    fee: price.toString(),
    senderBalanceBefore: submitBalanceBefore.toString(),
    senderBalanceAfter: (await provider.getBalance(sender)).toString(),
    rewardBalanceBefore: rewardBalanceBefore.toString(),
    rewardBalanceAfter: (await provider.getBalance(REWARD)).toString(),
    receipt: receiptSummary(submitReceipt),
    // Reward pools start and release by block time: the views below read at this block.
    block: blockSummary(await provider.getBlock(submitReceipt.blockNumber)),
    parentBlock: blockSummary(await provider.getBlock(submitReceipt.blockNumber - 1)),
    events: submitReceipt.logs.map((log) => {
      const parsed = contracts.Flow.interface.parseLog(log);
      return parsed ? { name: parsed.name, args: plain(parsed.args) } : null;
    }),
  };
  out.viewsAfterSubmit = await callViews(contracts, sender);

  const head = await provider.getBlockNumber();
  const logs = await provider.getLogs({ fromBlock: 0, toBlock: head });
  const submitTopic = contracts.Flow.interface.getEvent('Submit').topicHash;
  const flowLogs = await contracts.Flow.queryFilter(contracts.Flow.filters.Submit(), 0, head);
  out.logs = {
    fromBlock: 0,
    toBlock: head,
    all: logs.map((log) => ({
      address: log.address,
      topic0: log.topics[0],
      blockNumber: log.blockNumber,
      transactionHash: log.transactionHash,
      index: log.index,
    })),
    submitTopic,
    flowSubmit: flowLogs.map((event) => ({
      name: event.eventName ?? null,
      args: plain(event.args),
      transactionHash: event.transactionHash,
    })),
    bySender: (await provider.getLogs({
      address: FLOW,
      topics: [submitTopic, ethers.zeroPadValue(sender, 32)],
      fromBlock: 0,
      toBlock: 'latest',
    })).length,
    byOtherSender: (await provider.getLogs({
      address: FLOW,
      topics: [submitTopic, ethers.zeroPadValue(recipient, 32)],
      fromBlock: 0,
      toBlock: 'latest',
    })).length,
  };

  // 6. Refusals.
  const nonceBeforeRefusals = await provider.getTransactionCount(sender);
  const unfunded = ethers.Wallet.createRandom(provider);
  out.refusals = {
    nonceReused: await attempt(() => wallet.sendTransaction({ to: recipient, value: 1, nonce: 0 })),
    unfundedWallet: await attempt(() => unfunded.sendTransaction({ to: recipient, value: 1 })),
    unfundedWithGasLimit: await attempt(() =>
      unfunded.sendTransaction({ to: recipient, value: 1, gasLimit: 21000 })),
  };
  out.refusals.senderNonceUnchanged = (await provider.getTransactionCount(sender)) === nonceBeforeRefusals;
  out.refusals.unfundedBalance = (await provider.getBalance(unfunded.address)).toString();
  out.refusals.unfundedNonce = await provider.getTransactionCount(unfunded.address);

  provider.destroy();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ error: String((error && error.stack) || error) })}\n`);
  process.exit(1);
});
