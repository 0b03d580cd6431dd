#include "checkpoint/replicator.h"

#include <algorithm>
#include <random>

#include "checkpoint/handshake.h"
#include "checkpoint/stream/record_reader.h"
#include "checkpoint/stream/record_writer.h"

namespace understudy {

namespace {

constexpr std::size_t kPauseSamples = 1024;
constexpr std::size_t kEpochAckRecords = 8192;
constexpr std::uint32_t kDiskChunkSectors = 2048; // 1 MiB per initial-sync write
constexpr std::size_t kDiskChunksPerEpoch = 4;
// The initial sync ships the disk's dirty regions again round after round
// until a round has less than this to ship (or the rounds run out).
constexpr std::uint64_t kDiskEnoughSectors = (4u << 20) / kSectorSize;
constexpr unsigned kDiskPrecopyRounds = 8;
// Attempts to switch the disk log to recording writes without it falling
// back to regions while the last ones are shipped (a guest writing more
// than the log holds, in that time, every time).
constexpr unsigned kDiskSwitchAttempts = 8;

using Clock = std::chrono::steady_clock;

std::uint64_t unix_now_ns()
{
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

// Random, never 0: a stream's name need not be secret, only new.
std::uint64_t new_stream_id()
{
    static std::mt19937_64 rng(std::random_device{}());
    static std::mutex mutex;
    std::lock_guard lock(mutex);
    std::uint64_t id = 0;
    while (id == 0)
        id = rng();
    return id;
}

std::uint64_t percentile(std::vector<std::uint64_t> samples, double p)
{
    if (samples.empty())
        return 0;
    auto k = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1) + 0.5);
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(k), samples.end());
    return samples[k];
}

} // namespace

const char *state_name(ProtectionState state) noexcept
{
    switch (state) {
    case ProtectionState::connecting: return "connecting";
    case ProtectionState::syncing: return "syncing";
    case ProtectionState::protected_: return "protected";
    case ProtectionState::unprotected: return "unprotected";
    case ProtectionState::stopped: return "stopped";
    }
    return "?";
}

Replicator::Replicator(Guest &guest, Connect connect, ReplicationSettings settings, Log log)
    : guest_(guest), connect_(std::move(connect)), settings_(std::move(settings)), log_(std::move(log)),
      dirty_(guest.memory_size() / kPageSize)
{
    for (int i = 0; i < 2; ++i) {
        buffers_.push_back(std::make_unique<StagingBuffer>(guest.memory_size()));
        free_.push_back(buffers_.back().get());
    }
    pfn_scratch_.reserve(guest.memory_size() / kPageSize);
    pause_samples_us_.reserve(kPauseSamples);
    status_.compression = compression_name(settings_.codec);
}

Replicator::~Replicator()
{
    stop("replication ended");
}

void Replicator::log(const std::string &line) const
{
    if (log_)
        log_(line);
}

void Replicator::start()
{
    checkpointer_ = std::thread([this] { checkpoint_thread(); });
    sender_ = std::thread([this] { sender_thread(); });
}

void Replicator::stop(const std::string &reason, GuestAfterStop after)
{
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && !checkpointer_.joinable() && !sender_.joinable())
            return;
        stopping_ = true;
        stop_reason_ = reason;
        after_stop_ = after;
    }
    changed_.notify_all();
    if (checkpointer_.joinable())
        checkpointer_.join();
    if (sender_.joinable())
        sender_.join();
    guest_.stop_disk_log();
    end_dirty_log();
    std::lock_guard lock(mutex_);
    status_.state = ProtectionState::stopped;
}

void Replicator::end_dirty_log()
{
    try {
        guest_.disable_dirty_log();
    } catch (const std::exception &e) {
        log("guest " + guest_.name() + ": " + e.what());
    }
}

void Replicator::halt(const std::string &reason)
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        halted_ = true;
        stop_reason_ = reason;
        if (link_)
            link_->shutdown();
    }
    changed_.notify_all();
    if (checkpointer_.joinable())
        checkpointer_.join();
    if (sender_.joinable())
        sender_.join();
    std::lock_guard lock(mutex_);
    status_.state = ProtectionState::stopped;
    status_.last_error = reason;
}

