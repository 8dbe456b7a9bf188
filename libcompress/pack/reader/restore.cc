#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "container/atomic_file.h"
#include "container/checksum.h"
#include "container/index.h"
#include "container/out_of_memory.h"
#include "container/parallel.h"
#include "modelpress/pack_reader.h"
#include "reader/model_splice.h"
#include "reader/splice_artifact.h"

namespace modelpress::pack {
namespace {

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }


// Decodes tensors in a given order, ahead of the writer, on worker threads.
// The memory that holds decoded data (tensors decoding, decoded and not yet
// written, and buffers kept for reuse) stays within `budget` bytes, or one
// tensor when a tensor is larger. Buffers are reused: fresh memory costs a
// page fault and a clear per page, and freeing and allocating blocks of
// megabytes in turn grows the heap.
class OrderedDecoder {
 public:
  OrderedDecoder(const Reader& reader, const std::vector<TensorInfo>& tensors, std::vector<size_t> order, int threads,
                 uint64_t budget)
      : reader_(reader), tensors_(tensors), order_(std::move(order)), budget_(budget), slots_(order_.size()) {
    if (threads < 2) return;
    for (size_t w = 0; w < static_cast<size_t>(threads) && w < order_.size(); ++w) workers_.emplace_back([this] { Work(); });
  }
  ~OrderedDecoder() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    startable_.notify_all();
    for (auto& w : workers_) w.join();
  }

  // The next tensor of the order, decoded; valid until the next call.
  Result<std::span<const uint8_t>> Next() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (consumed_ > 0) {
      Buffer& prev = slots_[consumed_ - 1].buffer;
      held_ -= prev.capacity;
      pooled_ += prev.capacity;
      pool_.push_back(std::move(prev));
      startable_.notify_all();
    }
    const size_t k = consumed_++;
    if (workers_.empty()) {
      next_ = k + 1;
      Buffer b = Acquire(k);
      lock.unlock();
      Decode(k, std::move(b));
      lock.lock();
    } else {
      ready_.wait(lock, [&] { return slots_[k].done; });
    }
    MP_RETURN_IF_ERROR(slots_[k].status);
    return std::span<const uint8_t>(slots_[k].buffer.data.get(), tensors_[order_[k]].bytes);
  }

  // The most memory that held decoded data at once.
  uint64_t peak() const { return peak_; }

 private:
  struct Buffer {
    std::unique_ptr<uint8_t[]> data;
    uint64_t capacity = 0;
  };
  struct Slot {
    Buffer buffer;
    Status status;
    bool done = false;
  };

  // A buffer for tensor k (under the lock): the smallest kept one that
  // fits, or a new one after dropping kept ones until it fits the budget.
  Buffer Acquire(size_t k) {
    const uint64_t need = tensors_[order_[k]].bytes;
    auto fit = pool_.end();
    for (auto it = pool_.begin(); it != pool_.end(); ++it) {
      if (it->capacity >= need && (fit == pool_.end() || it->capacity < fit->capacity)) fit = it;
    }
    Buffer b;
    if (fit != pool_.end()) {
      b = std::move(*fit);
      pool_.erase(fit);
      pooled_ -= b.capacity;
    } else {
      while (!pool_.empty() && held_ + pooled_ + need > budget_) {
        pooled_ -= pool_.back().capacity;
        pool_.pop_back();
      }
      // ReadTensor writes every byte. Memory refused here fails this
      // tensor (Decode reports it) rather than the worker thread.
      b.data.reset(new (std::nothrow) uint8_t[need]);
      b.capacity = need;
    }
    held_ += b.capacity;
    peak_ = std::max(peak_, held_ + pooled_);
    return b;
  }

  void Decode(size_t k, Buffer b) {
    const TensorInfo& t = tensors_[order_[k]];
    Status s = b.data ? reader_.ReadTensor(t, std::as_writable_bytes(std::span(b.data.get(), t.bytes)))
                      : ResourceExhausted(reader_.name() + ": tensor " + Quote(t.name) + ": out of memory for its " +
                                          std::to_string(t.bytes) + " decoded bytes");
    reader_.ReleasePayload(t);  // each payload is read once
    std::lock_guard<std::mutex> lock(mutex_);
    slots_[k].buffer = std::move(b);
    slots_[k].status = std::move(s);
    slots_[k].done = true;
  }

  void Work() {
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex_);
      startable_.wait(lock, [&] {
        return stop_ || next_ >= order_.size() || held_ == 0 || held_ + tensors_[order_[next_]].bytes <= budget_;
      });
      if (stop_ || next_ >= order_.size()) return;
      const size_t k = next_++;
      Buffer b = Acquire(k);
      lock.unlock();
      Decode(k, std::move(b));
      ready_.notify_all();
    }
  }

  const Reader& reader_;
  const std::vector<TensorInfo>& tensors_;
  const std::vector<size_t> order_;
  const uint64_t budget_;
  std::vector<Slot> slots_;
  std::vector<Buffer> pool_;
  std::mutex mutex_;
  std::condition_variable startable_, ready_;
  size_t next_ = 0, consumed_ = 0;
  uint64_t held_ = 0, pooled_ = 0, peak_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

