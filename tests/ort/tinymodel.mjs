// Writes small ONNX models for the self-test without any ONNX library: just
// enough protobuf encoding for ModelProto with a graph of simple nodes.
import { dtypeInfo } from './npy.mjs';

// TensorProto.DataType numbers.
const ONNX_TYPES = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7,
  bool: 9, float16: 10, float64: 11, uint32: 12, uint64: 13,
};

function varint(value) {
  let n = BigInt(value);
  if (n < 0n) n += 1n << 64n;
  const bytes = [];
  do {
    let byte = Number(n & 0x7fn);
    n >>= 7n;
    if (n) byte |= 0x80;
    bytes.push(byte);
  } while (n);
  return Buffer.from(bytes);
}

// A protobuf message as a list of encoded fields.
class Message {
  parts = [];

  int(field, value) {
    this.parts.push(varint(field << 3), varint(value));
    return this;
  }

  bytes(field, value) {
    const data = typeof value === 'string' ? Buffer.from(value, 'utf8')
      : value instanceof Message ? value.encode() : value;
    this.parts.push(varint((field << 3) | 2), varint(data.length), data);
    return this;
  }

  encode() {
    return Buffer.concat(this.parts);
  }
}

function onnxType(type) {
  const number = ONNX_TYPES[type];
  if (!number) throw new Error(`no ONNX type for '${type}'`);
  return number;
}

// An initializer from an array {type, dims, data}.
export function tensor(name, { type, dims, data }) {
  const { ArrayType } = dtypeInfo(type);
  const typed = data instanceof ArrayType ? data : ArrayType.from(data);
  const t = new Message();
  for (const d of dims) t.int(1, d);
  return t.int(2, onnxType(type)).bytes(8, name)
    .bytes(9, Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength));
}

// dims: numbers for fixed sizes, strings for symbolic ones.
export function valueInfo(name, type, dims) {
  const shape = new Message();
  for (const d of dims) {
    shape.bytes(1, typeof d === 'string' ? new Message().bytes(2, d) : new Message().int(1, d));
  }
  const tensorType = new Message().int(1, onnxType(type)).bytes(2, shape);
  return new Message().bytes(1, name).bytes(2, new Message().bytes(1, tensorType));
}

// attributes: {name: integer}; the self-test needs no other kind.
export function node(opType, inputs, outputs, attributes = {}) {
  const n = new Message();
  for (const i of inputs) n.bytes(1, i);
  for (const o of outputs) n.bytes(2, o);
  n.bytes(4, opType);
  for (const [name, value] of Object.entries(attributes)) {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: only integers are supported`);
    n.bytes(5, new Message().bytes(1, name).int(3, value).int(20, 2));
  }
  return n;
}

export function model({ nodes, inputs, outputs, initializers = [], opset = 13, name = 'tiny' }) {
  const graph = new Message();
  for (const n of nodes) graph.bytes(1, n);
  graph.bytes(2, name);
  for (const t of initializers) graph.bytes(5, t);
  for (const i of inputs) graph.bytes(11, i);
  for (const o of outputs) graph.bytes(12, o);
  return new Message()
    .int(1, 8)
    .bytes(2, 'modelpress-tests')
    .bytes(7, graph)
    .bytes(8, new Message().bytes(1, '').int(2, opset))
    .encode();
}
