#!/usr/bin/env node
import { absDiff, argmaxRows, toFloat64 } from './arrays.mjs';
import { intOption, runCli, SESSION_USAGE, sessionOptions } from './cli.mjs';
import { readNpy } from './npy.mjs';
import { openModel } from './ort.mjs';

const usage = `usage: cosine.mjs A.onnx B.onnx X.npy [options]
Compares the first outputs of A and B over samples X (first dim): mean and
minimum per-sample cosine similarity, max abs difference, top-1 agreement.
  --batch N         samples per run (default 256)
${SESSION_USAGE}`;

// Two zero vectors point the same way; one zero vector matches nothing.
function cosine(a, b, from, size) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = from; i < from + size; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (na === 0 && nb === 0) return 1;
  if (na === 0 || nb === 0) return 0;
  return dot / Math.sqrt(na * nb);
}

await runCli({
  usage,
  options: { batch: { type: 'string', default: '256' } },
  positionals: 3,
}, async (values, [fileA, fileB, xFile]) => {
  const batch = intOption(values, 'batch', 1);
  const X = readNpy(xFile);
  if (X.dims.length === 0 || X.dims[0] === 0) throw new Error(`${xFile} holds no samples`);
  const samples = X.dims[0];
  const options = sessionOptions(values);
  const modelA = await openModel(fileA, options);
  const modelB = await openModel(fileB, options);

  let cosineSum = 0;
  let minCosine = Infinity;
  let maxAbsDiff = 0;
  let agree = 0;
  for (let start = 0; start < samples; start += batch) {
    const count = Math.min(batch, samples - start);
    const outA = await modelA.firstOutputForRows(X, start, count);
    const outB = await modelB.firstOutputForRows(X, start, count);
    if (outA.dims.join() !== outB.dims.join()) {
      throw new Error(`first outputs differ in dims: [${outA.dims}] vs [${outB.dims}]`);
    }
    const a = toFloat64(outA);
    const b = toFloat64(outB);
    const size = a.length / count;
    for (let r = 0; r < count; r++) {
      const c = cosine(a, b, r * size, size);
      cosineSum += c;
      minCosine = Math.min(minCosine, c);
    }
    for (let i = 0; i < a.length; i++) maxAbsDiff = Math.max(maxAbsDiff, absDiff(a[i], b[i]));
    const topA = argmaxRows(a, count);
    const topB = argmaxRows(b, count);
    for (let r = 0; r < count; r++) if (topA[r] === topB[r]) agree++;
  }
  await modelA.release();
  await modelB.release();
  return {
    summary: {
      samples,
      mean_cosine: cosineSum / samples,
      min_cosine: minCosine,
      max_abs_diff: maxAbsDiff,
      top1_agreement: agree / samples,
    },
  };
});
