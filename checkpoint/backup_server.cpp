#include "checkpoint/backup_server.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "checkpoint/handshake.h"
#include "checkpoint/stream/socket_link.h"

namespace understudy {

namespace {
using Clock = std::chrono::steady_clock;

std::string host_of(const std::string &peer)
{
    const auto colon = peer.rfind(':');
    return colon == std::string::npos ? peer : peer.substr(0, colon);
}
} // namespace

struct BackupServer::Connection {
    std::string peer, host;
    UniqueFd watch;             // the socket duplicated: cut from the acceptor at the deadline
    Clock::time_point deadline; // for a valid Hello
    bool streaming = false;     // past the Hello: the deadline no longer applies
    bool cut = false;
    bool finished = false;      // its thread is done and may be joined
    std::thread thread;
};

BackupServer::BackupServer(BackupSettings settings, StandbyRegistry &registry, StandbyFactory factory, Log log)
    : settings_(std::move(settings)), registry_(registry), factory_(std::move(factory)), log_(std::move(log)),
      refusals_(log_), listener_(settings_.listen)
{
    if (!log_)
        log_ = [](const std::string &) {};
    if (settings_.tls)
        tls_ = std::make_unique<TlsContext>(*settings_.tls, TlsContext::Role::server);
}

BackupServer::~BackupServer()
{
    stop();
}

void BackupServer::start()
{
    acceptor_ = std::thread([this] { accept_loop(); });
}

void BackupServer::stop()
{
    if (stopping_.exchange(true))
        return;
    stopped_.notify_all();
    if (acceptor_.joinable())
        acceptor_.join();
    registry_.cut_all();
    std::list<Connection> connections;
    {
        std::lock_guard lock(mutex_);
        for (auto &c : connections_)
            if (!c.finished)
                ::shutdown(c.watch.get(), SHUT_RDWR);
        connections.swap(connections_);
    }
    for (auto &c : connections)
        if (c.thread.joinable())
            c.thread.join();
    refusals_.flush();
}

BackupServerCounters BackupServer::counters() const
{
    std::lock_guard lock(mutex_);
    BackupServerCounters c = counters_;
    c.handshaking = c.streaming = 0;
    for (const auto &x : connections_) {
        if (x.finished)
            continue;
        (x.streaming ? c.streaming : c.handshaking)++;
    }
    return c;
}

void BackupServer::reap_finished()
{
    std::list<Connection> done;
    {
        std::lock_guard lock(mutex_);
        for (auto it = connections_.begin(); it != connections_.end();) {
            auto next = std::next(it);
            if (it->finished)
                done.splice(done.end(), connections_, it);
            it = next;
        }
    }
    for (auto &c : done)
        c.thread.join();
}

void BackupServer::cut_late_handshakes()
{
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    for (auto &c : connections_) {
        if (c.streaming || c.finished || c.cut || now < c.deadline)
            continue;
        ::shutdown(c.watch.get(), SHUT_RDWR); // its thread's reads and writes fail now
        c.cut = true;
        ++counters_.handshakes_cut;
        refusals_.write("dropped connection from " + c.peer + ": no valid Hello within " +
                        std::to_string(settings_.handshake_timeout.count()) + " ms of connecting");
    }
}

void BackupServer::accept_loop()
{
    while (!stopping_) {
        progress_.mark();
        reap_finished();
        cut_late_handshakes();
        refusals_.flush();
        std::string peer;
        int error = 0;
        UniqueFd fd = listener_.accept(std::chrono::milliseconds(100), &peer, &error);
        if (fd) {
            admit(std::move(fd), peer);
            continue;
        }
        if (error == 0 || error == EINTR || error == ECONNABORTED)
            continue;
        {
            std::lock_guard lock(mutex_);
            ++counters_.accept_errors;
        }
        refusals_.write("accepting a stream connection on port " + std::to_string(port()) +
                        " failed: " + std::strerror(error) + "; the listener goes on");
        // Out of descriptors or memory: the connection stays queued and
        // would fail again at once; give the system a moment.
        std::unique_lock lock(mutex_);
        stopped_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_.load(); });
    }
}

