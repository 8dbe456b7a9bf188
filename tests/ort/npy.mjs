// NumPy .npy files as plain arrays {type, dims, data}, the same shape of
// object that ort.mjs uses for tensors, so model outputs can be saved as-is.
// Only little-endian, C-order, non-structured arrays are supported.
import { readFileSync, writeFileSync } from 'node:fs';

// Keys are the ONNX Runtime tensor type names.
export const DTYPES = {
  float32: { code: 'f4', size: 4, ArrayType: Float32Array },
  float64: { code: 'f8', size: 8, ArrayType: Float64Array },
  // Node 20 has no Float16Array: half floats travel as their raw bits.
  float16: { code: 'f2', size: 2, ArrayType: Uint16Array },
  int8: { code: 'i1', size: 1, ArrayType: Int8Array },
  uint8: { code: 'u1', size: 1, ArrayType: Uint8Array },
  int16: { code: 'i2', size: 2, ArrayType: Int16Array },
  uint16: { code: 'u2', size: 2, ArrayType: Uint16Array },
  int32: { code: 'i4', size: 4, ArrayType: Int32Array },
  uint32: { code: 'u4', size: 4, ArrayType: Uint32Array },
  int64: { code: 'i8', size: 8, ArrayType: BigInt64Array },
  uint64: { code: 'u8', size: 8, ArrayType: BigUint64Array },
  bool: { code: 'b1', size: 1, ArrayType: Uint8Array },
};

const MAGIC = Buffer.from('\x93NUMPY', 'latin1');
const ALIGN = 64;

export function elementCount(dims) {
  return dims.reduce((n, d) => n * d, 1);
}

export function dtypeInfo(type) {
  const info = DTYPES[type];
  if (!info) {
    throw new Error(`unsupported dtype '${type}' (supported: ${Object.keys(DTYPES).join(', ')})`);
  }
  return info;
}

// The header is a Python dict literal; this reads the subset numpy writes:
// dicts, tuples/lists, quoted strings, ints, True/False/None.
function parsePyLiteral(text) {
  let pos = 0;
  const fail = (why) => {
    throw new Error(`bad .npy header (${why} at offset ${pos}): ${text.trim()}`);
  };
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
  };
  const sequence = (close, onItem) => {
    for (;;) {
      skipSpace();
      if (text[pos] === close) {
        pos++;
        return;
      }
      onItem();
      skipSpace();
      if (text[pos] === ',') pos++;
      else if (text[pos] !== close) fail(`expected ',' or '${close}'`);
    }
  };
  const value = () => {
    skipSpace();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const dict = {};
      sequence('}', () => {
        const key = value();
        if (typeof key !== 'string') fail('dict key is not a string');
        skipSpace();
        if (text[pos] !== ':') fail("expected ':'");
        pos++;
        dict[key] = value();
      });
      return dict;
    }
    if (c === '(' || c === '[') {
      pos++;
      const items = [];
      sequence(c === '(' ? ')' : ']', () => items.push(value()));
      return items;
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, pos + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(pos + 1, end);
      pos = end + 1;
      return s;
    }
    const m = /^(?:True|False|None|-?\d+)/.exec(text.slice(pos));
    if (!m) fail(c === undefined ? 'unexpected end' : `unexpected '${c}'`);
    pos += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number.parseInt(m[0], 10);
  };
  const result = value();
  skipSpace();
  if (pos !== text.length) fail('trailing characters');
  return result;
}

function typeFromDescr(descr) {
  if (typeof descr !== 'string') {
    throw new Error(`structured dtype ${JSON.stringify(descr)} is not supported`);
  }
  const m = /^([<>|=])([a-z]\d+)$/.exec(descr);
  const type = m && Object.keys(DTYPES).find((t) => DTYPES[t].code === m[2]);
  if (!type) throw new Error(`unsupported dtype '${descr}'`);
  if (m[1] === '>' && DTYPES[type].size > 1) {
    throw new Error(`big-endian dtype '${descr}' is not supported`);
  }
  return type;
}

export function decodeNpy(bytes, source = '<buffer>') {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why) => {
    throw new Error(`${source}: ${why}`);
  };
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) fail('not a .npy file (bad magic)');
  const major = buf[6];
  let headerStart;
  let headerLength;
  if (major === 1) {
    headerStart = 10;
    headerLength = buf.readUInt16LE(8);
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) fail('truncated header');
    headerStart = 12;
    headerLength = buf.readUInt32LE(8);
  } else {
    fail(`unsupported .npy version ${major}.${buf[7]}`);
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > buf.length) fail('truncated header');

  let header;
  let type;
  try {
    header = parsePyLiteral(buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, dataStart));
    if (header === null || typeof header !== 'object' || Array.isArray(header)) {
      throw new Error('header is not a dict');
    }
    for (const key of ['descr', 'fortran_order', 'shape']) {
      if (!(key in header)) throw new Error(`header has no '${key}'`);
    }
    type = typeFromDescr(header.descr);
  } catch (err) {
    fail(err.message);
  }
  if (header.fortran_order !== false) fail('Fortran-order arrays are not supported');
  const dims = header.shape;
  if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`bad shape ${JSON.stringify(dims)}`);
  }

  const { size, ArrayType } = DTYPES[type];
  const byteLength = elementCount(dims) * size;
  const available = buf.length - dataStart;
  if (available < byteLength) fail(`truncated data: expected ${byteLength} bytes, found ${available}`);
  if (available > byteLength) fail(`${available - byteLength} unexpected bytes after the data`);
  // Copy into a fresh buffer: the typed array needs its own alignment.
  const data = new ArrayType(buf.buffer.slice(buf.byteOffset + dataStart, buf.byteOffset + buf.length));
  return { type, dims, data };
}

export function encodeNpy({ type, dims, data }) {
  const { code, size, ArrayType } = dtypeInfo(type);
  if (!(data instanceof ArrayType)) {
    throw new Error(`${type} data must be a ${ArrayType.name}, got ${data?.constructor?.name}`);
  }
  if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`bad dims ${JSON.stringify(dims)}`);
  }
  if (data.length !== elementCount(dims)) {
    throw new Error(`dims [${dims}] need ${elementCount(dims)} elements, data has ${data.length}`);
  }
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  const order = size === 1 ? '|' : '<';
  let header = `{'descr': '${order}${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Version 1.0 fits any header of fewer than 65536 bytes, i.e. any sane rank.
  const padded = Math.ceil((10 + header.length + 1) / ALIGN) * ALIGN;
  header = header.padEnd(padded - 10 - 1) + '\n';
  if (header.length > 0xffff) throw new Error(`.npy header too long for dims [${dims}]`);
  const prefix = Buffer.alloc(10);
  MAGIC.copy(prefix);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([
    prefix,
    Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}

export function readNpy(file) {
  let bytes;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${err.message}`);
  }
  return decodeNpy(bytes, file);
}

export function writeNpy(file, array) {
  writeFileSync(file, encodeNpy(array));
}
