// Guest RAM of the built-in VMM: a memfd mapped into the VMM, and the single
// checked accessor through which every guest-supplied address is reached.
// Every write the VMM makes through it is recorded in its own dirty bitmap,
// because KVM's dirty log sees only writes made by the guest's vCPUs.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "checkpoint/dirty_bitmap.h"

namespace understudy::kvm {

class GuestMemory {
  public:
    // Size must be a positive multiple of the page size.
    GuestMemory(std::uint64_t size, const std::string &name);
    ~GuestMemory();
    GuestMemory(const GuestMemory &) = delete;
    GuestMemory &operator=(const GuestMemory &) = delete;

    [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
    [[nodiscard]] std::uint64_t pages() const noexcept { return size_ / kPageSize; }
    // Host mapping of all of RAM, for registering it with KVM and for bulk
    // page copies by the engine (which hold pfns it checked itself).
    [[nodiscard]] std::uint8_t *host_base() const noexcept { return base_; }

    // Returns [gpa, gpa + len) as host memory; throws GuestFault naming `what`
    // if any part lies outside RAM or the arithmetic would overflow.
    [[nodiscard]] std::span<const std::uint8_t> read_view(std::uint64_t gpa, std::uint64_t len, const char *what) const;
    // As read_view, and marks the range dirty in the VMM's bitmap.
    [[nodiscard]] std::span<std::uint8_t> write_view(std::uint64_t gpa, std::uint64_t len, const char *what);

    template <class T> [[nodiscard]] T read_struct(std::uint64_t gpa, const char *what) const
    {
        static_assert(std::is_trivially_copyable_v<T>);
        T value;
        std::memcpy(&value, read_view(gpa, sizeof(T), what).data(), sizeof(T));
        return value;
    }
    template <class T> void write_struct(std::uint64_t gpa, const T &value, const char *what)
    {
        static_assert(std::is_trivially_copyable_v<T>);
        std::memcpy(write_view(gpa, sizeof(T), what).data(), &value, sizeof(T));
    }

    [[nodiscard]] DirtyBitmap &vmm_dirty() noexcept { return vmm_dirty_; }

  private:
    void check(std::uint64_t gpa, std::uint64_t len, const char *what) const;

    std::uint64_t size_;
    int fd_ = -1;
    std::uint8_t *base_ = nullptr;
    DirtyBitmap vmm_dirty_;
};

} // namespace understudy::kvm
