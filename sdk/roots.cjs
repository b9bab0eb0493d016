// What the official 0G TypeScript SDK computes for many files, in one process.
//
// Usage: node sdk/roots.cjs [--list LISTFILE] [FILE...]
//   LISTFILE holds one path per line. For each file one JSON line is printed:
//   {"file", "size", "root", "nodes": [{"height", "root"}], "proofs": [{"index", "lemma", "path"}]}
//   root from ZgFile.merkleTree().rootHash(), nodes from createSubmission([]), proofs from the
//   tree's proofAt(i) for the first, a middle, the last data and the last padded segment.
// A file the SDK cannot handle prints {"file", "error"} and the script goes on.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

// Resolve the SDK from this folder's node_modules whatever the caller's working directory.
const sdk = createRequire(path.join(__dirname, 'package.json'))('@0gfoundation/0g-ts-sdk');

function parseArgs(argv) {
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--list') {
      const list = fs.readFileSync(argv[++i], 'utf8');
      for (const line of list.split('\n')) if (line.trim() !== '') files.push(line.trim());
    } else {
      files.push(argv[i]);
    }
  }
  return files;
}

function proofIndices(dataSegments, paddedSegments) {
  const wanted = [0, Math.floor(dataSegments / 2), dataSegments - 1, paddedSegments - 1];
  return [...new Set(wanted.filter((i) => i >= 0))].sort((a, b) => a - b);
}

async function describe(file) {
  const zgFile = await sdk.ZgFile.fromFilePath(file);
  try {
    const size = zgFile.size();
    const [tree, treeError] = await zgFile.merkleTree();
    if (treeError) throw treeError;
    const [submission, submissionError] = await zgFile.createSubmission([]);
    if (submissionError) throw submissionError;
    const data = submission.data ?? submission;
    const nodes = data.nodes.map((node) => ({ height: Number(node.height), root: node.root }));
    const proofs = proofIndices(zgFile.numSegments(), zgFile.numSegmentsPadded()).map((index) => {
      const proof = tree.proofAt(index);
      return { index, lemma: proof.lemma, path: proof.path };
    });
    return { file, size, root: tree.rootHash(), nodes, proofs };
  } finally {
    await zgFile.close();
  }
}

async function main() {
  const files = parseArgs(process.argv.slice(2));
  for (const file of files) {
    let line;
    try {
      line = await describe(file);
    } catch (error) {
      line = { file, error: String((error && error.message) || error) };
    }
    process.stdout.write(JSON.stringify(line) + '\n');
  }
}

main().catch((error) => {
  process.stderr.write(`roots.cjs: ${(error && error.stack) || error}\n`);
  process.exit(1);
});