std::vector<EpochAck> Replicator::epoch_acks() const
{
    std::lock_guard lock(mutex_);
    return {epoch_acks_.begin(), epoch_acks_.end()};
}

void Replicator::drop_backup(const std::string &why)
{
    std::lock_guard lock(mutex_);
    if (!link_ || !session_live_ || stopping_)
        return;
    drop_reason_ = why;
    link_->shutdown();
}

// ---- checkpoint thread ------------------------------------------------------

void Replicator::checkpoint_thread()
{
    std::uint64_t done = 0;
    for (;;) {
        std::uint64_t session;
        {
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [&] { return stopping_ || (session_live_ && session_ != done); });
            if (stopping_)
                return;
            session = session_;
        }
        try {
            run_session(session);
        } catch (const SessionLost &) {
        } catch (const std::exception &e) {
            log("guest " + guest_.name() + ": checkpoint failed: " + e.what() + "; replication stops");
            end_dirty_log();
            std::lock_guard lock(mutex_);
            status_.last_error = e.what();
            stopping_ = true;
            changed_.notify_all();
            return;
        }
        done = session;
    }
}

void Replicator::run_session(std::uint64_t session)
{
    guest_.enable_dirty_log();
    if (guest_.disk_bytes())
        guest_.start_disk_log();
    dirty_.clear();
    next_epoch_ = Epoch{1};
    precopy(session);
    // The first checkpoint right after the copy: protected as soon as possible.
    auto next = Clock::now() - settings_.interval;
    for (;;) {
        next += settings_.interval;
        bool freeze;
        {
            std::unique_lock lock(mutex_);
            changed_.wait_until(lock, next, [&] {
                return stopping_ || session_ != session || !session_live_ || freeze_requested_ ||
                       checkpoint_requested_;
            });
            if (stopping_ || session_ != session || !session_live_)
                throw SessionLost{};
            freeze = freeze_requested_;
            if (checkpoint_requested_) {
                checkpoint_requested_ = false;
                requested_epoch_ = next_epoch_.value;
            }
        }
        const auto now = Clock::now();
        if (now > next + settings_.interval)
            next = now; // fell behind: do not burst to catch up
        checkpoint(session, freeze);
    }
}

void Replicator::precopy(std::uint64_t session)
{
    auto send_pages = [&](const std::vector<Pfn> &pfns) {
        for (std::size_t first = 0; first < pfns.size(); first += settings_.precopy_chunk_pages) {
            const std::size_t n = std::min<std::size_t>(settings_.precopy_chunk_pages, pfns.size() - first);
            auto &buffer = acquire(session, false);
            buffer.reset(next_epoch_, proto::EpochBegin::PRECOPY);
            next_epoch_ = next_epoch_.next();
            stage_pages(buffer, std::span(pfns).subspan(first, n));
            submit(buffer, session);
        }
    };
    // Round 0: all of memory while the guest runs; what it changes meanwhile
    // is in the dirty log and goes again.
    send_pages(guest_.frames_to_copy());
    // The disk image, in chunks; then, round after round, the regions the
    // guest wrote meanwhile (read from the disk again), while they shrink.
    const std::uint64_t sectors = guest_.disk_bytes() / kSectorSize;
    if (sectors) {
        DiskRegions regions; // all of it
        for (std::uint64_t sector = 0; sector < sectors;) {
            const auto count = static_cast<std::uint32_t>(std::min<std::uint64_t>(1u << 30, sectors - sector));
            regions.ranges.push_back({sector, count});
            sector += count;
        }
        send_disk(session, regions);
        for (unsigned round = 1; round <= kDiskPrecopyRounds; ++round) {
            guest_.take_disk_regions(regions, false);
            send_disk(session, regions);
            if (regions.sectors() < kDiskEnoughSectors)
                break;
        }
    }
    for (unsigned round = 1; round <= settings_.precopy_rounds; ++round) {
        guest_.harvest_dirty(dirty_);
        if (dirty_.count() < settings_.precopy_enough_pages)
            break; // the rest goes with the first checkpoint
        auto pfns = dirty_.to_vector();
        dirty_.clear();
        send_pages(pfns);
    }
    if (!sectors)
        return;
    // From here every disk write is logged with its data, for the first
    // checkpoint; what was written before goes now as regions. If the log
    // overflowed while they went (it fell back to regions), again.
    DiskRegions regions;
    for (unsigned attempt = 1;; ++attempt) {
        guest_.take_disk_regions(regions, true);
        if (regions.empty())
            return;
        if (attempt > kDiskSwitchAttempts)
            fail_session("initial sync of guest " + guest_.name() + "'s disk: it writes more than " +
                         std::to_string(kDiskLogLimitBytes >> 20) + " MiB while " +
                         std::to_string(regions.sectors() * kSectorSize >> 20) +
                         " MiB of dirty regions are copied, every time (" + std::to_string(kDiskSwitchAttempts) +
                         " attempts); the link to the backup is too slow for its write rate");
        send_disk(session, regions);
    }
}

