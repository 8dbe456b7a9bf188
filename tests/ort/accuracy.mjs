#!/usr/bin/env node
import { argmaxRows, toFloat64 } from './arrays.mjs';
import { intOption, runCli, SESSION_USAGE, sessionOptions } from './cli.mjs';
import { elementCount, readNpy } from './npy.mjs';
import { openModel } from './ort.mjs';

const usage = `usage: accuracy.mjs MODEL X.npy Y.npy [options]
Top-1 accuracy of the model's first output over samples X (first dim) against
integer labels Y. Models whose batch dim is fixed run that many at a time.
  --batch N         samples per run (default 256)
${SESSION_USAGE}`;

await runCli({
  usage,
  options: { batch: { type: 'string', default: '256' } },
  positionals: 3,
}, async (values, [modelFile, xFile, yFile]) => {
  const batch = intOption(values, 'batch', 1);
  const X = readNpy(xFile);
  const Y = readNpy(yFile);
  if (X.dims.length === 0 || X.dims[0] === 0) throw new Error(`${xFile} holds no samples`);
  const samples = X.dims[0];
  if (!/int/.test(Y.type)) throw new Error(`${yFile}: labels must be integers, got ${Y.type}`);
  if (elementCount(Y.dims) !== samples || Y.dims[0] !== samples) {
    throw new Error(`${yFile} has dims [${Y.dims}], expected ${samples} labels`);
  }
  const labels = toFloat64(Y);

  const model = await openModel(modelFile, sessionOptions(values));
  let correct = 0;
  for (let start = 0; start < samples; start += batch) {
    const count = Math.min(batch, samples - start);
    const out = await model.firstOutputForRows(X, start, count);
    const predicted = argmaxRows(toFloat64(out), count);
    for (let i = 0; i < count; i++) if (predicted[i] === labels[start + i]) correct++;
  }
  await model.release();
  return { summary: { samples, correct, top1: correct / samples } };
});
