#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <memory>
#include <optional>

#include "codec/tensor_codec.h"
#include "container/atomic_file.h"
#include "container/checksum.h"
#include "container/out_of_memory.h"
#include "container/parallel.h"
#include "container/writer.h"
#include "container/zstd_frame.h"
#include "modelpress/onnx_io.h"
#include "modelpress/pack.h"
#include "modelpress/pack_reader.h"
#include "onnx/skeleton.h"
#include "reader/model_splice.h"
#include "reader/splice_artifact.h"

namespace modelpress::pack {
namespace {

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// The zstd level at which the graph and index sections of candidate layouts
// are sized (see PackModel).
constexpr int kSizingLevel = 9;

// Tensors up to this size are considered for shared code tables (above it,
// a table of its own costs a stream well under 1%) and for staying in the
// graph section: these are the tensors copied before the model's data is
// cleared.
constexpr uint64_t kSharedTablesUpTo = PackOptions::kMaxInlineUpTo;

struct ExternalRef {
  std::string location;
  uint64_t offset = 0;
};

// Every external data location the model's tensors name: those of the main
// graph and those of subgraphs, sparse tensors and attribute lists, which get
// no payload but whose bytes must travel too (as residue).
void CollectExternalLocations(const onnx::GraphProto& g, std::set<std::string>* out);

void CollectExternalLocations(const onnx::TensorProto& t, std::set<std::string>* out) {
  if (t.data_location() != onnx::TensorProto::EXTERNAL) return;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") out->insert(kv.value());
  }
}

void CollectExternalLocations(const onnx::SparseTensorProto& t, std::set<std::string>* out) {
  CollectExternalLocations(t.values(), out);
  CollectExternalLocations(t.indices(), out);
}

void CollectExternalLocations(const onnx::GraphProto& g, std::set<std::string>* out) {
  for (const auto& t : g.initializer()) CollectExternalLocations(t, out);
  for (const auto& t : g.sparse_initializer()) CollectExternalLocations(t, out);
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute()) {
      if (a.has_t()) CollectExternalLocations(a.t(), out);
      for (const auto& t : a.tensors()) CollectExternalLocations(t, out);
      if (a.has_sparse_tensor()) CollectExternalLocations(a.sparse_tensor(), out);
      for (const auto& t : a.sparse_tensors()) CollectExternalLocations(t, out);
      if (a.has_g()) CollectExternalLocations(a.g(), out);
      for (const auto& sub : a.graphs()) CollectExternalLocations(sub, out);
    }
  }
}

ExternalRef ParseExternal(const onnx::TensorProto& t) {
  ExternalRef r;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") r.location = kv.value();
    if (kv.key() == "offset") std::from_chars(kv.value().data(), kv.value().data() + kv.value().size(), r.offset);
  }
  return r;
}

// One pass over a file: its size, its checksum and, when `residue` is given,
// the bytes outside the given tensor ranges (sorted by start; ranges may overlap).
Status ScanFile(const std::filesystem::path& path, std::vector<std::pair<uint64_t, uint64_t>> ranges,
                        uint64_t* size, uint64_t* checksum, std::vector<uint8_t>* residue) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path.string() + ": cannot open: " + std::strerror(errno));
  // Without a residue to collect, the file is hashed where it lies in the
  // page cache instead of being copied out in pieces, a window at a time:
  // mapped pages count as the process's memory, and a mapping of the whole
  // file held a second copy of the model while it lasted (a 268 MB model
  // peaked at 576 MB, now 441).
  struct stat st{};
  if (!residue && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    constexpr size_t kWindow = size_t{32} << 20;  // a multiple of the page size
    const uint64_t n = static_cast<uint64_t>(st.st_size);
    StreamingChecksum sum;
    bool mapped = true;
    for (uint64_t at = 0; at < n && mapped; at += kWindow) {
      const size_t len = static_cast<size_t>(std::min<uint64_t>(kWindow, n - at));
      void* map = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, static_cast<off_t>(at));
      mapped = map != MAP_FAILED;
      if (mapped) {
        sum.Update(map, len);
        ::munmap(map, len);
      }
    }
    if (mapped) {
      *size = n;
      *checksum = sum.Digest();
      ::close(fd);
      return Status::Ok();
    }
  }
  std::sort(ranges.begin(), ranges.end());
  StreamingChecksum sum;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t pos = 0;
  size_t r = 0;
  uint64_t covered_to = 0;  // end of the union of ranges that started at or before pos
  for (;;) {
    const ssize_t got = ::read(fd, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int err = errno;
      ::close(fd);
      return IoError(path.string() + ": read failed: " + std::strerror(err));
    }
    if (got == 0) break;
    sum.Update(buf.data(), static_cast<size_t>(got));
    if (!residue) {
      pos += static_cast<uint64_t>(got);
      continue;
    }
    for (ssize_t i = 0; i < got; ++i, ++pos) {
      while (r < ranges.size() && ranges[r].first <= pos) covered_to = std::max(covered_to, ranges[r++].second);
      if (pos >= covered_to) residue->push_back(buf[i]);
    }
  }
  ::close(fd);
  *size = pos;
  *checksum = sum.Digest();
  return Status::Ok();
}

