// .npy parsing and writing. The header is a Python dict literal; we accept
// exactly the forms numpy writes (keys descr, fortran_order, shape in any
// order, single or double quotes) and refuse everything else by name.
#include "modelpress/npy.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "pack/container/atomic_file.h"

namespace modelpress {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

struct Descr {
  const char* text;
  DType dtype;
};
// '|' marks single-byte types, whose byte order does not matter.
constexpr Descr kDescrs[] = {
    {"<f4", DType::kFloat32}, {"<f8", DType::kFloat64}, {"<i8", DType::kInt64}, {"<i4", DType::kInt32},
    {"|i1", DType::kInt8},    {"|u1", DType::kUint8},   {"|b1", DType::kBool},
};

// A tiny cursor over the header dict.
struct Cursor {
  std::string_view s;
  size_t i = 0;
  void Skip() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  bool Eat(char c) {
    Skip();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  bool String(std::string* out) {
    Skip();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) return false;
    const char q = s[i++];
    const size_t end = s.find(q, i);
    if (end == std::string_view::npos) return false;
    *out = std::string(s.substr(i, end - i));
    i = end + 1;
    return true;
  }
  bool Word(std::string* out) {
    Skip();
    const size_t start = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    *out = std::string(s.substr(start, i - start));
    return i > start;
  }
  bool Int(int64_t* out) {
    Skip();
    const size_t start = i;
    int64_t v = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (v > (INT64_MAX - 9) / 10) return false;
      v = v * 10 + (s[i++] - '0');
    }
    // Python 2 era files may write "3L".
    if (i < s.size() && s[i] == 'L') ++i;
    *out = v;
    return i > start;
  }
};

// Parses the header at the start of `bytes` (a prefix of a .npy of `total`
// bytes) and checks the declared size against `total`. Returns the array
// without its data and sets *data_start. A header longer than the prefix is
// reported as truncated when the prefix is the whole file, and otherwise
// asks for a longer prefix through *need.
Result<NpyArray> ParseHeader(std::string_view bytes, uint64_t total, const std::string& name, size_t* data_start,
                             size_t* need) {
  *need = 0;
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) return Corrupt(name + ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Corrupt(name + ": truncated .npy header");
    for (int k = 0; k < 4; ++k) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + k])) << (8 * k);
    offset = 12;
  } else {
    return Unsupported(name + ": .npy format version " + std::to_string(major) + " is not supported");
  }
  if (bytes.size() - offset < header_len) {
    if (total - offset >= header_len && bytes.size() < total) {
      *need = offset + header_len;
      return Corrupt(name + ": .npy header longer than the bytes read");
    }
    return Corrupt(name + ": truncated .npy header");
  }
  Cursor c{bytes.substr(offset, header_len)};
  *data_start = offset + header_len;

  std::string descr;
  bool fortran = false, have_descr = false, have_order = false, have_shape = false;
  NpyArray a;
  if (!c.Eat('{')) return Corrupt(name + ": malformed .npy header (no dict)");
  while (!c.Eat('}')) {
    std::string key;
    if (!c.String(&key) || !c.Eat(':')) return Corrupt(name + ": malformed .npy header");
    if (key == "descr") {
      if (!c.String(&descr)) return Corrupt(name + ": malformed .npy header (descr)");
      have_descr = true;
    } else if (key == "fortran_order") {
      std::string w;
      if (!c.Word(&w) || (w != "True" && w != "False")) return Corrupt(name + ": malformed .npy header (fortran_order)");
      fortran = w == "True";
      have_order = true;
    } else if (key == "shape") {
      if (!c.Eat('(')) return Corrupt(name + ": malformed .npy header (shape)");
      while (!c.Eat(')')) {
        int64_t d = 0;
        if (!c.Int(&d)) return Corrupt(name + ": malformed .npy header (shape)");
        a.shape.push_back(d);
        if (!c.Eat(',')) {
          if (!c.Eat(')')) return Corrupt(name + ": malformed .npy header (shape)");
          break;
        }
      }
      have_shape = true;
    } else {
      return Corrupt(name + ": unexpected key '" + key + "' in .npy header");
    }
    if (!c.Eat(',')) {
      if (!c.Eat('}')) return Corrupt(name + ": malformed .npy header");
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape) return Corrupt(name + ": .npy header lacks descr, fortran_order or shape");
  if (fortran && a.shape.size() > 1) return Unsupported(name + ": Fortran-order arrays are not supported; save in C order");
  // numpy writes '<' or '|' for single-byte types depending on version; both mean the same.
  std::string norm = descr;
  if (norm.size() == 3 && norm[2] == '1' && norm[0] == '<') norm[0] = '|';
  for (const auto& d : kDescrs) {
    if (norm == d.text) a.dtype = d.dtype;
  }
  if (a.dtype == DType::kUndefined) {
    return Unsupported(name + ": .npy dtype '" + descr +
                       "' is not supported (float32, float64, int64, int32, int8, uint8 or bool, little-endian)");
  }
  auto count = ElementCount(a.shape);
  if (!count) return Corrupt(name + ": .npy shape " + ShapeToString(a.shape) + " is invalid");
  const uint64_t have = total - *data_start;
  const size_t es = DTypeSize(a.dtype);
  if (static_cast<uint64_t>(*count) > have / es) {
    return Corrupt(name + ": truncated .npy: shape " + ShapeToString(a.shape) + " needs " +
                   std::to_string(static_cast<uint64_t>(*count) * es) + " bytes of data, the file has " +
                   std::to_string(have));
  }
  if (have != static_cast<uint64_t>(*count) * es) {
    return Corrupt(name + ": .npy has " + std::to_string(have - *count * es) + " bytes after the array");
  }
  return a;
}

}  // namespace

