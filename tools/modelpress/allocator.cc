// Memory allocation tuned for a batch tool that fills model-sized buffers.
//
// Pack and unpack fill buffers the size of the model: protobuf's copies of
// the weights, byte planes, payloads, the restored tensors. Two things made
// that slow, measured loading ResNet-18 (47 MB) into protobuf:
//
// - glibc serves every allocation above 128 KiB (or a threshold it raises as
//   such blocks are freed) with a fresh mmap, so each tensor's buffer starts
//   as untouched pages; the load took 66-85 ms. Served from the heap
//   (TuneAllocator: mmap only from 32 MiB, the most glibc allows, and keep
//   up to 256 MiB of freed heap instead of returning it at once), 34-40 ms.
// - With the kernel's THP mode at "madvise" (Debian's default), every 4 KiB
//   page costs a fault and a clear. Allocations of 2 MiB and more are advised
//   to use huge pages (what GLIBC_TUNABLES=glibc.malloc.hugetlb=1 does, which
//   a program cannot set for itself once started). A huge page only backs a
//   whole aligned 2 MiB range, so those blocks start on a 2 MiB boundary
//   (a 2 MiB tensor would otherwise get none) and the whole 2 MiB ranges
//   inside them are advised: unpacking ResNet-18 went from 75-78 ms to
//   68-71, and the 90%-sparse large MLP's 2 MiB tensors from 20 to 17-21.
//   Blocks are not rounded up: std::string and std::vector ask for a few
//   bytes more than a tensor, and rounding those to the next 2 MiB cost
//   protobuf's copy of a model of 4 MiB tensors half as much again.
//   Smaller blocks are left alone, so memory use barely changes.
//
// Both are confined to this executable: the libraries allocate as their host
// program does. Sanitizer builds keep their own allocator, which checks
// new/delete pairing.
#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

#include "cli_base.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define MODELPRESS_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MODELPRESS_SANITIZED 1
#endif

namespace modelpress::cli {

void TuneAllocator() {
#ifndef MODELPRESS_SANITIZED
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

}  // namespace modelpress::cli

#ifndef MODELPRESS_SANITIZED
namespace {

constexpr std::size_t kAdviseFrom = std::size_t{2} << 20;

// See SetBadAllocThrower.
void (*bad_alloc_thrower)() = nullptr;

// A block of n bytes, or null once the new-handler, if any, gives up.
void* TryAllocate(std::size_t n) {
  for (;;) {
    if (n >= kAdviseFrom) {
      // Huge pages only back whole aligned 2 MiB ranges: such blocks start on
      // one, and the whole ranges inside them are advised. The advice is
      // only a hint, so its failure changes nothing.
      void* p = nullptr;
      if (::posix_memalign(&p, kAdviseFrom, n) == 0) {
        ::madvise(p, n & ~(kAdviseFrom - 1), MADV_HUGEPAGE);
        return p;
      }
    } else if (void* p = std::malloc(n ? n : 1)) {
      return p;
    }
    const std::new_handler handler = std::get_new_handler();
    if (!handler) return nullptr;
    handler();
  }
}

[[noreturn]] void ThrowBadAlloc() {
  if (bad_alloc_thrower) bad_alloc_thrower();
  throw std::bad_alloc();
}

void* Allocate(std::size_t n) {
  if (void* p = TryAllocate(n)) return p;
  ThrowBadAlloc();
}

void* AllocateOrNull(std::size_t n) noexcept {
  try {
    return TryAllocate(n);
  } catch (...) {  // thrown by a new-handler of this executable's runtime
    return nullptr;
  }
}

}  // namespace

void* operator new(std::size_t n) { return Allocate(n); }
void* operator new[](std::size_t n) { return Allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return AllocateOrNull(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return AllocateOrNull(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#endif

namespace modelpress::cli {

void SetBadAllocThrower(void (*thrower)()) {
#ifndef MODELPRESS_SANITIZED
  bad_alloc_thrower = thrower;
#else
  (void)thrower;
#endif
}

}  // namespace modelpress::cli
