#include "dom0d/daemon/daemon.h"

#include <fstream>
#include <iomanip>
#include <sstream>

#include "checkpoint/kvm/kvm_guest.h"
#include "checkpoint/kvm/kvm_standby.h"
#include "checkpoint/stream/sha256.h"
#include "checkpoint/stream/socket_link.h"
#include "checkpoint/xen/xen_guest.h"
#include "netbuffer_qdisc/plug_qdisc.h"

namespace understudy::daemon {

namespace {

std::string hex(const Sha256Digest &d)
{
    std::ostringstream out;
    for (auto b : d)
        out << std::hex << std::setw(2) << std::setfill('0') << static_cast<unsigned>(b);
    return out.str();
}

std::string digest_of(const google::protobuf::MessageLite &m)
{
    Sha256 sha;
    auto bytes = m.SerializeAsString();
    sha.update({reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()});
    return hex(sha.finish());
}

std::uint64_t unix_now_ns()
{
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

proto::ControlResponse failure(const std::string &error)
{
    proto::ControlResponse r;
    r.set_ok(false);
    r.set_error(error);
    return r;
}

proto::ControlResponse success(const std::string &message)
{
    proto::ControlResponse r;
    r.set_ok(true);
    r.set_message(message);
    return r;
}

} // namespace

Daemon::Daemon(DaemonConfig config, Log log) : config_(std::move(config)), log_(std::move(log)), events_(log_)
{
    if (config_.tls)
        client_tls_ = std::make_shared<TlsContext>(*config_.tls, TlsContext::Role::client);
}

Daemon::~Daemon()
{
    stop();
}

void Daemon::start()
{
    std::filesystem::create_directories(config_.state_dir);
    // Replica disks of copies that were being built when this daemon last
    // stopped (StandbyImage): nothing refers to them any more.
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator(config_.state_dir, ec))
        if (entry.path().filename().string().find(".replica.img.syncing.") != std::string::npos)
            std::filesystem::remove(entry.path(), ec);
    if (config_.insecure)
        log_("WARNING: replication is INSECURE (insecure = yes): any host that can reach this one can open a "
             "stream and write guest state. Use this for benchmarks only.");
    plug_qdisc_ = kernel_has_plug(&plug_qdisc_detail_);
    log_(std::string("output commit: kvm guests hold their output in the VMM; host interfaces can use tap redirect "
                     "(scripts/netbuf-setup); plug qdisc: ") +
         (plug_qdisc_ ? "available" : "not available: " + plug_qdisc_detail_));
    if (config_.failover)
        start_failover(); // first: a guest the peer runs must not start here too
    for (const auto &g : config_.guests) {
        if (!g.autostart)
            continue;
        if (failover_ && failover_->peer_runs(g.name)) {
            events_.add(g.name, "autostart_skipped",
                        config_.failover->heartbeat.peer_node + " runs it (after a failover): not starting a second "
                                                                "copy; protect it from there to make this host its backup");
            continue;
        }
        boot(g);
    }
    if (config_.listen) {
        BackupSettings settings;
        settings.listen = *config_.listen;
        settings.tls = config_.tls;
        settings.idle_timeout = std::max(config_.replication.ack_timeout * 2, std::chrono::milliseconds(2000));
        server_ = std::make_unique<BackupServer>(
            settings, registry_,
            [this](const proto::Hello &hello, std::string *refusal) { return make_standby(hello, refusal); }, log_);
        server_->set_event_sink([this](const std::string &guest, const std::string &kind, const std::string &reason) {
            events_.add(guest, kind, reason);
        });
        server_->start();
        log_("accepting replication streams on " + settings.listen.host + ":" + std::to_string(server_->port()) +
             (config_.tls ? " (TLS 1.3)" : " (INSECURE)"));
    }
    if (!config_.failover)
        log_("no [heartbeat] section: no failure detection, no automatic failover");
}

void Daemon::stop()
{
    if (failover_)
        failover_->stop();
    failover_.reset();
    std::map<std::string, Running> guests;
    {
        std::lock_guard lock(mutex_);
        guests.swap(guests_);
    }
    for (auto &[name, r] : guests) {
        if (!r.replicator)
            continue;
        // A kvm guest runs inside this process and stops with it: output of
        // epochs the backup has not committed must never leave (the backup
        // may resume from before it), and the standby stays current. A Xen
        // domain runs on without protection: its output goes out, and the
        // goodbye tells the backup that its copy is outdated.
        const bool stops = dynamic_cast<kvm::KvmGuest *>(r.guest.get()) != nullptr;
        if (stops)
            for (auto *b : r.buffers())
                b->cut_off();
        r.replicator->stop(stops ? "the primary's understudyd is shutting down, and the guest with it"
                                 : "the primary's understudyd is shutting down; the domain runs on unprotected",
                           stops ? Replicator::GuestAfterStop::stops : Replicator::GuestAfterStop::runs_on);
    }
    guests.clear();
    if (server_)
        server_->stop();
    server_.reset();
}

std::vector<std::string> Daemon::stalled_loops(double limit_s) const
{
    std::vector<std::string> out;
    if (failover_)
        out = failover_->stalled(limit_s);
    if (server_)
        if (const double age = server_->progress().age_s(); age > limit_s)
            out.push_back("the stream listener (no round for " + std::to_string(static_cast<int>(age)) + " s)");
    return out;
}

std::uint16_t Daemon::stream_port() const
{
    return server_ ? server_->port() : 0;
}

void Daemon::boot(const GuestConfig &g)
{
    kvm::KvmGuestConfig vm = g.vm;
    vm.console = [this, name = g.name](std::string_view text) {
        static thread_local std::string line;
        for (char c : text) {
            if (c == '\n') {
                log_("guest " + name + " console: " + line);
                line.clear();
            } else if (line.size() < 512) {
                line += c;
            }
        }
    };
    if (!g.tap.empty())
        vm.tap = std::make_shared<kvm::TapDevice>(g.tap);
    if (!g.disk.empty())
        vm.disk = std::make_shared<kvm::BlockImage>(g.disk, g.disk_bytes);
    auto guest = kvm::KvmGuest::boot(std::move(vm));
    log_("guest " + g.name + ": started (" + std::to_string(g.vm.memory_bytes >> 20) + " MiB, tap " +
         (g.tap.empty() ? "none" : g.tap) + ", disk " + (g.disk.empty() ? "none" : g.disk.string()) + ")");
    std::lock_guard lock(mutex_);
    Running r;
    r.guest = std::move(guest);
    r.role = "standalone";
    r.active_since_unix_ns = unix_now_ns();
    guests_[g.name] = std::move(r);
}

std::vector<OutputBuffer *> Daemon::Running::buffers() const
{
    if (output)
        return {&output->buffer()};
    if (vif_output)
        return vif_output->buffers();
    return {};
}

std::unique_ptr<StandbyGuest> Daemon::make_standby(const proto::Hello &hello, std::string *refusal) const
{
    const GuestConfig *g = config_.guest(hello.guest_id());
    if (!g) {
        *refusal = "guest " + hello.guest_id() + " is not configured on " + config_.node;
        return nullptr;
    }
    if (hello.backend() != g->backend) {
        *refusal = "guest " + hello.guest_id() + " uses backend " + hello.backend() + " on the primary and " +
                   g->backend + " (its [guest] section) on " + config_.node;
        return nullptr;
    }
    if (g->backend == "xen") {
        {
            std::lock_guard lock(mutex_);
            if (runs_here(hello.guest_id())) {
                *refusal = "guest " + hello.guest_id() + " is running on " + config_.node + "; it cannot also be its standby";
                return nullptr;
            }
        }
        return make_xen_standby(hello, *g, refusal);
    }
    if (hello.memory_size() != g->vm.memory_bytes) {
        *refusal = "guest " + hello.guest_id() + " has " + std::to_string(hello.memory_size() >> 20) +
                   " MiB on the primary and " + std::to_string(g->vm.memory_bytes >> 20) + " MiB (memory_mib) on " +
                   config_.node;
        return nullptr;
    }
    {
        std::lock_guard lock(mutex_);
        if (runs_here(hello.guest_id())) {
            *refusal = "guest " + hello.guest_id() + " is running on " + config_.node + "; it cannot also be its standby";
            return nullptr;
        }
    }
    auto replica = config_.state_dir / (hello.guest_id() + ".replica.img");
    if (!g->disk.empty() && hello.disk_bytes() == 0)
        log_("guest " + hello.guest_id() + ": the primary replicates no disk");
    return std::make_unique<kvm::KvmStandby>(g->vm, g->tap, hello.memory_size(), hello.disk_bytes(), replica);
}

Replicator::Connect Daemon::connector(const Endpoint &peer) const
{
    auto tls = client_tls_;
    auto timeout = config_.replication.ack_timeout;
    return [peer, tls, timeout]() -> std::unique_ptr<Link> {
        auto fd = connect_tcp(peer, timeout);
        tune_stream_socket(fd.get(), timeout);
        if (tls)
            return tls->handshake(std::move(fd), peer.to_string(), timeout);
        return std::make_unique<SocketLink>(std::move(fd), peer.to_string(), timeout);
    };
}

std::string Daemon::protect(const std::string &name, const std::string &peer_text, bool allow_unreplicated_disk)
{
    Endpoint peer;
    try {
        peer = parse_endpoint(peer_text, kDefaultStreamPort);
    } catch (const std::invalid_argument &e) {
        throw std::runtime_error(std::string("--peer: ") + e.what());
    }
    if (failover_)
        if (auto split = failover_->split_brain_of(name); !split.empty())
            throw std::runtime_error("guest " + name + " " + split + ": not protecting it until one copy is stopped "
                                     "(`understudy discard " + name + "` on the host whose copy is to go)");
    std::lock_guard lock(mutex_);
    auto it = guests_.find(name);
    if (it == guests_.end()) {
        const GuestConfig *g = config_.guest(name);
        if (g && g->backend == "kvm")
            throw std::runtime_error("guest " + name + " is not running on " + config_.node);
        // Not one of ours: an xl domain, by name or domid.
        return protect_xen(name, peer, allow_unreplicated_disk);
    }
    if (it->second.backend == "xen" && !it->second.replicator && it->second.role != "relinquished") {
        // A domain that runs here unprotected (taken over from the peer):
        // protected like any xl domain, by its domid.
        auto *domain = dynamic_cast<xen::XenGuest *>(it->second.guest.get());
        const auto domid = std::to_string(domain->domid());
        const auto since = it->second.active_since_unix_ns;
        guests_.erase(it);
        return protect_xen(domid, peer, allow_unreplicated_disk, since);
    }
    if (allow_unreplicated_disk)
        throw std::runtime_error("--allow-unreplicated-disk is for Xen domains; kvm guests replicate their disk "
                                 "with their memory");
    if (it->second.replicator)
        throw std::runtime_error("guest " + name + " is already protected (unprotect it first)");
    if (it->second.role == "relinquished")
        throw std::runtime_error("guest " + name + " was handed over and stopped for good on " + config_.node +
                                 "; it runs on the peer now");
    auto replicator = std::make_unique<Replicator>(*it->second.guest, connector(peer), config_.replication, log_);
    replicator->set_event_sink(
        [this, name](const std::string &kind, const std::string &reason) { events_.add(name, kind, reason); });
    if (auto *vm = dynamic_cast<kvm::KvmGuest *>(it->second.guest.get())) {
        // Output commit: the NIC's frames wait in the VMM for their epoch's ack.
        it->second.output = std::make_unique<VmmOutputQueue>(*vm, config_.output);
        replicator->add_participant(it->second.output->buffer());
    }
    replicator->start();
    it->second.replicator = std::move(replicator);
    it->second.role = "primary";
    events_.add(name, "protect", "protection requested, backup " + peer.to_string());
    return "protecting " + name + " with backup " + peer.to_string() + "; see `understudy status`";
}

std::string Daemon::unprotect(const std::string &name)
{
    std::unique_ptr<Replicator> replicator;
    std::unique_ptr<VmmOutputQueue> output;
    Running xen; // a Xen domain is xl's again once unprotected
    {
        std::lock_guard lock(mutex_);
        auto it = guests_.find(name);
        if (it == guests_.end() || !it->second.replicator)
            throw std::runtime_error("guest " + name + " is not protected on " + config_.node);
        replicator = std::move(it->second.replicator);
        output = std::move(it->second.output);
        it->second.role = "standalone";
        if (it->second.backend == "xen") {
            xen = std::move(it->second);
            guests_.erase(it);
        }
    }
    replicator->stop("unprotected by the operator"); // also turns Xen's log-dirty off
    output.reset(); // what is held goes out; output flows directly again
    xen.disk_followers.clear();
    xen.vif_output.reset(); // the same for a Xen domain's vifs, then their redirect is removed
    events_.add(name, "unprotect", "unprotected by the operator; it keeps running without a standby");
    return "guest " + name + " is no longer protected";
}

proto::ChecksumReply Daemon::checksum(const std::string &name)
{
    proto::ChecksumReply reply;
    reply.set_guest(name);
    {
        std::lock_guard lock(mutex_);
        auto it = guests_.find(name);
        if (it != guests_.end() && it->second.role != "relinquished") {
            auto &r = it->second;
            auto frozen = r.replicator ? r.replicator->frozen_state() : std::nullopt;
            if (!frozen)
                throw std::runtime_error("checksum of running guest " + name + ": freeze it first "
                                         "(`understudy debug freeze " + name + "`)");
            Sha256 memory;
            std::vector<std::uint8_t> page(kPageSize);
            for (std::uint64_t p = 0; p < r.guest->memory_size() / kPageSize; ++p) {
                Pfn pfn{p};
                r.guest->read_pages({&pfn, 1}, page);
                memory.update(page);
            }
            reply.set_memory_sha256(hex(memory.finish()));
            if (auto written = r.guest->pages_written_since_harvest())
                reply.set_pages_written_since_checkpoint(*written);
            reply.set_cpu_sha256(digest_of(frozen->first));
            reply.set_devices_sha256(digest_of(frozen->second));
            reply.set_epoch(r.replicator->status().acked_epoch);
            Sha256 disk;
            std::vector<std::uint8_t> chunk(1 << 20);
            for (std::uint64_t off = 0; off < r.guest->disk_bytes(); off += chunk.size()) {
                auto n = std::min<std::uint64_t>(chunk.size(), r.guest->disk_bytes() - off);
                r.guest->read_disk(off / 512, {chunk.data(), n});
                disk.update({chunk.data(), n});
            }
            reply.set_disk_sha256(hex(disk.finish()));
            return reply;
        }
    }
    bool found = registry_.inspect(name, [&](const StandbyGuest &standby) {
        auto &image = dynamic_cast<const StandbyImage &>(standby);
        Sha256 memory;
        memory.update(image.memory());
        reply.set_memory_sha256(hex(memory.finish()));
        reply.set_cpu_sha256(image.cpu() ? digest_of(*image.cpu()) : "");
        reply.set_devices_sha256(image.devices() ? digest_of(*image.devices()) : "");
        Sha256 disk;
        if (image.disk_bytes()) {
            std::ifstream in(image.replica_path(), std::ios::binary);
            std::vector<char> chunk(1 << 20);
            while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0)
                disk.update({reinterpret_cast<const std::uint8_t *>(chunk.data()), static_cast<std::size_t>(in.gcount())});
        }
        reply.set_disk_sha256(hex(disk.finish()));
    });
    if (!found)
        throw std::runtime_error("guest " + name + " neither runs nor has a consistent standby on " + config_.node);
    for (const auto &s : registry_.status())
        if (s.guest == name)
            reply.set_epoch(s.epoch);
    return reply;
}

