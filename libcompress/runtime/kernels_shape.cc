// Kernels that move data without arithmetic: Reshape and friends (no copy),
// Transpose, Slice, Pad, Tile and Expand (one gather routine), Concat, Split,
// Gather, Shape and ConstantOfShape.
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/broadcast.h"

namespace modelpress::runtime {
namespace {

// out[o_0, ..., o_k] = x[sum_d table[d][o_d]] (an element offset into x), or
// `fill` when any table entry is -1. Every data-movement kernel below is a
// choice of per-axis tables.
Status GatherByTables(const Tensor& x, const std::vector<int64_t>& out_shape,
                      const std::vector<std::vector<int64_t>>& table, double fill, Tensor* out) {
  MP_ASSIGN_OR_RETURN(*out, Tensor::Zeros(x.dtype(), out_shape));
  MP_ASSIGN_OR_RETURN(Tensor fill_t, Tensor::Copy(DType::kFloat64, {}, &fill));
  MP_ASSIGN_OR_RETURN(fill_t, CastTensor(fill_t, x.dtype() == DType::kBool ? DType::kBool : x.dtype()));
  const int rank = static_cast<int>(out_shape.size());
  const int64_t total = out->size();
  if (total == 0) return Status::Ok();
  return DispatchBySize(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = x.data<T>();
    T* dst = out->mutable_data<T>();
    T fv;
    std::memcpy(&fv, fill_t.raw(), sizeof(T));
    if (rank == 0) {
      dst[0] = src[0];
      return Status::Ok();
    }
    const auto& last = table[rank - 1];
    const int64_t inner = out_shape[rank - 1];
    std::vector<int64_t> idx(rank, 0);
    for (int64_t o = 0; o < total; o += inner) {
      int64_t base = 0;
      bool pad = false;
      for (int d = 0; d < rank - 1; ++d) {
        const int64_t t = table[d][idx[d]];
        pad = pad || t < 0;
        base += t;
      }
      for (int64_t j = 0; j < inner; ++j) dst[o + j] = pad || last[j] < 0 ? fv : src[base + last[j]];
      for (int d = rank - 2; d >= 0; --d) {
        if (++idx[d] < out_shape[d]) break;
        idx[d] = 0;
      }
    }
    return Status::Ok();
  });
}

Status Reshape(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  std::vector<int64_t> target;
  if (c.opset() < 5) {
    target = c.Ints("shape").value_or(std::vector<int64_t>{});
  } else {
    MP_ASSIGN_OR_RETURN(const Tensor* s, c.Required(1));
    MP_ASSIGN_OR_RETURN(target, ReadInts(*s, "shape"));
  }
  const bool allow_zero = c.Int("allowzero", 0) != 0;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && !allow_zero) {
      if (i >= x->shape().size()) return InvalidArgument("shape " + ShapeToString(target) + " copies a dim X lacks");
      target[i] = x->shape()[i];
    }
    if (target[i] == -1) {
      if (infer >= 0) return InvalidArgument("shape " + ShapeToString(target) + " has more than one -1");
      infer = static_cast<int>(i);
      continue;
    }
    if (target[i] < 0) return InvalidArgument("shape " + ShapeToString(target) + " has a negative dim");
    known *= target[i];
  }
  if (infer >= 0) {
    if (known == 0 || x->size() % known != 0) {
      return InvalidArgument("cannot reshape " + Describe(*x) + " to " + ShapeToString(target));
    }
    target[infer] = x->size() / known;
  }
  if (Product(target) != x->size()) return InvalidArgument("cannot reshape " + Describe(*x) + " to " + ShapeToString(target));
  c.set_output(0, x->Reshaped(target));
  return Status::Ok();
}

Status Flatten(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  int64_t axis = c.Int("axis", 1);
  if (axis < 0) axis += x->rank();
  if (axis < 0 || axis > x->rank()) return InvalidArgument("axis " + std::to_string(c.Int("axis", 1)) + " is out of range");
  c.set_output(0, x->Reshaped({Product(x->shape(), 0, static_cast<int>(axis)), Product(x->shape(), static_cast<int>(axis))}));
  return Status::Ok();
}

