// What the in-process replication tests share: a replica directory, a
// connector to a BackupServer on loopback, and a participant that records
// what the primary's guest held at each checkpoint's pause (the truth a
// standby must equal).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

#include "checkpoint/checkpoint_participant.h"
#include "checkpoint/replicator.h"
#include "checkpoint/standby_image.h"
#include "checkpoint/stream/sha256.h"
#include "checkpoint/stream/socket_link.h"
#include "checkpoint/stream/tcp.h"
#include "checkpoint/stream/tls_link.h"
#include "tests/support/memory_guest.h"

namespace understudy::testing {

inline std::filesystem::path replica_dir()
{
    auto dir = std::filesystem::temp_directory_path() / ("understudy-unit-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    return dir;
}

inline std::vector<std::uint8_t> test_psk(std::uint8_t fill)
{
    return std::vector<std::uint8_t>(32, fill);
}

inline Replicator::Connect connect_to(std::uint16_t port, std::optional<TlsSettings> tls)
{
    using namespace std::chrono_literals;
    auto context = tls ? std::make_shared<TlsContext>(*tls, TlsContext::Role::client) : nullptr;
    return [port, context]() -> std::unique_ptr<Link> {
        Endpoint to{"127.0.0.1", port};
        auto fd = connect_tcp(to, 2s);
        tune_stream_socket(fd.get(), 2s);
        if (context)
            return context->handshake(std::move(fd), to.to_string(), 2s);
        return std::make_unique<SocketLink>(std::move(fd), to.to_string(), 2s);
    };
}

// The guest at the pause of each checkpoint: its memory's and disk's
// SHA-256 and its counter.
class CheckpointTruth final : public CheckpointParticipant {
  public:
    struct At {
        Sha256Digest memory{}, disk{};
        std::uint64_t counter = 0;
    };
    explicit CheckpointTruth(const MemoryGuest &guest) : guest_(guest) {}
    void on_pause(Epoch epoch) override
    {
        At at;
        Sha256 memory;
        memory.update(guest_.memory());
        at.memory = memory.finish();
        Sha256 disk;
        disk.update(guest_.disk());
        at.disk = disk.finish();
        at.counter = guest_.counter();
        std::lock_guard lock(mutex_);
        // Epoch numbers start again with every stream: the newest wins.
        truth_[epoch.value] = at;
    }
    [[nodiscard]] std::optional<At> at(std::uint64_t epoch) const
    {
        std::lock_guard lock(mutex_);
        auto it = truth_.find(epoch);
        return it == truth_.end() ? std::nullopt : std::optional<At>(it->second);
    }

  private:
    const MemoryGuest &guest_;
    mutable std::mutex mutex_;
    std::map<std::uint64_t, At> truth_;
};

// The SHA-256 of a standby image's memory and of its replica disk file.
inline std::pair<Sha256Digest, Sha256Digest> standby_digests(const StandbyImage &image)
{
    Sha256 memory;
    memory.update(image.memory());
    Sha256 disk;
    if (image.disk_bytes()) {
        std::vector<std::uint8_t> bytes(image.disk_bytes());
        image.read_disk(0, bytes);
        disk.update(bytes);
    }
    return {memory.finish(), disk.finish()};
}

} // namespace understudy::testing
