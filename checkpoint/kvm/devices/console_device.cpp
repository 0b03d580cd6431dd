#include "checkpoint/kvm/devices/console_device.h"

#include "checkpoint/kvm/kvm_error.h"

namespace understudy::kvm {

namespace {
constexpr std::size_t kKeep = 64 * 1024;
}

ConsoleDevice::ConsoleDevice(Sink sink) : sink_(std::move(sink)) {}

void ConsoleDevice::attach(HypercallTable &table, GuestMemory &memory)
{
    table.add(US_HC_CONSOLE_WRITE, [this, &memory](std::uint64_t gpa) {
        auto args = memory.read_struct<us_hc_console_write>(gpa, "console write arguments");
        if (args.len > US_MAX_CONSOLE_WRITE)
            throw GuestFault("console write of " + std::to_string(args.len) + " bytes (at most " +
                             std::to_string(US_MAX_CONSOLE_WRITE) + ")");
        auto bytes = memory.read_view(args.data, args.len, "console write text");
        std::string_view text(reinterpret_cast<const char *>(bytes.data()), bytes.size());
        {
            std::lock_guard lock(mutex_);
            recent_.append(text);
            if (recent_.size() > kKeep)
                recent_.erase(0, recent_.size() - kKeep);
        }
        if (sink_)
            sink_(text);
    });
}

std::string ConsoleDevice::recent_output() const
{
    std::lock_guard lock(mutex_);
    return recent_;
}

} // namespace understudy::kvm
