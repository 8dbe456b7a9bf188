#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "codec/tensor_codec.h"
#include "container/atomic_file.h"
#include "container/checksum.h"
#include "container/format.h"
#include "container/index.h"
#include "container/out_of_memory.h"
#include "entropy/histogram.h"
#include "modelpress/pack_reader.h"
#include "modelpress/tensor.h"

namespace modelpress::pack {

std::string_view EncoderName(Encoder e) {
  switch (e) {
    case Encoder::kWhole: return "whole";
    case Encoder::kPlanes: return "planes";
    case Encoder::kSparseGaps: return "sparse-gaps";
    case Encoder::kSparseBitmap: return "sparse-bitmap";
    case Encoder::kNM: return "nm";
  }
  return "unknown";
}

namespace {


template <class T>
T ReadRecord(const uint8_t* p) {
  T t;
  std::memcpy(&t, p, sizeof t);
  return t;
}

// A section lies inside [lo, hi) of the file: checked without overflow.
bool Inside(uint64_t offset, uint64_t size, uint64_t lo, uint64_t hi) {
  return offset >= lo && offset <= hi && size <= hi - offset;
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// The fuzz build (fuzz/CMakeLists.txt) accepts any checksum so that mutated
// inputs reach the parsers and decoders behind them; never in a real build.
bool SumMatches(uint64_t computed, uint64_t stored) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  (void)computed;
  (void)stored;
  return true;
#else
  return computed == stored;
#endif
}

// Like ShapeToString, which lives in the ONNX-linked core library.
std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

struct Reader::Impl {
  std::string name;
  ReaderOptions options;
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  void* mapping = nullptr;  // owned mmap, or null for FromMemory
  size_t mapping_size = 0;
  ArtifactInfo info;
  SectionRef skeleton{};
  std::vector<SectionRef> residues;
  std::vector<TensorInfo> tensors;
  std::vector<SectionRef> payloads;
  SharedTables tables;
  StreamContext sections;  // how the graph and index sections are decoded
  std::unordered_map<std::string_view, size_t> by_name;

  ~Impl() {
    if (mapping) ::munmap(mapping, mapping_size);
  }

  Status Fail(const std::string& what) const { return Corrupt(name + ": " + what); }