// Axes of Squeeze/Unsqueeze: an attribute before opset 13, an input since.
Result<std::optional<std::vector<int64_t>>> AxesOf(const KernelContext& c) {
  if (const Tensor* a = c.input(1)) {
    MP_ASSIGN_OR_RETURN(auto v, ReadInts(*a, "axes"));
    return std::optional<std::vector<int64_t>>(v);
  }
  return c.Ints("axes");
}

Status Squeeze(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(auto axes, AxesOf(c));
  std::vector<bool> drop(x->rank(), false);
  if (axes) {
    for (int64_t a : *axes) {
      MP_ASSIGN_OR_RETURN(const int ax, NormalizeAxis(a, x->rank()));
      if (x->shape()[ax] != 1) return InvalidArgument("cannot squeeze axis " + std::to_string(a) + " of " + Describe(*x));
      drop[ax] = true;
    }
  } else {
    for (int d = 0; d < x->rank(); ++d) drop[d] = x->shape()[d] == 1;
  }
  std::vector<int64_t> shape;
  for (int d = 0; d < x->rank(); ++d) {
    if (!drop[d]) shape.push_back(x->shape()[d]);
  }
  c.set_output(0, x->Reshaped(shape));
  return Status::Ok();
}

Status Unsqueeze(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(auto axes, AxesOf(c));
  if (!axes) return InvalidArgument("axes are required");
  const int rank = x->rank() + static_cast<int>(axes->size());
  std::vector<bool> added(rank, false);
  for (int64_t a : *axes) {
    MP_ASSIGN_OR_RETURN(const int ax, NormalizeAxis(a, rank));
    if (added[ax]) return InvalidArgument("axis " + std::to_string(a) + " is repeated");
    added[ax] = true;
  }
  std::vector<int64_t> shape;
  size_t next = 0;
  for (int d = 0; d < rank; ++d) shape.push_back(added[d] ? 1 : x->shape()[next++]);
  c.set_output(0, x->Reshaped(shape));
  return Status::Ok();
}

