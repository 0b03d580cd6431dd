// Follows a DRBD resource's state as it changes: runs `drbdsetup events2
// RESOURCE` for as long as it lives, feeds each line to an Events2Tracker and
// reports every change of the replication verdict (connected and UpToDate,
// or not, and why). The daemon logs these as guest events.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "drbd/drbd_state.h"

namespace understudy::drbd {

class Events2Follower {
  public:
    // on_change(verdict): after the initial state and on every change of
    // verdict. on_end(why): events2 ended or could not run.
    using OnChange = std::function<void(const ReplicationVerdict &)>;
    using OnEnd = std::function<void(const std::string &)>;
    Events2Follower(std::string resource, std::string drbdsetup, OnChange on_change, OnEnd on_end);
    ~Events2Follower(); // stops drbdsetup
    Events2Follower(const Events2Follower &) = delete;
    Events2Follower &operator=(const Events2Follower &) = delete;

    [[nodiscard]] ReplicationVerdict verdict() const;

  private:
    void run();

    std::string resource_, drbdsetup_;
    OnChange on_change_;
    OnEnd on_end_;
    mutable std::mutex mutex_;
    ReplicationVerdict verdict_;
    std::atomic<int> pid_{-1};
    int stop_pipe_[2] = {-1, -1};
    std::thread thread_;
};

} // namespace understudy::drbd
