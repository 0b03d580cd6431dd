// A growable byte buffer whose resize() leaves new bytes uninitialised: it is
// about to be overwritten (received pages, decoded payloads), so zero-filling
// it first would cost a whole extra pass over the data.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace understudy {

template <class T>
struct DefaultInitAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = DefaultInitAllocator<U>;
    };
    DefaultInitAllocator() = default;
    template <class U>
    DefaultInitAllocator(const DefaultInitAllocator<U> &) noexcept
    {
    }
    template <class U>
    void construct(U *p) noexcept
    {
        ::new (static_cast<void *>(p)) U; // default-initialised: no zeroing
    }
    template <class U, class... Args>
    void construct(U *p, Args &&...args)
    {
        ::new (static_cast<void *>(p)) U(std::forward<Args>(args)...);
    }
};

using ByteBuffer = std::vector<std::uint8_t, DefaultInitAllocator<std::uint8_t>>;

} // namespace understudy
