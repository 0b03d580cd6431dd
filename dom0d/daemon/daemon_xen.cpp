// understudyd's Xen side: protecting an xl domain (by name or domid), its
// DRBD disks and vif output commit, and the standby that becomes a domain
// here at failover (docs/xen.md).
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "checkpoint/unique_fd.h"
#include "checkpoint/xen/hypervisor_caps.h"
#include "checkpoint/xen/xen_guest.h"
#include "checkpoint/xen/xen_standby.h"
#include "dom0d/daemon/daemon.h"
#include "drbd/checkpoint_barrier.h"
#include "drbd/disk_guard.h"
#include "drbd/drbd_promote.h"
#include "dom0d/cli/net_args.h"
#include "heartbeat/gratuitous_arp.h"

namespace understudy::daemon {

namespace {

std::vector<drbd::GuestDisk> disks_of(const xen::XlConfig &xl)
{
    std::vector<drbd::GuestDisk> disks;
    for (const auto &d : xl.disks)
        disks.push_back({d.vdev, d.target, d.drbd(), d.readwrite && !d.cdrom});
    return disks;
}

} // namespace

std::shared_ptr<xen::XenSession> Daemon::xen_session() const
{
    std::lock_guard lock(xen_mutex_);
    if (!xen_) {
        xen_ = xen::XenSession::open(log_);
        xen_->set_dirs({config_.xen_lib_dir.string(), config_.xen_run_dir.string()});
    }
    return xen_;
}

std::string Daemon::protect_xen(const std::string &domain, const Endpoint &peer, bool allow_unreplicated_disk,
                                std::uint64_t active_since_unix_ns)
{
    std::shared_ptr<xen::XenSession> session;
    try {
        session = xen_session();
    } catch (const std::exception &e) {
        throw std::runtime_error("guest " + domain + " is not one of " + config_.node +
                                 "'s kvm guests, and no Xen domain can be looked up here: " + e.what());
    }
    const auto domid = xen::find_domain(*session, domain);
    const auto facts = xen::describe_domain(*session, domid);
    const std::string &name = facts.name;
    if (guests_.count(name))
        throw std::runtime_error("guest " + name + " is already protected (unprotect it first)");
    const GuestConfig *g = config_.guest(name);
    if (!g || g->backend != "xen" || !g->xl)
        throw std::runtime_error("domain " + name + " (domid " + std::to_string(domid) + ") has no [guest " + name +
                                 "] section with backend = xen in " + config_.source.string() +
                                 "; add one naming its xl.cfg (xl_config = /etc/xen/" + name +
                                 ".cfg), on the backup too");
    // Refused before anything changes when this hypervisor cannot track the
    // domain's dirty pages (a PV domain on a Xen without shadow paging).
    if (auto problem = xen::log_dirty_problem(xen::read_hypervisor_caps(*session), facts.type, name);
        !problem.empty())
        throw std::runtime_error(problem);
    auto guest = std::make_unique<xen::XenGuest>(session, domid, g->checkpoint_way);
    if (auto problem = xen::standby_config_problem(*g->xl); !problem.empty())
        throw std::runtime_error(problem);
    // The xl.cfg must describe the domain that runs: its vifs are named by
    // position, its disks are what DRBD is checked for.
    const auto running = xen::domain_devices(*session, domid);
    std::vector<std::string> configured_macs, configured_disks;
    for (const auto &n : g->xl->nics)
        configured_macs.push_back(n.mac);
    for (const auto &d : g->xl->disks)
        configured_disks.push_back(d.target);
    auto lowercase = [](std::vector<std::string> v) {
        for (auto &s : v)
            std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
        return v;
    };
    auto joined = [](const std::vector<std::string> &v) {
        std::string out;
        for (const auto &s : v)
            out += (out.empty() ? "" : ", ") + s;
        return out.empty() ? std::string("none") : out;
    };
    if (lowercase(running.vif_macs) != lowercase(configured_macs) ||
        std::multiset<std::string>(running.disk_targets.begin(), running.disk_targets.end()) !=
            std::multiset<std::string>(configured_disks.begin(), configured_disks.end()))
        throw std::runtime_error("domain " + name + " does not run as " + g->xl_config.string() +
                                 " describes it: it has vifs " + joined(running.vif_macs) + " and disks " +
                                 joined(running.disk_targets) + "; the file lists vifs " + joined(configured_macs) +
                                 " and disks " + joined(configured_disks));
    if (g->xl->nics.size() > 8)
        throw std::runtime_error("domain " + name + " has more than 8 vifs; understudy buffers at most 8");

    // Disks: replicated by DRBD, or the operator said it does not matter.
    const auto disks = drbd::check_replicated_disks(
        name, disks_of(*g->xl), allow_unreplicated_disk || g->allow_unreplicated_disk,
        [this](const std::string &resource) { return drbd::probe_resource(resource, config_.drbdsetup); });
    for (const auto &n : disks.notes)
        events_.add(name, "disk", n);

    Running r;
    r.backend = "xen";
    r.role = "primary";
    r.active_since_unix_ns =
        active_since_unix_ns ? active_since_unix_ns
                             : static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                              std::chrono::system_clock::now().time_since_epoch())
                                                              .count());
    r.disk_notes = disks.notes;
    r.checkpoint_way = std::string(xen::to_string(g->checkpoint_way));
    for (const auto &p : disks.replicated) // protocol D: the disk commits with each checkpoint
        if (p.checkpoint_barriers && !p.resource.devices.empty())
            r.disk_barriers.push_back(
                std::make_unique<drbd::CheckpointBarrier>(drbd::drbd_device(p.resource.devices.begin()->second.minor)));
    r.vif_output = std::make_unique<XenVifOutput>(
        domid, g->xl->nics, config_.netbuf_setup,
        plug_qdisc_ ? XenVifOutput::Way::plug : XenVifOutput::Way::tap_redirect, config_.output, log_);
    for (const auto &d : g->xl->disks) {
        if (!d.drbd())
            continue;
        r.disk_followers.push_back(std::make_unique<drbd::Events2Follower>(
            d.target, config_.drbdsetup,
            [this, name, resource = d.target](const drbd::ReplicationVerdict &v) {
                events_.add(name, v.replicated ? "disk_replicated" : "disk_unreplicated",
                            "DRBD resource " + resource + ": " + (v.replicated ? "replicating" : v.reason));
            },
            [this, name](const std::string &why) { events_.add(name, "disk_unfollowed", why); }));
    }
    auto settings = config_.replication;
    settings.backend = "xen"; // the backup builds a XenStandby for it
    auto replicator = std::make_unique<Replicator>(*guest, connector(peer), settings, log_);
    replicator->set_event_sink(
        [this, name](const std::string &kind, const std::string &reason) { events_.add(name, kind, reason); });
    for (auto &barrier : r.disk_barriers) // first: the disk's epoch is committed before output may go
        replicator->add_participant(*barrier);
    for (auto *participant : r.vif_output->participants())
        replicator->add_participant(*participant);
    events_.add(name, "protect",
                "protection requested for Xen " + guest->facts().type + " domain " + std::to_string(domid) +
                    (g->checkpoint_way == xen::CheckpointWay::suspend
                         ? " (checkpoint = suspend: suspended through its PV drivers, resumed with suspend_cancel)"
                         : " (checkpoint = pause: stopped by Xen, the guest does not notice)") +
                    ", backup " + peer.to_string());
    r.guest = std::move(guest);
    replicator->start();
    r.replicator = std::move(replicator);
    guests_[name] = std::move(r);
    return "protecting Xen domain " + name + " (domid " + std::to_string(domid) + ") with backup " +
           peer.to_string() + "; see `understudy status`";
}

