// ONNX Runtime counterpart of `cnnlite-bench --infer-only`: times inference of an ONNX model
// exported by bench/export_onnx.py, after checking its output against PyTorch's reference.
//
// usage: node bench/ort_bench.js MODEL.onnx [--threads 2] [--steps 5] [--warmup 3] [--json]
// ONNX Runtime grows its memory arena and settles its thread pool over the first few runs, so
// it gets --warmup untimed runs (default 3) before the timed ones.
// The onnxruntime-node package is found through ORT_NODE_MODULE (its folder) or the usual
// module search. MODEL.input.bin and MODEL.ref.bin must be beside MODEL.onnx; the batch and
// image size come from the model's input. intra-op threads = --threads, inter-op threads = 1.
'use strict';
const fs = require('fs');
const ortPath = process.env.ORT_NODE_MODULE || 'onnxruntime-node';
const ort = require(ortPath);

function parseArgs(argv) {
  const o = { model: null, threads: 2, steps: 5, warmup: 3, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--threads' || a === '--steps' || a === '--warmup') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer`);
      o[a.slice(2)] = v;
    } else if (!o.model && !a.startsWith('--')) o.model = a;
    else throw new Error(`unknown argument '${a}'`);
  }
  if (!o.model) throw new Error('usage: ort_bench.js MODEL.onnx [--threads N] [--steps N] [--warmup N] [--json]');
  return o;
}

function readFloats(path) {
  const b = fs.readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const stem = o.model.replace(/\.onnx$/, '');
  const session = await ort.InferenceSession.create(o.model, {
    intraOpNumThreads: o.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const x = readFloats(`${stem}.input.bin`);
  const ref = readFloats(`${stem}.ref.bin`);
  const classes = 4;
  const batch = ref.length / classes;
  const size = Math.round(Math.sqrt(x.length / (batch * 3)));
  const input = new ort.Tensor('float32', x, [batch, 3, size, size]);
  const run = async () => (await session.run({ input })).logits.data;
  const y = await run(); // first warm-up run, and the check against PyTorch
  for (let w = 1; w < o.warmup; w++) await run();
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(y[i] - ref[i]));
  const t0 = process.hrtime.bigint();
  for (let s = 0; s < o.steps; s++) await run();
  const sec = Number(process.hrtime.bigint() - t0) * 1e-9;
  const imgS = o.steps * batch / sec;
  console.log(`onnxruntime-node ${require(`${ortPath}/package.json`).version}` +
    `, ${o.threads} intra-op threads, batch ${batch}, ${size}x${size}, ${o.steps} steps after ${o.warmup} warm-up runs`);
  console.log(`infer: ${imgS.toFixed(1)} img/s; max |logit - PyTorch's| ${maxDiff.toExponential(2)}`);
  if (o.json)
    console.log(JSON.stringify({ infer_img_s: Number(imgS.toFixed(2)), max_abs_diff_vs_torch: maxDiff }));
}

main().catch((e) => { console.error(`ort_bench.js: ${e.message}`); process.exit(1); });
