// The stream writer and the backup's reader: a valid epoch round-trips, and
// hostile input of every kind is refused before anything is applied.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <random>

#include "checkpoint/epoch_commit.h"
#include "checkpoint/epoch_receiver.h"
#include "checkpoint/epoch_sender.h"
#include "checkpoint/handshake.h"
#include "checkpoint/standby_image.h"
#include "checkpoint/stream/memory_link.h"
#include "tests/fuzz/stream_fuzz_input.h"

using namespace understudy;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kMemory = 1 << 20; // 256 pages
constexpr std::uint64_t kDisk = 64 * 1024;

std::filesystem::path replica(const char *name)
{
    return std::filesystem::temp_directory_path() / ("understudy-stream-" + std::to_string(getpid()) + name);
}

// A staged checkpoint epoch with `pages` recognisable pages and one disk write.
void stage(StagingBuffer &b, Epoch epoch, std::uint64_t pages, std::uint8_t salt, std::uint32_t device_format = 7)
{
    b.reset(epoch, proto::EpochBegin::CHECKPOINT);
    std::vector<Pfn> pfns;
    for (std::uint64_t i = 0; i < pages; ++i)
        pfns.push_back(Pfn{i * 2 + 1});
    auto room = b.page_room(pfns.size());
    for (std::size_t i = 0; i < room.size(); ++i)
        room[i] = static_cast<std::uint8_t>((i / 7) ^ salt);
    b.pfns = pfns;
    b.has_state = true;
    b.cpu.Clear();
    b.cpu.set_format(7);
    b.cpu.mutable_kvm()->add_vcpus()->set_regs(std::string(8, static_cast<char>(salt)));
    b.devices.set_format(device_format);
    b.disk.writes.push_back({3, 2});
    b.disk.data.assign(1024, salt);
}

std::vector<std::uint8_t> encode(std::vector<std::pair<Epoch, std::uint8_t>> epochs, PageCodecSettings codec = {},
                                 std::uint32_t device_format = 7)
{
    MemoryLink link;
    RecordWriter writer(link);
    EpochSender sender(codec, kMemory);
    StagingBuffer buffer(kMemory);
    for (auto [epoch, salt] : epochs) {
        stage(buffer, epoch, 40, salt, device_format);
        SendCounters counters;
        sender.send(buffer, writer, counters);
    }
    return link.written();
}

// A standby that refuses device state of format 8, as a backend refuses
// device state that is not its own (XenStandby: not QEMU's).
struct PickyStandby final : StandbyImage {
    using StandbyImage::StandbyImage;
    std::string devices_problem(const proto::DeviceState &devices) const override
    {
        return devices.format() == 8 ? "format 8 is not this standby's" : "";
    }
};

struct Backup {
    PickyStandby standby{"g", kMemory, kDisk, replica("g")};
    ReceivedEpoch epoch;
    Epoch committed{0};

    // Receives and commits epochs until the input ends or is refused; returns
    // the refusal ("" if the input simply ended).
    std::string run(std::vector<std::uint8_t> bytes, PageCodecSettings codec = {})
    {
        MemoryLink link(std::move(bytes));
        RecordReader reader(link, 100ms);
        EpochReceiver receiver(standby, codec);
        EpochCommitter committer;
        try {
            for (;;) {
                proto::Goodbye bye;
                if (receiver.receive(reader, committed.next(), epoch, &bye) == EpochReceiver::Outcome::goodbye)
                    return "goodbye";
                committer.commit(epoch, standby, EpochCommitter::Undo::keep);
                committed = committed.next();
            }
        } catch (const StreamError &e) {
            return e.what();
        } catch (const LinkClosed &) {
            return "";
        }
    }
    std::vector<std::uint8_t> memory() const { return {standby.memory().begin(), standby.memory().end()}; }
};

} // namespace

TEST_CASE("epochs written by the sender are received and committed whole", "[stream]")
{
    auto codec = GENERATE(std::string("none"), std::string("lz4"), std::string("zstd"), std::string("xor+lz4"));
    INFO(codec);
    auto settings = parse_compression(codec);
    Backup backup;
    REQUIRE(backup.run(encode({{Epoch{1}, 1}, {Epoch{2}, 2}}, settings), settings) == "");
    CHECK(backup.committed == Epoch{2});
    // pfn 3 is the second page staged: its byte j was ((4096 + j) / 7) ^ salt.
    auto page = backup.standby.page(Pfn{3});
    for (std::size_t j : {0u, 1u, 4095u})
        CHECK(page[j] == static_cast<std::uint8_t>(((4096 + j) / 7) ^ 2));
    CHECK(backup.standby.page(Pfn{2})[0] == 0); // never sent
    REQUIRE(backup.standby.cpu());
    CHECK(backup.standby.cpu()->kvm().vcpus(0).regs() == std::string(8, 2));
}

