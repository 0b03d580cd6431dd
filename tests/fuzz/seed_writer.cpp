// Writes the fuzz targets' seed corpora (tests/fuzz/corpus/TARGET/): real
// streams of epochs as the primary's EpochSender writes them, for every
// codec, on a link that authenticates its bytes and on one that does not;
// a Hello and a HelloReply; signed heartbeat bodies; control requests as
// `understudy` frames them; configuration files. Run after a change to the
// protocol: `build/bin/fuzz_seed_writer tests/fuzz/corpus`.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "checkpoint/epoch_sender.h"
#include "checkpoint/handshake.h"
#include "checkpoint/stream/memory_link.h"
#include "proto/control.pb.h"
#include "proto/heartbeat.pb.h"

using namespace understudy;
namespace fs = std::filesystem;

namespace {

// The geometry of stream_reader_fuzz's standby: 64 pages, 32 sectors.
constexpr std::uint64_t kMemory = 64 * 4096;

void write(const fs::path &file, const std::vector<std::uint8_t> &bytes)
{
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char *>(bytes.data()),
                                                 static_cast<std::streamsize>(bytes.size()));
}

// The stream fuzz target's first byte for a codec, XOR delta and link.
std::uint8_t mode_byte(int compressor, bool xor_delta, bool authenticated)
{
    for (int b = 0; b < 256; ++b)
        if (b % 3 == compressor && ((b & 4) != 0) == xor_delta && ((b & 8) != 0) == authenticated)
            return static_cast<std::uint8_t>(b);
    return 0;
}

void stage(StagingBuffer &b, Epoch epoch, bool checkpoint, std::uint8_t salt)
{
    b.reset(epoch, checkpoint ? proto::EpochBegin::CHECKPOINT : proto::EpochBegin::PRECOPY);
    std::vector<Pfn> pfns;
    for (std::uint64_t i = 0; i < (checkpoint ? 3u : 4u); ++i)
        pfns.push_back(Pfn{checkpoint ? i * 3 + salt % 3 : i});
    auto room = b.page_room(pfns.size());
    for (std::size_t i = 0; i < room.size(); ++i)
        room[i] = static_cast<std::uint8_t>((i / 64) ^ salt);
    b.pfns = pfns;
    b.disk.writes.push_back({static_cast<std::uint64_t>(salt % 8), 2});
    b.disk.data.assign(1024, salt);
    if (checkpoint) {
        b.has_state = true;
        b.cpu.Clear();
        b.cpu.set_format(1);
        b.cpu.mutable_kvm()->add_vcpus()->set_regs(std::string(16, static_cast<char>(salt)));
        b.devices.Clear();
        b.devices.set_format(1);
    }
}

std::vector<std::uint8_t> stream(PageCodecSettings codec, bool authenticated)
{
    MemoryLink link({}, authenticated ? MemoryLink::Authenticates::yes : MemoryLink::Authenticates::no);
    RecordWriter writer(link);
    EpochSender sender(codec, kMemory);
    StagingBuffer buffer(kMemory);
    SendCounters counters;
    for (std::uint64_t e = 1; e <= 4; ++e) {
        stage(buffer, Epoch{e}, e > 1, static_cast<std::uint8_t>(e * 37));
        sender.send(buffer, writer, counters);
    }
    proto::Goodbye bye;
    bye.set_reason("seed over");
    bye.set_guest_runs_on(true);
    writer.write(RecordType::goodbye, bye);
    writer.flush();
    return link.written();
}

