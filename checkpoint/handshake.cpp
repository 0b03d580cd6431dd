#include "checkpoint/handshake.h"

#include "checkpoint/pfn.h"

namespace understudy {

bool valid_guest_id(const std::string &id)
{
    if (id.empty() || id.size() > 64)
        return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
            return false;
    return true;
}

PageCodecSettings offer_hello(RecordWriter &writer, RecordReader &reader, const proto::Hello &hello)
{
    writer.write(RecordType::hello, hello);
    writer.flush();
    auto type = reader.next();
    if (type == RecordType::goodbye) {
        proto::Goodbye bye;
        reader.parse(bye, "Goodbye");
        throw StreamError("backup " + reader.peer() + " closed the stream: " + bye.reason().substr(0, 200));
    }
    if (type != RecordType::hello_reply)
        throw StreamError("backup " + reader.peer() + " answered Hello with " + record_name(type));
    proto::HelloReply reply;
    reader.parse(reply, "HelloReply");
    if (!reply.accepted())
        throw StreamError("backup " + reader.peer() + " refused guest " + hello.guest_id() + ": " +
                          reply.reason().substr(0, 200));
    for (const auto &f : reply.features())
        if (std::find(hello.features().begin(), hello.features().end(), f) == hello.features().end())
            throw StreamError("backup " + reader.peer() + " accepted feature '" + f.substr(0, 40) +
                              "' that was not offered");
    return codec_from_features(reply.features());
}

proto::Hello read_hello(RecordReader &reader, std::uint64_t max_memory_bytes, std::uint64_t max_disk_bytes)
{
    auto type = reader.next();
    if (type != RecordType::hello)
        throw StreamError("stream from " + reader.peer() + ": expected Hello, got " + record_name(type));
    proto::Hello hello;
    reader.parse(hello, "Hello");
    const std::string who = "stream from " + reader.peer() + ": ";
    if (hello.protocol_version() != kProtocolVersion)
        throw StreamError(who + "protocol version " + std::to_string(hello.protocol_version()) +
                          ", this backup speaks " + std::to_string(kProtocolVersion));
    if (!valid_guest_id(hello.guest_id()))
        throw StreamError(who + "guest id is not 1-64 characters of A-Z a-z 0-9 _ . -");
    if (hello.page_size() != kPageSize)
        throw StreamError(who + "page size " + std::to_string(hello.page_size()) + ", expected " +
                          std::to_string(kPageSize));
    if (hello.memory_size() == 0 || hello.memory_size() % kPageSize || hello.memory_size() > max_memory_bytes)
        throw StreamError(who + "guest memory of " + std::to_string(hello.memory_size()) +
                          " bytes (must be whole pages, at most " + std::to_string(max_memory_bytes) + ")");
    if (hello.disk_bytes() % kSectorSize || hello.disk_bytes() > max_disk_bytes)
        throw StreamError(who + "disk of " + std::to_string(hello.disk_bytes()) +
                          " bytes (must be whole sectors, at most " + std::to_string(max_disk_bytes) + ")");
    if (hello.backend().empty() || hello.backend().size() > 16)
        throw StreamError(who + "no backend named");
    return hello;
}

PageCodecSettings accept_hello(RecordWriter &writer, const proto::Hello &hello)
{
    proto::HelloReply reply;
    reply.set_accepted(true);
    for (const auto &f : hello.features())
        if (f == kFeatureXorDelta || f == kFeatureLz4 || f == kFeatureZstd)
            reply.add_features(f);
    writer.write(RecordType::hello_reply, reply);
    writer.flush();
    return codec_from_features(reply.features());
}

void refuse_hello(RecordWriter &writer, const std::string &reason)
{
    proto::HelloReply reply;
    reply.set_accepted(false);
    reply.set_reason(reason);
    writer.write(RecordType::hello_reply, reply);
    writer.flush();
}

} // namespace understudy
