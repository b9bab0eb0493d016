// The official 0G TypeScript SDK, unmodified, end to end against a zerog node.
//
// Usage: node sdk/e2e.cjs --rpc URL --out DIR [--indexer URL] [--storage URL] [--key HEX]
//                         [--mode indexer|direct] [--task-size N] [--replicas N] FILE...
//
// --rpc is the chain's Ethereum JSON-RPC; --storage the storage node used in mode `direct` (default:
// --rpc, a dev node serves both); --indexer defaults to --rpc; --replicas is the upload's
// `expectedReplica` (mode `indexer`, default 1).
//
// For each FILE, in order:
//   1. upload with the SDK: `Indexer.upload(file, rpc, signer)` (mode `indexer`, the default: the
//      indexer URL defaults to the node's own, which serves `indexer_*`), or an `Uploader` over a
//      `StorageNode` and the Flow contract named by `zgs_getStatus` (mode `direct`). The signer is an
//      ethers `Wallet` on a `JsonRpcProvider` at --rpc, so the Flow `submit` goes through the node's
//      Ethereum facade and the segments through `zgs_uploadSegmentsByTxSeq`;
//   2. download with the SDK (`Indexer.download(root, path, true)` or a `Downloader`) to
//      DIR/<basename>.sdk. SDK 1.2.8 accepts the proof flag but never checks a proof (its
//      `downloadTask` ignores it), so:
//   3. fetch every data segment again with `zgs_downloadSegmentWithProofByTxSeq` through the SDK's
//      `StorageNode` (in mode `indexer` from each node `getFileLocations` names whose shard holds
//      the segment, so every holder is checked), check each proof with the SDK's own `Proof.validateHash` against the root
//      (segment root from `ZgFile.segmentRoot`, inherited from `AbstractFile`, padded as the SDK pads it when uploading),
//      and require the verified bytes to equal the bytes the SDK downloaded.
// One JSON line per file goes to stdout:
//   {"file","size","root","txSeq","txHash","download","segments","uploadMs","downloadMs","verifyMs"}
// or {"file","error"} (and exit status 1, after the remaining files are skipped). The SDK's own
// chatter (console.log) goes to stderr, and only with ZEROG_E2E_VERBOSE=1.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

// Resolve the SDK and ethers from this folder's node_modules whatever the working directory.
const local = createRequire(path.join(__dirname, 'package.json'));
const sdk = local('@0gfoundation/0g-ts-sdk');
const { ethers } = local('ethers');

// First Hardhat/Anvil dev key, funded by `zerog node --dev`.
const DEV_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const CHUNK = 256;
const SEGMENT_CHUNKS = 1024;
const SEGMENT = CHUNK * SEGMENT_CHUNKS;

const verbose = process.env.ZEROG_E2E_VERBOSE === '1';
const quiet = () => {};
console.log = verbose ? (...args) => console.error(...args) : quiet;
console.info = console.log;
console.warn = verbose ? console.warn : quiet;

function parseArgs(argv) {
  const args = { mode: 'indexer', key: DEV_KEY, taskSize: 1, replicas: 1, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--rpc': args.rpc = next(); break;
      case '--indexer': args.indexer = next(); break;
      case '--storage': args.storage = next(); break;
      case '--key': args.key = next(); break;
      case '--out': args.out = next(); break;
      case '--mode': args.mode = next(); break;
      case '--task-size': args.taskSize = Number(next()); break;
      case '--replicas': args.replicas = Number(next()); break;
      default: args.files.push(argv[i]);
    }
  }
  if (!args.rpc || !args.out || args.files.length === 0) {
    throw new Error('usage: e2e.cjs --rpc URL --out DIR [--indexer URL] [--storage URL] [--key HEX] ' +
      '[--mode indexer|direct] [--task-size N] FILE...');
  }
  if (args.mode !== 'indexer' && args.mode !== 'direct') {
    throw new Error(`--mode must be indexer or direct, not ${args.mode}`);
  }
  if (!Number.isInteger(args.taskSize) || args.taskSize < 1) {
    throw new Error('--task-size must be a positive integer');
  }
  if (!Number.isInteger(args.replicas) || args.replicas < 1) {
    throw new Error('--replicas must be a positive integer');
  }
  args.indexer = args.indexer ?? args.rpc;
  args.storage = args.storage ?? args.rpc;
  return args;
}

