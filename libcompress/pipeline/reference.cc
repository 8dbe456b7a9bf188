// General-purpose compressors, run on the input model only to put the
// artifact's size in scale. zstd goes through the artifact's own wrapper
// (the one file that includes <zstd.h>).
#include <lzma.h>
#include <zlib.h>

#include <span>

#include "container/zstd_frame.h"
#include "pipeline/internal.h"

namespace modelpress::pipeline {
namespace {

uint64_t GzipBytes(std::string_view in) {
  z_stream z{};
  // 15 window bits + 16: a gzip wrapper, as the gzip tool writes it.
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  std::vector<unsigned char> out(deflateBound(&z, in.size()) + 64);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const uint64_t n = rc == Z_STREAM_END ? z.total_out : 0;
  deflateEnd(&z);
  return n;
}

uint64_t XzBytes(std::string_view in) {
  std::vector<uint8_t> out(lzma_stream_buffer_bound(in.size()));
  size_t pos = 0;
  const lzma_ret rc = lzma_easy_buffer_encode(9 | LZMA_PRESET_EXTREME, LZMA_CHECK_CRC64, nullptr,
                                              reinterpret_cast<const uint8_t*>(in.data()), in.size(), out.data(), &pos,
                                              out.size());
  return rc == LZMA_OK ? pos : 0;
}

}  // namespace

std::vector<ReferenceSize> ReferenceSizes(std::string_view bytes) {
  const std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  std::vector<ReferenceSize> out;
  out.push_back({"zstd -19", pack::ZstdCompress(in, 19).size()});
  // gzip's 32-bit sizes: larger inputs are not measured.
  if (bytes.size() < (1ull << 31)) out.push_back({"gzip -9", GzipBytes(bytes)});
  out.push_back({"xz -9e", XzBytes(bytes)});
  return out;
}

}  // namespace modelpress::pipeline
