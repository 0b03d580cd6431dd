// The backup's standby copies, one per protected guest, shared between the
// stream sessions that update them and the daemon that reports on them and
// activates them. A standby is replaced by a new stream's copy only once that
// copy holds a committed checkpoint, so a resync that fails half-way (or a
// peer that sends a Hello and then garbage) leaves the last good copy alone.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "checkpoint/epoch.h"
#include "checkpoint/standby_guest.h"
#include "checkpoint/stream/link.h"

namespace understudy {

struct StandbyStatus {
    std::string guest;
    std::string peer;        // the primary streaming to it, "" when none
    bool receiving = false;  // a stream is connected
    bool consistent = false; // holds a committed checkpoint
    std::uint64_t epoch = 0; // committed epoch of the stream that built it
    std::uint64_t checkpoints = 0;
    std::uint64_t epochs_refused = 0;
    std::uint64_t bytes_received = 0;
    double last_commit_age_s = -1;
    // The last stream was closed by the primary's host without a goodbye
    // (its kernel closed the socket: the process died) this long ago; -1 if
    // it was not, or a stream runs again.
    double closed_by_peer_age_s = -1;
    std::string last_error;
};

class StandbyRegistry {
  public:
    struct Slot;

    // A stream for `guest` begins on `link`; an older stream for the same
    // guest is cut. Returns the session's ticket.
    std::uint64_t begin_stream(const std::string &guest, Link &link);
    // Applies `apply` to the committed standby under the slot's lock, if the
    // session still owns the slot; false if it was cut or activated.
    bool with_standby(const std::string &guest, std::uint64_t ticket,
                      const std::function<void(StandbyGuest *committed, StandbyStatus &status)> &apply);
    // Installs `standby` (holding a committed checkpoint) as the guest's copy.
    bool install(const std::string &guest, std::uint64_t ticket, std::unique_ptr<StandbyGuest> standby);
    // `closed_by_peer`: the peer's host closed the connection mid-stream.
    void end_stream(const std::string &guest, std::uint64_t ticket, const std::string &error,
                    bool closed_by_peer = false);
    void record_refusal(const std::string &guest, const std::string &error);

    [[nodiscard]] std::vector<StandbyStatus> status() const;
    // Runs `look` on the guest's committed copy under its lock; false if none.
    bool inspect(const std::string &guest, const std::function<void(const StandbyGuest &)> &look) const;
    // Cuts the stream and hands out the committed copy (failover); null if
    // none is consistent. The guest is no longer in the registry afterwards.
    [[nodiscard]] std::unique_ptr<StandbyGuest> take(const std::string &guest);
    // Cuts every stream (daemon shutdown).
    void cut_all();

  private:
    [[nodiscard]] std::shared_ptr<Slot> find(const std::string &guest) const;

    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Slot>> slots_;
    std::uint64_t tickets_ = 0;
};

} // namespace understudy
