#!/usr/bin/env node
// Self-test of the oracle: node selftest.mjs [CONFORMANCE_DIR], with
// MODELPRESS_ORT_DIR set (selftest.sh does both). Models are written here
// by tinymodel.mjs; the ONNX conformance models are used when present.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { floatToHalf, halfToFloat } from './arrays.mjs';
import { decodeNpy, DTYPES, encodeNpy, readNpy, writeNpy } from './npy.mjs';
import { openModel, runModel } from './ort.mjs';
import { model, node, tensor, valueInfo } from './tinymodel.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const conformanceDir = process.argv[2];
const work = mkdtempSync(path.join(os.tmpdir(), 'modelpress-ort-selftest-'));
const counts = { passed: 0, failed: 0, skipped: 0 };

async function test(name, body) {
  try {
    await body();
    counts.passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    counts.failed++;
    console.log(`FAIL ${name}: ${err.stack}`);
  }
}

function skip(name, why) {
  counts.skipped++;
  console.log(`skip ${name}: ${why}`);
}

function cli(script, ...args) {
  const result = spawnSync(process.execPath, [path.join(here, script), ...args], { encoding: 'utf8' });
  const lines = result.stdout.trim().split('\n');
  let json = null;
  try {
    json = JSON.parse(lines.at(-1));
  } catch {
    // Errors print nothing on stdout; the caller checks the status.
  }
  return { status: result.status, json, stderr: result.stderr };
}

function expectStatus(result, status) {
  assert.equal(result.status, status, `exit ${result.status}, expected ${status}; stderr: ${result.stderr}`);
}

const tmp = (name) => path.join(work, name);
const f32 = (dims, values) => ({ type: 'float32', dims, data: Float32Array.from(values) });

// y = x @ I + b over 4 features, with a symbolic or fixed batch.
function linearModel(file, { bias = [0, 0, 0, 0], batch = 'batch' } = {}) {
  const eye = new Float32Array(16);
  for (let i = 0; i < 4; i++) eye[i * 5] = 1;
  writeFileSync(file, model({
    nodes: [node('MatMul', ['x', 'W'], ['xw']), node('Add', ['xw', 'b'], ['logits'])],
    initializers: [tensor('W', f32([4, 4], eye)), tensor('b', f32([4], bias))],
    inputs: [valueInfo('x', 'float32', [batch, 4])],
    outputs: [valueInfo('logits', 'float32', [batch, 4])],
  }));
  return file;
}

// Integer, bool and float16 tensors and an output name that needs escaping.
function mixedModel(file) {
  writeFileSync(file, model({
    nodes: [
      node('Gather', ['table', 'idx'], ['out/g:0'], { axis: 0 }),
      node('Not', ['flag'], ['nf']),
      node('Cast', ['out/g:0'], ['half'], { to: 10 }),
    ],
    initializers: [tensor('table', f32([4, 3], Array.from({ length: 12 }, (_, i) => i / 4)))],
    inputs: [valueInfo('idx', 'int64', ['n']), valueInfo('flag', 'bool', ['m', 2])],
    outputs: [
      valueInfo('out/g:0', 'float32', ['n', 3]),
      valueInfo('nf', 'bool', ['m', 2]),
      valueInfo('half', 'float16', ['n', 3]),
    ],
  }));
  return file;
}

// log(x) or log(|x|): NaN for negative x in the first, finite in the second.
function logModel(file, { abs = false } = {}) {
  writeFileSync(file, model({
    nodes: abs ? [node('Abs', ['x'], ['ax']), node('Log', ['ax'], ['y'])] : [node('Log', ['x'], ['y'])],
    inputs: [valueInfo('x', 'float32', ['batch', 4])],
    outputs: [valueInfo('y', 'float32', ['batch', 4])],
  }));
  return file;
}

const linear = linearModel(tmp('linear.onnx'));
const shifted = linearModel(tmp('shifted.onnx'), { bias: [0.002, -0.001, 0, 0.001] });
const linearB1 = linearModel(tmp('linear_b1.onnx'), { batch: 1 });
const mixed = mixedModel(tmp('mixed.onnx'));
const log = logModel(tmp('log.onnx'));
const logAbs = logModel(tmp('log_abs.onnx'), { abs: true });

