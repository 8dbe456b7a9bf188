#include "reader/model_splice.h"

#include "codec/tensor_codec.h"
#include "container/stream.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string_view>

namespace modelpress::pack {
namespace {

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
constexpr uint8_t kVarint = 0, kFixed64 = 1, kLength = 2, kFixed32 = 5;

// Field numbers of onnx.proto (ONNX 1.12) that the splice reads.
namespace model_field { constexpr uint32_t kGraph = 7; }
namespace graph_field { constexpr uint32_t kNode = 1, kInitializer = 5; }
namespace node_field { constexpr uint32_t kOutput = 2, kOpType = 4, kAttribute = 5, kDomain = 7; }
namespace attribute_field { constexpr uint32_t kName = 1, kT = 5; }
namespace tensor_field {
constexpr uint32_t kDims = 1, kDataType = 2, kFloatData = 4, kInt32Data = 5, kStringData = 6, kInt64Data = 7, kName = 8,
                   kRawData = 9, kDoubleData = 10, kUint64Data = 11, kDataLocation = 14;
}
constexpr uint64_t kDataLocationExternal = 1;

// One field of a message. For length-delimited fields the content is
// [begin, end) and its length varint starts at len_at.
struct Field {
  uint32_t number = 0;
  uint8_t type = 0;
  uint64_t value = 0;  // varint value
  size_t at = 0;       // where its tag starts
  size_t len_at = 0, begin = 0, end = 0;
};

// Walks the fields of the message at [pos, end) of `buf`.
class Fields {
 public:
  Fields(std::span<const uint8_t> buf, size_t begin, size_t end) : buf_(buf), pos_(begin), end_(end) {}

  // False at the end of the message, or when it is malformed (then ok() is false).
  bool Next(Field* f) {
    if (pos_ >= end_ || !ok_) return false;
    f->at = pos_;
    uint64_t tag = 0;
    if (!Varint(&tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1FFFFFFF) return Fail();
    f->number = static_cast<uint32_t>(tag >> 3);
    f->type = static_cast<uint8_t>(tag & 7);
    switch (f->type) {
      case kVarint:
        if (!Varint(&f->value)) return Fail();
        f->begin = f->end = pos_;
        return true;
      case kFixed64:
      case kFixed32: {
        const size_t n = f->type == kFixed64 ? 8 : 4;
        if (end_ - pos_ < n) return Fail();
        f->begin = pos_;
        pos_ += n;
        f->end = pos_;
        return true;
      }
      case kLength: {
        f->len_at = pos_;
        uint64_t len = 0;
        if (!Varint(&len) || len > end_ - pos_) return Fail();
        f->begin = pos_;
        pos_ += static_cast<size_t>(len);
        f->end = pos_;
        return true;
      }
      default: return Fail();  // groups are not used by ONNX
    }
  }
  bool ok() const { return ok_; }

 private:
  bool Varint(uint64_t* v) {
    std::span<const uint8_t> rest = buf_.subspan(pos_, end_ - pos_);
    if (!GetVarint(&rest, v)) return false;
    pos_ = end_ - rest.size();
    return true;
  }
  bool Fail() {
    ok_ = false;
    return false;
  }

  std::span<const uint8_t> buf_;
  size_t pos_, end_;
  bool ok_ = true;
};

// A length-delimited field: its length varint at len_at, content [begin, end).
struct Span {
  size_t len_at = 0, begin = 0, end = 0;
  uint64_t length() const { return end - begin; }
};
Span SpanOf(const Field& f) { return {f.len_at, f.begin, f.end}; }

// A TensorProto that can take a payload: an initializer, or the `value` of
// a Constant node (then `node` and `attribute` enclose it).
struct Site {
  std::string_view name;
  Span tensor;
  std::optional<Span> node, attribute;
  bool used = false;
};

std::string_view Text(std::span<const uint8_t> buf, const Field& f) {
  return {reinterpret_cast<const char*>(buf.data() + f.begin), f.end - f.begin};
}

// The typed field FillTyped uses for a data type (docs/artifact_format.md,
// storage kind 1), its element width in the packed data, and how elements
// are encoded: 0 copied (fixed32/fixed64), 1 sign-extended varint, 2
// zero-extended varint.
struct TypedField {
  uint32_t number = 0;
  size_t width = 0;
  int encoding = 0;
};
std::optional<TypedField> TypedFieldOf(int32_t dtype) {
  switch (dtype) {
    case 1: case 14: return TypedField{tensor_field::kFloatData, 4, 0};      // float, complex64
    case 11: case 15: return TypedField{tensor_field::kDoubleData, 8, 0};    // double, complex128
    case 7: return TypedField{tensor_field::kInt64Data, 8, 1};               // int64
    case 12: return TypedField{tensor_field::kUint64Data, 4, 2};             // uint32
    case 13: return TypedField{tensor_field::kUint64Data, 8, 2};             // uint64
    case 6: return TypedField{tensor_field::kInt32Data, 4, 1};               // int32
    case 5: return TypedField{tensor_field::kInt32Data, 2, 1};               // int16
    case 3: return TypedField{tensor_field::kInt32Data, 1, 1};               // int8
    case 4: case 10: case 16: return TypedField{tensor_field::kInt32Data, 2, 2};  // uint16, float16, bfloat16
    case 2: case 9: case 17: case 18: case 19: case 20: return TypedField{tensor_field::kInt32Data, 1, 2};  // uint8, bool, float8
    default: return std::nullopt;
  }
}

// Packed varints of the elements of `data` as protobuf writes them: signed
// values as their 64-bit two's complement.
std::vector<uint8_t> Varints(std::span<const uint8_t> data, const TypedField& f) {
  std::vector<uint8_t> out;
  out.reserve(data.size() + data.size() / 2);
  for (size_t i = 0; i + f.width <= data.size(); i += f.width) {
    uint64_t u = 0;
    std::memcpy(&u, data.data() + i, f.width);  // little-endian
    if (f.encoding == 1 && f.width < 8 && (u >> (8 * f.width - 1)) & 1) u |= ~uint64_t{0} << (8 * f.width);
    PutVarint(u, &out);
  }
  return out;
}

// An edit of the graph section: `skip` bytes at `pos` replaced by `bytes`,
// or by the data of tensors[tensor].
struct Edit {
  size_t pos = 0;
  size_t skip = 0;
  std::span<const uint8_t> bytes;
  size_t tensor = SplicedModel::kNoTensor;
  uint64_t tensor_bytes = 0;
};

// The tensors of a graph section that can take a payload (Sites), found by
// walking its wire format.
class GraphWalker {
 protected:
  GraphWalker(std::span<const uint8_t> graph, std::string* error) : buf_(graph), error_(error) {}

