// The plug way of output commit (ARCHITECTURE.md §5), for kernels with
// sch_plug (Xen Dom0s usually have it): the guest interface's ingress is
// redirected to an IFB whose root qdisc is a plug, and the kernel holds the
// frames. At a pause a barrier goes in (rtnl_qdisc_plug_buffer), and the ack
// of that epoch releases what came before it (rtnl_qdisc_plug_release_one);
// the kernel holds one sealed batch at a time (see on_pause). Unprotected,
// the plug lets everything through. Through libnl-3, as Xen's
// libxl netbuffer does.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "checkpoint/checkpoint_participant.h"

struct nl_sock;
struct rtnl_qdisc;

namespace understudy {

// Whether this kernel has the plug qdisc, tried on the loopback of a
// throw-away network namespace; *detail says what was found, for the log
// and `understudy status`.
[[nodiscard]] bool kernel_has_plug(std::string *detail);

class PlugUnavailable : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class PlugOutput final : public CheckpointParticipant {
  public:
    // Puts a plug qdisc at the root of `ifb` (in the calling thread's network
    // namespace), letting everything through until the first pause. Throws
    // PlugUnavailable when the kernel has no sch_plug, std::runtime_error for
    // anything else (no such interface, no permission).
    explicit PlugOutput(const std::string &ifb);
    // Lets everything through and removes the plug.
    ~PlugOutput() override;
    PlugOutput(const PlugOutput &) = delete;
    PlugOutput &operator=(const PlugOutput &) = delete;

    void on_pause(Epoch epoch) override;
    void on_commit(Epoch epoch) override;
    void on_unprotected() override;

    [[nodiscard]] std::uint64_t barriers() const; // epochs paused and not yet acked
    [[nodiscard]] std::uint64_t released_epoch() const; // the last epoch whose output went out
    [[nodiscard]] const std::string &device() const noexcept { return ifb_; }

  private:
    void change(int (*op)(struct rtnl_qdisc *), const char *what);

    std::string ifb_;
    nl_sock *sock_ = nullptr;
    rtnl_qdisc *qdisc_ = nullptr;
    mutable std::mutex mutex_;
    std::deque<std::uint64_t> paused_;     // epochs paused and not yet acked, oldest first
    std::optional<std::uint64_t> sealed_;  // the epoch whose barrier the kernel holds
    std::uint64_t released_ = 0;
};

} // namespace understudy
