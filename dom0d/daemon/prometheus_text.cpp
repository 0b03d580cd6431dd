#include "dom0d/daemon/prometheus_text.h"

#include <sstream>

namespace understudy::daemon {

namespace {

std::string escape(const std::string &value)
{
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"')
            out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

class Writer {
  public:
    void family(const std::string &name, const char *type, const char *help)
    {
        out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    }
    void sample(const std::string &name, const std::string &labels, double value)
    {
        out_ << name << '{' << labels << "} " << value << '\n';
    }
    std::string str() const { return out_.str(); }

  private:
    std::ostringstream out_;
};

} // namespace

std::string prometheus_text(const proto::StatusReply &status)
{
    Writer w;
    w.family("understudy_info", "gauge", "This understudyd; always 1.");
    w.sample("understudy_info", "node=\"" + escape(status.node()) + "\",insecure=\"" +
                                    (status.insecure() ? "true" : "false") + "\"",
             1);
    struct Gauge {
        const char *name, *type, *help;
        double (*get)(const proto::GuestStatus &);
    };
    static const Gauge guest_metrics[] = {
        {"understudy_guest_protected", "gauge", "1 when a checkpoint of the guest is committed on its backup.",
         [](const proto::GuestStatus &g) { return g.state() == "protected" ? 1.0 : 0.0; }},
        {"understudy_guest_running", "gauge", "1 while the guest's vCPUs run.",
         [](const proto::GuestStatus &g) { return g.running() ? 1.0 : 0.0; }},
        {"understudy_epoch", "gauge", "Last epoch staged in the current stream.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.epoch()); }},
        {"understudy_acked_epoch", "gauge", "Last checkpoint epoch the backup committed.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.acked_epoch()); }},
        {"understudy_checkpoints_total", "counter", "Checkpoints committed by a backup.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.checkpoints()); }},
        {"understudy_last_ack_age_seconds", "gauge", "Seconds since the last ack (-1: none yet).",
         [](const proto::GuestStatus &g) { return g.last_ack_age_s(); }},
        {"understudy_dirty_pages", "gauge", "Dirty pages in the last checkpoint.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.dirty_pages_last()); }},
        {"understudy_sent_bytes_total", "counter", "Bytes sent on replication streams.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.bytes_sent()); }},
        {"understudy_compression_ratio", "gauge", "Page bytes per byte of page payload sent.",
         [](const proto::GuestStatus &g) { return g.compression_ratio(); }},
        {"understudy_ack_latency_seconds", "gauge", "Average time from sending a checkpoint to its ack.",
         [](const proto::GuestStatus &g) { return g.ack_latency_avg_ms() / 1000.0; }},
        {"understudy_sender_waits_total", "counter", "Pauses delayed because shipping fell behind.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.sender_waits()); }},
        {"understudy_resyncs_total", "counter", "Full resyncs after losing the backup.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.resyncs()); }},
        {"understudy_backup_losses_total", "counter", "Times the backup was lost.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.backup_losses()); }},
        {"understudy_output_held_frames", "gauge", "Guest frames waiting for their epoch's ack.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.output().held_frames()); }},
        {"understudy_output_held_bytes", "gauge", "Bytes of guest frames waiting for their epoch's ack.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.output().held_bytes()); }},
        {"understudy_output_released_frames_total", "counter", "Guest frames sent after their epoch was acked.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.output().released_frames()); }},
        {"understudy_output_dropped_frames_total", "counter", "Guest frames dropped by a full output buffer.",
         [](const proto::GuestStatus &g) { return static_cast<double>(g.output().dropped_frames()); }},
    };
    for (const auto &m : guest_metrics) {
        w.family(m.name, m.type, m.help);
        for (const auto &g : status.guests())
            w.sample(m.name, "guest=\"" + escape(g.name()) + "\",role=\"" + escape(g.role()) + "\"", m.get(g));
    }
    w.family("understudy_pause_seconds", "gauge", "Guest pause per checkpoint, recent quantiles.");
    for (const auto &g : status.guests()) {
        const std::string labels = "guest=\"" + escape(g.name()) + "\",quantile=\"";
        w.sample("understudy_pause_seconds", labels + "0.5\"", static_cast<double>(g.pause_p50_us()) / 1e6);
        w.sample("understudy_pause_seconds", labels + "0.99\"", static_cast<double>(g.pause_p99_us()) / 1e6);
        w.sample("understudy_pause_seconds", labels + "1\"", static_cast<double>(g.pause_max_us()) / 1e6);
    }
    struct StandbyGauge {
        const char *name, *type, *help;
        double (*get)(const proto::StandbyStatus &);
    };
    static const StandbyGauge standby_metrics[] = {
        {"understudy_standby_consistent", "gauge", "1 when the standby copy holds a committed checkpoint.",
         [](const proto::StandbyStatus &s) { return s.consistent() ? 1.0 : 0.0; }},
        {"understudy_standby_receiving", "gauge", "1 while a primary streams to the standby.",
         [](const proto::StandbyStatus &s) { return s.receiving() ? 1.0 : 0.0; }},
        {"understudy_standby_epoch", "gauge", "Committed epoch of the standby copy.",
         [](const proto::StandbyStatus &s) { return static_cast<double>(s.epoch()); }},
        {"understudy_standby_epochs_refused_total", "counter", "Epochs refused as corrupt or hostile.",
         [](const proto::StandbyStatus &s) { return static_cast<double>(s.epochs_refused()); }},
        {"understudy_standby_received_bytes_total", "counter", "Bytes received for the standby.",
         [](const proto::StandbyStatus &s) { return static_cast<double>(s.bytes_received()); }},
        {"understudy_standby_commit_failures_total", "counter",
         "Commits that failed on this host (the copy stayed at its epoch, or is damaged).",
         [](const proto::StandbyStatus &s) { return static_cast<double>(s.commit_failures()); }},
        {"understudy_standby_outdated", "gauge",
         "1 when the primary released output past the copy's epoch: no automatic takeover from it.",
         [](const proto::StandbyStatus &s) { return s.outdated() ? 1.0 : 0.0; }},
        {"understudy_standby_damaged", "gauge", "1 when a failed commit left the copy neither epoch: never run.",
         [](const proto::StandbyStatus &s) { return s.damaged() ? 1.0 : 0.0; }},
    };
    for (const auto &m : standby_metrics) {
        w.family(m.name, m.type, m.help);
        for (const auto &s : status.standbys())
            w.sample(m.name, "guest=\"" + escape(s.guest()) + "\"", m.get(s));
    }
    w.family("understudy_events_total", "counter", "Pair transitions since the daemon started, by kind.");
    for (const auto &[kind, n] : status.event_counts())
        w.sample("understudy_events_total", "kind=\"" + escape(kind) + "\"", static_cast<double>(n));
    if (status.has_pair()) {
        const auto &p = status.pair();
        const std::string peer = "peer=\"" + escape(p.peer_node()) + "\"";
        w.family("understudy_peer_alive", "gauge", "1 while heartbeats from the peer arrive on some path.");
        w.sample("understudy_peer_alive", peer, p.peer_alive() ? 1 : 0);
        w.family("understudy_heartbeat_path_alive", "gauge", "1 while heartbeats arrive on this path.");
        for (const auto &path : p.paths())
            w.sample("understudy_heartbeat_path_alive", peer + ",path=\"" + escape(path.peer()) + "\"",
                     path.alive() ? 1 : 0);
        w.family("understudy_pair_guarded", "gauge", "1 when a witness or fencing guards takeovers.");
        w.sample("understudy_pair_guarded", peer, p.guard() == "UNGUARDED" ? 0 : 1);
        w.family("understudy_witness_reachable", "gauge", "1 while this host reaches the client-side witness.");
        w.sample("understudy_witness_reachable", peer, p.witness_reachable() ? 1 : 0);
        w.family("understudy_pair_partition_safe", "gauge",
                 "1 when fencing guards against a partition between two live hosts.");
        w.sample("understudy_pair_partition_safe", peer, p.partition_safe() ? 1 : 0);
        w.family("understudy_split_brain", "gauge", "1 for each guest both hosts of the pair run (split brain).");
        for (const auto &b : p.split_brain())
            w.sample("understudy_split_brain", peer + ",guest=\"" + escape(b.guest()) + "\"", 1);
    }
    return w.str();
}

} // namespace understudy::daemon
