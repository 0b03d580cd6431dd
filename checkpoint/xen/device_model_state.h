// What an HVM domain's device model (QEMU) saves of itself for Xen:
// `xen-save-devices-state` writes QEMU's migration file format without
// guest RAM (QEMU's migration/savevm.c): the magic "QEVM", the file format
// version 3, then one section per device. Both sides check the header, so
// that a file that is not one is refused when it is saved or received, not
// found out by QEMU at failover.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "checkpoint/stream/record.h"

namespace understudy::xen {

// A checkpoint carries it in the epoch's DeviceState record, whose header
// the stream limits; QEMU's device state is tens of KiB.
inline constexpr std::size_t kMaxDeviceModelState = kMaxHeaderBytes - 4096;

// Why `state` is not a device model state a checkpoint can carry ("" if it
// is one).
[[nodiscard]] std::string device_model_state_problem(std::string_view state);

} // namespace understudy::xen
