// Memory Xen can read and write during a hypercall (libxenctrl's hypercall
// buffers), owned: freed when it goes out of scope. For domctls whose
// arguments point at arrays (page types, xsave areas, MSR lists).
#pragma once

#include <cstddef>
#include <memory>

struct xc_interface_core;
struct xc_hypercall_buffer;

namespace understudy::xen {

class HypercallBuffer {
  public:
    HypercallBuffer() = default;
    // Throws XenError when libxenctrl cannot allocate it.
    HypercallBuffer(xc_interface_core *xch, std::size_t size);
    ~HypercallBuffer();
    HypercallBuffer(const HypercallBuffer &) = delete;
    HypercallBuffer &operator=(const HypercallBuffer &) = delete;

    [[nodiscard]] void *data() const noexcept { return data_; }
    [[nodiscard]] xc_hypercall_buffer *get() const noexcept { return buffer_.get(); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

  private:
    xc_interface_core *xch_ = nullptr;
    void *data_ = nullptr;
    std::unique_ptr<xc_hypercall_buffer> buffer_;
    std::size_t size_ = 0;
};

} // namespace understudy::xen