  bool Error(std::string message) {
    *error_ = std::move(message);
    return false;
  }
  bool Malformed(const char* what) { return Error(std::string("graph section is not an ONNX model (") + what + ")"); }

  // The graph, its initializers and its Constant nodes' value tensors.
  bool FindSites() {
    Fields model(buf_, 0, buf_.size());
    bool have_graph = false;
    for (Field f; model.Next(&f);) {
      if (f.number != model_field::kGraph) continue;
      if (f.type != kLength || have_graph) return Malformed("ModelProto.graph");
      graph_ = SpanOf(f);
      have_graph = true;
    }
    if (!model.ok()) return Malformed("ModelProto");
    if (!have_graph) return true;  // nothing can take a payload
    Fields graph(buf_, graph_.begin, graph_.end);
    std::vector<Site> constants;
    for (Field f; graph.Next(&f);) {
      if (f.number == graph_field::kInitializer) {
        if (f.type != kLength) return Malformed("GraphProto.initializer");
        Site s;
        s.tensor = SpanOf(f);
        if (!TensorName(s.tensor, &s.name)) return false;
        sites_.push_back(s);
      } else if (f.number == graph_field::kNode) {
        if (f.type != kLength || !Constant(SpanOf(f), &constants)) return Malformed("GraphProto.node");
      }
    }
    if (!graph.ok()) return Malformed("GraphProto");
    sites_.insert(sites_.end(), constants.begin(), constants.end());
    return true;
  }

  // The fields of a TensorProto that say what it is and what data it holds.
  struct TensorFields {
    int64_t dtype = 0;
    std::vector<int64_t> dims;
    bool external = false;    // data_location is EXTERNAL
    std::vector<Field> data;  // raw_data and the typed fields, in order