void Replicator::send_disk(std::uint64_t session, const DiskRegions &regions)
{
    auto range = regions.ranges.begin();
    std::uint64_t done = 0; // sectors of *range already sent
    while (range != regions.ranges.end()) {
        auto &buffer = acquire(session, false);
        buffer.reset(next_epoch_, proto::EpochBegin::PRECOPY);
        next_epoch_ = next_epoch_.next();
        for (std::size_t c = 0; c < kDiskChunksPerEpoch && range != regions.ranges.end(); ++c) {
            const std::uint64_t sector = range->sector + done;
            const auto count =
                static_cast<std::uint32_t>(std::min<std::uint64_t>(kDiskChunkSectors, range->sectors - done));
            const std::size_t offset = buffer.disk.data.size();
            buffer.disk.data.resize(offset + std::size_t{count} * kSectorSize);
            guest_.read_disk(sector, {buffer.disk.data.data() + offset, std::size_t{count} * kSectorSize});
            buffer.disk.writes.push_back({sector, count});
            done += count;
            if (done == range->sectors) {
                ++range;
                done = 0;
            }
        }
        submit(buffer, session);
    }
}

void Replicator::fail_session(const std::string &why)
{
    {
        std::lock_guard lock(mutex_);
        drop_reason_ = why;
        if (link_)
            link_->shutdown();
    }
    log("guest " + guest_.name() + ": " + why);
    throw SessionLost{};
}

void Replicator::stage_pages(StagingBuffer &buffer, std::span<const Pfn> pfns)
{
    auto room = buffer.page_room(pfns.size());
    guest_.read_pages(pfns, room);
    buffer.pfns.insert(buffer.pfns.end(), pfns.begin(), pfns.end());
}

void Replicator::checkpoint(std::uint64_t session, bool freeze)
{
    auto &buffer = acquire(session, true);
    buffer.reset(next_epoch_, proto::EpochBegin::CHECKPOINT);
    next_epoch_ = next_epoch_.next();
    const Epoch epoch = buffer.epoch;

    // Paused from here: copies only, no allocation, no I/O to the backup.
    buffer.paused_unix_ns = unix_now_ns();
    const auto paused_at = Clock::now();
    guest_.pause();
    try {
        for (auto *p : participants_)
            p->on_pause(epoch);
        guest_.take_disk_writes(buffer.disk);
        guest_.harvest_dirty(dirty_);
        pfn_scratch_.clear();
        dirty_.for_each_run([&](Pfn first, std::uint64_t count) {
            for (std::uint64_t i = 0; i < count; ++i)
                pfn_scratch_.push_back(Pfn{first.value + i});
        });
        stage_pages(buffer, pfn_scratch_);
        dirty_.clear();
        buffer.cpu = guest_.save_cpu();
        buffer.devices = guest_.save_devices();
        buffer.has_state = true;
    } catch (...) {
        try {
            guest_.resume();
        } catch (const std::exception &e) {
            log("guest " + guest_.name() + ": resuming after a failed checkpoint failed too: " + e.what());
        }
        throw;
    }
    if (!freeze || buffer.disk.incomplete) {
        guest_.resume();
        for (auto *p : participants_)
            p->on_resume(epoch);
    }
    if (buffer.disk.incomplete) {
        {
            std::lock_guard lock(mutex_);
            free_.push_back(&buffer);
        }
        changed_.notify_all();
        fail_session("guest " + guest_.name() + " wrote more than " + std::to_string(kDiskLogLimitBytes >> 20) +
                     " MiB to its disk in one epoch, more than is held for one: epoch " +
                     std::to_string(epoch.value) + " cannot be replicated whole; a resync copies the disk again");
    }
    buffer.pause_time = Clock::now() - paused_at;
    {
        std::lock_guard lock(mutex_);
        const auto us = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(buffer.pause_time).count());
        if (pause_samples_us_.size() < kPauseSamples)
            pause_samples_us_.push_back(us);
        else
            pause_samples_us_[pause_next_] = us;
        pause_next_ = (pause_next_ + 1) % kPauseSamples;
        status_.pause_max_us = std::max(status_.pause_max_us, us);
        status_.pause_last_us = us;
        status_.dirty_pages_last = buffer.pfns.size();
        dirty_total_ += buffer.pfns.size();
        ++checkpoints_staged_;
    }
    if (freeze) {
        std::lock_guard lock(mutex_);
        frozen_cpu_ = buffer.cpu;
        frozen_devices_ = buffer.devices;
    }
    submit(buffer, session);
    if (!freeze)
        return;

    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] {
        return stopping_ || !session_live_ || session_ != session || status_.acked_epoch >= epoch.value;
    });
    const bool acked = session_live_ && session_ == session && status_.acked_epoch >= epoch.value;
    if (acked) {
        frozen_ = true;
        frozen_epoch_ = epoch;
        changed_.notify_all();
        changed_.wait(lock, [&] { return stopping_ || !freeze_requested_; });
        frozen_ = false;
        changed_.notify_all();
    }
    lock.unlock();
    guest_.resume();
    for (auto *p : participants_)
        p->on_resume(epoch);
    if (!acked)
        throw SessionLost{};
}