// Ten samples whose largest feature leads by 0.5; half of the labels wrong.
const samples = 10;
const X = f32([samples, 4], Array.from({ length: samples * 4 }, (_, i) => ((i * 7) % 5) / 10));
const labels = new BigInt64Array(samples);
for (let r = 0; r < samples; r++) {
  const top = (r * 3) % 4;
  X.data[r * 4 + top] = 1;
  labels[r] = BigInt(r < samples / 2 ? top : (top + 1) % 4);
}
writeNpy(tmp('x.npy'), X);
writeNpy(tmp('y.npy'), { type: 'int64', dims: [samples], data: labels });

await test('npy: every dtype survives a round trip', () => {
  for (const [type, { ArrayType }] of Object.entries(DTYPES)) {
    for (const dims of [[], [0, 3], [5], [2, 3, 1]]) {
      const n = dims.reduce((a, d) => a * d, 1);
      const data = new ArrayType(n);
      for (let i = 0; i < n; i++) data[i] = ArrayType.name.startsWith('Big') ? BigInt(i * 3 - 2) : (i * 3 + 1) % 2;
      const back = decodeNpy(encodeNpy({ type, dims, data }));
      assert.deepEqual(back, { type, dims, data }, `${type} [${dims}]`);
    }
  }
});

await test('npy: header is laid out as numpy writes it', () => {
  const bytes = encodeNpy(f32([2, 3, 4], new Float32Array(24)));
  const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }".padEnd(117) + '\n';
  assert.equal(bytes.subarray(0, 128).toString('latin1'), '\x93NUMPY\x01\x00\x76\x00' + header);
  assert.equal(bytes.length, 128 + 96);
  const one = encodeNpy({ type: 'bool', dims: [3], data: new Uint8Array(3) }).toString('latin1');
  assert.match(one, /'descr': '\|b1', 'fortran_order': False, 'shape': \(3,\), }/);
});

await test('npy: reads version 2.0 and loosely spaced headers', () => {
  const header = '{"shape":(2,),"fortran_order":False,"descr":"<i8"}\n';
  const prefix = Buffer.alloc(12);
  Buffer.from('\x93NUMPY\x02\x00', 'latin1').copy(prefix);
  prefix.writeUInt32LE(header.length, 8);
  const data = new BigInt64Array([7n, -9n]);
  const array = decodeNpy(Buffer.concat([prefix, Buffer.from(header), Buffer.from(data.buffer)]));
  assert.deepEqual(array, { type: 'int64', dims: [2], data });
});

await test('npy: rejects what it cannot read, saying why', () => {
  const good = encodeNpy(f32([2], [1, 2]));
  const withHeader = (text) => {
    const header = text.padEnd(117) + '\n';
    return Buffer.concat([Buffer.from('\x93NUMPY\x01\x00\x76\x00', 'latin1'), Buffer.from(header), Buffer.alloc(8)]);
  };
  const cases = [
    [Buffer.from('PK\x03\x04 not npy at all'), /bad magic/],
    [good.subarray(0, good.length - 1), /truncated data/],
    [good.subarray(0, 40), /truncated header/],
    [Buffer.concat([good, Buffer.alloc(2)]), /unexpected bytes/],
    [withHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }"), /Fortran-order/],
    [withHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }"), /big-endian/],
    [withHeader("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"), /unsupported dtype '<c8'/],
    [withHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"), /structured dtype/],
    [withHeader("{'descr': '<f4', 'shape': (2,), }"), /no 'fortran_order'/],
    [withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) "), /bad .npy header/],
  ];
  for (const [bytes, message] of cases) assert.throws(() => decodeNpy(bytes, 'x.npy'), message);
  assert.throws(() => readNpy(tmp('missing.npy')), /cannot read/);
  assert.throws(() => encodeNpy(f32([3], [1, 2])), /need 3 elements/);
  assert.throws(() => encodeNpy({ type: 'string', dims: [1], data: ['a'] }), /unsupported dtype 'string'/);
  assert.deepEqual(decodeNpy(withHeader("{'descr': '>u1', 'fortran_order': False, 'shape': (8,), }")).type, 'uint8');
});

await test('float16 conversion round-trips and rounds to nearest even', () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    const value = halfToFloat(bits);
    if (Number.isNaN(value)) assert.equal(floatToHalf(value) & 0x7e00, 0x7e00);
    else assert.equal(floatToHalf(value), bits);
  }
  const cases = [[1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [2 ** -24, 1],
    [2 ** -25, 0], [3 * 2 ** -25, 2], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [-0, 0x8000]];
  for (const [value, bits] of cases) assert.equal(floatToHalf(value), bits, `${value}`);
});