Result<UnpackReport> Unpack(const std::filesystem::path& artifact, const std::filesystem::path& onnx_path,
                            const UnpackOptions& options) {
  if (std::error_code ec; std::filesystem::equivalent(artifact, onnx_path, ec)) {
    return InvalidArgument(onnx_path.string() + ": output is the input file; modelpress never modifies its input");
  }
  MP_ASSIGN_OR_RETURN(Reader reader, Reader::Open(artifact));
  const std::string src = reader.name();
  const ArtifactInfo& info = reader.info();
  const std::vector<TensorInfo>& tensors = reader.tensors();
  SplicedArtifact spliced;
  MP_RETURN_IF_ERROR(SpliceArtifact(reader, &spliced));
  const SplicedModel& model = spliced.model;

  // The order of writing: each external file's tensors by offset, then the
  // tensors in the model file.
  std::vector<std::vector<size_t>> file_order(info.files.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].storage == static_cast<uint8_t>(StorageKind::kExternal)) {
      if (tensors[i].external_file >= info.files.size()) return Corrupt(src + ": tensor " + Quote(tensors[i].name) + " names no external file");
      file_order[tensors[i].external_file].push_back(i);
    }
  }
  std::vector<size_t> order;
  for (auto& f : file_order) {
    std::sort(f.begin(), f.end(), [&](size_t a, size_t b) { return tensors[a].external_offset < tensors[b].external_offset; });
    order.insert(order.end(), f.begin(), f.end());
  }
  for (const SplicedModel::Piece& p : model.pieces) {
    if (p.tensor != SplicedModel::kNoTensor) order.push_back(p.tensor);
  }
  // A thread pays for its start (about what decoding 100 kB takes) only on
  // enough data: a small model decodes faster on one.
  constexpr uint64_t kBytesPerThread = 256 << 10;
  uint64_t total = 0;
  for (size_t i : order) total += tensors[i].bytes;
  const int threads = static_cast<int>(std::min<uint64_t>(ResolveThreads(options.threads), 1 + total / kBytesPerThread));
  OrderedDecoder decoder(reader, tensors, std::move(order), threads, options.max_buffered_bytes);

  UnpackReport report;
  if (!info.files.empty() && AtomicFile::WritesInto(onnx_path)) {
    return InvalidArgument(onnx_path.string() + ": is not a regular file, so the " + std::to_string(info.files.size()) +
                           " external data file(s) the model needs cannot sit beside it; unpack to a file");
  }
  // The model's file is opened first, so that an output path that cannot
  // be written fails before anything else is. (With external files, the
  // output folder is created, as their folders are.)
  if (!info.files.empty() && onnx_path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(onnx_path.parent_path(), ec);
    if (ec) return IoError(onnx_path.parent_path().string() + ": cannot create folder: " + ec.message());
  }
  auto model_file = std::make_unique<AtomicFile>(onnx_path);
  MP_RETURN_IF_ERROR(model_file->Open());
  // External files: residue and tensor bytes in file order, checked against
  // the whole-file checksum before anything is renamed into place.
  const std::filesystem::path dir = onnx_path.parent_path();
  std::vector<std::unique_ptr<AtomicFile>> outputs;
  for (size_t f = 0; f < info.files.size(); ++f) {
    const ExternalFileInfo& fi = info.files[f];
    const std::string where = src + ": external file " + Quote(fi.name);
    const std::filesystem::path out = dir / fi.name;
    if (out.lexically_normal() == onnx_path.lexically_normal()) {
      return Corrupt(where + " has the name of the output model");
    }
    if (std::error_code ec; std::filesystem::equivalent(out, artifact, ec)) {
      return InvalidArgument(where + " would replace the artifact itself; modelpress never modifies its input");
    }
    MP_ASSIGN_OR_RETURN(std::string residue, reader.ReadResidue(f));
    if (out.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(out.parent_path(), ec);
      if (ec) return IoError(out.parent_path().string() + ": cannot create folder: " + ec.message());
    }
    auto file = std::make_unique<AtomicFile>(out);
    MP_RETURN_IF_ERROR(file->Open());
    StreamingChecksum sum;
    uint64_t pos = 0, used = 0;
    auto emit = [&](const char* p, uint64_t n) -> Status {
      sum.Update(p, n);
      pos += n;
      return file->Write(p, n);
    };
    for (size_t i : file_order[f]) {
      MP_ASSIGN_OR_RETURN(const std::span<const uint8_t> bytes, decoder.Next());
      const uint64_t begin = tensors[i].external_offset, end = begin + tensors[i].bytes;
      if (begin > pos) {
        const uint64_t gap = begin - pos;  // emit() moves pos
        if (gap > residue.size() - used) return Corrupt(where + ": residue is shorter than the gaps between tensors");
        MP_RETURN_IF_ERROR(emit(residue.data() + used, gap));
        used += gap;
      }
      if (end > pos) MP_RETURN_IF_ERROR(emit(reinterpret_cast<const char*>(bytes.data()) + (pos - begin), end - pos));
    }
    MP_RETURN_IF_ERROR(emit(residue.data() + used, residue.size() - used));
    if (pos != fi.size || sum.Digest() != fi.checksum) {
      return Corrupt(where + ": restored bytes do not match the packed file's size and checksum");
    }
    outputs.push_back(std::move(file));
  }
  // The model is written from its pieces into its temporary file and
  // renamed into place only when its size and checksum match.
  StreamingChecksum sum;
  for (const SplicedModel::Piece& p : model.pieces) {
    std::span<const uint8_t> piece = p.bytes;
    if (p.tensor != SplicedModel::kNoTensor) {
      MP_ASSIGN_OR_RETURN(piece, decoder.Next());
    }
    sum.Update(piece.data(), piece.size());
    MP_RETURN_IF_ERROR(model_file->Write(piece.data(), piece.size()));
  }
  report.peak_buffered_bytes = decoder.peak();
  if (info.exact_onnx) {
    if (model.size != info.onnx_size || sum.Digest() != info.onnx_checksum) {
      return Corrupt(src + ": the restored model does not match the checksum of the packed file");
    }
    report.byte_exact_checked = true;
  }
  for (auto& f : outputs) {
    MP_RETURN_IF_ERROR(f->Commit());
    report.written.push_back(f->path());
  }
  MP_RETURN_IF_ERROR(model_file->Commit());
  report.written.insert(report.written.begin(), onnx_path);
  return report;
}

}  // namespace