StagingBuffer &Replicator::acquire(std::uint64_t session, bool count_wait)
{
    std::unique_lock lock(mutex_);
    if (free_.empty() && count_wait)
        ++status_.sender_waits;
    changed_.wait(lock, [&] { return stopping_ || session_ != session || !session_live_ || !free_.empty(); });
    if (stopping_ || session_ != session || !session_live_)
        throw SessionLost{};
    auto *buffer = free_.back();
    free_.pop_back();
    return *buffer;
}

void Replicator::submit(StagingBuffer &buffer, std::uint64_t session)
{
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || session_ != session || !session_live_) {
            free_.push_back(&buffer); // staged for a stream that is gone
            changed_.notify_all();
            throw SessionLost{};
        }
        ready_.push_back(&buffer);
        status_.epoch = buffer.epoch.value;
    }
    changed_.notify_all();
}

// ---- sender thread ----------------------------------------------------------

void Replicator::sender_thread()
{
    std::string last_failure;
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_)
                return;
        }
        std::unique_ptr<Link> link;
        try {
            link = connect_();
            RecordWriter writer(*link);
            RecordReader reader(*link, settings_.ack_timeout);
            proto::Hello hello;
            hello.set_protocol_version(kProtocolVersion);
            hello.set_guest_id(guest_.name());
            hello.set_page_size(static_cast<std::uint32_t>(kPageSize));
            hello.set_memory_size(guest_.memory_size());
            hello.set_backend(settings_.backend);
            hello.set_disk_bytes(guest_.disk_bytes());
            for (auto &f : codec_features(settings_.codec))
                hello.add_features(f);
            hello.set_stream_id(new_stream_id());
            const auto codec = offer_hello(writer, reader, hello);
            {
                std::lock_guard lock(mutex_);
                ++session_;
                session_live_ = true;
                link_ = link.get();
                if (status_.checkpoints > 0 || status_.backup_losses > 0)
                    ++status_.resyncs;
                status_.state = ProtectionState::syncing;
                status_.peer = link->peer();
                status_.compression = compression_name(codec);
                status_.acked_epoch = 0;
                status_.epoch = 0;
                status_.stream_id = hello.stream_id();
            }
            changed_.notify_all();
            last_failure.clear();
            log("guest " + guest_.name() + ": full sync to backup " + link->peer() + " (compression " +
                compression_name(codec) + ")");
            serve_session(*link, writer, reader, codec);
        } catch (const std::exception &e) {
            if (e.what() != last_failure)
                lose_session(e.what());
            last_failure = e.what();
        }
        {
            std::lock_guard lock(mutex_);
            link_ = nullptr;
        }
        link.reset();
        std::unique_lock lock(mutex_);
        if (changed_.wait_for(lock, settings_.retry_interval, [&] { return stopping_; }))
            return;
    }
}

