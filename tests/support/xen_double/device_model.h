// A REAL device model for a test double's HVM domain: Debian's Xen QEMU
// (package qemu-system-xen, /usr/libexec/xen-qemu-system-i386: the binary
// libxl starts for HVM domains on a Debian Dom0) run under QEMU's qtest
// accelerator, since there is no Xen here. Its QMP socket is where libxl
// puts it (XEN_RUN_DIR/qmp-libxl-DOMID); it saves with the migration
// properties QEMU's Xen accelerator sets (no configuration section, no
// section footers, no global state), as on Xen; a restored one loads its
// state from a file descriptor, as libxl has it do (-incoming fd:N). The
// machine is QEMU's pc (i440FX), the one Xen's xenfv machine is built on,
// without Xen's platform device, which needs the Xen accelerator. Through
// qtest, a test reads and writes the RTC's CMOS bytes: device state that
// must travel with each checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <sys/types.h>

namespace understudy::testing::xen_double {

// Where Debian installs it, or "" if it is not installed (its tests are
// then skipped, saying so).
[[nodiscard]] std::string real_device_model_binary();

class RealDeviceModel {
  public:
    // Starts `binary` for domain `domid`, its sockets and log in `run_dir`;
    // with `incoming` (a file of saved device state) it loads that first.
    // Returns once QEMU answers on QMP (and has loaded); throws with QEMU's
    // own words if it exits instead.
    RealDeviceModel(const std::string &binary, const std::string &run_dir, std::uint32_t domid,
                    const std::string &incoming = "");
    ~RealDeviceModel();
    RealDeviceModel(const RealDeviceModel &) = delete;
    RealDeviceModel &operator=(const RealDeviceModel &) = delete;

    [[nodiscard]] const std::string &qmp_socket() const { return qmp_socket_; }
    // QEMU's run state (query-status): "running", "paused", ...
    [[nodiscard]] std::string status() const;
    // The RTC's CMOS RAM (ports 0x70/0x71), through qtest.
    void write_cmos(unsigned index, std::uint8_t value);
    [[nodiscard]] std::uint8_t read_cmos(unsigned index);

  private:
    std::string qtest(const std::string &command);
    [[nodiscard]] std::string log_tail() const;
    [[nodiscard]] bool exited();

    std::string qmp_socket_;
    std::string qtest_socket_;
    std::string log_;
    pid_t pid_ = -1;
    int qtest_fd_ = -1;
    std::string qtest_buffer_;
};

} // namespace understudy::testing::xen_double