    // An empty packed field holds nothing (protobuf does not write one); an
    // empty raw_data is still set.
    bool holds_data() const {
      return std::any_of(data.begin(), data.end(), [](const Field& f) {
        return f.type != kLength || f.end > f.begin || f.number == tensor_field::kRawData;
      });
    }
  };
  // Reads the TensorProto at `tensor`. `first_after`, when given, is set to
  // where the first field numbered above `insert_number` starts (or the
  // tensor's end).
  bool ReadTensorFields(const Span& tensor, TensorFields* t, uint32_t insert_number = 0, size_t* first_after = nullptr) {
    if (first_after) *first_after = tensor.end;
    Fields fields(buf_, tensor.begin, tensor.end);
    for (Field f; fields.Next(&f);) {
      if (first_after && f.number > insert_number && *first_after == tensor.end) *first_after = f.at;
      switch (f.number) {
        case tensor_field::kDims:
          if (f.type == kVarint) {
            t->dims.push_back(static_cast<int64_t>(f.value));
          } else if (f.type == kLength) {
            if (!PackedVarints(f, &t->dims)) return Malformed("TensorProto.dims");
          }
          break;
        case tensor_field::kDataType:
          if (f.type == kVarint) t->dtype = static_cast<int64_t>(f.value);
          break;
        case tensor_field::kDataLocation:
          if (f.type == kVarint) t->external = f.value == kDataLocationExternal;
          break;
        case tensor_field::kRawData:
        case tensor_field::kFloatData:
        case tensor_field::kInt32Data:
        case tensor_field::kStringData:
        case tensor_field::kInt64Data:
        case tensor_field::kDoubleData:
        case tensor_field::kUint64Data: t->data.push_back(f); break;
        default: break;
      }
    }
    return fields.ok() || Malformed("TensorProto");
  }

  bool PackedVarints(const Field& f, std::vector<int64_t>* out) {
    for (std::span<const uint8_t> rest = buf_.subspan(f.begin, f.end - f.begin); !rest.empty();) {
      uint64_t v = 0;
      if (!GetVarint(&rest, &v)) return false;
      out->push_back(static_cast<int64_t>(v));
    }
    return true;
  }

  std::span<const uint8_t> buf_;
  std::string* error_;
  Span graph_;
  std::vector<Site> sites_;

 private:
  bool TensorName(const Span& t, std::string_view* name) {
    Fields fields(buf_, t.begin, t.end);
    for (Field f; fields.Next(&f);) {
      if (f.number == tensor_field::kName && f.type == kLength) *name = Text(buf_, f);
    }
    return fields.ok() || Malformed("TensorProto");
  }

  // Adds the `value` tensors of a Constant node (the rule Model uses: op
  // type Constant in the default domain, one output) to `sites`.
  bool Constant(const Span& node, std::vector<Site>* sites) {
    std::string_view op_type, domain, output;
    int outputs = 0;
    std::vector<std::pair<Span, Span>> values;  // attribute, tensor
    Fields fields(buf_, node.begin, node.end);
    for (Field f; fields.Next(&f);) {
      if (f.type != kLength) continue;
      if (f.number == node_field::kOpType) op_type = Text(buf_, f);
      if (f.number == node_field::kDomain) domain = Text(buf_, f);
      if (f.number == node_field::kOutput && outputs++ == 0) output = Text(buf_, f);
      if (f.number != node_field::kAttribute) continue;
      Fields attribute(buf_, f.begin, f.end);
      std::string_view name;
      std::optional<Span> t;
      for (Field a; attribute.Next(&a);) {
        if (a.number == attribute_field::kName && a.type == kLength) name = Text(buf_, a);
        if (a.number == attribute_field::kT && a.type == kLength) {
          if (t) return false;  // protobuf would merge the two
          t = SpanOf(a);
        }
      }
      if (!attribute.ok()) return false;
      if (name == "value" && t) values.emplace_back(SpanOf(f), *t);
    }
    if (!fields.ok()) return false;
    if (op_type != "Constant" || !(domain.empty() || domain == "ai.onnx") || outputs != 1) return true;
    for (const auto& [attribute, tensor] : values) sites->push_back({output, tensor, node, attribute});
    return true;
  }
};

class Splicer : GraphWalker {
 public:
  Splicer(std::span<const uint8_t> graph, SplicedModel* out, std::string* error) : GraphWalker(graph, error), out_(out) {}

  bool Run(std::span<const TensorInfo> tensors, std::span<const std::span<const uint8_t>> data) {
    if (!FindSites()) return false;
    std::map<std::string_view, Site*> by_name;
    for (Site& s : sites_) by_name.emplace(s.name, &s);  // the first of a name, as the packer saw it
    // Growth of each enclosing message's content, keyed by where its length is.
    std::map<size_t, uint64_t> node_growth;
    uint64_t graph_growth = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const TensorInfo& t = tensors[i];
      auto it = by_name.find(t.name);
      if (it == by_name.end()) return Error("tensor '" + t.name + "' is not in the graph");
      Site& site = *it->second;
      if (site.used) return Error("tensor '" + t.name + "' appears twice in the index");
      site.used = true;
      uint64_t grown = 0;
      if (!Insert(i, t, site.tensor, data[i], &grown)) return false;
      grown = Grow(site.tensor, grown);
      if (site.node) {
        grown = Grow(*site.attribute, grown);
        node_growth[site.node->len_at] += grown;
      } else {
        graph_growth += grown;
      }
    }
    for (const Site& s : sites_) {
      if (!s.node) continue;
      auto it = node_growth.find(s.node->len_at);
      if (it == node_growth.end()) continue;
      graph_growth += Grow(*s.node, it->second);
      node_growth.erase(it);
    }
    if (!tensors.empty()) Grow(graph_, graph_growth);
    return Emit() || Malformed("overlapping tensors");
  }

