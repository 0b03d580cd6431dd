// libFuzzer target for the handshake that opens a stream, on both ends: the
// backup reading a Hello (checked against its limits, then accepted or
// refused), and the primary reading the backup's HelloReply. Whatever the
// bytes: StreamError or LinkError, never a crash. The first byte picks the end.
#include <cstdint>

#include "checkpoint/handshake.h"
#include "checkpoint/stream/memory_link.h"

using namespace understudy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    if (size < 1)
        return 0;
    MemoryLink link(std::vector<std::uint8_t>(data + 1, data + size));
    RecordReader reader(link, std::chrono::milliseconds(0));
    RecordWriter writer(link);
    try {
        if (data[0] & 1) {
            proto::Hello hello = read_hello(reader, 64ull << 30, 16ull << 40);
            (void)accept_hello(writer, hello);
        } else {
            proto::Hello offer;
            offer.set_protocol_version(kProtocolVersion);
            offer.set_guest_id("fuzz");
            offer.set_page_size(4096);
            offer.set_memory_size(1 << 20);
            offer.set_backend("kvm");
            offer.add_features("lz4");
            offer.add_features("xor-delta");
            (void)offer_hello(writer, reader, offer);
        }
    } catch (const StreamError &) {
    } catch (const LinkError &) {
    }
    return 0;
}
