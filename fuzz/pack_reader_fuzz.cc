// libFuzzer target for the artifact reader: any byte string must open or be
// refused with a Status, and every tensor, the graph and the residues must
// decode or be refused, without crashes, sanitizer reports or allocations
// beyond the reader's limits.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "modelpress/pack_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  modelpress::pack::ReaderOptions options;
  options.max_tensor_bytes = 64 << 20;  // declared sizes above this are refused at Open
  options.max_section_bytes = 64 << 20;
  auto reader = modelpress::pack::Reader::FromMemory({reinterpret_cast<const std::byte*>(data), size}, options, "fuzz");
  if (!reader.ok()) return 0;
  for (const auto& t : reader->tensors()) {
    std::vector<std::byte> out(t.bytes);
    (void)reader->ReadTensor(t, out);
    (void)modelpress::pack::EntropyBoundBits(t.dtype, out);
  }
  (void)reader->ReadSkeleton();
  for (size_t f = 0; f < reader->info().files.size(); ++f) (void)reader->ReadResidue(f);
  return 0;
}