 private:
  // Checks the TensorProto of `t` and records the insertion of its data
  // field; `grown` is set to the bytes added to the tensor's content.
  bool Insert(size_t index, const TensorInfo& t, const Span& tensor, std::span<const uint8_t> data, uint64_t* grown) {
    const std::string where = "tensor '" + t.name + "'";
    const bool external = t.storage == 2;
    std::optional<TypedField> typed;
    uint32_t number = tensor_field::kRawData;
    if (t.storage == 1) {
      typed = TypedFieldOf(t.dtype);
      if (!typed) return Error(where + ": data type " + std::to_string(t.dtype) + " has no typed field");
      number = typed->number;
    }
    TensorFields fields;
    size_t insert_at = tensor.end;
    if (!ReadTensorFields(tensor, &fields, number, &insert_at)) return false;
    if (fields.dtype != t.dtype || fields.dims != t.shape) {
      return Error(where + ": type or shape in the index disagrees with the graph");
    }
    if (fields.holds_data() || external != fields.external) {
      return Error(where + ": the graph already holds its data, or its storage disagrees with the index");
    }
    *grown = 0;
    if (external) return true;
    std::vector<uint8_t>& header = out_->owned.emplace_back();
    Edit body{insert_at, 0, {}, index, t.bytes};
    if (typed && typed->encoding != 0) {
      if (data.size() != t.bytes) return Error(where + ": its data is needed to restore its typed field");
      body = {insert_at, 0, out_->owned.emplace_back(Varints(data, *typed))};
    }
    const uint64_t body_size = body.tensor == SplicedModel::kNoTensor ? body.bytes.size() : body.tensor_bytes;
    PutVarint(uint64_t{number} << 3 | kLength, &header);
    PutVarint(body_size, &header);
    edits_.push_back({insert_at, 0, header});
    edits_.push_back(body);
    *grown = header.size() + body_size;
    return true;
  }

  // Records the new length of a message whose content grew by `grown` bytes
  // and returns how much the field holding it grew.
  uint64_t Grow(const Span& s, uint64_t grown) {
    if (grown == 0) return 0;
    const uint64_t length = s.length() + grown;
    std::vector<uint8_t>& len = out_->owned.emplace_back();
    PutVarint(length, &len);
    edits_.push_back({s.len_at, s.begin - s.len_at, len});
    return grown + len.size() - (s.begin - s.len_at);
  }

  // False if edits overlap, which a graph parsed as a tree cannot produce.
  bool Emit() {
    std::stable_sort(edits_.begin(), edits_.end(), [](const Edit& a, const Edit& b) { return a.pos < b.pos; });
    size_t pos = 0;
    auto add = [&](std::span<const uint8_t> piece) {
      if (piece.empty()) return;
      out_->pieces.push_back({piece});
      out_->size += piece.size();
    };
    for (const Edit& e : edits_) {
      if (e.pos < pos) return false;
      add(buf_.subspan(pos, e.pos - pos));
      if (e.tensor != SplicedModel::kNoTensor) {
        if (e.tensor_bytes) out_->pieces.push_back({{}, e.tensor});
        out_->size += e.tensor_bytes;
      } else {
        add(e.bytes);
      }
      pos = e.pos + e.skip;
    }
    add(buf_.subspan(pos));
    return true;
  }

  SplicedModel* out_;
  std::vector<Edit> edits_;
};

// Lists the tensors a graph section holds with their data.
class InlineFinder : GraphWalker {
 public:
  InlineFinder(std::span<const uint8_t> graph, std::string* error) : GraphWalker(graph, error) {}

