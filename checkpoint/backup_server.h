// The backup's listening side: accepts replication streams (TLS unless
// explicitly insecure), runs one session per stream that receives epochs
// into a side buffer, commits each verified epoch to the guest's standby copy
// and acks it (ARCHITECTURE.md §3). Anything wrong with a stream ends that
// stream with a log line; the server and the committed copies carry on.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "checkpoint/standby_registry.h"
#include "checkpoint/stream/tcp.h"
#include "checkpoint/stream/tls_link.h"
#include "proto/stream.pb.h"

namespace understudy {

struct BackupSettings {
    Endpoint listen{"0.0.0.0", 7300};
    std::optional<TlsSettings> tls; // none: insecure (benchmarks only)
    std::chrono::milliseconds handshake_timeout{5000};
    std::chrono::milliseconds idle_timeout{5000};
    std::uint64_t max_memory_bytes = 64ull << 30;
    std::uint64_t max_disk_bytes = 16ull << 40;
};

// Makes an empty standby for the guest a Hello describes; returns null and
// sets `refusal` when this host will not hold it.
using StandbyFactory = std::function<std::unique_ptr<StandbyGuest>(const proto::Hello &hello, std::string *refusal)>;

class BackupServer {
  public:
    using Log = std::function<void(const std::string &)>;
    BackupServer(BackupSettings settings, StandbyRegistry &registry, StandbyFactory factory, Log log);
    ~BackupServer();

    void start();
    void stop();
    [[nodiscard]] std::uint16_t port() const noexcept { return listener_.port(); }

    // Serves one stream to its end (also used directly by tests).
    void serve(Link &link);

  private:
    void accept_loop();

    BackupSettings settings_;
    StandbyRegistry &registry_;
    StandbyFactory factory_;
    Log log_;
    TcpListener listener_;
    std::unique_ptr<TlsContext> tls_;
    std::atomic<bool> stopping_{false};
    std::thread acceptor_;
    std::mutex sessions_mutex_;
    std::list<std::thread> sessions_;
};

} // namespace understudy