// External data locations come from the artifact: the same rules the loader
// applies (relative, no "..") keep a hostile artifact from writing outside
// the output folder.
Status CheckExternalLocation(const std::string& name, const std::string& where) {
  const std::filesystem::path p(name);
  if (name.empty() || p.is_absolute() || name.front() == '/' || name.front() == '\\') {
    return PermissionDenied(where + ": external data location " + Quote(name) + " is not a relative path");
  }
  for (const auto& part : p) {
    if (part == ".." || part == ".") return PermissionDenied(where + ": external data location " + Quote(name) + " contains '..' or '.'");
  }
  if (name.find('\\') != std::string::npos || name.find('\0') != std::string::npos || name.back() == '/') {
    return PermissionDenied(where + ": external data location " + Quote(name) + " is not a plain relative file path");
  }
  return Status::Ok();
}

Status SpliceArtifact(const Reader& reader, SplicedArtifact* out) {
  for (const ExternalFileInfo& f : reader.info().files) MP_RETURN_IF_ERROR(CheckExternalLocation(f.name, reader.name()));
  const std::vector<TensorInfo>& tensors = reader.tensors();
  MP_ASSIGN_OR_RETURN(out->skeleton, reader.ReadSkeleton());
  // Tensors whose typed field is varint-encoded are decoded first: the
  // lengths the splice writes depend on their values. Every other tensor is
  // decoded just before it is written.
  out->early.assign(tensors.size(), {});
  std::vector<std::span<const uint8_t>> data(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    // An empty tensor gives no piece to write; its payload is checked here.
    if (tensors[i].bytes == 0) MP_RETURN_IF_ERROR(reader.ReadTensor(tensors[i], {}));
    if (!NeedsDataToSplice(tensors[i])) continue;
    out->early[i].resize(tensors[i].bytes);
    MP_RETURN_IF_ERROR(reader.ReadTensor(tensors[i], std::as_writable_bytes(std::span(out->early[i]))));
    data[i] = out->early[i];
  }
  std::string error;
  const std::span<const uint8_t> graph(reinterpret_cast<const uint8_t*>(out->skeleton.data()), out->skeleton.size());
  if (!SpliceModel(graph, tensors, data, &out->model, &error)) return Corrupt(reader.name() + ": " + error);
  return Status::Ok();
}

Result<UnpackReport> UnpackModel(const std::filesystem::path& artifact, const std::filesystem::path& onnx_path,
                                 const UnpackOptions& options) {
  return ReportOutOfMemory(artifact.string(), [&] { return Unpack(artifact, onnx_path, options); });
}

Result<std::vector<GraphTensor>> ReadGraphTensors(const Reader& reader) {
  return ReportOutOfMemory(reader.name() + ": graph section", [&]() -> Result<std::vector<GraphTensor>> {
    MP_ASSIGN_OR_RETURN(const std::string skeleton, reader.ReadSkeleton());
    std::vector<InlineTensor> found;
    std::string error;
    if (!FindInlineTensors({reinterpret_cast<const uint8_t*>(skeleton.data()), skeleton.size()}, &found, &error)) {
      return Corrupt(reader.name() + ": " + error);
    }
    std::vector<GraphTensor> out;
    for (InlineTensor& t : found) {
      if (reader.FindTensor(t.info.name) != nullptr) continue;  // the index's tensor of that name is the one a reader sees
      const std::span<const std::byte> data = std::as_bytes(t.data());
      out.push_back({std::move(t.info), std::vector<std::byte>(data.begin(), data.end())});
    }
    return out;
  });
}

}  // namespace modelpress::pack
