// Applies a verified epoch to a standby copy, all or nothing
// (ARCHITECTURE.md §3). The order makes that possible: first the disk writes,
// made durable, with the sectors they overwrite kept aside; then the CPU
// state (which a standby loads whole or not at all); then the device state
// and the pages, which are moves and copies in memory that cannot fail. A
// disk error or a failed allocation therefore leaves the standby exactly at
// its previous epoch: the overwritten sectors are written back and synced.
// Only when that fails too is the copy damaged, neither epoch, and said so.
#pragma once

#include <stdexcept>

#include "checkpoint/byte_buffer.h"
#include "checkpoint/received_epoch.h"
#include "checkpoint/standby_guest.h"
#include "checkpoint/stream/record.h"

namespace understudy {

// The epoch was not applied; the standby is exactly as before.
class CommitFailed : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};
// The epoch was not applied and the standby's disk could not be put back:
// it is neither the previous epoch nor this one and must not be run.
class StandbyDamaged : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class EpochCommitter {
  public:
    enum class Undo {
        keep,   // a committed standby: restore it if anything fails
        none,   // a copy still being built (pre-copy), discarded on failure anyway
    };
    // Applies `epoch` (its CPU and device state are moved out of it).
    // Throws CommitFailed or StandbyDamaged, never anything else.
    void commit(ReceivedEpoch &epoch, StandbyGuest &standby, Undo undo);

  private:
    void write_disk(const ReceivedEpoch &epoch, StandbyGuest &standby);
    // Puts back the sectors the epoch's writes overwrote; "" if it worked,
    // else why not.
    std::string restore_disk(const ReceivedEpoch &epoch, StandbyGuest &standby) noexcept;

    ByteBuffer overwritten_; // the disk sectors an epoch overwrites, reused
};

} // namespace understudy
