// Output commit: a frame the guest sent in epoch N leaves only once the
// backup committed N; unprotected, frames go straight out; a full buffer
// drops by its policy and counts it.
#include <catch2/catch.hpp>

#include <mutex>
#include <string>
#include <thread>

#include "checkpoint/backup_server.h"
#include "checkpoint/replicator.h"
#include "checkpoint/standby_image.h"
#include "checkpoint/stream/socket_link.h"
#include "netbuffer_qdisc/output_buffer.h"
#include "tests/support/memory_guest.h"

using namespace understudy;
using namespace std::chrono_literals;

namespace {

// The wire: what left the host, in order.
struct Wire {
    std::mutex mutex;
    std::vector<std::string> frames;
    bool refuse = false;
    OutputBuffer::Transmit transmit()
    {
        return [this](std::span<const std::uint8_t> f) {
            std::lock_guard lock(mutex);
            if (refuse)
                return false;
            frames.emplace_back(f.begin(), f.end());
            return true;
        };
    }
    std::vector<std::string> seen()
    {
        std::lock_guard lock(mutex);
        return frames;
    }
};

void send(OutputBuffer &buffer, const std::string &frame)
{
    buffer.egress({reinterpret_cast<const std::uint8_t *>(frame.data()), frame.size()});
}

} // namespace

TEST_CASE("output of epoch N leaves only when N is committed, in order", "[output]")
{
    Wire wire;
    OutputBuffer buffer({}, wire.transmit());
    send(buffer, "before protection");
    CHECK(wire.seen() == std::vector<std::string>{"before protection"});

    buffer.on_pause(Epoch{5}); // first checkpoint: holding from now on
    send(buffer, "a6");
    send(buffer, "b6");
    buffer.on_pause(Epoch{6});
    send(buffer, "a7");
    buffer.on_pause(Epoch{7});
    send(buffer, "a8"); // still open: epoch 8 is running
    CHECK(wire.seen().size() == 1);
    CHECK(buffer.status().held_frames == 4);

    buffer.on_commit(Epoch{5}); // nothing was sent in epoch 5 after holding began
    CHECK(wire.seen().size() == 1);
    buffer.on_commit(Epoch{6});
    CHECK(wire.seen() == std::vector<std::string>{"before protection", "a6", "b6"});
    buffer.on_commit(Epoch{7});
    CHECK(wire.seen().back() == "a7");
    CHECK(buffer.status().held_frames == 1); // a8 waits for epoch 8
    buffer.on_commit(Epoch{8});               // acked before sealed: cannot be
    CHECK(wire.seen().back() == "a7");
    buffer.on_pause(Epoch{8});
    buffer.on_commit(Epoch{8});
    CHECK(wire.seen().back() == "a8");
    auto s = buffer.status();
    CHECK(s.held_frames == 0);
    CHECK(s.held_bytes == 0);
    CHECK(s.released_frames == 4);
    CHECK(s.passed_frames == 1);
    CHECK(s.released_epoch == 8);
}

TEST_CASE("losing the backup releases what is held and stops holding", "[output]")
{
    Wire wire;
    OutputBuffer buffer({}, wire.transmit());
    buffer.on_pause(Epoch{1});
    send(buffer, "x");
    buffer.on_pause(Epoch{2});
    send(buffer, "y");
    CHECK(wire.seen().empty());
    buffer.on_unprotected();
    CHECK(wire.seen() == std::vector<std::string>{"x", "y"});
    send(buffer, "z");
    CHECK(wire.seen().back() == "z");
    CHECK_FALSE(buffer.status().holding);
}

TEST_CASE("a cut-off buffer (drill crash) loses what is held and sends nothing more, counted", "[output]")
{
    Wire wire;
    OutputBuffer buffer({}, wire.transmit());
    buffer.on_pause(Epoch{1});
    send(buffer, "acked");
    buffer.on_pause(Epoch{2});
    buffer.on_commit(Epoch{2});
    send(buffer, "unacked");
    buffer.on_pause(Epoch{3});
    send(buffer, "open");
    buffer.cut_off();
    send(buffer, "after");
    buffer.on_commit(Epoch{3}); // an ack that arrives after the crash
    buffer.on_unprotected();    // and the replication stopping
    CHECK(wire.seen() == std::vector<std::string>{"acked"});
    auto s = buffer.status();
    CHECK(s.discarded_frames == 3);
    CHECK(s.released_epoch == 2);
    CHECK(s.held_frames == 0);
    CHECK(s.cut_off);
}

