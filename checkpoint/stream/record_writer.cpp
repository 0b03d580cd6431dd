#include "checkpoint/stream/record_writer.h"

namespace understudy {

namespace {
constexpr std::size_t kGatherBytes = 64 * 1024;
}

RecordWriter::RecordWriter(Link &link) : link_(link)
{
    buffer_.reserve(kGatherBytes);
}

void RecordWriter::write(RecordType type, const google::protobuf::MessageLite &header,
                         std::span<const std::uint8_t> payload)
{
    const std::size_t length = header.ByteSizeLong();
    if (length > kMaxHeaderBytes)
        throw StreamError("write " + record_name(type) + ": header of " + std::to_string(length) +
                          " bytes is over the limit of " + std::to_string(kMaxHeaderBytes));
    const std::size_t start = buffer_.size();
    buffer_.resize(start + kFrameBytes + length);
    std::uint8_t *frame = buffer_.data() + start;
    const auto len32 = static_cast<std::uint32_t>(length);
    frame[0] = static_cast<std::uint8_t>(len32);
    frame[1] = static_cast<std::uint8_t>(len32 >> 8);
    frame[2] = static_cast<std::uint8_t>(len32 >> 16);
    frame[3] = static_cast<std::uint8_t>(len32 >> 24);
    frame[4] = static_cast<std::uint8_t>(type);
    header.SerializeWithCachedSizesToArray(frame + kFrameBytes);
    if (hashing_)
        digest_.update({frame, kFrameBytes + length});
    if (payload.empty()) {
        if (buffer_.size() >= kGatherBytes)
            flush();
        return;
    }
    if (hashing_)
        digest_.update(payload);
    if (payload.size() < kGatherBytes / 4) {
        buffer_.insert(buffer_.end(), payload.begin(), payload.end());
        if (buffer_.size() >= kGatherBytes)
            flush();
        return;
    }
    flush();
    emit(payload);
}

void RecordWriter::flush()
{
    if (buffer_.empty())
        return;
    emit(buffer_);
    buffer_.clear();
}

void RecordWriter::emit(std::span<const std::uint8_t> bytes)
{
    link_.write(bytes);
    bytes_ += bytes.size();
}

void RecordWriter::start_digest()
{
    digest_.reset();
    hashing_ = true;
}

Sha256Digest RecordWriter::finish_digest()
{
    hashing_ = false;
    return digest_.finish();
}

} // namespace understudy