// A result of the SDK's `[value, error]` convention, or a thrown error, as a value.
function check(error, what) {
  if (error !== null && error !== undefined) {
    const text = error instanceof Error ? error.message : String(error);
    throw new Error(`${what}: ${text}`);
  }
}

async function upload(args, signer, zgFile) {
  const uploadOpts = { taskSize: args.taskSize, expectedReplica: args.replicas };
  // The SDK retries "too many data writing" (the node's busy answer) this many times, 1 s apart.
  const retryOpts = { Retries: 10, Interval: 1, MaxGasPrice: 0, TooManyDataRetries: 30 };
  if (args.mode === 'indexer') {
    const indexer = new sdk.Indexer(args.indexer);
    const [result, error] = await indexer.upload(zgFile, args.rpc, signer, uploadOpts, retryOpts);
    check(error, 'Indexer.upload');
    return { root: result.rootHash, txSeq: result.txSeq, txHash: result.txHash };
  }
  const node = new sdk.StorageNode(args.storage);
  const status = await node.getStatus();
  const flow = sdk.getFlowContract(status.networkIdentity.flowAddress, signer);
  const uploader = new sdk.Uploader([node], args.rpc, flow);
  const [result, error] = await uploader.uploadFile(zgFile, uploadOpts, retryOpts);
  check(error, 'Uploader.uploadFile');
  return { root: result.rootHash, txSeq: result.txSeq, txHash: result.txHash };
}

async function download(args, root, target) {
  fs.rmSync(target, { force: true });
  let error;
  if (args.mode === 'indexer') {
    error = await new sdk.Indexer(args.indexer).download(root, target, true);
  } else {
    error = await new sdk.Downloader([new sdk.StorageNode(args.storage)]).download(root, target, true);
  }
  check(error, 'download');
  return fs.readFileSync(target);
}

// Chunks of the file's flow-padded size, as the SDK computes it (`computePaddedSize`).
function paddedChunks(size) {
  const chunks = Math.ceil(size / CHUNK);
  const pow2 = sdk.nextPow2(chunks);
  if (pow2 === chunks) return chunks;
  const minChunk = pow2 >= 16 ? Math.floor(pow2 / 16) : 1;
  return Math.ceil(chunks / minChunk) * minChunk;
}

// The nodes to check segments on: in mode `indexer`, every holder the indexer names (with its shard);
// in mode `direct`, the one storage node (which holds everything).
async function holders(args, root) {
  if (args.mode !== 'indexer') return [{ node: new sdk.StorageNode(args.storage), numShard: 1, shardId: 0 }];
  const locations = await new sdk.Indexer(args.indexer).getFileLocations(root);
  if (locations.length === 0) throw new Error(`the indexer names no node that holds ${root}`);
  return locations.map((location) => ({
    node: new sdk.StorageNode(location.url),
    numShard: location.config.numShard,
    shardId: location.config.shardId,
  }));
}