Result<NpyArray> ParseNpy(std::string_view bytes, const std::string& name) {
  size_t data_start = 0, need = 0;
  MP_ASSIGN_OR_RETURN(NpyArray a, ParseHeader(bytes, bytes.size(), name, &data_start, &need));
  a.data.resize(bytes.size() - data_start);
  if (!a.data.empty()) std::memcpy(a.data.data(), bytes.data() + data_start, a.data.size());
  return a;
}

Result<NpyArray> ReadNpy(const std::filesystem::path& path) {
  // The header first, then the data straight into the array: the file's
  // bytes are held once, never twice.
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(name + ": cannot open: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end < 0) return IoError(name + ": cannot read its size");
  const uint64_t total = static_cast<uint64_t>(end);
  auto read_at = [&](uint64_t offset, char* out, uint64_t n) {
    in.clear();
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(out, static_cast<std::streamsize>(n));
    return static_cast<uint64_t>(in.gcount()) == n;
  };
  std::string head(static_cast<size_t>(std::min<uint64_t>(total, 4096)), '\0');
  if (!read_at(0, head.data(), head.size())) return IoError(name + ": read failed");
  size_t data_start = 0, need = 0;
  auto a = ParseHeader(head, total, name, &data_start, &need);
  if (!a.ok() && need > 0) {
    head.resize(need);
    if (!read_at(0, head.data(), head.size())) return IoError(name + ": read failed");
    a = ParseHeader(head, total, name, &data_start, &need);
  }
  if (!a.ok()) return a.status();
  a->data.resize(total - data_start);
  if (!a->data.empty() && !read_at(data_start, reinterpret_cast<char*>(a->data.data()), a->data.size())) {
    return IoError(name + ": read failed");
  }
  return a;
}

Result<std::string> EncodeNpy(const NpyArray& a) {
  const char* descr = nullptr;
  for (const auto& d : kDescrs) {
    if (d.dtype == a.dtype) descr = d.text;
  }
  if (descr == nullptr) return Unsupported(".npy cannot hold element type " + DTypeName(a.dtype));
  auto count = ElementCount(a.shape);
  if (!count || static_cast<uint64_t>(*count) * DTypeSize(a.dtype) != a.data.size()) {
    return InvalidArgument("array data does not match its shape " + ShapeToString(a.shape));
  }
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < a.shape.size(); ++i) dict += std::to_string(a.shape[i]) + (a.shape.size() == 1 || i + 1 < a.shape.size() ? ", " : "");
  if (a.shape.size() == 1) dict.pop_back();  // "(3,)" as Python writes a 1-tuple
  dict += "), }";
  // Pad with spaces and a newline so the data starts on a 64-byte boundary, as numpy does.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out(kMagic);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  out += dict;
  out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  return out;
}

Status WriteNpy(const std::filesystem::path& path, const NpyArray& a) {
  MP_ASSIGN_OR_RETURN(std::string bytes, EncodeNpy(a));
  return pack::WriteFileAtomically(path, bytes.data(), bytes.size());
}

}  // namespace modelpress