std::string Daemon::activate(const std::string &name)
{
    std::uint64_t epoch = 0;
    for (const auto &s : registry_.status())
        if (s.guest == name)
            epoch = s.epoch;
    {
        // A copy this host relinquished earlier is gone for good; it still
        // holds the NIC's TAP, which the activated copy needs.
        std::unique_lock lock(mutex_);
        auto it = guests_.find(name);
        if (it != guests_.end() && it->second.role != "relinquished")
            throw std::runtime_error("guest " + name + " already runs on " + config_.node + " (" + it->second.role + ")");
        if (it != guests_.end()) {
            Running old = std::move(it->second);
            guests_.erase(it);
            lock.unlock();
        }
    }
    if (const auto s = registry_.status(name); s && s->damaged)
        throw std::runtime_error("the standby of guest " + name + " on " + config_.node +
                                 " is damaged and is never run: " + s->damaged_reason);
    log_("guest " + name + ": activating the standby copy at epoch " + std::to_string(epoch));
    auto standby = registry_.take(name);
    if (!standby)
        throw std::runtime_error("guest " + name + " has no consistent standby on " + config_.node);
    auto guest = standby->activate();
    events_.add(name, "activated",
                "runs on " + config_.node + " from its standby copy at epoch " + std::to_string(epoch));
    std::lock_guard lock(mutex_);
    Running r;
    r.guest = std::move(guest);
    r.role = "activated";
    r.active_since_unix_ns = unix_now_ns();
    if (const GuestConfig *g = config_.guest(name))
        r.backend = g->backend;
    r.activated_epoch = epoch;
    guests_[name] = std::move(r);
    return "guest " + name + " runs on " + config_.node + " from its last committed checkpoint";
}

