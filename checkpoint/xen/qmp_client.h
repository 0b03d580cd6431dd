// Saving an HVM domain's device model (QEMU) state through QEMU's QMP
// monitor, as libxl does when it suspends a domain (libxl__qmp_suspend_save:
// `xen-save-devices-state`). libxl starts QEMU with its QMP socket at
// XEN_RUN_DIR/qmp-libxl-DOMID; QEMU serves one client at a time, so the
// socket is opened for each save and closed again, as libxl does.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace understudy::xen {

class QmpError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Connects to `socket_path`, negotiates capabilities, and has QEMU write its
// device state (not guest RAM) to `file` with `xen-save-devices-state`
// (live = false: QEMU stops its devices for the save and restarts them).
// Throws QmpError with QEMU's error class and description, or why the
// monitor could not be reached, within `timeout`.
void qmp_save_devices_state(const std::string &socket_path, const std::string &file,
                            std::chrono::milliseconds timeout);

} // namespace understudy::xen
