#include "dom0d/daemon/event_log.h"

#include <chrono>

namespace understudy::daemon {

void EventLog::add(const std::string &guest, const std::string &kind, const std::string &reason)
{
    {
        std::lock_guard lock(mutex_);
        proto::Event e;
        e.set_id(next_id_++);
        e.set_unix_ns(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count()));
        e.set_guest(guest);
        e.set_kind(kind);
        e.set_reason(reason);
        events_.push_back(std::move(e));
        if (events_.size() > keep_)
            events_.pop_front();
        ++counts_[kind];
    }
    if (log_)
        log_("EVENT " + kind + (guest.empty() ? "" : " guest " + guest) + ": " + reason);
}

proto::EventsReply EventLog::since(std::uint64_t after) const
{
    std::lock_guard lock(mutex_);
    proto::EventsReply reply;
    for (const auto &e : events_)
        if (e.id() > after)
            *reply.add_events() = e;
    return reply;
}

std::map<std::string, std::uint64_t> EventLog::counts() const
{
    std::lock_guard lock(mutex_);
    return counts_;
}

} // namespace understudy::daemon
