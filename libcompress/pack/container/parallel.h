// A minimal data-parallel loop over independent work items.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace modelpress::pack {

inline int ResolveThreads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

// Calls f(i) for every i < n on up to `threads` threads; items are taken in
// order, so big early items do not serialise the tail. When f throws (the
// system refusing memory), no further items start and the first exception
// is rethrown on the calling thread once every thread has stopped.
template <class F>
void ParallelFor(size_t n, int threads, F&& f) {
  const size_t workers = std::min<size_t>(n, static_cast<size_t>(std::max(1, threads)));
  if (workers <= 1) {
    for (size_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    try {
      for (size_t i; (i = next.fetch_add(1)) < n;) f(i);
    } catch (...) {
      next = n;
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

// A thread whose exception, instead of ending the process, is rethrown by
// Join() on the thread that joins it. Joined on destruction too (then any
// exception is dropped: destruction happens while unwinding or after an
// earlier error).
class BackgroundTask {
 public:
  template <class F>
  explicit BackgroundTask(F&& f)
      : thread_([this, f = std::forward<F>(f)]() mutable {
          try {
            f();
          } catch (...) {
            failure_ = std::current_exception();
          }
        }) {}
  BackgroundTask(const BackgroundTask&) = delete;
  BackgroundTask& operator=(const BackgroundTask&) = delete;
  ~BackgroundTask() {
    if (thread_.joinable()) thread_.join();
  }

  void Join() {
    if (thread_.joinable()) thread_.join();
    if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
  }

 private:
  std::exception_ptr failure_;
  std::thread thread_;  // last: started once failure_ exists
};

}  // namespace modelpress::pack
