#include "checkpoint/standby_stream.h"

#include "checkpoint/epoch_receiver.h"
#include "checkpoint/handshake.h"

namespace understudy {

StandbyStream::StandbyStream(StandbyRegistry &registry, const proto::Hello &hello, std::unique_ptr<StandbyGuest> fresh,
                             Log log, StandbyEventSink events)
    : registry_(registry), guest_(hello.guest_id()), stream_id_(hello.stream_id()), copy_(std::move(fresh)),
      log_(std::move(log)), events_(std::move(events))
{
    if (!log_)
        log_ = [](const std::string &) {};
}

std::uint64_t StandbyStream::committed_epoch() const
{
    const auto s = registry_.status(guest_);
    return s && s->consistent ? s->epoch : 0;
}

void StandbyStream::outdate(const std::string &why)
{
    const auto s = registry_.status(guest_);
    if (!s || s->stream_id != stream_id_ || !s->consistent)
        return; // this stream built no copy that is the guest's standby
    const std::string what = why + ": the standby at epoch " + std::to_string(s->epoch) +
                             " is outdated; it does not take over by itself";
    if (registry_.mark_outdated(guest_, stream_id_, what)) {
        log_("guest " + guest_ + ": " + what);
        if (events_)
            events_(guest_, "standby_outdated", what);
    }
}

void StandbyStream::say_goodbye(RecordWriter &writer, const std::string &reason) noexcept
{
    try {
        proto::Goodbye bye;
        bye.set_reason(reason);
        writer.write(RecordType::goodbye, bye);
        writer.flush();
    } catch (...) {
        // The link is gone too: the primary sees the stream end either way.
    }
}

bool StandbyStream::commit(ReceivedEpoch &epoch, std::uint64_t ticket)
{
    const bool checkpoint = epoch.kind == proto::EpochBegin::CHECKPOINT;
    if (!installed_) {
        // The copy being built: nothing committed depends on it, so a failed
        // commit just ends the stream (and the copy).
        committer_.commit(epoch, *copy_, EpochCommitter::Undo::none);
        if (!checkpoint) {
            registry_.received(guest_, ticket, epoch.wire_bytes);
            return true;
        }
        try {
            if (!registry_.install(guest_, ticket, copy_, epoch.epoch))
                return false;
        } catch (const std::exception &e) {
            throw CommitFailed("install the new copy at epoch " + std::to_string(epoch.epoch.value) + ": " + e.what() +
                               " (the older copy, if any, stays)");
        }
        installed_ = true;
        registry_.received(guest_, ticket, epoch.wire_bytes);
        log_("guest " + guest_ + ": standby consistent at epoch " + std::to_string(epoch.epoch.value));
        return true;
    }
    if (!registry_.commit(guest_, ticket,
                          [&](StandbyGuest &s) { committer_.commit(epoch, s, EpochCommitter::Undo::keep); }))
        return false;
    registry_.committed(guest_, ticket, epoch.epoch, checkpoint, epoch.wire_bytes);
    return true;
}

void StandbyStream::run(Link &link, RecordReader &reader, RecordWriter &writer, std::chrono::milliseconds idle,
                        PageCodecSettings codec)
{
    const auto ticket = registry_.begin_stream(guest_, link, stream_id_);
    std::string error;
    bool closed_by_peer = false;
    auto failed = [&](const std::string &kind, const std::string &what) {
        error = what;
        const std::string where = "; standby stays at epoch " + std::to_string(committed_epoch());
        log_("guest " + guest_ + ": " + what + (kind == "standby_damaged" ? "" : where));
        if (!kind.empty() && events_)
            events_(guest_, kind, kind == "standby_damaged" ? what : what + where);
        say_goodbye(writer, "backup: " + what);
    };
    try {
        log_("guest " + guest_ + ": receiving from " + link.peer() + " (compression " + compression_name(codec) + ")");
        reader.set_idle(idle);
        EpochReceiver receiver(*copy_, codec); // the same copy once installed
        ReceivedEpoch epoch;
        for (Epoch expected{1};; expected = expected.next()) {
            proto::Goodbye goodbye;
            if (receiver.receive(reader, expected, epoch, &goodbye) == EpochReceiver::Outcome::goodbye) {
                log_("guest " + guest_ + ": primary " + link.peer() + " ended the stream: " + goodbye.reason());
                if (goodbye.guest_runs_on())
                    outdate("the primary ended the stream and runs the guest on without this backup (" +
                            goodbye.reason() + ")");
                break;
            }
            if (!commit(epoch, ticket)) {
                log_("guest " + guest_ + ": stream from " + link.peer() + " was superseded or the standby activated");
                break;
            }
            proto::Ack ack;
            ack.set_epoch(expected.value);
            writer.write(RecordType::ack, ack);
            writer.flush();
        }
    } catch (const StreamError &e) {
        registry_.record_refusal(guest_, e.what());
        failed("", std::string("refused epoch: ") + e.what());
    } catch (const CommitFailed &e) {
        registry_.record_commit_failure(guest_, e.what(), false);
        failed("commit_failed", e.what());
    } catch (const StandbyDamaged &e) {
        registry_.record_commit_failure(guest_, e.what(), true);
        failed("standby_damaged", std::string(e.what()) + "; the standby is DAMAGED and will not be run: "
                                                          "a resync builds a new one");
    } catch (const LinkClosed &e) {
        error = e.what();
        closed_by_peer = true;
        log_("guest " + guest_ + ": stream ended without a goodbye: " + error);
    } catch (const LinkError &e) {
        error = e.what();
        log_("guest " + guest_ + ": stream ended: " + error);
    } catch (const std::bad_alloc &) {
        failed("", "out of memory while receiving an epoch");
    } catch (const std::exception &e) {
        failed("", std::string("stream failed: ") + e.what());
    }
    registry_.end_stream(guest_, ticket, error, closed_by_peer);
}

} // namespace understudy