  Status Parse();
  Status CheckSection(const SectionRef& s, const std::string& what) const {
    const uint64_t sum = Checksum(data + s.offset, s.size);
    if (!SumMatches(s.short_checksum ? sum & 0xffffffffu : sum, s.checksum)) {
      return Fail(what + ": checksum mismatch (the artifact is damaged)");
    }
    return Status::Ok();
  }
  std::span<const uint8_t> Bytes(const SectionRef& s) const { return {data + s.offset, s.size}; }
  Result<std::string> ReadStreamSection(const SectionRef& s, uint64_t expected, const std::string& what,
                                        const StreamContext& context) const;
};

Status Reader::Impl::Parse() {
  if (size < sizeof(FileHeader) + sizeof(Footer)) {
    if (size >= 8 && std::memcmp(data, kMagic, 8) != 0) return Fail("not a modelpress artifact (bad magic number)");
    return Fail("truncated: " + std::to_string(size) + " bytes is shorter than an empty artifact");
  }
  const auto h = ReadRecord<FileHeader>(data);
  if (std::memcmp(h.magic, kMagic, 8) != 0) return Fail("not a modelpress artifact (bad magic number)");
  if (!SumMatches(Checksum(data, 24), h.checksum)) return Fail("file header checksum mismatch (the artifact is damaged)");
  if (h.version_major != kVersionMajor) {
    return Unsupported(name + ": artifact format version " + std::to_string(h.version_major) + "." +
                       std::to_string(h.version_minor) + " is not readable by this version (reads " +
                       std::to_string(kVersionMajor) + ".x)");
  }
  if ((h.flags & ~kHeaderGraphDictionary) != 0) return Fail("reserved header flags are set");
  sections.graph_dictionary = h.flags & kHeaderGraphDictionary;
  info.graph_dictionary = sections.graph_dictionary;
  if (h.file_size != size) {
    return Fail(h.file_size > size ? "truncated: the header declares " + std::to_string(h.file_size) + " bytes but only " +
                                         std::to_string(size) + " are present"
                                   : "the header declares " + std::to_string(h.file_size) + " bytes but " +
                                         std::to_string(size) + " are present (trailing data)");
  }
  info.version_major = h.version_major;
  info.version_minor = h.version_minor;
  info.file_size = size;

  const uint64_t footer_at = size - sizeof(Footer);
  const auto f = ReadRecord<Footer>(data + footer_at);
  if (!SumMatches(Checksum(data + footer_at, 24), f.checksum)) return Fail("footer checksum mismatch (the artifact is damaged)");
  if (!Inside(f.index_offset, f.index_size, sizeof(FileHeader), footer_at)) {
    return Fail("index section [" + std::to_string(f.index_offset) + ", +" + std::to_string(f.index_size) +
                ") does not fit the file");
  }
  if (!SumMatches(Checksum(data + f.index_offset, f.index_size), f.index_checksum)) {
    return Fail("index checksum mismatch (the artifact is damaged)");
  }
  info.index_bytes = f.index_size;
  IndexContents ix;
  {
    std::span<const uint8_t> in(data + f.index_offset, f.index_size);
    uint64_t n = 0;
    if (!PeekStreamSize(in, &n)) return Fail("index section is truncated");
    if (n > options.max_section_bytes) {
      return Fail("index declares " + std::to_string(n) + " bytes, over the reader's limit of " +
                  std::to_string(options.max_section_bytes));
    }
    std::vector<uint8_t> index(n);
    std::string error;
    if (!DecodeStream(&in, index, &error, nullptr, sections)) return Fail("index section: " + error);
    if (!in.empty()) return Fail("index section: bytes follow the stream");
    if (!DecodeIndex(index, &ix, &error)) return Fail("index: " + error);
  }
  info.onnx_size = ix.onnx_size;
  info.onnx_checksum = ix.onnx_checksum;
  info.exact_onnx = ix.flags & kIndexExactOnnx;
  tables = std::move(ix.tables);
  info.shared_tables = tables.size();
  for (const CodeLengths& t : tables) info.shared_table_bytes += TableBytes(t);

  // Sections lie back to back from the end of the header to the index:
  // payloads, the graph, the residues. Their sizes must fill that span
  // exactly (each is checked against what is left, so nothing overflows).
  const uint64_t data_hi = f.index_offset;
  uint64_t at = sizeof(FileHeader);
  auto place = [&](uint64_t bytes, uint64_t checksum, bool short_checksum, SectionRef* s) {
    if (bytes > data_hi - at) return false;
    *s = {at, bytes, checksum, short_checksum};
    at += bytes;
    return true;
  };

  tensors.reserve(ix.tensors.size());
  payloads.reserve(ix.tensors.size());
  for (IndexTensor& r : ix.tensors) {
    TensorInfo t;
    t.name = std::move(r.name);
    const std::string where = "tensor " + Quote(t.name);
    SectionRef payload;
    if (!place(r.payload_size, r.payload_checksum, true, &payload)) {
      return Fail(where + ": payload of " + std::to_string(r.payload_size) + " bytes at " + std::to_string(at) +
                  " does not fit the file");
    }
    uint64_t count = 1;
    for (int64_t dim : r.shape) {
      t.shape.push_back(dim);
      if (dim != 0 && count > (uint64_t{1} << 62) / static_cast<uint64_t>(dim)) {
        return Fail(where + ": shape " + ShapeText(t.shape) + " overflows");
      }
      count *= static_cast<uint64_t>(dim);
    }
    const size_t es = ElementBytes(r.dtype);
    if (es == 0) return Fail(where + ": data type " + std::to_string(r.dtype) + " cannot be stored in an artifact");
    if (count > options.max_tensor_bytes / es) {
      return Fail(where + ": declares " + std::to_string(count) + " elements of " + std::to_string(es) +
                  " bytes, over the reader's limit of " + std::to_string(options.max_tensor_bytes) + " bytes");
    }
    if (r.encoder > static_cast<uint8_t>(Encoder::kNM)) {
      return Fail(where + ": encoder " + std::to_string(r.encoder) + " is unknown");
    }
    if (r.storage == static_cast<uint8_t>(StorageKind::kExternal)) {
      const uint64_t fsize = ix.files[r.external_file].size;
      if (!Inside(r.external_offset, count * es, 0, fsize)) {
        return Fail(where + ": lies outside its external data file " + Quote(ix.files[r.external_file].name));
      }
    }
    t.dtype = r.dtype;
    t.element_count = count;
    t.bytes = count * es;
    t.encoder = static_cast<Encoder>(r.encoder);
    t.stored_bytes = r.payload_size;
    t.storage = r.storage;
    t.external_file = static_cast<uint32_t>(r.external_file);
    t.external_offset = r.external_offset;
    tensors.push_back(std::move(t));
    payloads.push_back(payload);
  }
  if (!place(ix.graph_size, ix.graph_checksum, false, &skeleton)) return Fail("graph section does not fit the file");
  info.skeleton_stored = ix.graph_size;
  for (IndexFile& r : ix.files) {
    ExternalFileInfo fi;
    fi.name = std::move(r.name);
    SectionRef residue;
    if (!place(r.residue_size, r.residue_checksum, false, &residue)) {
      return Fail("external file " + Quote(fi.name) + ": residue section does not fit the file");
    }
    fi.size = r.size;
    fi.checksum = r.checksum;
    fi.residue_stored = r.residue_size;
    info.files.push_back(std::move(fi));
    residues.push_back(residue);
  }
  if (at != data_hi) {
    return Fail("sections end at " + std::to_string(at) + " but the index starts at " + std::to_string(data_hi));
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!by_name.emplace(tensors[i].name, i).second) return Fail("tensor " + Quote(tensors[i].name) + " is listed twice");
  }
  uint64_t skel_size = 0;
  if (!PeekStreamSize(Bytes(skeleton), &skel_size)) return Fail("graph section is truncated");
  info.skeleton_bytes = skel_size;
  return Status::Ok();
}

Result<std::string> Reader::Impl::ReadStreamSection(const SectionRef& s, uint64_t expected, const std::string& what,
                                                    const StreamContext& context) const {
  MP_RETURN_IF_ERROR(CheckSection(s, what));
  std::span<const uint8_t> in = Bytes(s);
  uint64_t n = 0;
  if (!PeekStreamSize(in, &n)) return Fail(what + ": truncated");
  if (n > options.max_section_bytes) {
    return Fail(what + ": declares " + std::to_string(n) + " bytes, over the reader's limit of " +
                std::to_string(options.max_section_bytes));
  }
  if (expected != UINT64_MAX && n != expected) {
    return Fail(what + ": holds " + std::to_string(n) + " bytes where " + std::to_string(expected) + " are expected");
  }
  std::string out(n, '\0');
  std::string error;
  if (!DecodeStream(&in, std::span(reinterpret_cast<uint8_t*>(out.data()), out.size()), &error, nullptr, context)) {
    return Fail(what + ": " + error);
  }
  if (!in.empty()) return Fail(what + ": " + std::to_string(in.size()) + " bytes follow the stream");
  return out;
}

Reader::Reader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;
Reader::~Reader() = default;

namespace {

// Copies what the stream `in` delivers into an unnamed temporary file and
// returns that file, open.
Result<int> SpoolStream(int in, const std::string& name) {
  std::string error;
  const int out = OpenUnnamedTemporary(&error);
  if (out < 0) return IoError(name + ": " + error);
  if (Status s = CopyUntilEnd(in, out, name + ": read failed", name + ": cannot keep what it delivers in a temporary file");
      !s.ok()) {
    ::close(out);
    return s;
  }
  return out;
}

}  // namespace

Result<Reader> Reader::Open(const std::filesystem::path& path, const ReaderOptions& options) {
  return ReportOutOfMemory(path.string(), [&]() -> Result<Reader> {
    const std::string name = path.string();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT) return NotFound(name + ": no such file");
      return IoError(name + ": cannot open: " + std::strerror(err));
    }
    struct stat st{};
    if (::fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
      // A stream (`curl … | modelpress unpack /dev/stdin`) is copied into
      // an unnamed temporary file first, and that is mapped.
      Result<int> spool = SpoolStream(fd, name);
      ::close(fd);
      if (!spool.ok()) return spool.status();
      fd = *spool;
      if (::fstat(fd, &st) != 0) st = {};
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return InvalidArgument(name + ": not a regular file");
    }
    auto impl = std::make_unique<Impl>();
    impl->name = name;
    impl->options = options;
    impl->size = static_cast<uint64_t>(st.st_size);
    if (st.st_size > 0) {
      void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        return IoError(name + ": cannot map: " + std::strerror(err));
      }
      impl->mapping = p;
      impl->mapping_size = static_cast<size_t>(st.st_size);
      impl->data = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
    MP_RETURN_IF_ERROR(impl->Parse());
    return Reader(std::move(impl));
  });
}

