// ONNX Runtime (onnxruntime-node, installed by install.sh into the folder
// named by MODELPRESS_ORT_DIR) as an independent oracle for model outputs.
// Tensors cross this module as plain arrays {type, dims, data}, like npy.mjs.
import { createRequire } from 'node:module';
import path from 'node:path';
import { concatRows, sliceRows } from './arrays.mjs';

export const OPT_LEVELS = ['disabled', 'basic', 'extended', 'all'];

const require = createRequire(import.meta.url);
let ortModule;

export function loadOrt(dir = process.env.MODELPRESS_ORT_DIR) {
  if (ortModule) return ortModule;
  if (!dir) {
    throw new Error(
      'MODELPRESS_ORT_DIR is not set: run tests/ort/install.sh DIR, then export MODELPRESS_ORT_DIR=DIR');
  }
  // An exact path rather than a module name, so that no other copy found
  // higher up the folder tree is picked by mistake.
  const location = path.join(path.resolve(dir), 'node_modules', 'onnxruntime-node');
  try {
    ortModule = require(location);
  } catch (err) {
    throw new Error(`cannot load onnxruntime-node from ${location} (run tests/ort/install.sh ${dir}): ${err.message}`);
  }
  ortModule.env.logLevel = 'error';
  return ortModule;
}

export function toTensor(array) {
  const ort = loadOrt();
  if (array instanceof ort.Tensor) return array;
  return new ort.Tensor(array.type, array.data, array.dims);
}

export function fromTensor(tensor) {
  return { type: tensor.type, dims: [...tensor.dims], data: tensor.data };
}

// metadata: entries of session.inputMetadata / outputMetadata, which
// onnxruntime-node >= 1.22 fills with {name, isTensor, type, shape}; shape
// holds numbers for fixed dims and strings for symbolic ones ('' if unnamed).
function describe(names, metadata) {
  return names.map((name, i) => {
    const meta = metadata?.[i];
    if (!meta) return { name, isTensor: true, type: null, dims: null };
    return { name, isTensor: meta.isTensor, type: meta.type ?? null, dims: meta.shape ?? null };
  });
}

export class Model {
  constructor(session, file) {
    this.session = session;
    this.file = file;
    this.inputs = describe(session.inputNames, session.inputMetadata);
    this.outputs = describe(session.outputNames, session.outputMetadata);
  }

  // feeds: arrays (or ort.Tensors) in input order, or an object by name.
  // Resolves to the outputs in the model's order.
  async run(feeds) {
    const byName = {};
    if (Array.isArray(feeds)) {
      if (feeds.length !== this.inputs.length) {
        throw new Error(`${this.file} has ${this.inputs.length} inputs (${this.inputs.map((i) => i.name).join(', ')}), got ${feeds.length}`);
      }
      this.inputs.forEach((input, i) => {
        byName[input.name] = feeds[i];
      });
    } else {
      for (const input of this.inputs) {
        if (!(input.name in feeds)) throw new Error(`${this.file}: no value for input '${input.name}'`);
        byName[input.name] = feeds[input.name];
      }
    }
    for (const input of this.inputs) {
      const given = byName[input.name].type;
      if (input.type && given !== input.type) {
        throw new Error(`${this.file}: input '${input.name}' is ${input.type}, got ${given}`);
      }
      byName[input.name] = toTensor(byName[input.name]);
    }
    let results;
    try {
      results = await this.session.run(byName);
    } catch (err) {
      throw new Error(`${this.file}: run failed: ${err.message}`);
    }
    return this.outputs.map(({ name }) => {
      const value = results[name];
      if (!(value instanceof loadOrt().Tensor)) {
        throw new Error(`${this.file}: output '${name}' is not a tensor`);
      }
      return { name, ...fromTensor(value) };
    });
  }

  // Leading dim of the first input when it is fixed (e.g. 1), else null.
  fixedBatch() {
    const first = this.inputs[0]?.dims?.[0];
    return Number.isInteger(first) && first > 0 ? first : null;
  }

  // First output for rows [start, start+count) of X, fed to the model's only
  // input; models with a fixed batch are run batch by batch, zero-padded.
  async firstOutputForRows(X, start, count) {
    if (this.inputs.length !== 1) {
      throw new Error(`${this.file} has ${this.inputs.length} inputs; only single-input models can be run over a data set`);
    }
    const fixed = this.fixedBatch();
    const step = fixed ?? count;
    const parts = [];
    for (let s = start; s < start + count; s += step) {
      const n = Math.min(step, start + count - s);
      const [out] = await this.run([sliceRows(X, s, n, fixed ?? n)]);
      if (out.dims[0] !== (fixed ?? n)) {
        throw new Error(`${this.file}: first output '${out.name}' has dims [${out.dims}], expected the batch (${fixed ?? n}) first`);
      }
      parts.push(fixed ? sliceRows(out, 0, n) : out);
    }
    return parts.length === 1 ? parts[0] : concatRows(parts);
  }

  async release() {
    await this.session.release();
  }
}

// threads: intra-op threads (inter-op is always 1, sequential execution),
// optLevel: one of OPT_LEVELS; both default to deterministic settings.
export async function openModel(file, { threads = 1, optLevel = 'all' } = {}) {
  const ort = loadOrt();
  if (!OPT_LEVELS.includes(optLevel)) {
    throw new Error(`unknown optimization level '${optLevel}' (one of ${OPT_LEVELS.join(', ')})`);
  }
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`bad thread count ${threads}`);
  let session;
  try {
    session = await ort.InferenceSession.create(file, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: optLevel,
      logSeverityLevel: 3,
    });
  } catch (err) {
    throw new Error(`cannot load model ${file}: ${err.message}`);
  }
  return new Model(session, file);
}

// One-shot run: {outputName: {dims, data, type}}.
export async function runModel(file, feeds, options = {}) {
  const model = await openModel(file, options);
  try {
    const outputs = await model.run(feeds);
    return Object.fromEntries(outputs.map(({ name, dims, data, type }) => [name, { dims, data, type }]));
  } finally {
    await model.release();
  }
}