Status Transpose(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  const int rank = x->rank();
  std::vector<int64_t> perm = c.Ints("perm").value_or(std::vector<int64_t>{});
  if (perm.empty()) {
    for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
  }
  if (static_cast<int>(perm.size()) != rank) return InvalidArgument("perm " + ShapeToString(perm) + " does not match " + Describe(*x));
  std::vector<bool> seen(rank, false);
  const auto strides = Strides(x->shape());
  std::vector<int64_t> out_shape(rank);
  std::vector<std::vector<int64_t>> table(rank);
  for (int d = 0; d < rank; ++d) {
    if (perm[d] < 0 || perm[d] >= rank || seen[perm[d]]) return InvalidArgument("perm " + ShapeToString(perm) + " is not a permutation");
    seen[perm[d]] = true;
    out_shape[d] = x->shape()[perm[d]];
    for (int64_t o = 0; o < out_shape[d]; ++o) table[d].push_back(o * strides[perm[d]]);
  }
  Tensor y;
  MP_RETURN_IF_ERROR(GatherByTables(*x, out_shape, table, 0, &y));
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status Slice(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  const int rank = x->rank();
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.opset() < 10) {
    starts = c.Ints("starts").value_or(std::vector<int64_t>{});
    ends = c.Ints("ends").value_or(std::vector<int64_t>{});
    axes = c.Ints("axes").value_or(std::vector<int64_t>{});
  } else {
    MP_ASSIGN_OR_RETURN(const Tensor* s, c.Required(1));
    MP_ASSIGN_OR_RETURN(const Tensor* e, c.Required(2));
    MP_ASSIGN_OR_RETURN(starts, ReadInts(*s, "starts"));
    MP_ASSIGN_OR_RETURN(ends, ReadInts(*e, "ends"));
    if (const Tensor* a = c.input(3)) {
      MP_ASSIGN_OR_RETURN(axes, ReadInts(*a, "axes"));
    }
    if (const Tensor* st = c.input(4)) {
      MP_ASSIGN_OR_RETURN(steps, ReadInts(*st, "steps"));
    }
  }
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    return InvalidArgument("starts, ends, axes and steps differ in length");
  }
  std::vector<int64_t> first(rank, 0), step(rank, 1), out_shape = x->shape();
  for (size_t i = 0; i < starts.size(); ++i) {
    MP_ASSIGN_OR_RETURN(const int ax, NormalizeAxis(axes[i], rank));
    const int64_t dim = x->shape()[ax], s = steps[i];
    if (s == 0) return InvalidArgument("steps must not be 0");
    // numpy's clamping: positive steps clamp to [0, dim], negative to [-1, dim-1].
    auto clamp = [&](int64_t v) {
      if (v < 0) v += dim;
      return s > 0 ? std::clamp<int64_t>(v, 0, dim) : std::clamp<int64_t>(v, -1, dim - 1);
    };
    const int64_t b = clamp(starts[i]), e = clamp(ends[i]);
    const int64_t n = s > 0 ? (e > b ? (e - b + s - 1) / s : 0) : (b > e ? (b - e + (-s) - 1) / (-s) : 0);
    first[ax] = b;
    step[ax] = s;
    out_shape[ax] = n;
  }
  const auto strides = Strides(x->shape());
  std::vector<std::vector<int64_t>> table(rank);
  for (int d = 0; d < rank; ++d) {
    for (int64_t o = 0; o < out_shape[d]; ++o) table[d].push_back((first[d] + o * step[d]) * strides[d]);
  }
  Tensor y;
  MP_RETURN_IF_ERROR(GatherByTables(*x, out_shape, table, 0, &y));
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status Pad(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  const int rank = x->rank();
  const std::string mode = c.String("mode", "constant");
  std::vector<int64_t> pads;
  double value = 0;
  if (c.opset() < 11) {
    pads = c.Ints(c.opset() < 2 ? "paddings" : "pads").value_or(std::vector<int64_t>{});
    value = c.Float("value", 0.0f);
  } else {
    MP_ASSIGN_OR_RETURN(const Tensor* p, c.Required(1));
    MP_ASSIGN_OR_RETURN(pads, ReadInts(*p, "pads"));
    if (const Tensor* v = c.input(2); v != nullptr && v->size() > 0) value = v->AsDouble(0);
    if (const Tensor* a = c.input(3)) {
      // Opset 18 axes: pads lists only these axes.
      MP_ASSIGN_OR_RETURN(auto axes, ReadInts(*a, "axes"));
      if (pads.size() != 2 * axes.size()) return InvalidArgument("pads must have twice as many entries as axes");
      std::vector<int64_t> full(2 * rank, 0);
      for (size_t i = 0; i < axes.size(); ++i) {
        MP_ASSIGN_OR_RETURN(const int ax, NormalizeAxis(axes[i], rank));
        full[ax] = pads[i];
        full[ax + rank] = pads[i + axes.size()];
      }
      pads = full;
    }
  }
  if (static_cast<int>(pads.size()) != 2 * rank) {
    return InvalidArgument("pads " + ShapeToString(pads) + " must have 2 entries per axis of " + Describe(*x));
  }
  if (mode != "constant" && mode != "reflect" && mode != "edge") {
    return Unsupported("pad mode '" + mode + "' is not supported (constant, reflect, edge)");
  }
  const auto strides = Strides(x->shape());
  std::vector<int64_t> out_shape(rank);
  std::vector<std::vector<int64_t>> table(rank);
  for (int d = 0; d < rank; ++d) {
    const int64_t dim = x->shape()[d];
    out_shape[d] = dim + pads[d] + pads[d + rank];
    if (out_shape[d] < 0) return InvalidArgument("pads remove more than axis " + std::to_string(d) + " holds");
    if (mode != "constant" && dim == 0 && out_shape[d] > 0) return InvalidArgument("cannot " + mode + "-pad an empty axis");
    if (mode == "reflect" && dim < 2 && (pads[d] > 0 || pads[d + rank] > 0)) {
      return InvalidArgument("reflect padding needs at least 2 elements on axis " + std::to_string(d));
    }
    for (int64_t o = 0; o < out_shape[d]; ++o) {
      int64_t i = o - pads[d];
      if (i < 0 || i >= dim) {
        if (mode == "constant") {
          table[d].push_back(-1);
          continue;
        }
        if (mode == "edge") {
          i = std::clamp<int64_t>(i, 0, dim - 1);
        } else {
          // Reflect without repeating the edge, folding as often as needed.
          const int64_t period = 2 * (dim - 1);
          i = ((i % period) + period) % period;
          if (i >= dim) i = period - i;
        }
      }
      table[d].push_back(i * strides[d]);
    }
  }
  Tensor y;
  MP_RETURN_IF_ERROR(GatherByTables(*x, out_shape, table, value, &y));
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status Tile(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* r, c.Required(1));
  MP_ASSIGN_OR_RETURN(auto repeats, ReadInts(*r, "repeats"));
  if (static_cast<int>(repeats.size()) != x->rank()) return InvalidArgument("repeats must have one entry per axis");
  const auto strides = Strides(x->shape());
  std::vector<int64_t> out_shape(x->rank());
  std::vector<std::vector<int64_t>> table(x->rank());
  for (int d = 0; d < x->rank(); ++d) {
    if (repeats[d] < 0) return InvalidArgument("repeats must not be negative");
    out_shape[d] = x->shape()[d] * repeats[d];
    for (int64_t o = 0; o < out_shape[d]; ++o) table[d].push_back((o % x->shape()[d]) * strides[d]);
  }
  Tensor y;
  MP_RETURN_IF_ERROR(GatherByTables(*x, out_shape, table, 0, &y));
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status Expand(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* s, c.Required(1));
  MP_ASSIGN_OR_RETURN(auto shape, ReadInts(*s, "shape"));
  MP_ASSIGN_OR_RETURN(auto out_shape, BroadcastShapes(x->shape(), shape));
  const int rank = static_cast<int>(out_shape.size()), lead = rank - x->rank();
  const auto strides = Strides(x->shape());
  std::vector<std::vector<int64_t>> table(rank);
  for (int d = 0; d < rank; ++d) {
    const bool broadcast = d < lead || x->shape()[d - lead] == 1;
    for (int64_t o = 0; o < out_shape[d]; ++o) table[d].push_back(broadcast ? 0 : o * strides[d - lead]);
  }
  Tensor y;
  MP_RETURN_IF_ERROR(GatherByTables(*x, out_shape, table, 0, &y));
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status Concat(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* first, c.Required(0));
  if (c.Attr("axis") == nullptr && c.opset() >= 4) return InvalidArgument("attribute axis is required");
  MP_ASSIGN_OR_RETURN(const int axis, NormalizeAxis(c.Int("axis", 1), first->rank()));
  std::vector<int64_t> out_shape = first->shape();
  out_shape[axis] = 0;
  for (int i = 0; i < c.input_count(); ++i) {
    MP_ASSIGN_OR_RETURN(const Tensor* t, c.Required(i));
    bool ok = t->dtype() == first->dtype() && t->rank() == first->rank();
    for (int d = 0; ok && d < t->rank(); ++d) ok = d == axis || t->shape()[d] == first->shape()[d];
    if (!ok) return InvalidArgument("input " + std::to_string(i) + " (" + Describe(*t) + ") does not match input 0 (" + Describe(*first) + ")");
    out_shape[axis] += t->shape()[axis];
  }
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(first->dtype(), out_shape));
  const size_t es = DTypeSize(first->dtype());
  const int64_t outer = Product(out_shape, 0, axis), inner = Product(out_shape, axis + 1);
  std::byte* dst = y.mutable_data<std::byte>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int i = 0; i < c.input_count(); ++i) {
      const Tensor* t = c.input(i);
      const size_t chunk = static_cast<size_t>(t->shape()[axis] * inner) * es;
      if (chunk == 0) continue;
      std::memcpy(dst, t->raw() + o * chunk, chunk);
      dst += chunk;
    }
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status Split(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const int axis, NormalizeAxis(c.Int("axis", 0), x->rank()));
  const int64_t dim = x->shape()[axis];
  const int n = c.output_count();
  std::vector<int64_t> sizes;
  if (const Tensor* s = c.input(1)) {
    MP_ASSIGN_OR_RETURN(sizes, ReadInts(*s, "split"));
  } else if (auto attr = c.Ints("split")) {
    sizes = *attr;
  } else {
    // Equal parts; since opset 18 the last may be smaller.
    const int64_t part = (dim + n - 1) / n;
    for (int i = 0; i < n; ++i) sizes.push_back(std::max<int64_t>(0, std::min(part, dim - part * i)));
  }
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if (static_cast<int>(sizes.size()) != n || total != dim) {
    return InvalidArgument("split " + ShapeToString(sizes) + " does not divide axis " + std::to_string(axis) + " of " +
                           Describe(*x) + " into " + std::to_string(n) + " outputs");
  }
  const size_t es = DTypeSize(x->dtype());
  const int64_t outer = Product(x->shape(), 0, axis), inner = Product(x->shape(), axis + 1);
  int64_t offset = 0;
  for (int i = 0; i < n; ++i) {
    std::vector<int64_t> shape = x->shape();
    shape[axis] = sizes[i];
    MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(x->dtype(), shape));
    const size_t chunk = static_cast<size_t>(sizes[i] * inner) * es;
    for (int64_t o = 0; o < outer && chunk > 0; ++o) {
      std::memcpy(y.mutable_data<std::byte>() + o * chunk, x->raw() + (o * dim + offset) * inner * es, chunk);
    }
    offset += sizes[i];
    c.set_output(i, std::move(y));
  }
  return Status::Ok();
}

