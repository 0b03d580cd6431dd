// TEST DOUBLE of QEMU's QMP monitor, as libxl starts it for an HVM domain
// (a Unix socket at XEN_RUN_DIR/qmp-libxl-DOMID, one client at a time): the
// greeting, qmp_capabilities, QEMU's fd sets (add-fd with a descriptor
// passed by SCM_RIGHTS, remove-fd; a "filename" of "/dev/fdset/ID" reaches
// the handler as a path that opens that descriptor), and whatever commands
// `handler` answers; an asynchronous event is sent before each answer, as
// QEMU may.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <google/protobuf/struct.pb.h>

namespace understudy::testing::xen_double {

class FakeQmp {
  public:
    // The reply to a command after capabilities are negotiated: a JSON
    // object, {"return": ...} or {"error": {"class": ..., "desc": ...}}.
    using Handler = std::function<std::string(const std::string &command, const google::protobuf::Struct &arguments)>;
    FakeQmp(std::string path, Handler handler);
    ~FakeQmp();
    FakeQmp(const FakeQmp &) = delete;
    FakeQmp &operator=(const FakeQmp &) = delete;

    // Fd sets added and not removed.
    [[nodiscard]] std::size_t fdsets() const;

  private:
    void serve();
    void talk(int client);

    std::string path_;
    Handler handler_;
    int listener_ = -1;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::map<int, int> fdsets_; // id -> descriptor
    int next_fdset_ = 0;
    std::thread thread_;
};

} // namespace understudy::testing::xen_double
