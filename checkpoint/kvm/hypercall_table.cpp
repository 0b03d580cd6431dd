#include "checkpoint/kvm/hypercall_table.h"

#include <sstream>

#include "checkpoint/kvm/kvm_error.h"

namespace understudy::kvm {

void HypercallTable::add(us_hypercall nr, Handler handler)
{
    handlers_.at(nr) = std::move(handler);
}

void HypercallTable::dispatch(std::uint16_t port, std::uint32_t value) const
{
    const unsigned nr = port - US_HYPERCALL_PORT_BASE;
    if (port < US_HYPERCALL_PORT_BASE || nr >= handlers_.size() || !handlers_[nr]) {
        std::ostringstream what;
        what << "write to port 0x" << std::hex << port << " is no known hypercall";
        throw GuestFault(what.str());
    }
    handlers_[nr](value);
}

} // namespace understudy::kvm
