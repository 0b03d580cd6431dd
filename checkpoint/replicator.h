// The primary's side of protection (ARCHITECTURE.md §2): a checkpoint thread
// that pre-copies the guest and then, every interval, pauses it, harvests and
// copies the dirty pages, CPU, devices and disk writes into a staging buffer
// and resumes it; and a sender thread that ships staged epochs to the backup
// and reads their acks, sending the next epoch before the previous one is
// acked when it is already staged. At most two staging buffers exist: when shipping
// falls behind, the next pause waits (counted in status). When the backup is
// lost, the guest keeps running unprotected and the sender keeps trying to
// re-protect it with a full resync.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "checkpoint/checkpoint_participant.h"
#include "checkpoint/epoch_sender.h"
#include "checkpoint/guest.h"
#include "checkpoint/replication_status.h"
#include "checkpoint/staging_buffer.h"
#include "checkpoint/stream/link.h"
#include "checkpoint/stream/record_reader.h"
#include "checkpoint/stream/record_writer.h"

namespace understudy {

struct ReplicationSettings {
    std::chrono::milliseconds interval{25};
    std::chrono::milliseconds ack_timeout{2000};
    std::chrono::milliseconds retry_interval{1000};
    std::chrono::milliseconds heartbeat_interval{500};
    PageCodecSettings codec;
    std::string backend = "kvm";
    unsigned precopy_rounds = 4;             // iterations after the full copy
    std::uint64_t precopy_chunk_pages = 1024; // pages per pre-copy epoch (4 MiB: a short commit on the backup)
    std::uint64_t precopy_enough_pages = 256; // stop iterating below this
};

class Replicator {
  public:
    // Opens a new link to the backup (TCP, TLS); throws LinkError.
    using Connect = std::function<std::unique_ptr<Link>()>;
    using Log = std::function<void(const std::string &)>;

    Replicator(Guest &guest, Connect connect, ReplicationSettings settings, Log log);
    ~Replicator();
    Replicator(const Replicator &) = delete;
    Replicator &operator=(const Replicator &) = delete;

    // Participants must outlive the replicator; add them before start().
    void add_participant(CheckpointParticipant &participant) { participants_.push_back(&participant); }
    // Transitions (kind, reason): "protected", "backup_lost", "no_backup".
    // Set before start().
    using EventSink = std::function<void(const std::string &kind, const std::string &reason)>;
    void set_event_sink(EventSink sink) { event_sink_ = std::move(sink); }
    void start();
    // What becomes of the guest when protection stops, as the goodbye tells
    // the backup: running on, its output is released past the standby's
    // epoch, which is outdated from then on.
    enum class GuestAfterStop { runs_on, stops };
    // Tells the backup goodbye and stops replicating.
    void stop(const std::string &reason, GuestAfterStop after = GuestAfterStop::runs_on);
    // Stops as a power cut would (understudy drill): the stream is cut with
    // no goodbye, nothing more is checkpointed, and participants hear neither
    // a commit nor "unprotected" from now on. The guest is left as it is.
    void halt(const std::string &reason);
    // Cuts the live stream now because the backup is known to be gone (its
    // heartbeats stopped): handled as a lost backup, `why` as the reason, so
    // held output goes out without waiting for the ack timeout. No-op
    // without a live stream.
    void drop_backup(const std::string &why);

    [[nodiscard]] ReplicationStatus status() const;
    // The most recent checkpoints' pause and ack times (up to 8192), oldest first.
    [[nodiscard]] std::vector<EpochAck> epoch_acks() const;
    // Waits until the backup committed a checkpoint epoch >= `epoch`.
    bool wait_acked(Epoch epoch, std::chrono::milliseconds timeout) const;
    // Waits until protected (a checkpoint committed on the backup).
    bool wait_protected(std::chrono::milliseconds timeout) const;

    // Takes a checkpoint now (not waiting for the interval) and returns its
    // epoch once the backup committed it (benchmarks, planned switch-over).
    Epoch checkpoint_now(std::chrono::milliseconds timeout);
    // Takes one more checkpoint and leaves the guest paused once the backup
    // committed it; returns that epoch (planned switch-over, tests). Throws if
    // the guest is not protected within `timeout`.
    Epoch freeze(std::chrono::milliseconds timeout);
    // Resumes the guest and the checkpoint loop after freeze().
    void thaw();
    // While frozen: the CPU and device state of the frozen (acked) epoch as
    // they were captured at its pause.
    [[nodiscard]] std::optional<std::pair<proto::CpuState, proto::DeviceState>> frozen_state() const;

  private:
    struct SessionLost {};

    void checkpoint_thread();
    void run_session(std::uint64_t session);
    void precopy(std::uint64_t session);
    void checkpoint(std::uint64_t session, bool freeze);
    StagingBuffer &acquire(std::uint64_t session, bool count_wait);
    void submit(StagingBuffer &buffer, std::uint64_t session);
    void stage_pages(StagingBuffer &buffer, std::span<const Pfn> pfns);
    // Ships `regions` of the disk, read as they are now, in pre-copy epochs.
    void send_disk(std::uint64_t session, const DiskRegions &regions);
    // Ends the stream with `why` (a resync follows); throws SessionLost.
    [[noreturn]] void fail_session(const std::string &why);

    void sender_thread();
    void serve_session(Link &link, RecordWriter &writer, RecordReader &reader,
                       const PageCodecSettings &codec);
    void lose_session(const std::string &why);
    void end_dirty_log(); // disables the guest's dirty log; a failure is logged
    void log(const std::string &line) const;

    Guest &guest_;
    Connect connect_;
    ReplicationSettings settings_;
    Log log_;
    std::vector<CheckpointParticipant *> participants_;
    EventSink event_sink_;

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    bool stopping_ = false;
    bool halted_ = false;        // halt(): no goodbye, no more participant calls
    std::string drop_reason_;    // drop_backup(): why the stream was cut
    std::string stop_reason_;
    GuestAfterStop after_stop_ = GuestAfterStop::runs_on;
    std::uint64_t session_ = 0;  // increments for every new stream
    bool session_live_ = false;  // the sender has a working stream
    Link *link_ = nullptr;       // the live stream, to shut down on stop
    std::vector<std::unique_ptr<StagingBuffer>> buffers_;
    std::vector<StagingBuffer *> free_;
    std::deque<StagingBuffer *> ready_;
    Epoch next_epoch_{1};
    bool freeze_requested_ = false, frozen_ = false;
    bool checkpoint_requested_ = false;
    std::uint64_t requested_epoch_ = 0;
    Epoch frozen_epoch_;
    proto::CpuState frozen_cpu_;
    proto::DeviceState frozen_devices_;

    ReplicationStatus status_;
    std::chrono::steady_clock::time_point last_ack_{};
    std::vector<std::uint64_t> pause_samples_us_; // ring of recent pause times
    std::deque<EpochAck> epoch_acks_;             // recent checkpoints, oldest first
    std::size_t pause_next_ = 0;
    std::uint64_t dirty_total_ = 0;
    double ack_latency_total_ms_ = 0;
    std::uint64_t acks_ = 0;
    std::uint64_t checkpoints_staged_ = 0;
    std::vector<Pfn> pfn_scratch_; // reserved for all pages: no allocation while paused

    DirtyBitmap dirty_;
    std::thread checkpointer_, sender_;
};

} // namespace understudy
