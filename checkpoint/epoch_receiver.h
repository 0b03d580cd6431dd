// Reads one epoch from the stream into the side buffer and verifies it whole
// (ARCHITECTURE.md §3): every count and length is checked against the limits
// and the guest's geometry, and the epoch's SHA-256 must match. Nothing is
// applied here (epoch_commit.h does that); a StreamError means the epoch is
// discarded.
#pragma once

#include "checkpoint/dirty_bitmap.h"
#include "checkpoint/page_codec.h"
#include "checkpoint/received_epoch.h"
#include "checkpoint/standby_guest.h"
#include "checkpoint/stream/record_reader.h"

namespace understudy {

class EpochReceiver {
  public:
    // `codec`: what the handshake allowed; `standby` supplies the committed
    // pages XOR deltas apply to, and the guest's memory and disk sizes.
    EpochReceiver(const StandbyGuest &standby, PageCodecSettings codec);

    enum class Outcome { epoch, goodbye };
    // Reads records until a complete epoch `expected` is in `into`, or the
    // peer said Goodbye (into `goodbye`, its reason cut to 200 bytes). Heartbeats between epochs
    // are skipped. Throws StreamError (hostile or corrupt input) or LinkError.
    Outcome receive(RecordReader &reader, Epoch expected, ReceivedEpoch &into, proto::Goodbye *goodbye);

  private:
    void read_page_batch(RecordReader &reader, ReceivedEpoch &into);
    void read_disk_writes(RecordReader &reader, ReceivedEpoch &into);

    const StandbyGuest &standby_;
    PageCodecSettings codec_;
    DirtyBitmap seen_;
    PageDecoder decoder_;
    ByteBuffer payload_;
};

} // namespace understudy
