// The backup's listening side: accepts replication streams (TLS unless
// explicitly insecure) and runs each accepted stream (standby_stream.h).
// Anything wrong with a stream ends that stream with a log line; the server
// and the committed copies carry on.
//
// What a peer that holds no key can cost is bounded: at most
// max_handshakes connections (max_handshakes_per_host from one address) may
// be in their handshake at once, each for at most handshake_timeout from
// accept to a valid Hello (a peer that sends nothing or trickles bytes is
// cut); more are closed at once. Past the Hello, at most max_streams streams
// run. Each connection's thread is joined as soon as it ends. A connection
// that cannot get a thread, or an accept that fails (no descriptors left), is
// refused with a logged reason and the server goes on. Refusals are logged
// throttled (throttled_log.h) and counted.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "checkpoint/progress_mark.h"
#include "checkpoint/standby_registry.h"
#include "checkpoint/standby_stream.h"
#include "checkpoint/stream/tcp.h"
#include "checkpoint/stream/tls_link.h"
#include "checkpoint/throttled_log.h"
#include "proto/stream.pb.h"

namespace understudy {

struct BackupSettings {
    Endpoint listen{"0.0.0.0", 7300};
    std::optional<TlsSettings> tls; // none: insecure (benchmarks only)
    std::chrono::milliseconds handshake_timeout{5000}; // accept to a valid Hello, TLS included
    std::chrono::milliseconds idle_timeout{5000};
    std::uint64_t max_memory_bytes = 64ull << 30;
    std::uint64_t max_disk_bytes = 16ull << 40;
    unsigned max_handshakes = 32;
    unsigned max_handshakes_per_host = 8;
    unsigned max_streams = 64;
};

// Connections as the server saw them, since it started.
struct BackupServerCounters {
    std::uint64_t accepted = 0;
    std::uint64_t refused_busy = 0;      // over a handshake or stream limit, or no thread/descriptor for it
    std::uint64_t handshakes_cut = 0;    // no valid Hello within handshake_timeout
    std::uint64_t handshakes_failed = 0; // TLS or Hello refused
    std::uint64_t accept_errors = 0;
    unsigned handshaking = 0, streaming = 0; // now
};

// Makes an empty standby for the guest a Hello describes; returns null and
// sets `refusal` when this host will not hold it.
using StandbyFactory = std::function<std::unique_ptr<StandbyGuest>(const proto::Hello &hello, std::string *refusal)>;

class BackupServer {
  public:
    using Log = std::function<void(const std::string &)>;
    BackupServer(BackupSettings settings, StandbyRegistry &registry, StandbyFactory factory, Log log);
    ~BackupServer();

    // Set before start(): where commit failures and damaged standbys are told.
    void set_event_sink(StandbyEventSink sink) { events_ = std::move(sink); }
    void start();
    void stop();
    [[nodiscard]] std::uint16_t port() const noexcept { return listener_.port(); }
    [[nodiscard]] BackupServerCounters counters() const;
    // The accept loop goes round at least every 100 ms.
    [[nodiscard]] const ProgressMark &progress() const noexcept { return progress_; }

    // Serves one stream to its end (also used directly by tests).
    void serve(Link &link);

  private:
    struct Connection;

    void accept_loop();
    void admit(UniqueFd fd, const std::string &peer);
    void run_connection(Connection &connection, UniqueFd fd);
    void serve(Link &link, Connection *connection);
    // "" if a stream may start on `connection` (it then counts as one).
    std::string admit_stream(Connection &connection);
    void reap_finished();
    void cut_late_handshakes();

    BackupSettings settings_;
    StandbyRegistry &registry_;
    StandbyFactory factory_;
    Log log_;
    ThrottledLog refusals_;
    StandbyEventSink events_;
    TcpListener listener_;
    std::unique_ptr<TlsContext> tls_;
    std::atomic<bool> stopping_{false};
    ProgressMark progress_;
    std::thread acceptor_;

    mutable std::mutex mutex_;
    std::condition_variable stopped_;
    std::list<Connection> connections_;
    BackupServerCounters counters_;
};

} // namespace understudy
