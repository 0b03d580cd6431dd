// Starting the demo guest on a test network, and reading its console.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "checkpoint/kvm/kvm_guest.h"
#include "dom0d/cli/net_args.h"
#include "tests/support/test_network.h"

namespace understudy::testing {

inline kvm::KvmGuestConfig demo_config(std::shared_ptr<kvm::TapDevice> tap, const char *kernel = UNDERSTUDY_DEMO_GUEST)
{
    kvm::KvmGuestConfig c;
    c.name = "test";
    c.kernel = kernel;
    c.tap = std::move(tap);
    auto ip = cli::parse_ipv4_interface(kGuestCidr);
    c.ipv4 = ip.address;
    c.netmask = ip.netmask;
    c.console = [](std::string_view) {};
    return c;
}

// Waits until the guest's console shows `text`.
inline bool wait_for_console(const kvm::KvmGuest &g, const std::string &text,
                             std::chrono::seconds limit = std::chrono::seconds(30))
{
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (g.console_output().find(text) != std::string::npos)
            return true;
        if (g.stopped())
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

// Boots the demo guest on `net` and waits until it serves.
inline std::unique_ptr<kvm::KvmGuest> boot_ready_demo(TestNetwork &net)
{
    auto guest = kvm::KvmGuest::boot(demo_config(net.make_tap()));
    if (!wait_for_console(*guest, "demo guest: ready"))
        throw std::runtime_error("the demo guest did not get ready; console: " + guest->console_output());
    return guest;
}

// Parses the first decimal number in `s`.
inline std::uint64_t number_in(const std::string &s)
{
    auto at = s.find_first_of("0123456789");
    return at == std::string::npos ? 0 : std::stoull(s.substr(at));
}

} // namespace understudy::testing