std::unique_ptr<StandbyGuest> Daemon::make_xen_standby(const proto::Hello &hello, const GuestConfig &g,
                                                       std::string *refusal) const
{
    if (auto problem = xen::standby_config_problem(*g.xl); !problem.empty()) {
        *refusal = problem;
        return nullptr;
    }
    try {
        if (auto problem = xen::domain_type_problem(xen::read_hypervisor_caps(*xen_session()), g.xl->type, g.name);
            !problem.empty()) {
            *refusal = problem;
            return nullptr;
        }
    } catch (const std::exception &e) {
        *refusal = "Xen cannot be reached on " + config_.node + ", where the standby of " + g.name +
                   " would have to run: " + e.what();
        return nullptr;
    }
    const std::uint64_t configured = (g.xl->maxmem_mib ? g.xl->maxmem_mib : g.xl->memory_mib) << 20;
    // An HVM or PVH domain's guest-physical frames run past its RAM: Xen puts
    // its special pages (xenstore, console, ioreq) just below 4 GiB, and RAM
    // above the MMIO hole when there is more than fits below it. Those frames
    // are not RAM and cost the standby nothing (a sparse image).
    const std::uint64_t span_limit =
        g.xl->type == "pv" ? configured * 2 + (256u << 20) : configured * 2 + (4ull << 30) + (256u << 20);
    if (hello.memory_size() < configured / 2 || hello.memory_size() > span_limit) {
        *refusal = "guest " + g.name + " has " + std::to_string(hello.memory_size() >> 20) +
                   " MiB of guest-physical frames on the primary, far from the " + std::to_string(configured >> 20) +
                   " MiB its xl.cfg gives it on " + config_.node;
        return nullptr;
    }
    return std::make_unique<xen::XenStandby>(
        *g.xl, hello.memory_size(), [this] { return xen_session(); }, [this, g] { promote_disks(g); });
}