await test('ort: runModel returns named outputs with dims, data and type', async () => {
  const out = await runModel(linear, [f32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8])]);
  assert.deepEqual(Object.keys(out), ['logits']);
  assert.deepEqual(out.logits.dims, [2, 4]);
  assert.equal(out.logits.type, 'float32');
  assert.deepEqual(Array.from(out.logits.data), [1, 2, 3, 4, 5, 6, 7, 8]);
  const byName = await runModel(shifted, { x: f32([1, 4], [0, 0, 0, 0]) }, { threads: 2, optLevel: 'disabled' });
  assert.deepEqual(Array.from(byName.logits.data), Array.from(Float32Array.from([0.002, -0.001, 0, 0.001])));
  await assert.rejects(runModel(linear, [], {}), /has 1 inputs/);
  await assert.rejects(runModel(linear, [f32([1, 4], [0, 0, 0, 0])], { optLevel: 'max' }), /unknown optimization level/);
  await assert.rejects(runModel(linear, [{ type: 'float64', dims: [1, 4], data: new Float64Array(4) }]), /is float32, got float64/);
  await assert.rejects(runModel(tmp('missing.onnx'), []), /cannot load model/);
});

await test('ort: input and output metadata come from the model', async () => {
  const m = await openModel(mixed);
  assert.deepEqual(m.inputs, [
    { name: 'idx', isTensor: true, type: 'int64', dims: ['n'] },
    { name: 'flag', isTensor: true, type: 'bool', dims: ['m', 2] },
  ]);
  assert.deepEqual(m.outputs.map((o) => o.type), ['float32', 'bool', 'float16']);
  assert.equal(m.fixedBatch(), null);
  await m.release();
  const b1 = await openModel(linearB1);
  assert.equal(b1.fixedBatch(), 1);
  await b1.release();
});

await test('ort: a missing MODELPRESS_ORT_DIR is explained', () => {
  const env = { ...process.env };
  delete env.MODELPRESS_ORT_DIR;
  const code = `import('${path.join(here, 'ort.mjs')}').then((m) => m.loadOrt())`;
  const result = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env });
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /MODELPRESS_ORT_DIR is not set/);
});

await test('run.mjs writes every output as .npy', () => {
  writeNpy(tmp('idx.npy'), { type: 'int64', dims: [3], data: new BigInt64Array([3n, 0n, 2n]) });
  writeNpy(tmp('flag.npy'), { type: 'bool', dims: [1, 2], data: new Uint8Array([1, 0]) });
  const outdir = tmp('run-out');
  const result = cli('run.mjs', mixed, '--inputs', `${tmp('idx.npy')},${tmp('flag.npy')}`, '--outdir', outdir);
  expectStatus(result, 0);
  assert.deepEqual(result.json.outputs, [
    { name: 'out/g:0', file: path.join(outdir, '0_out_g_0.npy'), dims: [3, 3], dtype: 'float32' },
    { name: 'nf', file: path.join(outdir, '1_nf.npy'), dims: [1, 2], dtype: 'bool' },
    { name: 'half', file: path.join(outdir, '2_half.npy'), dims: [3, 3], dtype: 'float16' },
  ]);
  const gathered = [3, 0, 2].flatMap((row) => [0, 1, 2].map((col) => (row * 3 + col) / 4));
  assert.deepEqual(Array.from(readNpy(result.json.outputs[0].file).data), gathered);
  assert.deepEqual(Array.from(readNpy(result.json.outputs[1].file).data), [0, 1]);
  assert.deepEqual(Array.from(readNpy(result.json.outputs[2].file).data), gathered.map(floatToHalf));
});

