// The in-VMM way of output commit for the kvm backend: the guest NIC's
// frames go from the VMM into an OutputBuffer instead of to the TAP, and the
// buffer writes them to the TAP once their epoch is acked. Dropping it sends
// what is still held and gives the NIC its direct path back.
#pragma once

#include "checkpoint/kvm/kvm_guest.h"
#include "netbuffer_qdisc/output_buffer.h"

namespace understudy {

class VmmOutputQueue {
  public:
    VmmOutputQueue(kvm::KvmGuest &guest, OutputBufferSettings settings)
        : guest_(guest), buffer_(settings, [&guest](std::span<const std::uint8_t> f) { return guest.transmit(f); })
    {
        guest_.set_egress_route([this](std::span<const std::uint8_t> f) { buffer_.egress(f); });
    }
    ~VmmOutputQueue()
    {
        guest_.set_egress_route({});
        buffer_.on_unprotected();
    }
    VmmOutputQueue(const VmmOutputQueue &) = delete;
    VmmOutputQueue &operator=(const VmmOutputQueue &) = delete;

    [[nodiscard]] OutputBuffer &buffer() noexcept { return buffer_; }
    [[nodiscard]] const OutputBuffer &buffer() const noexcept { return buffer_; }

  private:
    kvm::KvmGuest &guest_;
    OutputBuffer buffer_;
};

} // namespace understudy
