// Talking to an HVM domain's device model (QEMU) through its QMP monitor,
// as libxl does when it saves a domain (libxl__qmp_suspend_save: `stop`,
// then `xen-save-devices-state`; `cont` when it resumes). libxl starts QEMU
// with its QMP socket at XEN_RUN_DIR/qmp-libxl-DOMID; QEMU serves one client
// at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <google/protobuf/struct.pb.h>

namespace understudy::xen {

class QmpError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// One conversation with a QMP monitor: connected, greeted and capabilities
// negotiated by the constructor; each command waits for its answer (QEMU's
// asynchronous events in between are skipped) at most `timeout`. It may be
// held open between commands (QEMU serves no other client meanwhile).
// Throws QmpError.
class QmpMonitor {
  public:
    QmpMonitor(const std::string &socket_path, std::chrono::milliseconds timeout);
    ~QmpMonitor();
    QmpMonitor(const QmpMonitor &) = delete;
    QmpMonitor &operator=(const QmpMonitor &) = delete;

    // Runs `command` with `arguments` (a JSON object, or "" for none) and
    // returns QEMU's "return" value; QmpError with QEMU's error class and
    // description if it refuses. `passed_fd` (if not -1) is passed to QEMU
    // with the command (SCM_RIGHTS).
    google::protobuf::Value execute(const std::string &command, const std::string &arguments = "",
                                    int passed_fd = -1);
    // Passes `fd` to QEMU (add-fd); QEMU opens "/dev/fdset/ID" as a dup of it
    // where a command takes a file name. Returns the ID.
    int add_fd(int fd);
    // QEMU closes the fd set's descriptors (remove-fd): each added one must
    // be, or QEMU keeps it open.
    void remove_fd_set(int fdset);

  private:
    class Connection;
    std::unique_ptr<Connection> connection_;
    std::string path_;
    std::chrono::milliseconds timeout_;
};

// `s` as a JSON string literal, for building a command's arguments.
[[nodiscard]] std::string qmp_string(const std::string &s);

} // namespace understudy::xen