TEST_CASE("hostile streams are refused and leave the committed standby as it was", "[stream][hostile]")
{
    Backup backup;
    REQUIRE(backup.run(encode({{Epoch{1}, 1}})) == "");
    const auto committed = backup.memory();
    auto valid = encode({{Epoch{1}, 1}, {Epoch{2}, 9}});
    // Only epoch 2 of `valid` is new to this backup: cut epoch 1 off.
    auto one = encode({{Epoch{1}, 1}});
    std::vector<std::uint8_t> second(valid.begin() + static_cast<std::ptrdiff_t>(one.size()), valid.end());

    SECTION("random bytes")
    {
        std::mt19937 rng(7);
        for (int i = 0; i < 200; ++i) {
            std::vector<std::uint8_t> junk(1 + rng() % 4000);
            for (auto &b : junk)
                b = static_cast<std::uint8_t>(rng());
            backup.run(junk);
        }
    }
    SECTION("the epoch truncated at every 997th byte")
    {
        for (std::size_t cut = 0; cut < second.size(); cut += 997)
            CHECK(backup.run({second.begin(), second.begin() + static_cast<std::ptrdiff_t>(cut)}) == "");
    }
    SECTION("one bit flipped anywhere in the epoch")
    {
        std::mt19937 rng(11);
        for (int i = 0; i < 300; ++i) {
            auto bad = second;
            const auto bit = rng() % (bad.size() * 8);
            bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
            auto why = backup.run(bad);
            INFO("bit " << bit);
            CHECK(why != "");
        }
    }
    SECTION("a replayed old epoch")
    {
        CHECK_THAT(backup.run(one), Catch::Contains("an old epoch replayed"));
    }
    SECTION("a header length past the limit")
    {
        std::vector<std::uint8_t> frame = {0xff, 0xff, 0xff, 0x7f, static_cast<std::uint8_t>(RecordType::epoch_begin)};
        CHECK_THAT(backup.run(frame), Catch::Contains("over the limit"));
    }
    SECTION("a page batch with too many pages or a payload past the limit")
    {
        MemoryLink link;
        RecordWriter writer(link);
        proto::EpochBegin begin;
        begin.set_epoch(2);
        begin.set_kind(proto::EpochBegin::CHECKPOINT);
        writer.write(RecordType::epoch_begin, begin);
        proto::PageBatch batch;
        for (std::uint64_t i = 0; i < kMaxPagesPerBatch + 1; ++i)
            batch.add_pfns(i);
        batch.set_encoding(proto::PageBatch::RAW);
        batch.set_payload_bytes(0xffffffffu);
        writer.write(RecordType::page_batch, batch);
        writer.flush();
        CHECK_THAT(backup.run(link.written()), Catch::Contains("pages (1 to 1024 allowed)"));
    }
    SECTION("a page past the end of guest memory")
    {
        MemoryLink link;
        RecordWriter writer(link);
        proto::EpochBegin begin;
        begin.set_epoch(2);
        begin.set_kind(proto::EpochBegin::CHECKPOINT);
        writer.write(RecordType::epoch_begin, begin);
        proto::PageBatch batch;
        batch.add_pfns(kMemory / kPageSize);
        batch.set_encoding(proto::PageBatch::RAW);
        batch.set_payload_bytes(kPageSize);
        std::vector<std::uint8_t> page(kPageSize, 0xee);
        writer.write(RecordType::page_batch, batch, page);
        writer.flush();
        CHECK_THAT(backup.run(link.written()), Catch::Contains("past the end"));
    }
    SECTION("disk writes outside the disk")
    {
        MemoryLink link;
        RecordWriter writer(link);
        proto::EpochBegin begin;
        begin.set_epoch(2);
        begin.set_kind(proto::EpochBegin::CHECKPOINT);
        writer.write(RecordType::epoch_begin, begin);
        proto::DiskWrites disk;
        auto *w = disk.add_writes();
        w->set_sector(0xffffffffffffffffull);
        w->set_sectors(2);
        disk.set_payload_bytes(1024);
        writer.write(RecordType::disk_writes, disk, std::vector<std::uint8_t>(1024));
        writer.flush();
        CHECK_THAT(backup.run(link.written()), Catch::Contains("outside the"));
    }
    SECTION("device state the standby refuses")
    {
        CHECK_THAT(backup.run(encode({{Epoch{2}, 9}}, {}, 8)),
                   Catch::Contains("DeviceState refused: format 8 is not this standby's"));
    }
    SECTION("a compressed batch when compression was not agreed")
    {
        CHECK_THAT(backup.run(encode({{Epoch{2}, 9}}, parse_compression("lz4"))),
                   Catch::Contains("was not agreed"));
    }
    CHECK(backup.committed == Epoch{1});
    CHECK(backup.memory() == committed);
}

