// libFuzzer target for the backup's stream reader: whatever the bytes, the
// reader refuses them with StreamError or runs out of input (LinkClosed); it
// never crashes, never reads or writes out of bounds, and applies only
// epochs that verified whole. Built by scripts/fuzz with clang.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "checkpoint/epoch_commit.h"
#include "checkpoint/epoch_receiver.h"
#include "checkpoint/standby_image.h"
#include "checkpoint/stream/memory_link.h"

using namespace understudy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static StandbyImage standby("fuzz", 64 * kPageSize, 16 * 1024,
                                std::filesystem::temp_directory_path() /
                                    ("understudy-fuzz-" + std::to_string(getpid()) + ".disk"));
    if (size < 1)
        return 0;
    // The first byte picks what the handshake would have agreed.
    PageCodecSettings codec;
    codec.compressor = data[0] % 3 == 0 ? proto::PageBatch::RAW
                       : data[0] % 3 == 1 ? proto::PageBatch::LZ4
                                          : proto::PageBatch::ZSTD;
    codec.xor_delta = (data[0] & 4) && codec.compressor != proto::PageBatch::RAW;
    MemoryLink link(std::vector<std::uint8_t>(data + 1, data + size));
    RecordReader reader(link, std::chrono::milliseconds(0));
    EpochReceiver receiver(standby, codec);
    ReceivedEpoch epoch;
    EpochCommitter committer;
    Epoch expected{1};
    try {
        for (int i = 0; i < 16; ++i) {
            proto::Goodbye goodbye;
            if (receiver.receive(reader, expected, epoch, &goodbye) == EpochReceiver::Outcome::goodbye)
                break;
            committer.commit(epoch, standby, EpochCommitter::Undo::keep);
            expected = expected.next();
        }
    } catch (const StreamError &) {
    } catch (const LinkError &) {
    } catch (const CommitFailed &) { // the temporary disk file failed: the machine's fault, not the input's
    }
    return 0;
}
