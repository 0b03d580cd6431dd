// The versioned handshake that opens a replication stream: the primary
// describes the guest and offers features in Hello; the backup checks it and
// answers with the features it accepts (docs/protocol.md).
#pragma once

#include "checkpoint/page_codec.h"
#include "checkpoint/stream/record_reader.h"
#include "checkpoint/stream/record_writer.h"
#include "proto/stream.pb.h"

namespace understudy {

// Guest names on the wire and in the config: 1-64 of [A-Za-z0-9_.-].
[[nodiscard]] bool valid_guest_id(const std::string &id);

// Primary side: sends `hello`, returns the codec both sides agreed on.
// Throws StreamError if the backup refused (with its reason) or answered
// nonsense, LinkError if the link failed.
PageCodecSettings offer_hello(RecordWriter &writer, RecordReader &reader, const proto::Hello &hello);

// Backup side: reads and validates Hello. Throws StreamError saying what is
// wrong; the caller answers with refuse_hello().
[[nodiscard]] proto::Hello read_hello(RecordReader &reader, std::uint64_t max_memory_bytes,
                                     std::uint64_t max_disk_bytes);
// Accepts, keeping the offered features this side supports; returns them.
PageCodecSettings accept_hello(RecordWriter &writer, const proto::Hello &hello);
void refuse_hello(RecordWriter &writer, const std::string &reason);

} // namespace understudy
