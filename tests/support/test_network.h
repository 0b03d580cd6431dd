// A throw-away network for tests and benchmarks, in namespaces of its own:
//   host ns:   bridge br0 <- guest TAP, veth-h
//   client ns: veth-c 10.99.0.1/24  (the guest is 10.99.0.2)
// Everything is deleted again by the destructor.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "checkpoint/kvm/devices/tap_device.h"
#include "checkpoint/unique_fd.h"

namespace understudy::testing {

inline constexpr const char *kGuestIp = "10.99.0.2";
inline constexpr const char *kGuestCidr = "10.99.0.2/24";
inline constexpr const char *kClientIp = "10.99.0.1";
inline constexpr std::uint16_t kGuestPort = 7777;

struct CommandResult {
    int status = -1;
    std::string output;
};

// Runs `command` with sh -c, returning its exit status and stdout+stderr.
CommandResult run_command(const std::string &command);

class TestNetwork {
  public:
    explicit TestNetwork(const std::string &tag);
    ~TestNetwork();
    TestNetwork(const TestNetwork &) = delete;
    TestNetwork &operator=(const TestNetwork &) = delete;

    [[nodiscard]] const std::string &host_ns() const { return host_; }
    [[nodiscard]] const std::string &client_ns() const { return client_; }

    // A TAP in the host namespace, on the bridge.
    [[nodiscard]] std::shared_ptr<kvm::TapDevice> make_tap(const std::string &name = "tap0");
    // Runs a command inside the client namespace.
    CommandResult in_client(const std::string &command) const;
    // A UDP socket of the client namespace, connected to the guest's service.
    [[nodiscard]] UniqueFd guest_udp_socket(std::uint16_t port = kGuestPort) const;

  private:
    std::string host_;
    std::string client_;
};

// Sends `request` and waits for one reply; retries on silence.
std::optional<std::string> udp_request(int fd, const std::string &request,
                                       std::chrono::milliseconds timeout = std::chrono::milliseconds(2000),
                                       int attempts = 3);

} // namespace understudy::testing
