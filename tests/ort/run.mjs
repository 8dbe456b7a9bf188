#!/usr/bin/env node
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileStem, listOption, runCli, SESSION_USAGE, sessionOptions, usageError } from './cli.mjs';
import { readNpy, writeNpy } from './npy.mjs';
import { openModel } from './ort.mjs';

const usage = `usage: run.mjs MODEL --inputs a.npy[,b.npy...] --outdir D [options]
Feeds the .npy files to the model's inputs in order and writes output i
as D/<i>_<name>.npy.
${SESSION_USAGE}`;

await runCli({
  usage,
  options: { inputs: { type: 'string', default: '' }, outdir: { type: 'string' } },
  positionals: 1,
}, async (values, [modelFile]) => {
  if (!values.outdir) throw usageError('--outdir is required');
  const feeds = listOption(values.inputs).map(readNpy);
  const model = await openModel(modelFile, sessionOptions(values));
  const outputs = await model.run(feeds);
  await model.release();

  mkdirSync(values.outdir, { recursive: true });
  const summary = outputs.map((out, i) => {
    const file = path.join(values.outdir, `${i}_${fileStem(out.name)}.npy`);
    writeNpy(file, out);
    return { name: out.name, file, dims: out.dims, dtype: out.type };
  });
  return { summary: { outputs: summary } };
});
