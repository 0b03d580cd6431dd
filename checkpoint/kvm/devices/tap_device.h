// A host TAP interface that carries the guest NIC's frames. It outlives any
// one VM, so a restored VM keeps the same link.
#pragma once

#include <string>

#include "checkpoint/unique_fd.h"

namespace understudy::kvm {

class TapDevice {
  public:
    // Attaches to the TAP called `name` (creating it if it does not exist; an
    // empty name lets the kernel choose) and brings it up.
    explicit TapDevice(const std::string &name);

    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] const std::string &name() const noexcept { return name_; }

  private:
    UniqueFd fd_;
    std::string name_;
};

} // namespace understudy::kvm