void Daemon::announce_xen(const GuestConfig &g)
{
    for (const auto &nic : g.xl->nics) {
        std::uint32_t ip = 0;
        std::istringstream addresses(nic.ip); // xl's ip= may list several, space separated
        std::string first;
        addresses >> first;
        const std::string bridge = nic.bridge.empty() ? "xenbr0" : nic.bridge;
        if (first.empty() || inet_pton(AF_INET, first.c_str(), &ip) != 1) {
            events_.add(g.name, "announced", "no gratuitous ARP for its vif on " + bridge +
                                                 ": no IPv4 ip= in its xl.cfg; switches learn its MAC from its "
                                                 "first frame");
            continue;
        }
        const auto frame = gratuitous_arp(cli::parse_mac(nic.mac), ip);
        UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
        const int socket_error = errno;
        sockaddr_ll to{};
        to.sll_family = AF_PACKET;
        to.sll_ifindex = static_cast<int>(if_nametoindex(bridge.c_str()));
        to.sll_halen = 6;
        std::copy(frame.begin(), frame.begin() + 6, to.sll_addr);
        unsigned sent = 0;
        if (to.sll_ifindex == 0) {
            events_.add(g.name, "announced", "no gratuitous ARP for " + first + ": bridge " + bridge +
                                                 " (from its xl.cfg) does not exist here");
            continue;
        }
        if (!fd) {
            events_.add(g.name, "announced", "no gratuitous ARP for " + first + " on " + bridge +
                                                 ": cannot open a packet socket: " + std::strerror(socket_error));
            continue;
        }
        for (unsigned i = 0; i < garp_count(); ++i)
            sent += ::sendto(fd.get(), frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr *>(&to),
                             sizeof to) == static_cast<ssize_t>(frame.size())
                        ? 1
                        : 0;
        events_.add(g.name, "announced",
                    std::to_string(sent) + " gratuitous ARPs for " + first + " on " + bridge + " (its MAC moved here)");
    }
}

void Daemon::promote_disks(const GuestConfig &g) const
{
    for (const auto &d : g.xl->disks) {
        if (!d.drbd())
            continue;
        drbd::promote_resource(d.target, config_.drbdadm);
        log_("guest " + g.name + ": DRBD resource " + d.target + " is Primary here now");
    }
}

} // namespace understudy::daemon