  bool Run(std::vector<InlineTensor>* out) {
    if (!FindSites()) return false;
    std::set<std::string_view> seen;
    for (const Site& site : sites_) {
      if (!seen.insert(site.name).second) continue;  // the first of a name, as pack and the splice see it
      TensorFields probe;
      if (!ReadTensorFields(site.tensor, &probe)) return false;
      if (!probe.holds_data() || probe.external || probe.dtype <= 0 || probe.dtype > INT32_MAX) continue;
      const size_t element = ElementBytes(static_cast<int32_t>(probe.dtype));
      if (element == 0) continue;
      InlineTensor t;
      t.info.name = std::string(site.name);
      t.info.dtype = static_cast<int32_t>(probe.dtype);
      t.info.shape = probe.dims;
      const std::string where = "tensor '" + t.info.name + "'";
      uint64_t count = 1;
      for (int64_t d : probe.dims) {
        if (d < 0 || (d > 0 && count > UINT64_MAX / static_cast<uint64_t>(d))) {
          return Error(where + ": its dimensions are negative or their product overflows");
        }
        count *= static_cast<uint64_t>(d);
      }
      if (count > buf_.size()) return Error(where + ": holds fewer elements than its shape declares");
      t.info.element_count = count;
      t.info.bytes = count * element;
      auto raw = std::find_if(probe.data.rbegin(), probe.data.rend(),
                              [](const Field& f) { return f.number == tensor_field::kRawData && f.type == kLength; });
      if (raw != probe.data.rend()) {  // the last one, as protobuf keeps it
        t.info.storage = 0;
        t.raw = buf_.subspan(raw->begin, raw->end - raw->begin);
        if (t.raw.size() != t.info.bytes) return Error(where + ": raw_data holds " + std::to_string(t.raw.size()) +
                                                       " bytes, its shape and type need " + std::to_string(t.info.bytes));
      } else {
        const std::optional<TypedField> typed = TypedFieldOf(t.info.dtype);
        if (!typed) continue;  // data in a field this type does not use: nothing to read as its elements
        t.info.storage = 1;
        if (!Typed(probe.data, *typed, &t.typed)) return Malformed("TensorProto typed data");
        if (t.typed.size() != t.info.bytes) {
          return Error(where + ": its typed field holds " + std::to_string(t.typed.size() / typed->width) +
                       " entries, its shape and type need " + std::to_string(t.info.bytes / typed->width));
        }
      }
      out->push_back(std::move(t));
    }
    return true;
  }

 private:
  // The entries of the typed field `f` among `fields`, in either wire form
  // (packed, or one field per entry), each cut to `f.width` little-endian
  // bytes: the narrowing ONNX's readers apply, the inverse of FillTyped's
  // widening.
  bool Typed(const std::vector<Field>& fields, const TypedField& f, std::vector<uint8_t>* out) {
    auto put = [&](uint64_t v) {
      for (size_t k = 0; k < f.width; ++k) out->push_back(static_cast<uint8_t>(v >> (8 * k)));
    };
    for (const Field& field : fields) {
      if (field.number != f.number) continue;
      std::span<const uint8_t> body = buf_.subspan(field.begin, field.end - field.begin);
      if (f.encoding == 0) {  // float or double bits: fixed32 or fixed64 entries
        const uint8_t fixed = f.width == 8 ? kFixed64 : kFixed32;
        if (field.type == kLength ? body.size() % f.width != 0 : field.type != fixed) return false;
        out->insert(out->end(), body.begin(), body.end());
      } else if (field.type == kLength) {
        while (!body.empty()) {
          uint64_t v = 0;
          if (!GetVarint(&body, &v)) return false;
          put(v);
        }
      } else if (field.type == kVarint) {
        put(field.value);
      } else {
        return false;
      }
    }
    return true;
  }
};

}  // namespace

bool SpliceModel(std::span<const uint8_t> graph, std::span<const TensorInfo> tensors,
                 std::span<const std::span<const uint8_t>> data, SplicedModel* out, std::string* error) {
  *out = SplicedModel{};
  return Splicer(graph, out, error).Run(tensors, data);
}

}  // namespace modelpress::pack

namespace modelpress::pack {

bool NeedsDataToSplice(const TensorInfo& t) {
  if (t.storage != 1) return false;
  const std::optional<TypedField> typed = TypedFieldOf(t.dtype);
  return typed && typed->encoding != 0;
}

std::vector<uint8_t> JoinPieces(const SplicedModel& model, std::span<const std::span<const uint8_t>> data) {
  std::vector<uint8_t> out;
  out.reserve(model.size);
  for (const SplicedModel::Piece& p : model.pieces) {
    const std::span<const uint8_t> bytes = p.tensor == SplicedModel::kNoTensor ? p.bytes : data[p.tensor];
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  return out;
}

bool FindInlineTensors(std::span<const uint8_t> graph, std::vector<InlineTensor>* out, std::string* error) {
  out->clear();
  return InlineFinder(graph, error).Run(out);
}

}  // namespace modelpress::pack