proto::StatusReply Daemon::status(const std::string &only) const
{
    proto::StatusReply reply;
    reply.set_node(config_.node);
    reply.set_insecure(config_.insecure);
    reply.set_plug_qdisc(plug_qdisc_);
    reply.set_plug_qdisc_detail(plug_qdisc_detail_);
    if (failover_)
        *reply.mutable_pair() = failover_->status();
    for (const auto &[kind, n] : events_.counts())
        (*reply.mutable_event_counts())[kind] = n;
    std::lock_guard lock(mutex_);
    for (const auto &[name, r] : guests_) {
        if (!only.empty() && name != only)
            continue;
        auto *g = reply.add_guests();
        g->set_name(name);
        g->set_role(r.role);
        g->set_backend(r.backend);
        for (const auto &d : r.disk_notes)
            g->add_disks(d);
        g->set_checkpoint_way(r.checkpoint_way);
        auto *kvm_guest = dynamic_cast<const kvm::KvmGuest *>(r.guest.get());
        g->set_running(kvm_guest ? !kvm_guest->stopped().has_value() : true);
        if (!r.replicator) {
            g->set_state("unprotected");
            g->set_link("none");
            continue;
        }
        if (r.vif_output && r.vif_output->way() == XenVifOutput::Way::plug) {
            auto *out = g->mutable_output(); // the kernel holds the frames: no counts here
            out->set_way("plug");
            out->set_holding(true);
            out->set_released_epoch(r.vif_output->released_epoch());
        }
        if (const auto buffers = r.buffers(); !buffers.empty()) {
            auto *out = g->mutable_output();
            out->set_way(r.output ? "in-vmm" : "tap-redirect");
            out->set_released_epoch(~std::uint64_t{0});
            for (auto *b : buffers) { // a Xen domain's vifs together
                const auto o = b->status();
                out->set_holding(out->holding() || o.holding);
                out->set_held_frames(out->held_frames() + o.held_frames);
                out->set_held_bytes(out->held_bytes() + o.held_bytes);
                out->set_released_frames(out->released_frames() + o.released_frames);
                out->set_passed_frames(out->passed_frames() + o.passed_frames);
                out->set_dropped_frames(out->dropped_frames() + o.dropped_frames);
                out->set_transmit_errors(out->transmit_errors() + o.transmit_errors);
                out->set_capacity_bytes(out->capacity_bytes() + b->settings().capacity_bytes);
                out->set_policy(policy_name(b->settings().policy));
                out->set_released_epoch(std::min(out->released_epoch(), o.released_epoch));
                out->set_discarded_frames(out->discarded_frames() + o.discarded_frames);
            }
        }
        auto s = r.replicator->status();
        g->set_state(state_name(s.state));
        g->set_peer(s.peer);
        g->set_epoch(s.epoch);
        g->set_acked_epoch(s.acked_epoch);
        g->set_last_ack_age_s(s.last_ack_age_s);
        g->set_pause_p50_us(s.pause_p50_us);
        g->set_pause_p99_us(s.pause_p99_us);
        g->set_pause_max_us(s.pause_max_us);
        g->set_dirty_pages_last(s.dirty_pages_last);
        g->set_dirty_pages_avg(s.dirty_pages_avg);
        g->set_bytes_sent(s.bytes_sent);
        g->set_compression(s.compression);
        g->set_compression_ratio(s.compression_ratio());
        g->set_checkpoints(s.checkpoints);
        g->set_sender_waits(s.sender_waits);
        g->set_resyncs(s.resyncs);
        g->set_backup_losses(s.backup_losses);
        g->set_ack_latency_avg_ms(s.ack_latency_avg_ms);
        g->set_link(s.state == ProtectionState::protected_ || s.state == ProtectionState::syncing ? "up" : "down");
        g->set_last_error(s.last_error);
    }
    for (const auto &s : registry_.status()) {
        if (!only.empty() && s.guest != only)
            continue;
        auto *b = reply.add_standbys();
        b->set_guest(s.guest);
        b->set_peer(s.peer);
        b->set_receiving(s.receiving);
        b->set_consistent(s.consistent);
        b->set_epoch(s.epoch);
        b->set_checkpoints(s.checkpoints);
        b->set_epochs_refused(s.epochs_refused);
        b->set_bytes_received(s.bytes_received);
        b->set_last_commit_age_s(s.last_commit_age_s);
        b->set_last_error(s.last_error);
        b->set_commit_failures(s.commit_failures);
        b->set_outdated(s.outdated);
        b->set_outdated_reason(s.outdated_reason);
        b->set_damaged(s.damaged);
        b->set_damaged_reason(s.damaged_reason);
        b->set_stream_id(s.stream_id);
    }
    return reply;
}

