// libFuzzer target for the backup's stream reader and commit: whatever the
// bytes, the reader refuses them with StreamError or runs out of input
// (LinkClosed); it never crashes, never reads or writes out of bounds, and
// applies only epochs that verified whole. The first byte picks what the
// handshake agreed and whether the link authenticates its bytes as TLS
// does: then epochs carry no SHA-256, and mutated epochs pass the reader and
// reach the commit (stream_fuzz_input.h). Seeds: tests/fuzz/corpus/
// stream_reader, real streams (seed_writer.cpp). Built by scripts/fuzz.
#include <unistd.h>

#include <cstdint>
#include <filesystem>

#include "checkpoint/epoch_commit.h"
#include "checkpoint/epoch_receiver.h"
#include "checkpoint/standby_image.h"
#include "tests/fuzz/stream_fuzz_input.h"

using namespace understudy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static StandbyImage standby("fuzz", fuzz::kStandbyMemory, fuzz::kStandbyDisk,
                                std::filesystem::temp_directory_path() /
                                    ("understudy-fuzz-" + std::to_string(getpid()) + ".disk"));
    if (size < 1)
        return 0;
    const auto in = fuzz::stream_input({data, size});
    MemoryLink link(std::vector<std::uint8_t>(in.stream.begin(), in.stream.end()), in.authenticates);
    RecordReader reader(link, std::chrono::milliseconds(0));
    EpochReceiver receiver(standby, in.codec);
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
    } catch (const StandbyDamaged &) {
    }
    return 0;
}
