// Memory the system refuses, reported like any other failure: the pack API
// returns a Status for it instead of letting std::bad_alloc escape (code
// embedding the reader on a small device must be able to refuse an artifact
// too large for it and carry on).
#pragma once

#include <new>
#include <string>

#include "modelpress/status.h"

namespace modelpress::pack {

// Runs f, which returns a Status or a Result; std::bad_alloc thrown inside it
// (also on a worker thread, which ParallelFor rethrows) becomes
// kResourceExhausted with a message naming `where`.
template <class F>
auto ReportOutOfMemory(const std::string& where, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return ResourceExhausted(where + ": out of memory (the system refused an allocation)");
  }
}

}  // namespace modelpress::pack
