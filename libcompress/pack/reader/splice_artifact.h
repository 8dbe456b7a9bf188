// The first step of unpack, shared with pack's check of what it wrote: the
// graph section read and the index's tensors spliced into it as placeholders.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modelpress/pack_reader.h"
#include "reader/model_splice.h"

namespace modelpress::pack {

struct SplicedArtifact {
  std::string skeleton;                    // the decoded graph section
  std::vector<std::vector<uint8_t>> early;  // tensors decoded before splicing (varint typed fields), by index
  SplicedModel model;                      // pieces point into skeleton and early
};

// Refuses an external data location that could write outside the output
// folder or is not a plain relative file path (absolute, with a '..' or '.'
// part, a backslash, a NUL, a trailing '/'), naming it.
Status CheckExternalLocation(const std::string& name, const std::string& where);

// Checks the external data locations, reads the graph section, decodes the tensors whose typed fields the splice
// needs (and checks the payloads of empty tensors), and splices. Fails,
// naming the artifact, when the graph section and the index disagree.
Status SpliceArtifact(const Reader& reader, SplicedArtifact* out);

}  // namespace modelpress::pack