struct SharedTable {
  StreamKind kind = 0;
  CodeLengths lengths{};
};

// How the streams see `tables`: table j under its kind, with id j.
SharedTableMap RefsOf(const std::vector<SharedTable>& tables) {
  SharedTableMap refs;
  for (size_t j = 0; j < tables.size(); ++j) refs[tables[j].kind] = {static_cast<uint32_t>(j), &tables[j].lengths};
  return refs;
}

// The graph section's stream: zstd at `level` with the graph dictionary.
StreamOptions GraphStreamOptions(int level) {
  StreamOptions so;
  so.zstd_level = level;
  so.force_zstd = true;
  so.graph_dictionary = true;
  return so;
}

// Shared code tables (docs/artifact_format.md, Stream mode 5). A stream of
// a small tensor pays for a code table of its own, often more than for its
// codes. Streams of the same kind (the gap symbols, or the nonzero int8
// values, of several small weight tensors) can share one table built from
// all of them. A table stays only where it saves more than it costs (sizes
// follow from the plans' histograms, so trying a set of tables costs no
// encoding), and the tables are used only when the planned tensors and the
// tables together come out smaller than without them.
std::vector<SharedTable> ChooseSharedTables(const std::vector<const TensorPlan*>& plans) {
  std::map<StreamKind, Histogram> unions;
  uint64_t without = 0;
  const size_t planned = plans.size();
  for (const TensorPlan* p : plans) {
    without += p->Size(nullptr).bytes;
    for (const auto& [kind, h] : p->stream_counts()) {
      Histogram& u = unions[kind];
      for (int s = 0; s < 256; ++s) u[s] += (*h)[s];
    }
  }
  std::vector<SharedTable> offered;
  if (planned < 2) return offered;
  for (const auto& [kind, h] : unions) {
    SharedTable t{kind, {}};
    if (BuildCodeLengths(h, kHuffmanMaxBits, &t.lengths)) offered.push_back(t);
  }
  // Dropping a table changes which candidates win, so repeat until every
  // table offered pays (each round drops at least one).
  while (!offered.empty()) {
    const SharedTableMap refs = RefsOf(offered);
    std::vector<uint64_t> saved(offered.size(), 0);
    uint64_t total = 0;
    for (const TensorPlan* p : plans) {
      const TensorPlan::Sizing s = p->Size(&refs);
      total += s.bytes;
      for (const auto& [id, bytes] : s.savings) saved[id] += bytes;
    }
    std::vector<SharedTable> paying;
    for (size_t j = 0; j < offered.size(); ++j) {
      const uint64_t cost = TableBytes(offered[j].lengths);
      total += cost;
      if (saved[j] > cost) paying.push_back(offered[j]);
    }
    if (paying.size() == offered.size()) {
      return total + 1 < without ? offered : std::vector<SharedTable>{};  // + 1: the table count
    }
    offered = std::move(paying);
  }
  return offered;
}

