// ParallelFor: every index once, and an exception thrown on a worker thread
// reaches the caller instead of ending the process.
#include <gtest/gtest.h>

#include <atomic>
#include <new>
#include <vector>

#include "modelpress/parallel.h"

namespace modelpress {
namespace {

TEST(ParallelFor, VisitsEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    std::vector<std::atomic<int>> seen(1000);
    ParallelFor(static_cast<int64_t>(seen.size()), [&](int64_t i) { ++seen[static_cast<size_t>(i)]; }, threads);
    for (const auto& s : seen) EXPECT_EQ(s.load(), 1) << threads;
  }
}

TEST(ParallelFor, RethrowsAWorkersExceptionOnTheCaller) {
  for (int threads : {1, 2, 4}) {
    std::atomic<int> started{0};
    // Every index throws, so whichever thread takes one, some worker thread
    // throws when threads > 1; the loop stops handing out indices.
    EXPECT_THROW(ParallelFor(
                     10000,
                     [&](int64_t) {
                       ++started;
                       throw std::bad_alloc();
                     },
                     threads),
                 std::bad_alloc)
        << threads;
    EXPECT_LE(started.load(), threads) << threads;
  }
}

}  // namespace
}  // namespace modelpress