Result<Reader> Reader::FromMemory(std::span<const std::byte> data, const ReaderOptions& options, std::string name) {
  return ReportOutOfMemory(name, [&]() -> Result<Reader> {
    auto impl = std::make_unique<Impl>();
    impl->name = name;
    impl->options = options;
    impl->data = reinterpret_cast<const uint8_t*>(data.data());
    impl->size = data.size();
    MP_RETURN_IF_ERROR(impl->Parse());
    return Reader(std::move(impl));
  });
}

const std::string& Reader::name() const { return impl_->name; }
const ArtifactInfo& Reader::info() const { return impl_->info; }
const std::vector<TensorInfo>& Reader::tensors() const { return impl_->tensors; }

const TensorInfo* Reader::FindTensor(std::string_view name) const {
  auto it = impl_->by_name.find(name);
  return it == impl_->by_name.end() ? nullptr : &impl_->tensors[it->second];
}

Status Reader::ReadTensor(const TensorInfo& t, std::span<std::byte> out) const { return ReadTensor(t, out, nullptr); }

Status Reader::ReadTensor(const TensorInfo& t, std::span<std::byte> out, std::string* detail) const {
  return ReportOutOfMemory(impl_->name + ": tensor '" + t.name + "'", [&]() -> Status {
    const Impl& m = *impl_;
    const auto it = m.by_name.find(t.name);
    if (it == m.by_name.end()) return NotFound(m.name + ": no tensor " + Quote(t.name));
    const TensorInfo& own = m.tensors[it->second];
    const std::string where = "tensor " + Quote(own.name);
    if (out.size() != own.bytes) {
      return InvalidArgument(m.name + ": " + where + " needs a buffer of " + std::to_string(own.bytes) + " bytes, not " +
                             std::to_string(out.size()));
    }
    const SectionRef& s = m.payloads[it->second];
    MP_RETURN_IF_ERROR(m.CheckSection(s, where));
    std::string error;
    if (!DecodeTensor(own.encoder, own.dtype, own.shape, m.Bytes(s),
                      std::span(reinterpret_cast<uint8_t*>(out.data()), out.size()), &error, detail, &m.tables)) {
      return m.Fail(where + " (" + std::string(EncoderName(own.encoder)) + "): " + error);
    }
    return Status::Ok();
  });
}

