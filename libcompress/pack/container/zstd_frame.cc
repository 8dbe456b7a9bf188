#include "container/zstd_frame.h"

#include <zstd.h>

#include <map>
#include <memory>
#include <mutex>
#include <new>

namespace modelpress::pack {
namespace {

constexpr uint8_t kGraphDictionary[] = {
#include "container/graph_dictionary.inc"
};

// Digested once per level, shared by every thread (zstd's CDict is
// read-only once created). Creation holds the lock, so a second caller waits
// for the first's digestion instead of repeating it.
const ZSTD_CDict* GraphCDict(int level) {
  struct Free {
    void operator()(ZSTD_CDict* d) const { ZSTD_freeCDict(d); }
  };
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<ZSTD_CDict, Free>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& d = cache[level];
  if (!d) d.reset(ZSTD_createCDict(kGraphDictionary, sizeof kGraphDictionary, level));
  return d.get();
}

// Digested once, shared by every thread (zstd's DDict is read-only).
const ZSTD_DDict* GraphDDict() {
  static const struct Holder {
    ZSTD_DDict* d = ZSTD_createDDict(kGraphDictionary, sizeof kGraphDictionary);
    ~Holder() { ZSTD_freeDDict(d); }
  } holder;
  return holder.d;
}

}  // namespace

std::span<const uint8_t> GraphDictionary() { return kGraphDictionary; }

void PrepareGraphDictionary(int level) { GraphCDict(level); }

std::vector<uint8_t> ZstdCompress(std::span<const uint8_t> in, int level, bool graph_dictionary) {
  std::vector<uint8_t> out(ZSTD_compressBound(in.size()));
  // One context per thread, reused: creating one per stream costs more than
  // compressing a small stream.
  struct Free {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  };
  thread_local std::unique_ptr<ZSTD_CCtx, Free> owned;
  if (!owned) owned.reset(ZSTD_createCCtx());
  if (!owned) throw std::bad_alloc();  // zstd allocates with malloc; reported as `new` would be
  ZSTD_CCtx* ctx = owned.get();
  ZSTD_CCtx_reset(ctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 0);  // sections carry their own XXH3
  if (graph_dictionary) {
    ZSTD_CCtx_setParameter(ctx, ZSTD_c_dictIDFlag, 0);  // the file header says which dictionary
    const ZSTD_CDict* d = GraphCDict(level);
    if (d == nullptr || ZSTD_isError(ZSTD_CCtx_refCDict(ctx, d))) return {};
  }
  const size_t n = ZSTD_compress2(ctx, out.data(), out.size(), in.data(), in.size());
  // compressBound guarantees room, so an error here is a bug; an empty
  // result makes the stream encoder fall back to another mode.
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

bool ZstdDecompress(std::span<const uint8_t> frame, std::span<uint8_t> out, std::string* error, bool graph_dictionary) {
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) {
    *error = "zstd frame header is malformed";
    return false;
  }
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN || declared != out.size()) {
    *error = "zstd frame declares a content size other than the stream's " + std::to_string(out.size()) + " bytes";
    return false;
  }
  const size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size) || frame_size != frame.size()) {
    *error = "zstd frame is truncated or followed by extra bytes";
    return false;
  }
  // The destination is exactly the declared size: zstd stops with an error
  // rather than write more, which defuses decompression bombs.
  struct Free {
    void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
  };
  thread_local std::unique_ptr<ZSTD_DCtx, Free> owned;
  if (!owned) owned.reset(ZSTD_createDCtx());
  if (!owned) throw std::bad_alloc();  // zstd allocates with malloc; reported as `new` would be
  ZSTD_DCtx* ctx = owned.get();
  ZSTD_DCtx_reset(ctx, ZSTD_reset_session_and_parameters);
  ZSTD_DCtx_setParameter(ctx, ZSTD_d_windowLogMax, 27);
  if (graph_dictionary) {
    const ZSTD_DDict* d = GraphDDict();
    if (d == nullptr || ZSTD_isError(ZSTD_DCtx_refDDict(ctx, d))) {
      *error = "zstd: cannot load the graph dictionary";
      return false;
    }
  }
  const size_t n = ZSTD_decompressDCtx(ctx, out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) {
    *error = std::string("zstd: ") + ZSTD_getErrorName(n);
    return false;
  }
  if (n != out.size()) {
    *error = "zstd frame produced " + std::to_string(n) + " bytes, not the declared " + std::to_string(out.size());
    return false;
  }
  return true;
}

int ZstdMaxLevel() { return ZSTD_maxCLevel(); }

}  // namespace modelpress::pack
