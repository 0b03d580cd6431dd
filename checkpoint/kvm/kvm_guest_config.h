// What the built-in VMM needs to start a guest: its image, RAM, devices and
// the boot parameters handed to it (struct us_boot_info).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "checkpoint/kvm/devices/block_device.h"
#include "checkpoint/kvm/devices/tap_device.h"

namespace understudy::kvm {

struct KvmGuestConfig {
    std::string name = "demo";
    std::uint64_t memory_bytes = 64ull << 20;
    std::filesystem::path kernel;
    std::shared_ptr<TapDevice> tap;   // none: the NIC drops frames
    std::shared_ptr<BlockImage> disk; // none: the disk has no sectors
    std::array<std::uint8_t, 6> mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    std::uint32_t ipv4 = 0;    // network byte order
    std::uint32_t netmask = 0; // network byte order
    std::uint16_t udp_port = 7777;
    std::uint64_t dirty_pages_per_second = 0;
    std::string cmdline;
    // Receives the guest's console output; none: written to stdout.
    std::function<void(std::string_view)> console;
};

} // namespace understudy::kvm
