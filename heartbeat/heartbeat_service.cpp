#include "heartbeat/heartbeat_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

#include "heartbeat/heartbeat_codec.h"

namespace understudy {

namespace {

using Clock = std::chrono::steady_clock;

std::uint32_t ipv4_of(const Endpoint &e, const char *what)
{
    in_addr a{};
    if (inet_pton(AF_INET, e.host.c_str(), &a) != 1)
        throw std::runtime_error(std::string("heartbeat ") + what + " '" + e.host +
                                 "': an IPv4 address is needed (no names: a heartbeat must not wait for DNS)");
    return a.s_addr;
}

std::string ip_text(std::uint32_t ip)
{
    char buf[INET_ADDRSTRLEN] = "?";
    in_addr a{ip};
    inet_ntop(AF_INET, &a, buf, sizeof buf);
    return buf;
}

std::uint64_t unix_ns()
{
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

} // namespace

HeartbeatService::HeartbeatService(HeartbeatSettings settings, Fill fill, Log log)
    : settings_(std::move(settings)), fill_(std::move(fill)), log_(std::move(log)),
      boot_id_(std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)),
      tracks_(settings_.paths.size())
{
    if (settings_.key.size() < 32)
        throw std::runtime_error("heartbeat: the pair's key must have at least 32 bytes");
    if (settings_.paths.empty())
        throw std::runtime_error("heartbeat: no path to the peer configured");
    for (const auto &p : settings_.paths)
        path_ips_.push_back(ipv4_of(p, "path"));
    socket_ = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!socket_)
        throw std::runtime_error(std::string("heartbeat: socket: ") + std::strerror(errno));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = ipv4_of(settings_.listen, "listen address");
    at.sin_port = htons(settings_.listen.port);
    if (::bind(socket_.get(), reinterpret_cast<sockaddr *>(&at), sizeof at) != 0)
        throw std::runtime_error("heartbeat: cannot listen on " + settings_.listen.to_string() + ": " +
                                 std::strerror(errno));
    socklen_t len = sizeof at;
    getsockname(socket_.get(), reinterpret_cast<sockaddr *>(&at), &len);
    port_ = ntohs(at.sin_port);
}

HeartbeatService::~HeartbeatService()
{
    stop();
}

void HeartbeatService::start()
{
    sender_ = std::thread([this] {
        auto next = Clock::now();
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            lock.unlock();
            sender_progress_.mark();
            send_round();
            lock.lock();
            next += settings_.interval;
            if (next < Clock::now())
                next = Clock::now();
            lock.unlock();
            std::this_thread::sleep_until(next);
            lock.lock();
        }
    });
    receiver_ = std::thread([this] { receive_loop(); });
    raise_priority();
}

void HeartbeatService::raise_priority()
{
    // Above every normal thread, below the kernel's own real-time work.
    sched_param param{};
    param.sched_priority = std::min(50, sched_get_priority_max(SCHED_RR));
    int failed = 0;
    for (auto *t : {&sender_, &receiver_})
        if (int e = pthread_setschedparam(t->native_handle(), SCHED_RR, &param); e != 0)
            failed = e;
    if (log_)
        log_(failed ? std::string("heartbeat: threads at normal priority (real-time priority refused: ") +
                          std::strerror(failed) + "); a busy host may delay its heartbeats"
                    : std::string("heartbeat: threads at real-time priority (SCHED_RR ") +
                          std::to_string(param.sched_priority) + ")");
}

void HeartbeatService::stop()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    if (sender_.joinable())
        sender_.join();
    if (receiver_.joinable())
        receiver_.join();
}

void HeartbeatService::send_now()
{
    send_round();
}

void HeartbeatService::send_round()
{
    if (muted_)
        return;
    std::lock_guard lock(send_mutex_);
    proto::HeartbeatPacket packet;
    if (fill_)
        fill_(packet);
    packet.set_node(settings_.node);
    packet.set_boot_id(boot_id_);
    packet.set_seq(++seq_);
    packet.set_sent_unix_ns(unix_ns());
    {
        std::lock_guard heard(mutex_);
        packet.set_echo_boot_id(heard_boot_);
        packet.set_echo_seq(heard_seq_);
    }
    std::vector<std::uint8_t> bytes;
    try {
        bytes = seal_heartbeat(packet, settings_.key);
    } catch (const std::exception &e) {
        if (log_)
            log_(e.what());
        return;
    }
    for (std::size_t i = 0; i < settings_.paths.size(); ++i) {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = path_ips_[i];
        to.sin_port = htons(settings_.paths[i].port);
        // A path that is down fails here (no route, unreachable); the others
        // still get theirs.
        (void)::sendto(socket_.get(), bytes.data(), bytes.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr *>(&to),
                       sizeof to);
    }
}

