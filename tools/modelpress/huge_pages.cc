// Large allocations of the modelpress executable on transparent huge pages.
//
// Pack and unpack fill buffers the size of the model: protobuf's copies of
// the weights, byte planes, payloads, the restored tensors. With the kernel's
// THP mode at "madvise" (Debian's default), every 4 KiB page of them costs a
// page fault and a clear; on ResNet-18 (47 MB) that was about a third of
// pack's time and half of loading the model. Advising huge pages on
// allocations of 2 MiB and more lets the kernel fault them in 2 MiB at a time
// (the same advice glibc gives under GLIBC_TUNABLES=glibc.malloc.hugetlb=1,
// which a program cannot set for itself once started). Smaller allocations
// are untouched, so memory use barely changes.
//
// Replacing the global allocation functions is confined to this executable:
// the libraries allocate as their host program does. Sanitizer builds keep
// their own allocator, which checks new/delete pairing.
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define MODELPRESS_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MODELPRESS_SANITIZED 1
#endif

#ifndef MODELPRESS_SANITIZED
namespace {

constexpr std::size_t kAdviseFrom = std::size_t{2} << 20;

void* Allocate(std::size_t n) {
  for (;;) {
    if (void* p = std::malloc(n ? n : 1)) {
      if (n >= kAdviseFrom) {
        // madvise wants a page-aligned start; the advice is only a hint, so
        // its failure changes nothing.
        const auto begin = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{4095};
        const auto end = reinterpret_cast<std::uintptr_t>(p) + n;
        ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
      }
      return p;
    }
    const std::new_handler handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

void* operator new(std::size_t n) { return Allocate(n); }
void* operator new[](std::size_t n) { return Allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#endif
