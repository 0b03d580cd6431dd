// understudyd's UNIX control socket: one ControlRequest per connection,
// framed as u32 length (little endian) + protobuf, answered the same way.
// The socket is created mode 0600: only root talks to the daemon.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <span>
#include <thread>

#include "checkpoint/unique_fd.h"
#include "proto/control.pb.h"

namespace understudy::daemon {

inline constexpr std::uint32_t kMaxControlMessage = 1u << 20;

class ControlServer {
  public:
    using Handler = std::function<proto::ControlResponse(const proto::ControlRequest &)>;
    using Log = std::function<void(const std::string &)>;
    ControlServer(std::filesystem::path path, Handler handler, Log log);
    ~ControlServer();
    void start();
    void stop();

  private:
    void serve(int fd);

    std::filesystem::path path_;
    Handler handler_;
    Log log_;
    UniqueFd fd_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

// One control message as it arrives (u32 length, little endian, then the
// protobuf), whole: false with `why` if its length is wrong or over the
// limit, or it does not parse. For the fuzz target; the socket reads the same.
[[nodiscard]] bool parse_control_frame(std::span<const std::uint8_t> frame, google::protobuf::MessageLite &message,
                                       std::string *why);

// Client side: sends `request` to the daemon at `path`. Throws
// std::runtime_error saying why the daemon could not be asked.
[[nodiscard]] proto::ControlResponse ask_daemon(const std::filesystem::path &path, const proto::ControlRequest &request,
                                                std::chrono::milliseconds timeout);

} // namespace understudy::daemon