Result<PackReport> Pack(const std::filesystem::path& onnx_path, const std::filesystem::path& artifact,
                        const PackOptions& options) {
  if (options.level < 1 || options.level > ZstdMaxLevel()) {
    return InvalidArgument("zstd level " + std::to_string(options.level) + " is outside 1.." + std::to_string(ZstdMaxLevel()));
  }
  if (options.inline_up_to > PackOptions::kMaxInlineUpTo) {
    return InvalidArgument("inline_up_to " + std::to_string(options.inline_up_to) + " is above " +
                           std::to_string(PackOptions::kMaxInlineUpTo) +
                           ": only tensors of at most that many bytes can stay in the graph section");
  }
  const std::string src = onnx_path.string();
  if (std::error_code ec; std::filesystem::equivalent(onnx_path, artifact, ec)) {
    return InvalidArgument(artifact.string() + ": output is the input file; modelpress never modifies its input");
  }
  if (std::error_code ec; std::filesystem::is_directory(artifact, ec)) return IoError(artifact.string() + ": is a directory");
  // The graph and the index are compressed with the graph dictionary at the
  // end; digesting it takes a core that is idle while the model loads.
  BackgroundTask dictionary([level = options.level] {
    PrepareGraphDictionary(std::min(level, kSizingLevel));
    PrepareGraphDictionary(level);
  });
  MP_ASSIGN_OR_RETURN(Model model, LoadModel(onnx_path));
  PackReport report;
  ArtifactContents c;
  // The file restores byte for byte when modelpress's deterministic
  // serialisation reproduces it: same size and same XXH3-64. This only reads
  // the model, so with more than one thread it runs beside the encoding.
  Status exact_status = Status::Ok();
  // The model's copy of a large raw tensor's data is freed as soon as its
  // payload is verified and the exact check below, which serializes the
  // whole model, is done with it: the payloads then reuse that memory, and
  // pack's peak is about the model plus what is being encoded instead of
  // the model plus every payload.
  std::mutex release_mutex;
  bool model_read = false;
  std::vector<onnx::TensorProto*> to_release;
  auto release = [&](onnx::TensorProto* t) {
    std::lock_guard<std::mutex> lock(release_mutex);
    if (model_read) {
      std::string().swap(*t->mutable_raw_data());
    } else {
      to_release.push_back(t);
    }
  };
  auto check_exact = [&] {
    exact_status = ScanFile(onnx_path, {}, &c.onnx_size, &c.onnx_checksum, nullptr);
    if (exact_status.ok()) {
      StreamingChecksum again;
      uint64_t again_size = 0;
      c.exact_onnx = SerializeDeterministic(model.proto(), [&](const void* p, size_t n) {
        again.Update(p, n);
        again_size += n;
        return true;
      }) && again_size == c.onnx_size && again.Digest() == c.onnx_checksum;
    }
    std::lock_guard<std::mutex> lock(release_mutex);
    model_read = true;
    for (onnx::TensorProto* t : to_release) std::string().swap(*t->mutable_raw_data());
    to_release.clear();
  };
  const int threads = ResolveThreads(options.threads);
  std::optional<BackgroundTask> exact_thread;  // joined before the model is changed, or on any early return
  if (threads > 1) {
    exact_thread.emplace(check_exact);
  } else {
    check_exact();
  }

  // Choose what gets a payload. Everything else stays in the graph section.
  struct Work {
    const TensorEntry* entry;
    TensorView view;
    StorageKind storage;
    ExternalRef ext;
  };
  std::vector<Work> work;
  for (const TensorEntry& e : model.tensors()) {
    auto v = model.View(e);
    if (!v.ok()) {
      if (v.status().code() != StatusCode::kUnsupported) return v.status();
      report.inline_tensors.push_back(e.name + ": " + DTypeName(e.proto->data_type()) + " has no fixed element size");
      continue;
    }
    if (v->packed_bytes() == 0 || v->packed_bytes() < options.min_tensor_bytes) continue;
    if (v->packed_bytes() > ReaderOptions{}.max_tensor_bytes) {
      return Unsupported(src + ": tensor " + Quote(e.name) + " holds " + std::to_string(v->packed_bytes()) +
                         " bytes, more than a reader accepts by default (" +
                         std::to_string(ReaderOptions{}.max_tensor_bytes) + ")");
    }
    Work w{&e, *v, StorageKind::kRaw, {}};
    if (v->storage() == Storage::kExternal) {
      w.storage = StorageKind::kExternal;
      w.ext = ParseExternal(*e.proto);
    } else if (v->storage() == Storage::kTyped) {
      w.storage = StorageKind::kTyped;
    } else if (!e.proto->has_raw_data()) {
      report.inline_tensors.push_back(e.name + ": no data field");
      continue;
    }
    work.push_back(std::move(w));
  }

  // Encode in parallel; each item only reads its own bytes. Tensors of at
  // most kSharedTablesUpTo bytes are copied and only planned at first: which
  // of them stay inside the graph section and which shared code tables the
  // others use are chosen once the graph section exists (after the model's
  // data is cleared, hence the copies).
  EncodeOptions eo;
  eo.stream.zstd_level = options.level;
  std::vector<EncodedTensor> encoded(work.size());
  std::vector<std::optional<TensorPlan>> plans(work.size());
  std::vector<std::vector<uint8_t>> copies(work.size());  // packed bytes of small tensors and of views that are not contiguous
  std::vector<uint64_t> checksums(work.size(), 0);  // of the payloads, computed by the encoding threads
  std::vector<Status> errors(work.size());
  std::vector<uint8_t> keep(work.size(), 1);
  auto is_small = [&](size_t i) { return work[i].view.packed_bytes() <= kSharedTablesUpTo; };
  auto packed_of = [&](size_t i) -> std::span<const uint8_t> {
    const TensorView& v = work[i].view;
    if (v.contiguous() && !is_small(i)) return {reinterpret_cast<const uint8_t*>(v.bytes().data()), v.bytes().size()};
    return copies[i];
  };
  // Decodes the payload again and compares it with the tensor.
  auto verify = [&](size_t i, const EncodedTensor& enc, const SharedTables* tables) {
    if (!options.verify) return;
    const std::span<const uint8_t> packed = packed_of(i);
    const TensorView& v = work[i].view;
    const std::unique_ptr<uint8_t[]> back(new uint8_t[packed.size()]);  // DecodeTensor writes every byte
    std::string error;
    if (!DecodeTensor(enc.encoder, static_cast<int32_t>(v.dtype()), v.shape(), enc.payload, {back.get(), packed.size()},
                      &error, nullptr, tables) ||
        (!packed.empty() && std::memcmp(back.get(), packed.data(), packed.size()) != 0)) {
      errors[i] = Internal(src + ": tensor " + Quote(work[i].entry->name) + ": encoder " +
                           std::string(EncoderName(enc.encoder)) + " did not round-trip" +
                           (error.empty() ? "" : ": " + error));
    }
  };
  // Copies a small tensor or a view that is not contiguous; false when its
  // typed data holds bits the packed view drops (e.g. a non-canonical high
  // half), which could not be restored exactly: such a tensor stays inline.
  auto prepare = [&](size_t i) {
    const Work& w = work[i];
    if (!w.view.contiguous() || is_small(i)) {
      copies[i].resize(w.view.packed_bytes());
      w.view.CopyPackedTo(std::as_writable_bytes(std::span(copies[i])));
    }
    if (w.storage == StorageKind::kTyped && !TypedMatches(*w.entry->proto, packed_of(i))) keep[i] = 0;
    return keep[i] != 0;
  };
  auto finish = [&](size_t i, EncodedTensor enc, const SharedTables* tables) {
    verify(i, enc, tables);
    checksums[i] = Checksum(enc.payload.data(), enc.payload.size());
    encoded[i] = std::move(enc);
    copies[i] = {};
    // Small tensors are read from their copies; large ones no longer.
    if (!is_small(i) && work[i].storage == StorageKind::kRaw) release(work[i].entry->proto);
  };
  std::vector<size_t> small, large;
  for (size_t i = 0; i < work.size(); ++i) (is_small(i) ? small : large).push_back(i);
  // Largest first, so that no thread is left with a big tensor at the end
  // while the others wait (models tend to put their largest layers last).
  std::stable_sort(large.begin(), large.end(),
                   [&](size_t a, size_t b) { return work[a].view.packed_bytes() > work[b].view.packed_bytes(); });
  ParallelFor(small.size(), threads, [&](size_t k) {
    const size_t i = small[k];
    if (!prepare(i)) return;
    const TensorView& v = work[i].view;
    plans[i].emplace(PlanTensor(static_cast<int32_t>(v.dtype()), v.shape(), packed_of(i), eo, true));
  });
  ParallelFor(large.size(), threads, [&](size_t k) {
    const size_t i = large[k];
    if (!prepare(i)) return;
    const TensorView& v = work[i].view;
    finish(i, PlanTensor(static_cast<int32_t>(v.dtype()), v.shape(), packed_of(i), eo, false).Write(nullptr), nullptr);
  });
  for (const Status& s : errors) MP_RETURN_IF_ERROR(s);
  if (exact_thread) exact_thread->Join();
  MP_RETURN_IF_ERROR(exact_status);
  report.input_bytes = c.onnx_size;

  // External data files: the residue no tensor covers, and a whole-file checksum.
  std::vector<uint32_t> file_of(work.size(), 0);
  std::map<std::string, uint32_t> file_index;
  // A file is recorded under its normalized location ("./w.bin" and
  // "w.bin" are one file named "w.bin", the form unpack accepts); the graph
  // keeps the model's own spelling.
  auto file_for = [&](const std::string& location) {
    const std::string name = std::filesystem::path(location).lexically_normal().generic_string();
    auto [it, added] = file_index.emplace(name, static_cast<uint32_t>(c.files.size()));
    if (added) c.files.push_back({name, 0, 0, {}});
    return it->second;
  };
  for (size_t i = 0; i < work.size(); ++i) {
    if (keep[i] && work[i].storage == StorageKind::kExternal) file_of[i] = file_for(work[i].ext.location);
  }
  // Files that no payload tensor reads (their tensors are below
  // --min-tensor-bytes, in subgraphs, or kept whole) are packed whole as
  // residue: without them the restored model would name missing files.
  std::set<std::string> locations;
  CollectExternalLocations(model.proto().graph(), &locations);
  for (const std::string& location : locations) file_for(location);
  // The artifact must not replace a file it is made from.
  for (const PendingFile& f : c.files) {
    std::error_code ec;
    if (std::filesystem::equivalent(artifact, model.base_dir() / f.name, ec)) {
      return InvalidArgument(artifact.string() + ": output is the model's external data file " + Quote(f.name) +
                             "; modelpress never modifies its input");
    }
  }
  for (uint32_t f = 0; f < c.files.size(); ++f) {
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (size_t i = 0; i < work.size(); ++i) {
      if (keep[i] && work[i].storage == StorageKind::kExternal && file_of[i] == f) {
        ranges.emplace_back(work[i].ext.offset, work[i].ext.offset + work[i].view.packed_bytes());
      }
    }
    std::vector<uint8_t> residue;
    const std::filesystem::path data_path = model.base_dir() / c.files[f].name;
    MP_RETURN_IF_ERROR(ScanFile(data_path, ranges, &c.files[f].size, &c.files[f].checksum, &residue));
    report.input_bytes += c.files[f].size;
    StreamOptions so;
    so.zstd_level = options.level;
    EncodeStream(residue, so, &c.files[f].residue);
  }

  auto Pending = [&](size_t i) {
    PendingTensor t;
    const TensorView& v = work[i].view;
    t.name = work[i].entry->name;
    t.dtype = static_cast<int32_t>(v.dtype());
    t.shape = v.shape();
    t.storage = work[i].storage;
    t.external_file = file_of[i];
    t.external_offset = work[i].ext.offset;
    return t;
  };

  // The graph section without any payload tensor's data. Views die here.
  for (size_t i = 0; i < work.size(); ++i) {
    if (!keep[i]) {
      report.inline_tensors.push_back(work[i].entry->name + ": typed data that would not restore bit for bit");
      continue;
    }
    onnx::TensorProto* t = work[i].entry->proto;
    if (work[i].storage == StorageKind::kRaw) t->clear_raw_data();
    if (work[i].storage == StorageKind::kTyped) ClearTyped(t);
  }
  std::string bare;
  if (!SerializeDeterministic(model.proto(), &bare)) return Internal(src + ": cannot serialize the graph");
  c.graph_dictionary = true;

  // Small raw tensors can cost less inside the graph section (a few bytes of
  // protobuf framing, compressed with the graph) than as payloads with
  // index records of their own. Each threshold tried keeps the raw tensors
  // of at most that many bytes in the graph (spliced back into the bare
  // graph as unpack would splice them) and chooses shared tables for the
  // rest; the smallest artifact wins, the lowest threshold on ties. The
  // graph and index of each are sized at a fast zstd level (at level 19 a
  // 15 kB graph takes 6 ms, at level 9 0.4 ms, and sizes differ by 1-4%
  // alike for all thresholds); the winner's are then compressed at the
  // requested level.
  std::vector<uint64_t> thresholds = {0};
  for (uint64_t t = 128; t <= options.inline_up_to; t *= 2) thresholds.push_back(t);
  auto inlined = [&](size_t i, uint64_t threshold) {
    return keep[i] && work[i].storage == StorageKind::kRaw && is_small(i) && work[i].view.packed_bytes() <= threshold;
  };
  const int sizing_level = std::min(options.level, kSizingLevel);
  struct Layout {
    bool tried = false;
    uint64_t bytes = UINT64_MAX;
    std::vector<SharedTable> tables;
    std::vector<uint8_t> graph;  // the serialized graph
  };
  std::vector<Layout> layouts(thresholds.size());
  for (size_t k = 1; k < thresholds.size(); ++k) {
    for (size_t i = 0; i < work.size() && !layouts[k].tried; ++i) {
      layouts[k].tried = inlined(i, thresholds[k]) && !inlined(i, thresholds[k - 1]);
    }
  }
  layouts[0].tried = true;
  ParallelFor(thresholds.size(), threads, [&](size_t k) {
    Layout& l = layouts[k];
    if (!l.tried) return;
    std::vector<const TensorPlan*> planned;
    std::vector<TensorInfo> spliced;
    std::vector<std::span<const uint8_t>> data;
    for (size_t i = 0; i < work.size(); ++i) {
      if (inlined(i, thresholds[k])) {
        const TensorView& v = work[i].view;
        spliced.push_back({.name = work[i].entry->name, .dtype = static_cast<int32_t>(v.dtype()), .shape = v.shape(),
                           .bytes = v.packed_bytes()});
        data.push_back(copies[i]);
      } else if (plans[i]) {
        planned.push_back(&*plans[i]);
      }
    }
    l.tables = ChooseSharedTables(planned);
    const SharedTableMap refs = RefsOf(l.tables);
    std::vector<uint8_t> graph(bare.begin(), bare.end());
    if (!spliced.empty()) {
      SplicedModel m;
      std::string error;
      if (!SpliceModel(graph, spliced, data, &m, &error)) return;  // cannot happen: the graph was just made; never chosen
      graph = JoinPieces(m, data);
      if (graph.size() != m.size) return;  // data of the wrong size: cannot happen either; never chosen
    }
    // The artifact's size, with the planned payloads' sizes and their names'
    // hashes standing in for their checksums.
    ArtifactContents sized;
    sized.graph_dictionary = true;
    sized.exact_onnx = c.exact_onnx;
    sized.onnx_size = c.onnx_size;
    sized.onnx_checksum = c.onnx_checksum;
    sized.index_level = sizing_level;
    EncodeStream(graph, GraphStreamOptions(sizing_level), &sized.skeleton);
    l.graph = std::move(graph);
    for (const SharedTable& t : l.tables) sized.tables.push_back(t.lengths);
    sized.files = c.files;
    for (size_t i = 0; i < work.size(); ++i) {
      if (!keep[i] || inlined(i, thresholds[k])) continue;
      PendingTensor t = Pending(i);
      if (plans[i]) {
        const TensorPlan::Sizing z = plans[i]->Size(&refs);
        t.encoder = z.encoder;
        t.planned_size = z.bytes;
        t.payload_checksum = Checksum(t.name.data(), t.name.size());
      } else {
        t.encoder = encoded[i].encoder;
        t.planned_size = encoded[i].payload.size();
        t.payload_checksum = checksums[i];
      }
      sized.tensors.push_back(std::move(t));
    }
    l.bytes = ArtifactBytes(sized);
  });
  size_t best = 0;
  for (size_t k = 1; k < layouts.size(); ++k) {
    if (layouts[k].tried && layouts[k].bytes < layouts[best].bytes) best = k;
  }
  const uint64_t threshold = thresholds[best];
  if (options.verify && threshold > 0) {
    // The tensors kept in the graph section are read back from it, as
    // unpack --tensor and inspect read them, and compared.
    std::vector<InlineTensor> found;
    std::string error;
    if (!FindInlineTensors(layouts[best].graph, &found, &error)) return Internal(src + ": graph section: " + error);
    std::map<std::string_view, std::span<const uint8_t>> by_name;
    for (const InlineTensor& t : found) by_name.emplace(t.info.name, t.data());
    for (size_t i = 0; i < work.size(); ++i) {
      if (!inlined(i, threshold)) continue;
      const auto it = by_name.find(work[i].entry->name);
      const std::span<const uint8_t> want = packed_of(i);
      if (it == by_name.end() || it->second.size() != want.size() ||
          (!want.empty() && std::memcmp(it->second.data(), want.data(), want.size()) != 0)) {
        return Internal(src + ": tensor " + Quote(work[i].entry->name) + " kept in the graph section did not round-trip");
      }
    }
  }
  const std::vector<SharedTable> tables = std::move(layouts[best].tables);
  // The graph is compressed beside the writing of the small tensors.
  BackgroundTask graph_thread([&] { EncodeStream(layouts[best].graph, GraphStreamOptions(options.level), &c.skeleton); });

  const SharedTableMap refs = RefsOf(tables);
  SharedTables lengths;
  for (const auto& t : tables) lengths.push_back(t.lengths);
  ParallelFor(small.size(), threads, [&](size_t k) {
    const size_t i = small[k];
    if (plans[i] && !inlined(i, threshold)) finish(i, plans[i]->Write(&refs), &lengths);
    plans[i].reset();
  });
  graph_thread.Join();
  layouts.clear();
  for (const Status& s : errors) MP_RETURN_IF_ERROR(s);
  c.tables = std::move(lengths);

  for (size_t i = 0; i < work.size(); ++i) {
    if (!keep[i]) continue;
    if (inlined(i, threshold)) {
      ++report.graph_tensors;
      continue;
    }
    PendingTensor t = Pending(i);
    t.encoder = encoded[i].encoder;
    t.payload = std::move(encoded[i].payload);
    t.payload_checksum = checksums[i];
    PackedTensorReport r;
    r.name = t.name;
    r.dtype = t.dtype;
    r.shape = t.shape;
    r.bytes = work[i].view.packed_bytes();
    r.stored_bytes = t.payload.size();
    r.encoder = t.encoder;
    r.bound_bits = encoded[i].bound_bits;
    report.tensors.push_back(std::move(r));
    c.tensors.push_back(std::move(t));
  }
  work.clear();
  report.graph_stored_bytes = c.skeleton.size();
  report.shared_tables = c.tables.size();
  for (const CodeLengths& l : c.tables) report.shared_table_bytes += TableBytes(l);
  report.exact_onnx = c.exact_onnx;

  AtomicFile out(artifact);
  MP_RETURN_IF_ERROR(out.Open());
  MP_RETURN_IF_ERROR(WriteArtifact(c, [&](const void* p, size_t n) { return out.Write(p, n); }, &report.artifact_bytes));
  if (options.verify) {
    // The file as written, read back as unpack reads it: it opens (header,
    // footer and index checks), its graph section takes every indexed
    // tensor, and the model it restores has the packed file's size.
    MP_RETURN_IF_ERROR(out.CheckWritten([&](std::span<const uint8_t> bytes) -> Status {
      const std::string where = src + ": the artifact written";
      auto reader = Reader::FromMemory(std::as_bytes(bytes), {}, artifact.string());
      if (!reader.ok()) return Internal(where + " does not open: " + reader.status().message());
      if (reader->tensors().size() != c.tensors.size()) return Internal(where + " lists other tensors than were packed");
      SplicedArtifact spliced;
      if (const Status s = SpliceArtifact(*reader, &spliced); !s.ok()) return Internal(where + " does not restore: " + s.message());
      if (c.exact_onnx && spliced.model.size != c.onnx_size) {
        return Internal(where + " restores " + std::to_string(spliced.model.size) + " bytes, not the packed file's " +
                        std::to_string(c.onnx_size));
      }
      return Status::Ok();
    }));
  }
  MP_RETURN_IF_ERROR(out.Commit());
  return report;
}

}  // namespace

Result<PackReport> PackModel(const std::filesystem::path& onnx_path, const std::filesystem::path& artifact,
                             const PackOptions& options) {
  return ReportOutOfMemory(onnx_path.string(), [&] { return Pack(onnx_path, artifact, options); });
}

}  // namespace modelpress::pack
