// A minimal data-parallel loop over index ranges.
#pragma once

#include <cstdint>
#include <functional>

namespace modelpress {

// Threads ParallelFor uses when `threads` is 0: the machine's hardware
// concurrency, or $MODELPRESS_THREADS when set.
int DefaultThreads();

// Calls fn(i) for every i in [0, n), spreading indices over up to `threads`
// threads (0: DefaultThreads()). Each index is visited exactly once; the
// order across threads is unspecified, so fn must write disjoint data. When
// fn throws, no further indices start and the first exception is rethrown
// here once every thread has stopped.
void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn, int threads = 0);

}  // namespace modelpress
