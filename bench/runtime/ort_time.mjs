#!/usr/bin/env node
// Times ONNX Runtime (one intra-op thread) over every sample of X, in
// batches, the way `modelpress eval` runs them. Prints {seconds} of the
// fastest of --repeat passes, after one warm-up pass.
import { intOption, runCli, SESSION_USAGE, sessionOptions } from '../../tests/ort/cli.mjs';
import { readNpy } from '../../tests/ort/npy.mjs';
import { openModel } from '../../tests/ort/ort.mjs';

const usage = `usage: ort_time.mjs MODEL X.npy [--batch N] [--repeat R]
${SESSION_USAGE}`;

await runCli({
  usage,
  options: { batch: { type: 'string', default: '32' }, repeat: { type: 'string', default: '5' } },
  positionals: 2,
}, async (values, [modelFile, xFile]) => {
  const batch = intOption(values, 'batch', 1);
  const repeat = intOption(values, 'repeat', 1);
  const X = readNpy(xFile);
  const model = await openModel(modelFile, sessionOptions(values));
  // --batch rows per run, as `modelpress eval` does.
  const batched = async () => {
    const t0 = process.hrtime.bigint();
    for (let s = 0; s < X.dims[0]; s += batch) {
      await model.firstOutputForRows(X, s, Math.min(batch, X.dims[0] - s));
    }
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  await batched();
  let best = Infinity;
  for (let r = 0; r < repeat; r++) best = Math.min(best, await batched());
  await model.release();
  return { summary: { seconds: best, samples: X.dims[0], batch } };
});
