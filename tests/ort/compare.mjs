#!/usr/bin/env node
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { absDiff, floatToHalf, sameBytes, toFloat64 } from './arrays.mjs';
import {
  fileStem, intOption, listOption, numberOption, runCli, SESSION_USAGE, sessionOptions, usageError,
} from './cli.mjs';
import { DTYPES, elementCount, readNpy, writeNpy } from './npy.mjs';
import { openModel } from './ort.mjs';

const usage = `usage: compare.mjs A.onnx B.onnx [options]
Runs both models on the same inputs and compares their outputs position by
position. Exit 0 when they match, 1 when they do not, 2 on errors.
  --inputs a.npy,...  inputs in model order (default: generated from A's metadata)
  --seed N            seed of the generated inputs (default 0)
  --batch N           size of every symbolic/dynamic input dim (default 2)
  --int-high N        generated integer inputs are drawn from [0, N) (default 4)
  --save-inputs D     also write the inputs used as D/<i>_<name>.npy
  --exact             require bitwise identical outputs
  --atol X --rtol Y   else require |b - a| <= atol + rtol * |a| (default 1e-5, 1e-5)
${SESSION_USAGE}`;

function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FLOAT_TYPES = new Set(['float32', 'float64', 'float16']);

// Floats ~ U(-1, 1), integers uniform in [0, intHigh), bools fair coins.
function generateInputs(model, { seed, batch, intHigh }) {
  const random = mulberry32(seed);
  return model.inputs.map((input) => {
    if (!input.isTensor) throw new Error(`input '${input.name}' is not a tensor; pass --inputs`);
    if (!input.type || !input.dims) {
      throw new Error(`this onnxruntime-node gives no type/shape for input '${input.name}'; pass --inputs`);
    }
    if (!(input.type in DTYPES)) {
      throw new Error(`cannot generate values for ${input.type} input '${input.name}'; pass --inputs`);
    }
    const { ArrayType } = DTYPES[input.type];
    const dims = input.dims.map((d) => (Number.isInteger(d) && d >= 0 ? d : batch));
    const data = new ArrayType(elementCount(dims));
    for (let i = 0; i < data.length; i++) {
      const r = random();
      if (input.type === 'float16') data[i] = floatToHalf(2 * r - 1);
      else if (FLOAT_TYPES.has(input.type)) data[i] = 2 * r - 1;
      else if (input.type === 'bool') data[i] = r < 0.5 ? 1 : 0;
      else {
        const n = Math.floor(r * intHigh);
        data[i] = input.type.endsWith('64') ? BigInt(n) : n;
      }
    }
    return { type: input.type, dims, data };
  });
}

function compareOutput(a, b, { exact, atol, rtol }) {
  const result = { name: a.name, dtype: a.type, dims: a.dims };
  if (b.name !== a.name) result.name_b = b.name;
  if (b.type !== a.type) result.dtype_b = b.type;
  if (b.dims.join() !== a.dims.join()) {
    return { ...result, dims_b: b.dims, identical: false, max_abs_diff: null, mismatches: null, passed: false, reason: 'dims differ' };
  }

  // Integer and bool outputs compare as numbers, like floats.
  const x = toFloat64(a);
  const y = toFloat64(b);
  let maxDiff = 0;
  let mismatches = 0;
  for (let i = 0; i < x.length; i++) {
    const diff = absDiff(x[i], y[i]);
    if (diff > maxDiff) maxDiff = diff;
    // Checked apart: an infinite difference would pass against an infinite
    // reference, and a NaN reference makes the tolerance NaN.
    if (diff === Infinity || (diff > 0 && !(diff <= atol + rtol * Math.abs(x[i])))) mismatches++;
  }
  const identical = a.type === b.type && sameBytes(a.data, b.data);
  const passed = exact ? identical : mismatches === 0;
  Object.assign(result, { identical, max_abs_diff: maxDiff, mismatches, passed });
  if (!passed) result.reason = a.type !== b.type ? 'dtypes differ' : exact ? 'bytes differ' : 'values differ';
  return result;
}

await runCli({
  usage,
  options: {
    inputs: { type: 'string' },
    seed: { type: 'string', default: '0' },
    batch: { type: 'string', default: '2' },
    'int-high': { type: 'string', default: '4' },
    'save-inputs': { type: 'string' },
    exact: { type: 'boolean', default: false },
    atol: { type: 'string' },
    rtol: { type: 'string' },
  },
  positionals: 2,
}, async (values, [fileA, fileB]) => {
  const exact = values.exact;
  if (exact && (values.atol !== undefined || values.rtol !== undefined)) {
    throw usageError('--exact and --atol/--rtol exclude each other');
  }
  const tolerance = {
    exact,
    atol: exact ? 0 : numberOption(values, 'atol', '1e-5'),
    rtol: exact ? 0 : numberOption(values, 'rtol', '1e-5'),
  };
  const generation = {
    seed: intOption(values, 'seed', 0),
    batch: intOption(values, 'batch', 1),
    intHigh: intOption(values, 'int-high', 1),
  };
  const options = sessionOptions(values);
  const modelA = await openModel(fileA, options);
  const modelB = await openModel(fileB, options);
  if (modelA.inputs.length !== modelB.inputs.length) {
    throw new Error(`${fileA} has ${modelA.inputs.length} inputs, ${fileB} has ${modelB.inputs.length}`);
  }

  const feeds = values.inputs !== undefined
    ? listOption(values.inputs).map(readNpy)
    : generateInputs(modelA, generation);
  if (values['save-inputs']) {
    mkdirSync(values['save-inputs'], { recursive: true });
    feeds.forEach((feed, i) => {
      const name = modelA.inputs[i]?.name ?? `input${i}`;
      writeNpy(path.join(values['save-inputs'], `${i}_${fileStem(name)}.npy`), feed);
    });
  }

  const outputsA = await modelA.run(feeds);
  const outputsB = await modelB.run(feeds);
  await modelA.release();
  await modelB.release();
  if (outputsA.length !== outputsB.length) {
    throw new Error(`${fileA} has ${outputsA.length} outputs, ${fileB} has ${outputsB.length}`);
  }

  const outputs = outputsA.map((a, i) => compareOutput(a, outputsB[i], tolerance));
  const passed = outputs.every((o) => o.passed);
  const diffs = outputs.map((o) => o.max_abs_diff).filter((d) => d !== null);
  return {
    summary: {
      passed,
      identical: outputs.every((o) => o.identical),
      max_abs_diff: diffs.length ? Math.max(...diffs) : null,
      mode: exact ? 'exact' : 'tolerance',
      ...(exact ? {} : { atol: tolerance.atol, rtol: tolerance.rtol }),
      inputs: feeds.map((f, i) => ({ name: modelA.inputs[i].name, dtype: f.type, dims: f.dims })),
      ...(values.inputs === undefined ? { seed: generation.seed, batch: generation.batch } : {}),
      outputs,
    },
    exitCode: passed ? 0 : 1,
  };
});
