// Helpers on arrays {type, dims, data}: half floats, row slicing, numbers.
import { dtypeInfo, elementCount } from './npy.mjs';

export function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

// Round to nearest, ties to even, like a hardware float32 -> float16 cast.
export function floatToHalf(value) {
  f32[0] = value;
  const x = f32Bits[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  let shift;
  let half;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    shift = 14 - e;
    half = mantissa >>> shift;
  } else {
    shift = 13;
    half = (e << 10) | (mantissa >>> 13);
  }
  const rest = mantissa & ((1 << shift) - 1);
  const midpoint = 1 << (shift - 1);
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > midpoint || (rest === midpoint && half & 1)) half++;
  return sign | half;
}

export function toFloat64(array) {
  const { type, data } = array;
  const out = new Float64Array(data.length);
  if (type === 'float16') {
    for (let i = 0; i < data.length; i++) out[i] = halfToFloat(data[i]);
  } else if (type === 'int64' || type === 'uint64') {
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  } else if (type in { float32: 1, float64: 1, int8: 1, uint8: 1, int16: 1, uint16: 1, int32: 1, uint32: 1, bool: 1 }) {
    out.set(data);
  } else {
    throw new Error(`cannot treat ${type} values as numbers`);
  }
  return out;
}

export function rowSize(array) {
  if (array.dims.length === 0) throw new Error('a scalar has no rows');
  return elementCount(array.dims.slice(1));
}

// Rows [start, start+count) as a new array; with rows > count the tail is
// zero padding, for models whose batch dimension is fixed.
export function sliceRows(array, start, count, rows = count) {
  const size = rowSize(array);
  const { ArrayType } = dtypeInfo(array.type);
  const data = new ArrayType(rows * size);
  data.set(array.data.subarray(start * size, (start + count) * size));
  return { type: array.type, dims: [rows, ...array.dims.slice(1)], data };
}

export function concatRows(parts) {
  const [first] = parts;
  const { ArrayType } = dtypeInfo(first.type);
  const data = new ArrayType(parts.reduce((n, p) => n + p.data.length, 0));
  let offset = 0;
  for (const part of parts) {
    data.set(part.data, offset);
    offset += part.data.length;
  }
  const rows = parts.reduce((n, p) => n + p.dims[0], 0);
  return { type: first.type, dims: [rows, ...first.dims.slice(1)], data };
}

// Index of the largest value of each row; the first one wins ties.
export function argmaxRows(values, rows) {
  const size = values.length / rows;
  const result = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < size; j++) {
      if (values[r * size + j] > values[r * size + best]) best = j;
    }
    result[r] = best;
  }
  return result;
}

// NaN matches only NaN, and equal infinities match: 0; any other pairing
// with NaN or infinity is infinitely far apart.
export function absDiff(x, y) {
  if (x === y) return 0;
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) && Number.isNaN(y) ? 0 : Infinity;
  return Math.abs(y - x);
}

export function sameBytes(a, b) {
  const bytes = (x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  return bytes(a).equals(bytes(b));
}
