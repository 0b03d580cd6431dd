#include "checkpoint/stream/record_reader.h"

namespace understudy {

RecordReader::RecordReader(Link &link, std::chrono::milliseconds idle) : link_(link), peer_(link.peer()), idle_(idle)
{
}

void RecordReader::fill(std::span<std::uint8_t> into)
{
    link_.read(into, idle_);
    bytes_ += into.size();
}

RecordType RecordReader::next()
{
    std::uint8_t frame[kFrameBytes];
    fill(frame);
    const std::uint32_t length = frame[0] | (std::uint32_t{frame[1]} << 8) | (std::uint32_t{frame[2]} << 16) |
                                 (std::uint32_t{frame[3]} << 24);
    if (!known_record_type(frame[4]))
        throw StreamError("stream from " + peer_ + ": unknown record type " + std::to_string(frame[4]));
    type_ = static_cast<RecordType>(frame[4]);
    if (length > kMaxHeaderBytes)
        throw StreamError("stream from " + peer_ + ": " + record_name(type_) + " header of " + std::to_string(length) +
                          " bytes is over the limit of " + std::to_string(kMaxHeaderBytes));
    header_.resize(length);
    fill(header_);
    // The epoch digest covers every record of the epoch before its EpochEnd.
    if (hashing_ && type_ != RecordType::epoch_end) {
        digest_.update({frame, kFrameBytes});
        digest_.update(header_);
    }
    return type_;
}

void RecordReader::parse(google::protobuf::MessageLite &into, const char *what) const
{
    if (!into.ParseFromArray(header_.data(), static_cast<int>(header_.size())))
        throw StreamError("stream from " + peer_ + ": " + what + " record does not parse (" +
                          std::to_string(header_.size()) + " bytes)");
}

void RecordReader::read_payload(std::span<std::uint8_t> into)
{
    fill(into);
    if (hashing_)
        digest_.update(into);
}

void RecordReader::start_digest()
{
    digest_.reset();
    hashing_ = true;
}

Sha256Digest RecordReader::finish_digest()
{
    hashing_ = false;
    return digest_.finish();
}

} // namespace understudy