void BackupServer::admit(UniqueFd fd, const std::string &peer)
{
    const std::string host = host_of(peer);
    std::unique_lock lock(mutex_);
    ++counters_.accepted;
    unsigned handshaking = 0, from_host = 0;
    for (const auto &c : connections_) {
        if (c.finished || c.streaming)
            continue;
        ++handshaking;
        from_host += c.host == host;
    }
    std::string refusal;
    if (handshaking >= settings_.max_handshakes)
        refusal = std::to_string(handshaking) + " connections are in their handshake (the limit)";
    else if (from_host >= settings_.max_handshakes_per_host)
        refusal = std::to_string(from_host) + " connections from " + host + " are in their handshake (the limit per host)";
    UniqueFd watch;
    if (refusal.empty()) {
        watch = UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
        if (!watch)
            refusal = std::string("no file descriptor to watch it: ") + std::strerror(errno);
    }
    if (!refusal.empty()) {
        ++counters_.refused_busy;
        lock.unlock();
        refusals_.write("refused connection from " + peer + ": " + refusal);
        return; // fd closes here
    }
    auto &c = connections_.emplace_back();
    c.peer = peer;
    c.host = host;
    c.watch = std::move(watch);
    c.deadline = Clock::now() + settings_.handshake_timeout;
    try {
        c.thread = std::thread([this, &c, fd = std::move(fd)]() mutable { run_connection(c, std::move(fd)); });
    } catch (const std::system_error &e) {
        connections_.pop_back(); // its descriptors close; nothing else refers to it
        ++counters_.refused_busy;
        lock.unlock();
        refusals_.write("refused connection from " + peer + ": cannot start a thread for it: " + e.what());
    }
}

void BackupServer::run_connection(Connection &connection, UniqueFd fd)
{
    try {
        tune_stream_socket(fd.get(), settings_.idle_timeout);
        std::unique_ptr<Link> link;
        if (tls_)
            link = tls_->handshake(std::move(fd), connection.peer, settings_.handshake_timeout);
        else
            link = std::make_unique<SocketLink>(std::move(fd), connection.peer, settings_.idle_timeout);
        serve(*link, &connection);
    } catch (const LinkTimeout &e) {
        {
            std::lock_guard lock(mutex_);
            ++counters_.handshakes_cut;
        }
        refusals_.write("dropped connection from " + connection.peer + ": " + e.what());
    } catch (const std::exception &e) {
        {
            std::lock_guard lock(mutex_);
            ++counters_.handshakes_failed;
        }
        refusals_.write("refused stream from " + connection.peer + ": " + e.what());
    }
    std::lock_guard lock(mutex_);
    connection.finished = true;
}

std::string BackupServer::admit_stream(Connection &connection)
{
    std::lock_guard lock(mutex_);
    if (connection.cut)
        return "its handshake took longer than " + std::to_string(settings_.handshake_timeout.count()) + " ms";
    unsigned streaming = 0;
    for (const auto &c : connections_)
        streaming += c.streaming && !c.finished;
    if (streaming >= settings_.max_streams) {
        ++counters_.refused_busy;
        return "this backup already receives " + std::to_string(streaming) + " streams (the limit)";
    }
    connection.streaming = true;
    return "";
}

void BackupServer::serve(Link &link)
{
    serve(link, nullptr);
}

void BackupServer::serve(Link &link, Connection *connection)
{
    RecordReader reader(link, settings_.handshake_timeout);
    RecordWriter writer(link);
    auto refuse = [&](const std::string &why) {
        refusals_.write("refused stream from " + link.peer() + ": " + why);
        if (connection) {
            std::lock_guard lock(mutex_);
            ++counters_.handshakes_failed;
        }
        try {
            refuse_hello(writer, why);
        } catch (const LinkError &) {
        }
    };
    proto::Hello hello;
    try {
        hello = read_hello(reader, settings_.max_memory_bytes, settings_.max_disk_bytes);
    } catch (const StreamError &e) {
        return refuse(e.what());
    }
    if (connection)
        if (auto refusal = admit_stream(*connection); !refusal.empty())
            return refuse("guest " + hello.guest_id() + ": " + refusal);
    std::string refusal;
    std::unique_ptr<StandbyGuest> fresh;
    try {
        fresh = factory_(hello, &refusal);
    } catch (const std::exception &e) {
        refusal = e.what();
    }
    if (!fresh) {
        log_("refused stream from " + link.peer() + " for guest " + hello.guest_id() + ": " + refusal);
        try {
            refuse_hello(writer, refusal);
        } catch (const LinkError &) {
        }
        return;
    }
    PageCodecSettings codec;
    try {
        codec = accept_hello(writer, hello);
    } catch (const LinkError &e) {
        log_("guest " + hello.guest_id() + ": stream from " + link.peer() + " ended at its Hello: " + e.what());
        return;
    }
    StandbyStream(registry_, hello, std::move(fresh), log_, events_)
        .run(link, reader, writer, settings_.idle_timeout, codec);
}

} // namespace understudy
