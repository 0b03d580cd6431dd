#include "dom0d/daemon/config_dump.h"

#include <arpa/inet.h>

#include <sstream>

#include "checkpoint/page_codec.h"
#include "dom0d/cli/net_args.h"

namespace understudy::daemon {

namespace {

class Lines {
  public:
    template <class T> void add(const std::string &section, const std::string &key, const T &value)
    {
        out_ << section << "." << key << " = " << value << "\n";
    }
    void add(const std::string &section, const std::string &key, bool value)
    {
        out_ << section << "." << key << " = " << (value ? "yes" : "no") << "\n";
    }
    [[nodiscard]] std::string str() const { return out_.str(); }

  private:
    std::ostringstream out_;
};

int prefix_length(std::uint32_t netmask)
{
    return __builtin_popcount(ntohl(netmask));
}

} // namespace

std::string describe_config(const DaemonConfig &c)
{
    Lines l;
    l.add("daemon", "node", c.node);
    l.add("daemon", "control_socket", c.control_socket.string());
    l.add("daemon", "state_dir", c.state_dir.string());
    l.add("daemon", "metrics", c.metrics ? c.metrics->to_string() : std::string("off"));
    l.add("daemon", "lock_memory", c.lock_memory);
    l.add("daemon", "drbdsetup", c.drbdsetup);
    l.add("daemon", "drbdadm", c.drbdadm);
    l.add("daemon", "netbuf_setup", c.netbuf_setup.string());
    l.add("daemon", "xen_lib_dir", c.xen_lib_dir.string());
    l.add("daemon", "xen_run_dir", c.xen_run_dir.string());

    l.add("replication", "listen", c.listen ? c.listen->to_string() : std::string("off"));
    l.add("replication", "insecure", c.insecure);
    if (!c.psk_file.empty())
        l.add("replication", "psk_file", c.psk_file.string());
    if (c.tls && c.tls->psk.empty()) {
        l.add("replication", "certificate", c.tls->certificate.string());
        l.add("replication", "private_key", c.tls->private_key.string());
        l.add("replication", "ca", c.tls->ca.string());
        l.add("replication", "peer_name", c.tls->peer_name);
    }
    l.add("replication", "interval_ms", c.replication.interval.count());
    l.add("replication", "ack_timeout_ms", c.replication.ack_timeout.count());
    l.add("replication", "retry_ms", c.replication.retry_interval.count());
    l.add("replication", "compression", compression_name(c.replication.codec));
    l.add("replication", "output_buffer_mib", c.output.capacity_bytes >> 20);
    l.add("replication", "output_buffer_policy", policy_name(c.output.policy));

    if (c.failover) {
        const auto &f = *c.failover;
        l.add("heartbeat", "peer_node", f.heartbeat.peer_node);
        std::string paths;
        for (const auto &p : f.heartbeat.paths)
            paths += (paths.empty() ? "" : ", ") + p.to_string();
        l.add("heartbeat", "paths", paths);
        l.add("heartbeat", "listen", f.heartbeat.listen.to_string());
        l.add("heartbeat", "interval_ms", f.heartbeat.interval.count());
        l.add("heartbeat", "timeout_ms", f.heartbeat.timeout.count());
        l.add("heartbeat", "witness", f.witness.value_or("none"));
        l.add("heartbeat", "track_interface", f.track_interface.value_or("none"));
        l.add("heartbeat", "fence_command", f.fence_command.value_or("none"));
        l.add("heartbeat", "failover", std::string(f.automatic ? "auto" : "manual"));
        l.add("heartbeat", "garp_count", f.garp_count);
        l.add("heartbeat", "garp_repeat_ms", f.garp_repeat.count());
        l.add("heartbeat", "reprotect", std::string(f.reprotect_automatic ? "auto" : "manual"));
        l.add("heartbeat", "peer_stream", f.peer_stream ? f.peer_stream->to_string() : std::string("none"));
        l.add("heartbeat", "allow_unguarded_takeover", f.allow_unguarded);
        l.add("heartbeat", "after_split_brain",
              std::string(f.after_split_brain == FailoverConfig::SplitBrainPolicy::discard_younger ? "discard-younger"
                                                                                                   : "disconnect"));
    }

    for (const auto &g : c.guests) {
        const std::string s = "guest " + g.name;
        l.add(s, "backend", g.backend);
        if (g.backend == "xen") {
            l.add(s, "xl_config", g.xl_config.string());
            l.add(s, "allow_unreplicated_disk", g.allow_unreplicated_disk);
            l.add(s, "checkpoint", std::string(xen::to_string(g.checkpoint_way)));
            continue;
        }
        l.add(s, "kernel", g.vm.kernel.string());
        l.add(s, "memory_mib", g.vm.memory_bytes >> 20);
        l.add(s, "tap", g.tap.empty() ? std::string("none") : g.tap);
        l.add(s, "ip", cli::format_ipv4(g.vm.ipv4) + "/" + std::to_string(prefix_length(g.vm.netmask)));
        l.add(s, "mac", cli::format_mac(g.vm.mac));
        l.add(s, "port", g.vm.udp_port);
        l.add(s, "dirty_rate", g.vm.dirty_pages_per_second);
        l.add(s, "guest_arg", g.vm.cmdline.empty() ? std::string("none") : g.vm.cmdline);
        l.add(s, "disk", g.disk.empty() ? std::string("none") : g.disk.string());
        l.add(s, "disk_mib", g.disk_bytes >> 20);
        l.add(s, "autostart", g.autostart);
    }
    return l.str();
}

} // namespace understudy::daemon
