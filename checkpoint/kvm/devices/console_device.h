// The guest console: text the guest writes goes to a sink (the terminal by
// default) and the last 64 KiB are kept for status and tests.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "checkpoint/kvm/guest_memory.h"
#include "checkpoint/kvm/hypercall_table.h"

namespace understudy::kvm {

class ConsoleDevice {
  public:
    using Sink = std::function<void(std::string_view)>;
    explicit ConsoleDevice(Sink sink);

    void attach(HypercallTable &table, GuestMemory &memory);
    [[nodiscard]] std::string recent_output() const;

  private:
    Sink sink_;
    mutable std::mutex mutex_;
    std::string recent_;
};

} // namespace understudy::kvm