// Every data segment with its proof from every holder of its shard, verified with the SDK's Proof
// against `root`; the verified bytes must be the SDK download's bytes (zero-padded to whole chunks).
// Returns how many segments were verified (counting each holder).
async function verifyWithProofs(args, root, txSeq, size, downloaded) {
  const nodes = await holders(args, root);
  const info = await nodes[0].node.getFileInfoByTxSeq(txSeq);
  if (info === null) throw new Error(`tx ${txSeq}: no file info`);
  const startSegment = Math.floor(Number(info.tx.startEntryIndex) / SEGMENT_CHUNKS);
  const leaves = Math.ceil(paddedChunks(size) / SEGMENT_CHUNKS);
  const dataSegments = Math.ceil(size / SEGMENT);
  const totalChunks = paddedChunks(size);
  let verified = 0;
  for (let index = 0; index < dataSegments; index++) {
    const owners = nodes.filter((n) => (startSegment + index) % n.numShard === n.shardId);
    if (owners.length === 0) throw new Error(`segment ${index}: no holder's shard covers it`);
    for (const { node } of owners) {
      const segment = await node.downloadSegmentWithProofByTxSeq(txSeq, index);
      if (segment === null) throw new Error(`segment ${index} of tx ${txSeq}: ${node.url} returned null`);
      verifySegment(segment, root, index, leaves, totalChunks, downloaded);
      verified++;
    }
  }
  return verified;
}

function verifySegment(segment, root, index, leaves, totalChunks, downloaded) {
  if (segment.root !== root) throw new Error(`segment ${index}: root ${segment.root}, expected ${root}`);
  if (segment.index !== index) throw new Error(`segment ${index}: node sent index ${segment.index}`);
  const data = ethers.decodeBase64(segment.data);
  if (data.length === 0 || data.length % CHUNK !== 0) {
    throw new Error(`segment ${index}: ${data.length} bytes is not whole chunks`);
  }
  const chunksInTree = Math.min(SEGMENT_CHUNKS, totalChunks - index * SEGMENT_CHUNKS);
  const padding = chunksInTree - data.length / CHUNK;
  if (padding < 0) throw new Error(`segment ${index}: ${data.length} bytes, more than the segment`);
  const segmentRoot = sdk.ZgFile.segmentRoot(data, padding);
  const proof = new sdk.Proof(segment.proof.lemma, segment.proof.path);
  const proofError = proof.validateHash(root, segmentRoot, index, leaves);
  if (proofError !== null) throw new Error(`segment ${index}: proof rejected: ${proofError}`);
  const start = index * SEGMENT;
  const expected = Buffer.alloc(data.length);
  downloaded.copy(expected, 0, start, Math.min(start + data.length, downloaded.length));
  if (!expected.equals(Buffer.from(data))) {
    throw new Error(`segment ${index}: verified bytes differ from the SDK's download`);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.out, { recursive: true });
  // No request cache (ethers shares identical requests made within 250 ms by default): every
  // read after a transaction reaches the node, which answers with the transaction's block.
  const provider = new ethers.JsonRpcProvider(args.rpc, undefined, { cacheTimeout: -1 });
  const signer = new ethers.Wallet(args.key, provider);
  let failed = false;
  for (const file of args.files) {
    const line = { file };
    try {
      const zgFile = await sdk.ZgFile.fromFilePath(file);
      let uploaded;
      const uploadStarted = performance.now();
      try {
        line.size = zgFile.size();
        uploaded = await upload(args, signer, zgFile);
      } finally {
        await zgFile.close();
      }
      line.uploadMs = Math.round(performance.now() - uploadStarted);
      Object.assign(line, uploaded);

      const target = path.join(args.out, `${path.basename(file)}.sdk`);
      const downloadStarted = performance.now();
      const bytes = await download(args, uploaded.root, target);
      line.downloadMs = Math.round(performance.now() - downloadStarted);
      line.download = target;
      if (bytes.length !== line.size) {
        throw new Error(`the SDK downloaded ${bytes.length} bytes of a ${line.size}-byte file`);
      }

      const verifyStarted = performance.now();
      line.segments = await verifyWithProofs(args, uploaded.root, uploaded.txSeq, line.size, bytes);
      line.verifyMs = Math.round(performance.now() - verifyStarted);
    } catch (error) {
      line.error = error instanceof Error ? error.message : String(error);
      failed = true;
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
    if (failed) break;
  }
  provider.destroy();
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stdout.write(`${JSON.stringify({ error: error instanceof Error ? error.message : String(error) })}\n`);
    process.exit(2);
  },
);
