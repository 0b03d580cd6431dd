// Every transition of a pair, with its reason: in the daemon's log, in
// `understudy events`, and counted per kind in the metrics. Keeps the most
// recent events in memory.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "proto/control.pb.h"

namespace understudy::daemon {

class EventLog {
  public:
    using Log = std::function<void(const std::string &)>;
    explicit EventLog(Log log, std::size_t keep = 2000) : log_(std::move(log)), keep_(keep) {}

    void add(const std::string &guest, const std::string &kind, const std::string &reason);
    [[nodiscard]] proto::EventsReply since(std::uint64_t after) const;
    [[nodiscard]] std::map<std::string, std::uint64_t> counts() const;

  private:
    Log log_;
    std::size_t keep_;
    mutable std::mutex mutex_;
    std::deque<proto::Event> events_;
    std::uint64_t next_id_ = 1;
    std::map<std::string, std::uint64_t> counts_;
};

} // namespace understudy::daemon
