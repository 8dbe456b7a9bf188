// libFuzzer target for the artifact reader: any byte string must open or be
// refused with a Status; every tensor, the graph and the residues must
// decode or be refused; the decoded tensors must be spliced into the graph
// as unpack does (and by unpack's own splice step), and the tensors the
// graph holds listed, or be refused;
// all without crashes, sanitizer reports or allocations beyond the reader's
// limits.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "modelpress/pack_reader.h"
#include "reader/model_splice.h"
#include "reader/splice_artifact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  modelpress::pack::ReaderOptions options;
  options.max_tensor_bytes = 64 << 20;  // declared sizes above this are refused at Open
  options.max_section_bytes = 64 << 20;
  auto reader = modelpress::pack::Reader::FromMemory({reinterpret_cast<const std::byte*>(data), size}, options, "fuzz");
  if (!reader.ok()) return 0;
  std::vector<std::vector<uint8_t>> decoded;
  std::vector<std::span<const uint8_t>> spans;
  for (const auto& t : reader->tensors()) {
    std::vector<uint8_t>& out = decoded.emplace_back(t.bytes);
    (void)reader->ReadTensor(t, std::as_writable_bytes(std::span(out)));
    (void)modelpress::pack::EntropyBoundBits(t.dtype, std::as_bytes(std::span(out)));
    spans.emplace_back(out);
  }
  auto graph = reader->ReadSkeleton();
  if (graph.ok()) {
    modelpress::pack::SplicedModel model;
    std::string error;
    (void)modelpress::pack::SpliceModel({reinterpret_cast<const uint8_t*>(graph->data()), graph->size()},
                                        reader->tensors(), spans, &model, &error);
    std::vector<modelpress::pack::InlineTensor> inline_tensors;
    (void)modelpress::pack::FindInlineTensors({reinterpret_cast<const uint8_t*>(graph->data()), graph->size()},
                                              &inline_tensors, &error);
  }
  for (size_t f = 0; f < reader->info().files.size(); ++f) (void)reader->ReadResidue(f);
  // unpack's own first step (external file names checked, then the splice).
  modelpress::pack::SplicedArtifact spliced;
  (void)modelpress::pack::SpliceArtifact(*reader, &spliced);
  return 0;
}