void Reader::ReleasePayload(const TensorInfo& t) const {
  const Impl& m = *impl_;
  const auto it = m.by_name.find(t.name);
  if (m.mapping == nullptr || it == m.by_name.end()) return;
  const SectionRef& s = m.payloads[it->second];
  // Only the pages wholly inside the payload: the others hold neighbours'
  // bytes, which another thread may be reading (dropping them would only
  // cost a page fault, as the mapping is a private, unwritten file mapping).
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(m.data) + s.offset + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(m.data) + s.offset + s.size) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

Result<std::string> Reader::ReadSkeleton() const {
  return ReportOutOfMemory(impl_->name + ": graph section", [&]() -> Result<std::string> {
    return impl_->ReadStreamSection(impl_->skeleton, UINT64_MAX, "graph section", impl_->sections);
  });
}

Result<std::string> Reader::ReadResidue(size_t file) const {
  return ReportOutOfMemory(impl_->name, [&]() -> Result<std::string> {
    const Impl& m = *impl_;
    if (file >= m.residues.size()) return NotFound(m.name + ": no external file " + std::to_string(file));
    // What no tensor covers: the file size minus the union of tensor ranges.
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const TensorInfo& t : m.tensors) {
      if (t.storage == static_cast<uint8_t>(StorageKind::kExternal) && t.external_file == file && t.bytes) {
        ranges.emplace_back(t.external_offset, t.external_offset + t.bytes);
      }
    }
    std::sort(ranges.begin(), ranges.end());
    uint64_t covered = 0, cursor = 0;
    for (auto [b, e] : ranges) {
      b = std::max(b, cursor);
      if (e > b) {
        covered += e - b;
        cursor = e;
      }
    }
    return m.ReadStreamSection(m.residues[file], m.info.files[file].size - covered,
                               "residue of external file " + Quote(m.info.files[file].name), StreamContext{});
  });
}