await test('run.mjs fails with exit 2 and a message', () => {
  const out = tmp('run-bad');
  for (const args of [
    [],
    [linear, '--outdir', out],
    [linear, '--inputs', tmp('idx.npy'), '--outdir', out],
    [linear, '--inputs', tmp('missing.npy'), '--outdir', out],
    [tmp('missing.onnx'), '--inputs', tmp('x.npy'), '--outdir', out],
    [linear, '--inputs', tmp('x.npy')],
    [linear, '--inputs', tmp('x.npy'), '--outdir', out, '--bogus'],
  ]) {
    const result = cli('run.mjs', ...args);
    expectStatus(result, 2);
    assert.match(result.stderr, /run\.mjs: error: /);
  }
});

await test('compare.mjs --exact: a model matches itself, not a shifted copy', () => {
  const same = cli('compare.mjs', linear, linear, '--exact');
  expectStatus(same, 0);
  assert.equal(same.json.identical, true);
  assert.equal(same.json.max_abs_diff, 0);
  assert.deepEqual(same.json.inputs, [{ name: 'x', dtype: 'float32', dims: [2, 4] }]);

  const differ = cli('compare.mjs', linear, shifted, '--exact');
  expectStatus(differ, 1);
  assert.equal(differ.json.identical, false);
  assert.equal(differ.json.outputs[0].reason, 'bytes differ');
});

await test('compare.mjs with tolerances', () => {
  const strict = cli('compare.mjs', linear, shifted);
  expectStatus(strict, 1);
  const loose = cli('compare.mjs', linear, shifted, '--atol', '0.01', '--rtol', '0');
  expectStatus(loose, 0);
  assert.equal(loose.json.passed, true);
  assert.equal(loose.json.identical, false);
  assert.ok(Math.abs(loose.json.max_abs_diff - 0.002) < 1e-6, `${loose.json.max_abs_diff}`);
  const relative = cli('compare.mjs', linear, shifted, '--atol', '0', '--rtol', '100');
  expectStatus(relative, 0);
});

await test('compare.mjs: NaN matches only NaN', () => {
  for (const mode of [['--exact'], ['--atol', '0']]) {
    const same = cli('compare.mjs', log, log, ...mode);
    expectStatus(same, 0);
    assert.equal(same.json.identical, true);
    assert.equal(same.json.outputs[0].mismatches, 0);
  }
  const oneSided = cli('compare.mjs', log, logAbs, '--atol', '1e30', '--rtol', '1e30');
  expectStatus(oneSided, 1);
  assert.equal(oneSided.json.max_abs_diff, 'Infinity');
  assert.ok(oneSided.json.outputs[0].mismatches > 0);
});

await test('compare.mjs generates int64, bool and dynamic-dim inputs reproducibly', () => {
  const a = cli('compare.mjs', mixed, mixed, '--exact', '--batch', '3', '--seed', '7', '--save-inputs', tmp('in-a'));
  expectStatus(a, 0);
  assert.deepEqual(a.json.inputs, [
    { name: 'idx', dtype: 'int64', dims: [3] },
    { name: 'flag', dtype: 'bool', dims: [3, 2] },
  ]);
  const b = cli('compare.mjs', mixed, mixed, '--exact', '--batch', '3', '--seed', '7', '--save-inputs', tmp('in-b'));
  const c = cli('compare.mjs', mixed, mixed, '--exact', '--batch', '3', '--seed', '8', '--save-inputs', tmp('in-c'));
  expectStatus(b, 0);
  expectStatus(c, 0);
  const bytes = (dir) => readFileSync(path.join(tmp(dir), '0_idx.npy')).toString('hex')
    + readFileSync(path.join(tmp(dir), '1_flag.npy')).toString('hex');
  assert.equal(bytes('in-a'), bytes('in-b'));
  assert.notEqual(bytes('in-a'), bytes('in-c'));
  const idx = readNpy(path.join(tmp('in-a'), '0_idx.npy')).data;
  assert.ok(idx.every((v) => v >= 0n && v < 4n));

  const given = cli('compare.mjs', mixed, mixed, '--exact', '--inputs',
    `${path.join(tmp('in-a'), '0_idx.npy')},${path.join(tmp('in-a'), '1_flag.npy')}`);
  expectStatus(given, 0);
  assert.deepEqual(given.json.outputs, a.json.outputs);
});