TEST_CASE("a Hello that does not describe a guest this backup can hold is refused", "[stream][hostile]")
{
    auto hello_with = [](auto &&change) {
        proto::Hello hello;
        hello.set_protocol_version(kProtocolVersion);
        hello.set_guest_id("web");
        hello.set_page_size(static_cast<std::uint32_t>(kPageSize));
        hello.set_memory_size(64 << 20);
        hello.set_backend("kvm");
        hello.set_disk_bytes(1 << 20);
        change(hello);
        MemoryLink out;
        RecordWriter writer(out);
        writer.write(RecordType::hello, hello);
        writer.flush();
        MemoryLink in(out.written());
        RecordReader reader(in, 100ms);
        return read_hello(reader, 1ull << 30, 1ull << 30);
    };
    CHECK(hello_with([](proto::Hello &) {}).guest_id() == "web");
    CHECK_THROWS_WITH(hello_with([](proto::Hello &h) { h.set_protocol_version(2); }), Catch::Contains("protocol version 2"));
    CHECK_THROWS_WITH(hello_with([](proto::Hello &h) { h.set_guest_id("../etc"); }), Catch::Contains("guest id"));
    CHECK_THROWS_WITH(hello_with([](proto::Hello &h) { h.set_page_size(65536); }), Catch::Contains("page size"));
    CHECK_THROWS_WITH(hello_with([](proto::Hello &h) { h.set_memory_size(2ull << 30); }), Catch::Contains("at most"));
    CHECK_THROWS_WITH(hello_with([](proto::Hello &h) { h.set_memory_size(4097); }), Catch::Contains("whole pages"));
    CHECK_THROWS_WITH(hello_with([](proto::Hello &h) { h.set_disk_bytes(1ull << 62); }), Catch::Contains("disk of"));
    CHECK_THROWS_WITH(hello_with([](proto::Hello &h) { h.set_disk_bytes(100); }), Catch::Contains("whole sectors"));
}

TEST_CASE("the stream fuzz target's seeds are real streams: every one commits all its epochs", "[stream][fuzz]")
{
    // So that the fuzzer starts from inputs that reach the commit, whatever
    // the protocol became since the seeds were written (tests/fuzz/seed_writer.cpp).
    const auto dir = std::filesystem::path(UNDERSTUDY_SOURCE_DIR) / "tests/fuzz/corpus/stream_reader";
    unsigned seeds = 0;
    for (const auto &file : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(file.path(), std::ios::binary);
        std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        REQUIRE(!bytes.empty());
        const auto input = fuzz::stream_input(bytes);
        INFO(file.path().filename().string());
        StandbyImage standby("fuzz", fuzz::kStandbyMemory, fuzz::kStandbyDisk, replica("seed"));
        MemoryLink link(std::vector<std::uint8_t>(input.stream.begin(), input.stream.end()), input.authenticates);
        RecordReader reader(link, 100ms);
        EpochReceiver receiver(standby, input.codec);
        EpochCommitter committer;
        ReceivedEpoch epoch;
        Epoch expected{1};
        proto::Goodbye bye;
        while (receiver.receive(reader, expected, epoch, &bye) == EpochReceiver::Outcome::epoch) {
            committer.commit(epoch, standby, EpochCommitter::Undo::keep);
            expected = expected.next();
        }
        CHECK(expected.value == 5); // four epochs, then the goodbye
        CHECK(bye.guest_runs_on());
        CHECK(standby.cpu());
        ++seeds;
    }
    CHECK(seeds >= 10);
}