namespace {

// Histograms of the byte planes of the nonzero elements of `p`, after the
// transform `t`; returns their count.
template <class U>
uint64_t NonzeroPlaneCounts(const uint8_t* p, size_t n, Transform t, std::vector<Histogram>* planes) {
  uint64_t nnz = 0;
  for (size_t i = 0; i < n; ++i) {
    U v;
    std::memcpy(&v, p + i * sizeof(U), sizeof(U));
    if (v == 0) continue;
    ++nnz;
    v = ApplyTransform(t, v);
    for (size_t k = 0; k < sizeof(U); ++k) ++(*planes)[k][static_cast<uint8_t>(v >> (8 * k))];
  }
  return nnz;
}

}  // namespace

double EntropyBoundBits(int32_t dtype, std::span<const std::byte> packed) {
  const size_t es = ElementBytes(dtype);
  if (es == 0 || packed.empty()) return 0;
  const auto* p = reinterpret_cast<const uint8_t*>(packed.data());
  const size_t n = packed.size() / es;
  // The mask's entropy, then the planes encoder's view: nonzero elements,
  // transformed, split by byte. Single bytes are counted as they are: a
  // transform only permutes their symbols, which keeps the entropy.
  const Transform t = TransformFor(dtype);
  std::vector<Histogram> planes(es, Histogram{});
  uint64_t nnz = 0;
  switch (es) {
    case 1: nnz = NonzeroPlaneCounts<uint8_t>(p, n, Transform::kNone, &planes); break;
    case 2: nnz = NonzeroPlaneCounts<uint16_t>(p, n, t, &planes); break;
    case 4: nnz = NonzeroPlaneCounts<uint32_t>(p, n, t, &planes); break;
    case 8: nnz = NonzeroPlaneCounts<uint64_t>(p, n, t, &planes); break;
    default:
      for (size_t i = 0; i < n; ++i) {
        const uint8_t* e = p + i * es;
        if (std::all_of(e, e + es, [](uint8_t b) { return b == 0; })) continue;
        ++nnz;
        for (size_t k = 0; k < es; ++k) ++planes[k][e[k]];
      }
  }
  double bits = BinaryEntropyBits(nnz, n);
  for (const Histogram& h : planes) bits += EntropyBits(h);
  return bits;
}

}  // namespace modelpress::pack
