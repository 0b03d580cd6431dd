// Routes the guest's hypercalls (port writes, guest/abi.h) to the devices
// that registered for them. Unknown numbers stop the guest.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "guest/abi.h"

namespace understudy::kvm {

class HypercallTable {
  public:
    // Receives the guest-physical address of the hypercall's argument struct,
    // unchecked: the handler reads it through GuestMemory.
    using Handler = std::function<void(std::uint64_t args_gpa)>;

    void add(us_hypercall nr, Handler handler);
    // Throws GuestFault for a port that is no registered hypercall.
    void dispatch(std::uint16_t port, std::uint32_t value) const;

  private:
    std::array<Handler, US_HC_COUNT> handlers_;
};

} // namespace understudy::kvm