void HeartbeatService::receive_loop()
{
    std::vector<std::uint8_t> buf(kMaxHeartbeatBytes + 1);
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_)
                return;
        }
        receiver_progress_.mark();
        pollfd p{socket_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        sockaddr_in from{};
        socklen_t len = sizeof from;
        const ssize_t n = ::recvfrom(socket_.get(), buf.data(), buf.size(), MSG_DONTWAIT,
                                     reinterpret_cast<sockaddr *>(&from), &len);
        if (n < 0)
            continue;
        handle({buf.data(), static_cast<std::size_t>(n)}, from.sin_addr.s_addr);
    }
}

void HeartbeatService::refuse(PathTrack *path, const std::string &why, const std::string &from)
{
    // Called with mutex_ held.
    if (path)
        ++path->refused;
    else
        ++refused_unknown_;
    const auto now = Clock::now();
    if (log_ && now - last_refusal_log_ > std::chrono::seconds(10)) {
        last_refusal_log_ = now;
        log_("heartbeat: refused a packet from " + from + ": " + why);
    }
}

void HeartbeatService::handle(std::span<const std::uint8_t> bytes, std::uint32_t from_ip)
{
    const std::string from = ip_text(from_ip);
    std::string why;
    auto packet = open_heartbeat(bytes, settings_.key, &why);
    std::lock_guard lock(mutex_);
    PathTrack *path = nullptr;
    for (std::size_t i = 0; i < path_ips_.size(); ++i)
        if (path_ips_[i] == from_ip)
            path = &tracks_[i];
    if (!path)
        return refuse(nullptr, "not the peer's address on any configured path", from);
    if (!packet)
        return refuse(path, why, from);
    if (!settings_.peer_node.empty() && packet->node() != settings_.peer_node)
        return refuse(path, "sent by node '" + packet->node().substr(0, 64) + "', the peer is '" +
                                settings_.peer_node + "'",
                      from);
    if (packet->node() == settings_.node && packet->boot_id() == boot_id_)
        return refuse(path, "our own packet came back", from);
    // Echoed in our next packets: that is what lets the peer believe a new
    // run of ours, and us a new run of the peer's.
    if (packet->boot_id() != heard_boot_ || packet->seq() > heard_seq_) {
        heard_boot_ = packet->boot_id();
        heard_seq_ = packet->seq();
    }
    // Replay: within one daemon run the sequence grows; a packet of another
    // run is believed if it echoes this run and one of its recent sequence
    // numbers (it was made after hearing us lately), whatever the clocks
    // say, or else if it was sent later than anything believed so far.
    const bool current_run = last_ && last_->boot_id() == packet->boot_id();
    if (current_run) {
        if (path->boot_id == packet->boot_id() && packet->seq() <= path->seq)
            return refuse(path, "replayed or out of date (seq " + std::to_string(packet->seq()) + ")", from);
    } else {
        const std::uint64_t ours = seq_.load();
        const std::uint64_t window = std::max<std::uint64_t>(
            32, 4 * static_cast<std::uint64_t>(settings_.timeout / settings_.interval));
        const bool echoes_us = packet->echo_boot_id() == boot_id_ && packet->echo_seq() <= ours &&
                               packet->echo_seq() + window >= ours;
        // Where the peer does not hear us (one way only), its clock is the
        // only evidence left: a run sent later than anything believed so far.
        const bool later = !last_ || packet->sent_unix_ns() > last_->sent_unix_ns();
        if (!echoes_us && !later) {
            if (packet->echo_boot_id() == boot_id_ || (last_ && packet->echo_boot_id() == 0))
                return refuse(path, "replayed or out of date (run " + std::to_string(packet->boot_id()) +
                                        ", echoing our sequence " + std::to_string(packet->echo_seq()) +
                                        " while we are at " + std::to_string(ours) + ")",
                              from);
            return; // a new run not yet confirmed: its next packet echoes ours
        }
    }
    path->boot_id = packet->boot_id();
    path->seq = packet->seq();
    path->last_good = Clock::now();
    ++path->received;
    if (!current_run || packet->seq() > last_->seq())
        last_ = std::move(*packet);
}

PeerView HeartbeatService::peer() const
{
    std::lock_guard lock(mutex_);
    PeerView v;
    const auto now = Clock::now();
    for (std::size_t i = 0; i < tracks_.size(); ++i) {
        const auto &t = tracks_[i];
        HeartbeatPath p;
        p.peer = settings_.paths[i];
        p.received = t.received;
        p.refused = t.refused;
        if (t.received) {
            p.silent_s = std::chrono::duration<double>(now - t.last_good).count();
            p.alive = now - t.last_good < settings_.timeout;
            v.ever_heard = true;
            if (v.silent_s < 0 || p.silent_s < v.silent_s)
                v.silent_s = p.silent_s;
        }
        if (p.alive)
            v.all_silent = false;
        v.paths.push_back(p);
    }
    v.last = last_;
    v.refused_unknown = refused_unknown_;
    return v;
}

} // namespace understudy