await test('compare.mjs fails with exit 2 on bad use', () => {
  for (const args of [
    [linear],
    [linear, mixed],
    [linear, linear, '--exact', '--atol', '1'],
    [linear, linear, '--atol', 'x'],
    [linear, linear, '--batch', '0'],
    [linear, linear, '--opt-level', 'max'],
    [linear, linear, '--inputs', tmp('idx.npy')],
  ]) {
    const result = cli('compare.mjs', ...args);
    expectStatus(result, 2);
    assert.match(result.stderr, /compare\.mjs: error: /);
  }
});

await test('accuracy.mjs counts top-1 hits, batched or one sample at a time', () => {
  for (const [file, ...options] of [[linear], [linear, '--batch', '3'], [linearB1], [linear, '--opt-level', 'disabled']]) {
    const result = cli('accuracy.mjs', file, tmp('x.npy'), tmp('y.npy'), ...options);
    expectStatus(result, 0);
    assert.deepEqual(result.json, { samples: 10, correct: 5, top1: 0.5 });
  }
  writeNpy(tmp('y-short.npy'), { type: 'int64', dims: [3], data: new BigInt64Array(3) });
  expectStatus(cli('accuracy.mjs', linear, tmp('x.npy'), tmp('y-short.npy')), 2);
  expectStatus(cli('accuracy.mjs', mixed, tmp('x.npy'), tmp('y.npy')), 2);
});

await test('cosine.mjs compares first outputs over a data set', () => {
  const same = cli('cosine.mjs', linear, linearB1, tmp('x.npy'), '--batch', '4');
  expectStatus(same, 0);
  assert.deepEqual(same.json, { samples: 10, mean_cosine: 1, min_cosine: 1, max_abs_diff: 0, top1_agreement: 1 });
  const near = cli('cosine.mjs', linear, shifted, tmp('x.npy'));
  expectStatus(near, 0);
  assert.equal(near.json.top1_agreement, 1);
  assert.ok(near.json.mean_cosine > 0.9999 && near.json.mean_cosine < 1, `${near.json.mean_cosine}`);
  assert.ok(Math.abs(near.json.max_abs_diff - 0.002) < 1e-6, `${near.json.max_abs_diff}`);
  expectStatus(cli('cosine.mjs', linear, shifted), 2);
});

const conformance = [
  ['pytorch-converted/test_Conv2d', 'float32 Conv'],
  ['pytorch-converted/test_Embedding', 'int64 input'],
  ['simple/test_sequence_model1', 'three inputs, symbolic output dim'],
];
if (!conformanceDir || !existsSync(conformanceDir)) {
  skip('conformance models', `${conformanceDir ?? '(no folder given)'} not found`);
} else {
  for (const [name, what] of conformance) {
    const file = path.join(conformanceDir, name, 'model.onnx');
    if (!existsSync(file)) {
      skip(name, `${file} not found`);
      continue;
    }
    await test(`conformance ${name} (${what}): compare --exact, then run.mjs`, () => {
      const inputs = tmp(`${path.basename(name)}-in`);
      const compared = cli('compare.mjs', file, file, '--exact', '--save-inputs', inputs);
      expectStatus(compared, 0);
      assert.equal(compared.json.identical, true);
      const files = compared.json.inputs.map((input, i) => path.join(inputs, `${i}_${input.name}.npy`));
      const outdir = tmp(`${path.basename(name)}-out`);
      mkdirSync(outdir);
      const ran = cli('run.mjs', file, '--inputs', files.join(','), '--outdir', outdir);
      expectStatus(ran, 0);
      assert.deepEqual(ran.json.outputs.map(({ dims, dtype }) => ({ dims, dtype })),
        compared.json.outputs.map(({ dims, dtype }) => ({ dims, dtype })));
      const unoptimized = cli('compare.mjs', file, file, '--opt-level', 'disabled', '--atol', '1e-5', '--rtol', '1e-4');
      expectStatus(unoptimized, 0);
    });
  }
}

rmSync(work, { recursive: true, force: true });
console.log(`selftest: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exitCode = counts.failed ? 1 : 0;
