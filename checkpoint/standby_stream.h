// One replication stream on the backup, from its accepted Hello to its end
// (ARCHITECTURE.md §3): builds a new standby copy from the pre-copy, beside
// the committed one; installs it in the registry at its first checkpoint;
// then commits each verified epoch to it, all or nothing, and acks it.
// Whatever ends the stream (the primary's goodbye, a refused epoch, a failed
// commit, a broken link, no memory) ends it the same way: the registry hears
// of it, and the primary gets a goodbye with the reason where the link still
// works, so it sees its backup lost.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "checkpoint/epoch_commit.h"
#include "checkpoint/page_codec.h"
#include "checkpoint/standby_registry.h"
#include "checkpoint/stream/record_reader.h"
#include "checkpoint/stream/record_writer.h"
#include "proto/stream.pb.h"

namespace understudy {

// Events an operator must see besides log lines: (guest, kind, reason).
using StandbyEventSink = std::function<void(const std::string &, const std::string &, const std::string &)>;

class StandbyStream {
  public:
    using Log = std::function<void(const std::string &)>;
    // `fresh`: the empty copy the Hello asked for.
    StandbyStream(StandbyRegistry &registry, const proto::Hello &hello, std::unique_ptr<StandbyGuest> fresh,
                  Log log, StandbyEventSink events);

    // Accepts the Hello with `codec` and serves the stream to its end.
    void run(Link &link, RecordReader &reader, RecordWriter &writer, std::chrono::milliseconds idle,
             PageCodecSettings codec);

  private:
    // Commits one received epoch; false once the session lost the slot
    // (superseded by a newer stream, or the standby was activated).
    bool commit(ReceivedEpoch &epoch, std::uint64_t ticket);
    void say_goodbye(RecordWriter &writer, const std::string &reason) noexcept;
    // The copy this stream built is outdated (the primary said so).
    void outdate(const std::string &why);
    [[nodiscard]] std::uint64_t committed_epoch() const;

    StandbyRegistry &registry_;
    std::string guest_;
    std::uint64_t stream_id_;
    // The copy this stream builds; the registry shares it once installed.
    std::shared_ptr<StandbyGuest> copy_;
    bool installed_ = false;
    Log log_;
    StandbyEventSink events_;
    EpochCommitter committer_;
};

} // namespace understudy
