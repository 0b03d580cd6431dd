// The demo guest as the KVM benchmarks run it: 128 MiB, on a TAP of the
// benchmark's own network, console discarded.
#pragma once

#include "checkpoint/kvm/kvm_guest_config.h"
#include "dom0d/cli/net_args.h"
#include "tests/support/test_network.h"

namespace understudy::testing {

inline kvm::KvmGuestConfig bench_guest_config(TestNetwork &net, const char *kernel)
{
    kvm::KvmGuestConfig config;
    config.name = "bench";
    config.kernel = kernel;
    config.memory_bytes = 128ull << 20;
    config.tap = net.make_tap();
    auto ip = cli::parse_ipv4_interface(kGuestCidr);
    config.ipv4 = ip.address;
    config.netmask = ip.netmask;
    config.console = [](std::string_view) {};
    return config;
}

} // namespace understudy::testing