void Replicator::serve_session(Link &link, RecordWriter &writer, RecordReader &reader,
                               const PageCodecSettings &codec)
{
    EpochSender sender(codec, guest_.memory_size());
    bool announced = false;
    // ready_[0, in_flight) are sent and wait for their acks, oldest first. The
    // next staged epoch is sent before waiting for an ack (pipelining), so
    // the backup's commit of epoch N overlaps the shipping of epoch N+1.
    std::size_t in_flight = 0;
    struct Sent {
        Clock::time_point at;
        std::uint64_t bytes;
        SendCounters counters;
    };
    std::deque<Sent> sent;
    for (;;) {
        StagingBuffer *next = nullptr;
        std::string goodbye;
        bool cut = false, runs_on = true;
        {
            std::unique_lock lock(mutex_);
            if (in_flight == 0)
                changed_.wait_for(lock, settings_.heartbeat_interval,
                                  [&] { return stopping_ || !ready_.empty(); });
            if (stopping_) {
                goodbye = stop_reason_;
                cut = halted_;
                runs_on = after_stop_ == GuestAfterStop::runs_on;
            } else if (ready_.size() > in_flight)
                next = ready_[in_flight];
        }
        if (!goodbye.empty()) {
            if (cut) {
                link.shutdown();
                return;
            }
            proto::Goodbye bye;
            bye.set_reason(goodbye);
            bye.set_guest_runs_on(runs_on);
            writer.write(RecordType::goodbye, bye);
            writer.flush();
            link.shutdown();
            std::lock_guard lock(mutex_);
            session_live_ = false;
            return;
        }
        if (next) {
            const auto before = writer.bytes_written();
            Sent s{Clock::now(), 0, {}};
            sender.send(*next, writer, s.counters);
            s.bytes = writer.bytes_written() - before;
            sent.push_back(s);
            ++in_flight;
            continue;
        }
        if (in_flight == 0) {
            proto::Heartbeat beat;
            beat.set_sent_unix_ns(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count()));
            writer.write(RecordType::heartbeat, beat);
            writer.flush();
            continue;
        }
        StagingBuffer *oldest;
        {
            std::lock_guard lock(mutex_);
            oldest = ready_.front();
        }
        auto type = reader.next();
        if (type == RecordType::goodbye) {
            proto::Goodbye bye;
            reader.parse(bye, "Goodbye");
            throw StreamError("backup " + link.peer() + " ended the stream: " + bye.reason().substr(0, 200));
        }
        if (type != RecordType::ack)
            throw StreamError("backup " + link.peer() + " answered epoch " + std::to_string(oldest->epoch.value) +
                              " with " + record_name(type));
        proto::Ack ack;
        reader.parse(ack, "Ack");
        if (ack.epoch() != oldest->epoch.value)
            throw StreamError("backup " + link.peer() + " acked epoch " + std::to_string(ack.epoch()) +
                              " while epoch " + std::to_string(oldest->epoch.value) + " was the oldest outstanding");
        const Epoch epoch = oldest->epoch;
        const bool checkpoint = oldest->kind == proto::EpochBegin::CHECKPOINT;
        const Sent s = sent.front();
        sent.pop_front();
        --in_flight;
        {
            std::lock_guard lock(mutex_);
            ready_.pop_front();
            free_.push_back(oldest);
            status_.bytes_sent += s.bytes;
            status_.page_bytes += s.counters.page_bytes;
            status_.payload_bytes += s.counters.payload_bytes;
            if (checkpoint) {
                if (epoch_acks_.size() == kEpochAckRecords)
                    epoch_acks_.pop_front();
                epoch_acks_.push_back({epoch.value, oldest->paused_unix_ns, unix_now_ns()});
                status_.acked_epoch = epoch.value;
                status_.state = ProtectionState::protected_;
                ++status_.checkpoints;
                last_ack_ = Clock::now();
                ack_latency_total_ms_ += std::chrono::duration<double, std::milli>(last_ack_ - s.at).count();
                ++acks_;
            }
        }
        changed_.notify_all();
        if (checkpoint) {
            for (auto *p : participants_)
                p->on_commit(epoch);
            if (!announced) {
                const std::string what = "backup " + link.peer() + " committed epoch " + std::to_string(epoch.value);
                log("guest " + guest_.name() + ": protected; " + what);
                if (event_sink_)
                    event_sink_("protected", what);
            }
            announced = true;
        }
    }
}

