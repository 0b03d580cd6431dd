#include "netbuffer_qdisc/output_buffer.h"

#include <algorithm>
#include <stdexcept>

namespace understudy {

FullBufferPolicy parse_full_buffer_policy(const std::string &text)
{
    if (text == "drop-newest")
        return FullBufferPolicy::drop_newest;
    if (text == "drop-oldest")
        return FullBufferPolicy::drop_oldest;
    throw std::invalid_argument("output buffer policy '" + text + "': expected drop-newest or drop-oldest");
}

const char *policy_name(FullBufferPolicy policy) noexcept
{
    return policy == FullBufferPolicy::drop_oldest ? "drop-oldest" : "drop-newest";
}

OutputBuffer::OutputBuffer(OutputBufferSettings settings, Transmit transmit)
    : settings_(settings), transmit_(std::move(transmit))
{
}

void OutputBuffer::send(std::span<const std::uint8_t> frame, std::uint64_t &counter)
{
    if (transmit_(frame))
        ++counter;
    else
        ++status_.transmit_errors;
}

void OutputBuffer::egress(std::span<const std::uint8_t> frame)
{
    std::lock_guard lock(mutex_);
    if (status_.cut_off) {
        ++status_.discarded_frames;
        return;
    }
    if (!status_.holding) {
        send(frame, status_.passed_frames);
        return;
    }
    if (status_.held_bytes + frame.size() > settings_.capacity_bytes) {
        if (settings_.policy == FullBufferPolicy::drop_newest || frame.size() > settings_.capacity_bytes) {
            ++status_.dropped_frames;
            return;
        }
        drop_oldest_until(settings_.capacity_bytes - frame.size());
    }
    if (batches_.empty() || batches_.back().epoch != 0)
        batches_.emplace_back();
    batches_.back().frames.emplace_back(frame.begin(), frame.end());
    ++status_.held_frames;
    status_.held_bytes += frame.size();
}

void OutputBuffer::drop_oldest_until(std::uint64_t room)
{
    while (status_.held_bytes > room && !batches_.empty()) {
        auto &oldest = batches_.front();
        if (oldest.frames.empty()) {
            batches_.pop_front();
            continue;
        }
        status_.held_bytes -= oldest.frames.front().size();
        --status_.held_frames;
        ++status_.dropped_frames;
        oldest.frames.erase(oldest.frames.begin());
    }
}

void OutputBuffer::on_pause(Epoch epoch)
{
    std::lock_guard lock(mutex_);
    // From the first checkpoint of a protection on, output waits for acks.
    status_.holding = true;
    if (!batches_.empty() && batches_.back().epoch == 0)
        batches_.back().epoch = epoch.value;
}

void OutputBuffer::on_commit(Epoch epoch)
{
    std::lock_guard lock(mutex_);
    if (status_.cut_off)
        return;
    while (!batches_.empty() && batches_.front().epoch != 0 && batches_.front().epoch <= epoch.value) {
        for (const auto &frame : batches_.front().frames) {
            status_.held_bytes -= frame.size();
            --status_.held_frames;
            send(frame, status_.released_frames);
        }
        batches_.pop_front();
    }
    status_.released_epoch = epoch.value;
}

void OutputBuffer::on_unprotected()
{
    // No backup can take over from an older epoch any more: what is held is
    // this host's to send, in order, and from now on output is not held.
    std::lock_guard lock(mutex_);
    if (status_.cut_off)
        return;
    for (const auto &batch : batches_) {
        for (const auto &frame : batch.frames)
            send(frame, status_.released_frames);
        status_.released_epoch = std::max(status_.released_epoch, batch.epoch);
    }
    batches_.clear();
    status_.held_frames = 0;
    status_.held_bytes = 0;
    status_.holding = false;
}

void OutputBuffer::cut_off()
{
    std::lock_guard lock(mutex_);
    status_.discarded_frames += status_.held_frames;
    batches_.clear();
    status_.held_frames = 0;
    status_.held_bytes = 0;
    status_.cut_off = true;
}

OutputBufferStatus OutputBuffer::status() const
{
    std::lock_guard lock(mutex_);
    return status_;
}

} // namespace understudy