TEST_CASE("a full buffer drops by its policy and counts every frame it drops", "[output]")
{
    Wire wire;
    SECTION("drop-newest")
    {
        OutputBuffer buffer({10, parse_full_buffer_policy("drop-newest")}, wire.transmit());
        buffer.on_pause(Epoch{1});
        send(buffer, "aaaa");
        send(buffer, "bbbb");
        send(buffer, "cccc"); // 12 > 10 bytes
        CHECK(buffer.status().dropped_frames == 1);
        buffer.on_pause(Epoch{2});
        buffer.on_commit(Epoch{2});
        CHECK(wire.seen() == std::vector<std::string>{"aaaa", "bbbb"});
    }
    SECTION("drop-oldest")
    {
        OutputBuffer buffer({10, parse_full_buffer_policy("drop-oldest")}, wire.transmit());
        buffer.on_pause(Epoch{1});
        send(buffer, "aaaa");
        buffer.on_pause(Epoch{2});
        send(buffer, "bbbb");
        send(buffer, "cccc");
        CHECK(buffer.status().dropped_frames == 1);
        send(buffer, "a frame larger than the whole buffer");
        CHECK(buffer.status().dropped_frames == 2);
        buffer.on_pause(Epoch{3});
        buffer.on_commit(Epoch{3});
        CHECK(wire.seen() == std::vector<std::string>{"bbbb", "cccc"});
    }
    SECTION("a refused transmit is counted, not hidden")
    {
        OutputBuffer buffer({}, wire.transmit());
        wire.refuse = true;
        send(buffer, "lost");
        CHECK(buffer.status().transmit_errors == 1);
        CHECK(buffer.status().passed_frames == 0);
    }
    CHECK_THROWS_WITH(parse_full_buffer_policy("block"),
                      "output buffer policy 'block': expected drop-newest or drop-oldest");
}

TEST_CASE("with the real engine, a frame appears only after the backup acked its epoch", "[output][replication]")
{
    StandbyRegistry registry;
    BackupSettings backup;
    backup.listen = {"127.0.0.1", 0};
    BackupServer server(
        backup, registry,
        [](const proto::Hello &hello, std::string *) -> std::unique_ptr<StandbyGuest> {
            return std::make_unique<StandbyImage>(hello.guest_id(), hello.memory_size(), 0, "");
        },
        nullptr);
    server.start();
    testing::MemoryGuest guest("mail01", 4 << 20, 0);
    guest.start_workload(8, 500us);
    ReplicationSettings settings;
    settings.interval = 10ms;
    const auto port = server.port();
    Replicator replicator(
        guest,
        [port]() -> std::unique_ptr<Link> {
            Endpoint to{"127.0.0.1", port};
            auto fd = connect_tcp(to, 2s);
            tune_stream_socket(fd.get(), 2s);
            return std::make_unique<SocketLink>(std::move(fd), to.to_string(), 2s);
        },
        settings, nullptr);

    // The wire records, for each frame, the epoch the backup had acked when
    // the frame left; the guest records the epoch running when it sent it.
    std::mutex mutex;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> sent_acked; // (sent in epoch, acked when out)
    OutputBuffer buffer({}, [&](std::span<const std::uint8_t> f) {
        std::uint64_t in_epoch;
        std::memcpy(&in_epoch, f.data(), sizeof in_epoch);
        std::lock_guard lock(mutex);
        sent_acked.emplace_back(in_epoch, replicator.status().acked_epoch);
        return true;
    });
    struct EpochClock final : CheckpointParticipant {
        std::atomic<std::uint64_t> running{1};
        void on_pause(Epoch e) override { running = e.value + 1; }
    } clock;
    replicator.add_participant(clock);  // before the buffer: it seals with the same epoch
    replicator.add_participant(buffer);
    replicator.start();
    REQUIRE(replicator.wait_protected(20s));
    for (int i = 0; i < 300; ++i) {
        // Like the vCPU: a frame is sent while the guest runs, never while paused.
        const std::uint64_t e = clock.running;
        buffer.egress({reinterpret_cast<const std::uint8_t *>(&e), sizeof e});
        std::this_thread::sleep_for(1ms);
    }
    const auto last = replicator.checkpoint_now(10s);
    CHECK(last.value > 3);
    replicator.stop("test over");
    server.stop();
    // The buffer's lock is taken before the wire's (its transmit takes
    // `mutex`): never the other way round.
    CHECK(buffer.status().dropped_frames == 0);
    std::lock_guard lock(mutex);
    REQUIRE(sent_acked.size() == 300);
    for (auto [in_epoch, acked] : sent_acked) {
        INFO("frame of epoch " << in_epoch << " left when " << acked << " was acked");
        CHECK(acked >= in_epoch);
    }
}
