// The backup's standby copies, one per protected guest, shared between the
// stream sessions that update them and the daemon that reports on them and
// activates them. A standby is replaced by a new stream's copy only once that
// copy holds a committed checkpoint, so a resync that fails half-way (or a
// peer that sends a Hello and then garbage) leaves the last good copy alone.
//
// Each slot has two locks: one held while a commit changes the copy (it may
// wait on the disk), and one for what is reported about it, never held
// across I/O, so status and heartbeats never wait for a slow disk.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
    bool consistent = false; // holds a committed checkpoint it can run from
    std::uint64_t epoch = 0; // committed epoch of the stream that built it
    std::uint64_t stream_id = 0; // that stream (the primary's Hello names it); 0: none
    std::uint64_t checkpoints = 0;
    std::uint64_t epochs_refused = 0;
    std::uint64_t commit_failures = 0;
    std::uint64_t bytes_received = 0;
    double last_commit_age_s = -1;
    // The last stream was closed by the primary's host without a goodbye
    // (its kernel closed the socket: the process died) this long ago; -1 if
    // it was not, or a stream runs again.
    double closed_by_peer_age_s = -1;
    std::string last_error;
    // The primary released output past this copy's epoch (it ran on without
    // a backup): resuming from it would take the guest's clients back in
    // time. It never takes over by itself (DRBD's Outdated).
    bool outdated = false;
    std::string outdated_reason;
    // A commit failed and could not put the disk back: this copy is neither
    // epoch and is never run.
    bool damaged = false;
    std::string damaged_reason;
};

class StandbyRegistry {
  public:
    struct Slot;

    // A stream for `guest` begins on `link`; an older stream for the same
    // guest is cut. `stream_id`: the primary's name for this stream. Returns
    // the session's ticket.
    std::uint64_t begin_stream(const std::string &guest, Link &link, std::uint64_t stream_id = 0);
    // Runs `apply` on the committed copy under its commit lock, if the
    // session still owns the slot; false if it was cut or activated. What
    // `apply` throws goes to the caller, and nothing is recorded.
    bool commit(const std::string &guest, std::uint64_t ticket, const std::function<void(StandbyGuest &)> &apply);
    // After commit() returned true: the copy is at `epoch` now.
    void committed(const std::string &guest, std::uint64_t ticket, Epoch epoch, bool checkpoint,
                   std::uint64_t wire_bytes);
    // Bytes of a copy still being built (pre-copy).
    void received(const std::string &guest, std::uint64_t ticket, std::uint64_t wire_bytes);
    // Installs `standby` (holding a committed checkpoint at `epoch`) as the
    // guest's copy, after its take_place(); what that throws goes to the
    // caller and the older copy stays. False if the session lost the slot.
    // The session keeps its own reference: what it reads of the copy (XOR
    // deltas) stays valid even after the copy was taken for a failover.
    bool install(const std::string &guest, std::uint64_t ticket, std::shared_ptr<StandbyGuest> standby, Epoch epoch);
    // `closed_by_peer`: the peer's host closed the connection mid-stream.
    void end_stream(const std::string &guest, std::uint64_t ticket, const std::string &error,
                    bool closed_by_peer = false);
    void record_refusal(const std::string &guest, const std::string &error);
    // A commit failed: the copy stays at its epoch, or is `damaged`.
    void record_commit_failure(const std::string &guest, const std::string &error, bool damaged);
    // Marks the copy built by `stream_id` outdated; false if it is not the
    // guest's copy (a newer one replaced it) or was outdated already.
    bool mark_outdated(const std::string &guest, std::uint64_t stream_id, const std::string &reason);

    [[nodiscard]] std::vector<StandbyStatus> status() const;
    [[nodiscard]] std::optional<StandbyStatus> status(const std::string &guest) const;
    // Runs `look` on the guest's committed copy under its commit lock; false
    // if none.
    bool inspect(const std::string &guest, const std::function<void(const StandbyGuest &)> &look) const;
    // Cuts the stream and hands out the committed copy (failover); null if
    // none is consistent (or it is damaged). The guest is no longer in the
    // registry afterwards.
    [[nodiscard]] std::shared_ptr<StandbyGuest> take(const std::string &guest);
    // Cuts every stream (daemon shutdown).
    void cut_all();

  private:
    [[nodiscard]] std::shared_ptr<Slot> find(const std::string &guest) const;

    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Slot>> slots_;
    std::uint64_t tickets_ = 0;
};

} // namespace understudy
