// The KVM ioctls whose structs end in a flexible array. Debian 12's kernel
// headers declare those arrays with __DECLARE_FLEX_ARRAY, which in C++ adds a
// one-byte empty member: sizeof(kvm_cpuid2) becomes 12 instead of 8, the ioctl
// numbers encode the wrong size, and `entries` sits at the wrong offset. So we
// lay these out ourselves: a fixed header followed by the entries.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>
#include <vector>

namespace understudy::kvm {

struct KvmCpuid2Header {
    std::uint32_t nent;
    std::uint32_t padding;
};
struct KvmMsrsHeader {
    std::uint32_t nmsrs;
    std::uint32_t pad;
};
static_assert(sizeof(KvmCpuid2Header) == 8 && sizeof(KvmMsrsHeader) == 8);

inline constexpr unsigned long kKvmGetSupportedCpuid = _IOWR(KVMIO, 0x05, KvmCpuid2Header);
inline constexpr unsigned long kKvmSetCpuid2 = _IOW(KVMIO, 0x90, KvmCpuid2Header);
inline constexpr unsigned long kKvmGetMsrs = _IOWR(KVMIO, 0x88, KvmMsrsHeader);
inline constexpr unsigned long kKvmSetMsrs = _IOW(KVMIO, 0x89, KvmMsrsHeader);

// A header followed by `capacity` entries, zeroed, suitably aligned.
template <class Header, class Entry> class FlexArray {
  public:
    explicit FlexArray(std::size_t capacity)
        : storage_((sizeof(Header) + capacity * sizeof(Entry) + sizeof(std::uint64_t) - 1) / sizeof(std::uint64_t))
    {
        static_assert(sizeof(Header) % alignof(Entry) == 0);
    }
    Header *header() { return reinterpret_cast<Header *>(storage_.data()); }
    Entry *entries()
    {
        return reinterpret_cast<Entry *>(reinterpret_cast<std::uint8_t *>(storage_.data()) + sizeof(Header));
    }
    void *data() { return storage_.data(); }

  private:
    std::vector<std::uint64_t> storage_;
};

} // namespace understudy::kvm