Status Gather(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* ind, c.Required(1));
  MP_ASSIGN_OR_RETURN(const int axis, NormalizeAxis(c.Int("axis", 0), x->rank()));
  MP_ASSIGN_OR_RETURN(auto indices, ReadInts(*ind, "indices"));
  const int64_t dim = x->shape()[axis];
  for (int64_t& i : indices) {
    if (i < -dim || i >= dim) {
      return InvalidArgument("index " + std::to_string(i) + " is out of range for axis " + std::to_string(axis) +
                             " of " + Describe(*x));
    }
    if (i < 0) i += dim;
  }
  std::vector<int64_t> out_shape(x->shape().begin(), x->shape().begin() + axis);
  out_shape.insert(out_shape.end(), ind->shape().begin(), ind->shape().end());
  out_shape.insert(out_shape.end(), x->shape().begin() + axis + 1, x->shape().end());
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(x->dtype(), out_shape));
  const size_t es = DTypeSize(x->dtype());
  const int64_t outer = Product(x->shape(), 0, axis), inner = Product(x->shape(), axis + 1);
  const size_t chunk = static_cast<size_t>(inner) * es;
  std::byte* dst = y.mutable_data<std::byte>();
  for (int64_t o = 0; o < outer && chunk > 0; ++o) {
    for (int64_t i : indices) {
      std::memcpy(dst, x->raw() + (o * dim + i) * chunk, chunk);
      dst += chunk;
    }
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status Shape(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  const int64_t rank = x->rank();
  auto clamp = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  const int64_t start = clamp(c.Int("start", 0)), end = clamp(c.Int("end", rank));
  std::vector<int64_t> dims;
  for (int64_t d = start; d < end; ++d) dims.push_back(x->shape()[d]);
  c.set_output(0, Tensor::FromInt64s({static_cast<int64_t>(dims.size())}, dims));
  return Status::Ok();
}

Status ConstantOfShape(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* s, c.Required(0));
  MP_ASSIGN_OR_RETURN(auto shape, ReadInts(*s, "shape"));
  Tensor value;
  if (const auto* a = c.Attr("value")) {
    MP_ASSIGN_OR_RETURN(value, TensorFromProto(a->t(), "attribute value"));
    if (value.size() != 1) return InvalidArgument("value must hold one element");
  } else {
    value = Tensor::FromFloats({1}, std::vector<float>{0.0f});
  }
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(value.dtype(), shape));
  const size_t es = DTypeSize(value.dtype());
  for (int64_t i = 0; i < y.size(); ++i) std::memcpy(y.mutable_data<std::byte>() + i * es, value.raw(), es);
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status Size(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  const int64_t n = x->size();
  c.set_output(0, Tensor::FromInt64s({}, std::span<const int64_t>(&n, 1)));
  return Status::Ok();
}

}  // namespace

void RegisterShapeKernels(KernelTable& t) {
  t["Reshape"] = {Reshape};
  t["Flatten"] = {Flatten};
  t["Squeeze"] = {Squeeze};
  t["Unsqueeze"] = {Unsqueeze};
  t["Transpose"] = {Transpose};
  t["Slice"] = {Slice};
  t["Pad"] = {Pad};
  t["Tile"] = {Tile, 6};
  t["Expand"] = {Expand, 8};
  t["Concat"] = {Concat};
  t["Split"] = {Split, 2};
  t["Gather"] = {Gather};
  t["Shape"] = {Shape};
  t["Size"] = {Size};
  t["ConstantOfShape"] = {ConstantOfShape, 9};
}

}  // namespace modelpress::runtime