std::vector<std::uint8_t> frame(const google::protobuf::MessageLite &m)
{
    const std::string body = m.SerializeAsString();
    std::vector<std::uint8_t> out(4 + body.size());
    for (int i = 0; i < 4; ++i)
        out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(body.size() >> (8 * i));
    std::memcpy(out.data() + 4, body.data(), body.size());
    return out;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::cerr << "usage: fuzz_seed_writer CORPUS-DIR\n";
        return 2;
    }
    const fs::path dir = argv[1];
    const std::pair<const char *, const char *> codecs[] = {
        {"none", "raw"}, {"lz4", "lz4"}, {"zstd", "zstd"}, {"xor+lz4", "xor-lz4"}, {"xor+zstd", "xor-zstd"}};
    for (const auto &[codec_name, file] : codecs) {
        const auto codec = parse_compression(codec_name);
        const int compressor = codec.compressor == proto::PageBatch::LZ4    ? 1
                               : codec.compressor == proto::PageBatch::ZSTD ? 2
                                                                            : 0;
        for (bool authenticated : {false, true}) {
            auto bytes = stream(codec, authenticated);
            bytes.insert(bytes.begin(), mode_byte(compressor, codec.xor_delta, authenticated));
            write(dir / "stream_reader" / (std::string(file) + (authenticated ? "-tls" : "-sha256")), bytes);
        }
    }

    { // hello_fuzz: byte 0 odd = the backup reading a Hello, even = the primary reading the reply
        MemoryLink link;
        RecordWriter writer(link);
        proto::Hello hello;
        hello.set_protocol_version(kProtocolVersion);
        hello.set_guest_id("web01");
        hello.set_page_size(4096);
        hello.set_memory_size(64 << 20);
        hello.set_backend("kvm");
        hello.set_disk_bytes(8 << 20);
        hello.add_features("lz4");
        hello.add_features("xor-delta");
        hello.set_stream_id(0x1234567890abcdefull);
        writer.write(RecordType::hello, hello);
        writer.flush();
        auto bytes = link.written();
        bytes.insert(bytes.begin(), 1);
        write(dir / "hello" / "hello", bytes);
        MemoryLink reply_link;
        RecordWriter reply_writer(reply_link);
        proto::HelloReply reply;
        reply.set_accepted(true);
        reply.add_features("lz4");
        reply_writer.write(RecordType::hello_reply, reply);
        reply_writer.flush();
        bytes = reply_link.written();
        bytes.insert(bytes.begin(), 0);
        write(dir / "hello" / "reply", bytes);
    }

    { // heartbeat_fuzz: byte 0 even = a body signed there
        proto::HeartbeatPacket p;
        p.set_node("hostb");
        p.set_boot_id(77);
        p.set_seq(5);
        p.set_sent_unix_ns(1'800'000'000'000'000'000ull);
        p.set_witness_reachable(true);
        auto *g = p.add_guests();
        g->set_name("web");
        g->set_role("primary");
        g->set_acked_epoch(4711);
        g->set_stream_id(99);
        g->set_active_since_unix_ns(1'799'000'000'000'000'000ull);
        auto *s = p.add_guests();
        s->set_name("db");
        s->set_role("standby");
        s->set_acked_epoch(12);
        const std::string body = p.SerializeAsString();
        std::vector<std::uint8_t> bytes(body.begin(), body.end());
        bytes.insert(bytes.begin(), 0);
        write(dir / "heartbeat" / "primary-and-standby", bytes);
    }

    { // control_fuzz: frames as `understudy` sends them
        proto::ControlRequest r;
        r.mutable_status()->set_guest("");
        write(dir / "control" / "status", frame(r));
        r.Clear();
        r.mutable_events()->set_after(0);
        write(dir / "control" / "events", frame(r));
        r.Clear();
        r.mutable_takeover()->set_guest("web");
        r.mutable_takeover()->set_force(true);
        write(dir / "control" / "takeover", frame(r));
        r.Clear();
        r.mutable_discard()->set_guest("web");
        write(dir / "control" / "discard", frame(r));
        r.Clear();
        r.mutable_checksum()->set_guest("web");
        write(dir / "control" / "checksum", frame(r));
    }

    { // config_fuzz
        const std::string config = "[daemon]\nnode = host-a   ; this host\nmetrics = 127.0.0.1:9464\n"
                                   "[replication]\nlisten = 0.0.0.0:7300\ninsecure = yes\ninterval_ms = 25\n"
                                   "compression = xor+lz4\n[heartbeat]\npeer_node = host-b\npaths = 10.98.0.2, "
                                   "10.99.0.12\nwitness = 10.99.0.1 # a router\nfence_command = \"true ; true\"\n"
                                   "after_split_brain = discard-younger\n[guest web]\nkernel = /k.elf\n"
                                   "memory_mib = 64\ntap = tap-web\nip = 10.99.0.2/24\ndisk = /d.img\n";
        write(dir / "config" / "pair", std::vector<std::uint8_t>(config.begin(), config.end()));
    }
    std::cout << "seeds written under " << dir << "\n";
    return 0;
}