std::string Daemon::discard(const std::string &name)
{
    Replicator *replicator = nullptr;
    {
        std::lock_guard lock(mutex_);
        auto it = guests_.find(name);
        if (it == guests_.end() || it->second.role == "relinquished")
            throw std::runtime_error("guest " + name + " does not run on " + config_.node);
        for (auto *b : it->second.buffers())
            b->cut_off(); // what this copy holds back never leaves
        if (it->second.vif_output)
            it->second.vif_output->cut_off();
        replicator = it->second.replicator.get();
    }
    if (replicator)
        replicator->halt("discarded by the operator on " + config_.node);
    {
        std::lock_guard lock(mutex_);
        auto &r = guests_[name];
        r.guest->stop_for_good();
        r.role = "relinquished";
    }
    events_.add(name, "discarded", "this host's copy was stopped for good (understudy discard); the peer's runs on");
    return "guest " + name + " was stopped for good on " + config_.node;
}

proto::ControlResponse Daemon::handle(const proto::ControlRequest &request)
{
    try {
        switch (request.command_case()) {
        case proto::ControlRequest::kProtect:
            return success(protect(request.protect().guest(), request.protect().peer(),
                                   request.protect().allow_unreplicated_disk()));
        case proto::ControlRequest::kUnprotect:
            return success(unprotect(request.unprotect().guest()));
        case proto::ControlRequest::kStatus: {
            auto r = success("");
            *r.mutable_status() = status(request.status().guest());
            return r;
        }
        case proto::ControlRequest::kFreeze: {
            Replicator *replicator = nullptr;
            {
                std::lock_guard lock(mutex_);
                auto it = guests_.find(request.freeze().guest());
                if (it == guests_.end() || !it->second.replicator)
                    return failure("guest " + request.freeze().guest() + " is not protected on " + config_.node);
                replicator = it->second.replicator.get();
            }
            auto epoch = replicator->freeze(std::chrono::seconds(30));
            return success("guest " + request.freeze().guest() + " frozen at acked epoch " +
                           std::to_string(epoch.value));
        }
        case proto::ControlRequest::kThaw: {
            Replicator *replicator = nullptr;
            {
                std::lock_guard lock(mutex_);
                auto it = guests_.find(request.thaw().guest());
                if (it == guests_.end() || !it->second.replicator)
                    return failure("guest " + request.thaw().guest() + " is not protected on " + config_.node);
                replicator = it->second.replicator.get();
            }
            replicator->thaw();
            return success("guest " + request.thaw().guest() + " runs again");
        }
        case proto::ControlRequest::kChecksum: {
            auto r = success("");
            *r.mutable_checksum() = checksum(request.checksum().guest());
            return r;
        }
        case proto::ControlRequest::kActivate:
            return success(activate(request.activate().guest()));
        case proto::ControlRequest::kEvents: {
            auto r = success("");
            const auto &guest = request.events().epochs_of();
            if (guest.empty()) {
                *r.mutable_events() = events_.since(request.events().after());
                return r;
            }
            std::lock_guard lock(mutex_);
            auto it = guests_.find(guest);
            if (it == guests_.end() || !it->second.replicator)
                return failure("guest " + guest + " is not protected on " + config_.node);
            for (const auto &a : it->second.replicator->epoch_acks()) {
                auto *e = r.mutable_events()->add_epoch_acks();
                e->set_epoch(a.epoch);
                e->set_paused_unix_ns(a.paused_unix_ns);
                e->set_acked_unix_ns(a.acked_unix_ns);
            }
            return r;
        }
        case proto::ControlRequest::kFailover: {
            if (!failover_)
                return failure("no failure detection on " + config_.node + " ([heartbeat] is not configured)");
            failover_->planned_switch(request.failover().guest());
            return success("guest " + request.failover().guest() + " was handed over at an acked checkpoint; " +
                           config_.failover->heartbeat.peer_node + " takes over (see `understudy events`)");
        }
        case proto::ControlRequest::kTakeover: {
            if (!failover_)
                return failure("no failure detection on " + config_.node +
                               " ([heartbeat] is not configured): `understudy debug activate` runs a standby "
                               "without any check");
            failover_->manual_takeover(request.takeover().guest(), request.takeover().force());
            return success("guest " + request.takeover().guest() + " runs on " + config_.node +
                           " from its standby (see `understudy events`)");
        }
        case proto::ControlRequest::kDiscard:
            return success(discard(request.discard().guest()));
        case proto::ControlRequest::kDrill: {
            auto r = success("");
            *r.mutable_drill() = drill(request.drill().guest());
            r.set_message(r.drill().verdict());
            return r;
        }
        case proto::ControlRequest::COMMAND_NOT_SET:
            break;
        }
        return failure("empty or unknown request");
    } catch (const std::exception &e) {
        return failure(e.what());
    }
}

} // namespace understudy::daemon