void Replicator::lose_session(const std::string &error)
{
    bool was_live;
    std::string why = error;
    {
        std::lock_guard lock(mutex_);
        if (halted_)
            return;
        if (!drop_reason_.empty())
            why = drop_reason_;
        drop_reason_.clear();
        was_live = session_live_;
        session_live_ = false;
        for (auto *b : ready_)
            free_.push_back(b);
        ready_.clear();
        status_.last_error = why;
        if (was_live)
            ++status_.backup_losses;
        if (status_.state != ProtectionState::connecting)
            status_.state = ProtectionState::unprotected;
    }
    changed_.notify_all();
    guest_.stop_disk_log(); // nothing to ship it to; a resync copies the whole disk again
    for (auto *p : participants_)
        p->on_unprotected();
    const std::string retry =
        "; retrying every " + std::to_string(settings_.retry_interval.count()) + " ms with a full resync";
    log("guest " + guest_.name() + (was_live ? ": UNPROTECTED, lost the backup: " : ": no backup: ") + why + retry);
    if (event_sink_)
        event_sink_(was_live ? "backup_lost" : "no_backup", why + retry);
}

// ---- status and control -----------------------------------------------------

ReplicationStatus Replicator::status() const
{
    std::lock_guard lock(mutex_);
    ReplicationStatus s = status_;
    s.pause_p50_us = percentile(pause_samples_us_, 0.50);
    s.pause_p99_us = percentile(pause_samples_us_, 0.99);
    s.dirty_pages_avg = checkpoints_staged_ ? static_cast<double>(dirty_total_) / static_cast<double>(checkpoints_staged_) : 0;
    s.ack_latency_avg_ms = acks_ ? ack_latency_total_ms_ / static_cast<double>(acks_) : 0;
    if (last_ack_ != Clock::time_point{})
        s.last_ack_age_s = std::chrono::duration<double>(Clock::now() - last_ack_).count();
    return s;
}

bool Replicator::wait_acked(Epoch epoch, std::chrono::milliseconds timeout) const
{
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] {
        return status_.state == ProtectionState::protected_ && status_.acked_epoch >= epoch.value;
    });
}

bool Replicator::wait_protected(std::chrono::milliseconds timeout) const
{
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return status_.state == ProtectionState::protected_; });
}

Epoch Replicator::checkpoint_now(std::chrono::milliseconds timeout)
{
    std::unique_lock lock(mutex_);
    checkpoint_requested_ = true;
    requested_epoch_ = 0;
    changed_.notify_all();
    const bool done = changed_.wait_for(lock, timeout, [&] {
        return stopping_ || (requested_epoch_ && session_live_ && status_.acked_epoch >= requested_epoch_);
    });
    if (!done || stopping_)
        throw std::runtime_error("checkpoint of guest " + guest_.name() + ": not committed by the backup within " +
                                 std::to_string(timeout.count()) + " ms");
    return Epoch{requested_epoch_};
}

Epoch Replicator::freeze(std::chrono::milliseconds timeout)
{
    std::unique_lock lock(mutex_);
    freeze_requested_ = true;
    changed_.notify_all();
    if (!changed_.wait_for(lock, timeout, [&] { return frozen_ || stopping_; }) || !frozen_) {
        freeze_requested_ = false;
        changed_.notify_all();
        throw std::runtime_error("freeze guest " + guest_.name() + ": no checkpoint was committed by the backup within " +
                                 std::to_string(timeout.count()) + " ms");
    }
    return frozen_epoch_;
}

std::optional<std::pair<proto::CpuState, proto::DeviceState>> Replicator::frozen_state() const
{
    std::lock_guard lock(mutex_);
    if (!frozen_)
        return std::nullopt;
    return std::make_pair(frozen_cpu_, frozen_devices_);
}

void Replicator::thaw()
{
    std::unique_lock lock(mutex_);
    freeze_requested_ = false;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !frozen_; });
}

} // namespace understudy
