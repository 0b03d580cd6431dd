#include "dom0d/daemon/daemon_config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "checkpoint/handshake.h"
#include "checkpoint/page_codec.h"
#include "dom0d/cli/net_args.h"
#include "dom0d/daemon/config_text.h"

namespace pt = boost::property_tree;

namespace understudy::daemon {

namespace {

class Section {
  public:
    Section(const pt::ptree &tree, std::string where, std::set<std::string> known)
        : tree_(tree), where_(std::move(where)), known_(std::move(known))
    {
        for (const auto &[key, value] : tree_) {
            if (!value.empty())
                throw ConfigError(where_ + ": '" + key + "' is nested, which this file format does not have");
            if (!known_.count(key))
                throw ConfigError(where_ + ": unknown key '" + key + "'");
        }
    }

    [[nodiscard]] std::optional<std::string> text(const std::string &key) const
    {
        auto v = tree_.get_optional<std::string>(pt::ptree::path_type(key, '\0'));
        if (!v)
            return std::nullopt;
        if (v->empty())
            throw ConfigError(where_ + "." + key + ": empty value");
        return *v;
    }
    [[nodiscard]] std::string text(const std::string &key, const std::string &fallback) const
    {
        return text(key).value_or(fallback);
    }
    template <class T> [[nodiscard]] T number(const std::string &key, T fallback, T lo, T hi) const
    {
        auto v = text(key);
        if (!v)
            return fallback;
        T out{};
        auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
        if (ec != std::errc() || end != v->data() + v->size() || out < lo || out > hi)
            throw ConfigError(where_ + "." + key + ": '" + *v + "' is not a number from " + std::to_string(lo) +
                              " to " + std::to_string(hi));
        return out;
    }
    [[nodiscard]] bool flag(const std::string &key, bool fallback) const
    {
        auto v = text(key);
        if (!v)
            return fallback;
        if (*v == "yes" || *v == "true" || *v == "1")
            return true;
        if (*v == "no" || *v == "false" || *v == "0")
            return false;
        throw ConfigError(where_ + "." + key + ": '" + *v + "' is not yes or no");
    }
    [[nodiscard]] std::optional<Endpoint> endpoint(const std::string &key, std::uint16_t default_port) const
    {
        auto v = text(key);
        if (!v)
            return std::nullopt;
        try {
            return parse_endpoint(*v, default_port);
        } catch (const std::invalid_argument &e) {
            throw ConfigError(where_ + "." + key + ": " + e.what());
        }
    }
    [[nodiscard]] const std::string &where() const { return where_; }

  private:
    const pt::ptree &tree_;
    std::string where_;
    std::set<std::string> known_;
};

bool valid_node_name(const std::string &name)
{
    if (name.empty() || name.size() > 64)
        return false;
    for (unsigned char ch : name)
        if (!std::isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
            return false;
    return true;
}

// Why `command` (run with sh -c) cannot run: its first word must be a
// program, by absolute path or on PATH. "" if it can.
std::string command_problem(const std::string &command)
{
    const auto start = command.find_first_not_of(" \t");
    if (start == std::string::npos)
        return "no program";
    const std::string program = command.substr(start, command.find_first_of(" \t;&|<>()`$\n", start) - start);
    auto executable = [](const std::filesystem::path &p) {
        std::error_code ec;
        return std::filesystem::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
    };
    if (program.find('/') != std::string::npos)
        return executable(program) ? "" : "'" + program + "' is not an executable file";
    const char *path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && executable(std::filesystem::path(dir) / program))
            return "";
    return "'" + program + "' is not a program on PATH (" + std::string(path ? path : "") + ")";
}

GuestConfig parse_xen_guest(const std::string &name, const Section &s)
{
    GuestConfig g;
    g.name = name;
    g.backend = "xen";
    g.autostart = false; // xl starts Xen domains
    auto path = s.text("xl_config");
    if (!path)
        throw ConfigError(s.where() + ".xl_config: missing (the domain's xl.cfg, e.g. /etc/xen/" + name + ".cfg)");
    g.xl_config = *path;
    std::ifstream in(g.xl_config);
    if (!in)
        throw ConfigError(s.where() + ".xl_config: cannot open " + *path + ": " + std::strerror(errno));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > (1 << 20))
        throw ConfigError(s.where() + ".xl_config: " + *path + " is larger than 1 MiB");
    try {
        g.xl = xen::parse_xl_config(text, *path);
    } catch (const xen::XlConfigError &e) {
        throw ConfigError(s.where() + ".xl_config: " + e.what());
    }
    if (g.xl->name != name)
        throw ConfigError(s.where() + ".xl_config: " + *path + " names the domain '" + g.xl->name +
                          "', not '" + name + "'");
    g.allow_unreplicated_disk = s.flag("allow_unreplicated_disk", false);
    // A PV guest can only be checkpointed suspended (XenGuest says why):
    // that is its default, and pause is refused here, before anything runs.
    const bool pv = g.xl->type == "pv";
    const auto way = s.text("checkpoint", pv ? "suspend" : "pause");
    if (auto parsed = xen::parse_checkpoint_way(way))
        g.checkpoint_way = *parsed;
    else
        throw ConfigError(s.where() + ".checkpoint: '" + way +
                          "' is neither pause (stopped by Xen; the guest does not notice) nor suspend (through the "
                          "guest's PV drivers, which then reconnect on the backup after a failover)");
    if (pv && g.checkpoint_way == xen::CheckpointWay::pause)
        throw ConfigError(s.where() + ".checkpoint: pause cannot protect " + name +
                          ", a PV guest (type = \"pv\" in " + *path +
                          "): Xen's restore needs the record its suspend leaves; use checkpoint = suspend (the "
                          "default for PV guests)");
    return g;
}

GuestConfig parse_guest(const std::string &name, const Section &s)
{
    GuestConfig g;
    g.name = name;
    if (!valid_guest_id(name) || name.size() > 32)
        throw ConfigError(s.where() + ": guest name must be 1-32 characters of A-Z a-z 0-9 _ . -");
    g.vm.name = name;
    auto kernel = s.text("kernel");
    if (!kernel)
        throw ConfigError(s.where() + ".kernel: missing (the guest's ELF image)");
    g.vm.kernel = *kernel;
    g.vm.memory_bytes = std::uint64_t{s.number<unsigned>("memory_mib", 64, 4, 16384)} << 20;
    g.tap = s.text("tap", "");
    try {
        auto ip = cli::parse_ipv4_interface(s.text("ip", "10.99.0.2/24"));
        g.vm.ipv4 = ip.address;
        g.vm.netmask = ip.netmask;
        g.vm.mac = cli::parse_mac(s.text("mac", "52:54:00:12:34:56"));
    } catch (const std::exception &e) {
        throw ConfigError(s.where() + ": " + e.what());
    }
    g.vm.udp_port = static_cast<std::uint16_t>(s.number<unsigned>("port", 7777, 1, 65535));
    g.vm.dirty_pages_per_second = s.number<unsigned long>("dirty_rate", 0, 0, 10'000'000);
    g.vm.cmdline = s.text("guest_arg", "");
    if (g.vm.cmdline.size() > 127)
        throw ConfigError(s.where() + ".guest_arg: at most 127 characters");
    g.disk = s.text("disk", "");
    g.disk_bytes = std::uint64_t{s.number<unsigned>("disk_mib", 8, 1, 1 << 20)} << 20;
    g.autostart = s.flag("autostart", true);
    return g;
}

} // namespace

const GuestConfig *DaemonConfig::guest(const std::string &name) const
{
    for (const auto &g : guests)
        if (g.name == name)
            return &g;
    return nullptr;
}

DaemonConfig parse_daemon_config(const std::string &text, const std::filesystem::path &source)
{
    pt::ptree tree;
    std::istringstream in(strip_inline_comments(text, source));
    try {
        pt::read_ini(in, tree);
    } catch (const pt::ini_parser_error &e) {
        throw ConfigError(source.string() + ":" + std::to_string(e.line()) + ": " + e.message());
    }
    DaemonConfig c;
    c.source = source;
    const std::string file = source.string();
    static const pt::ptree empty;
    for (const auto &[name, section] : tree) {
        if (section.empty() && !section.data().empty())
            throw ConfigError(file + ": '" + name + "' is outside any [section]");
        if (name != "daemon" && name != "replication" && name != "heartbeat" && !name.starts_with("guest "))
            throw ConfigError(file + ": unknown section [" + name + "]");
    }
    auto section_of = [&](const std::string &name) -> const pt::ptree & {
        auto it = tree.find(name);
        return it == tree.not_found() ? empty : it->second;
    };

    Section d(section_of("daemon"), file + ": [daemon]",
              {"node", "control_socket", "state_dir", "metrics", "drbdsetup", "drbdadm", "netbuf_setup",
               "xen_lib_dir", "xen_run_dir", "lock_memory"});
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    c.node = d.text("node", host);
    if (!valid_node_name(c.node))
        throw ConfigError(d.where() + ".node: '" + c.node + "' is not a node name (1-64 of A-Z a-z 0-9 . _ -)");
    c.control_socket = d.text("control_socket", c.control_socket.string());
    c.state_dir = d.text("state_dir", c.state_dir.string());
    c.lock_memory = d.flag("lock_memory", true);
    c.metrics = d.endpoint("metrics", 9464);
    c.drbdsetup = d.text("drbdsetup", c.drbdsetup);
    c.drbdadm = d.text("drbdadm", c.drbdadm);
    c.netbuf_setup = d.text("netbuf_setup", UNDERSTUDY_SCRIPT_DIR "/netbuf-setup");
    for (auto [key, dir] : {std::pair{"xen_lib_dir", &c.xen_lib_dir}, std::pair{"xen_run_dir", &c.xen_run_dir}}) {
        *dir = d.text(key, dir->string());
        if (!dir->is_absolute())
            throw ConfigError(d.where() + "." + key + ": '" + dir->string() + "' is not an absolute path");
    }

    Section r(section_of("replication"), file + ": [replication]",
              {"listen", "psk_file", "certificate", "private_key", "ca", "peer_name", "insecure", "interval_ms",
               "ack_timeout_ms",
               "retry_ms", "compression", "output_buffer_mib", "output_buffer_policy"});
    c.listen = r.endpoint("listen", kDefaultStreamPort);
    c.insecure = r.flag("insecure", false);
    auto psk = r.text("psk_file");
    auto cert = r.text("certificate");
    if (psk && cert)
        throw ConfigError(file + ": [replication] has both psk_file and certificate; choose one");
    if (psk) {
        c.psk_file = *psk;
        try {
            c.tls = TlsSettings{read_psk_file(*psk), {}, {}, {}, {}};
        } catch (const std::exception &e) {
            throw ConfigError(file + ": [replication].psk_file: " + e.what());
        }
    } else if (cert) {
        auto key = r.text("private_key"), ca = r.text("ca"), peer_name = r.text("peer_name");
        if (!key || !ca || !peer_name)
            throw ConfigError(file + ": [replication] certificate needs private_key, ca and peer_name (the name "
                                     "the peer's certificate is for: any certificate the CA signed would do otherwise)");
        try {
            check_secret_file_mode(*key, "private key");
        } catch (const std::exception &e) {
            throw ConfigError(file + ": [replication].private_key: " + e.what());
        }
        c.tls = TlsSettings{{}, *cert, *key, *ca, *peer_name};
    }
    if (c.tls && c.insecure)
        throw ConfigError(file + ": [replication] insecure = yes together with a key or certificate");
    if (!c.tls && !c.insecure)
        throw ConfigError(file + ": [replication] needs psk_file (or certificate, private_key, ca); "
                                 "only benchmarks may set insecure = yes");
    c.replication.interval = std::chrono::milliseconds(r.number<unsigned>("interval_ms", 25, 1, 10'000));
    c.replication.ack_timeout = std::chrono::milliseconds(r.number<unsigned>("ack_timeout_ms", 2000, 50, 600'000));
    c.replication.retry_interval = std::chrono::milliseconds(r.number<unsigned>("retry_ms", 1000, 10, 600'000));
    try {
        c.replication.codec = parse_compression(r.text("compression", "none"));
    } catch (const std::invalid_argument &e) {
        throw ConfigError(file + ": [replication].compression: " + e.what());
    }
    c.output.capacity_bytes = std::uint64_t{r.number<unsigned>("output_buffer_mib", 16, 1, 4096)} << 20;
    try {
        c.output.policy = parse_full_buffer_policy(r.text("output_buffer_policy", "drop-newest"));
    } catch (const std::invalid_argument &e) {
        throw ConfigError(file + ": [replication].output_buffer_policy: " + e.what());
    }

    if (tree.find("heartbeat") != tree.not_found()) {
        Section h(section_of("heartbeat"), file + ": [heartbeat]",
                  {"peer_node", "paths", "listen", "interval_ms", "timeout_ms", "witness", "fence_command", "failover",
                   "garp_count", "garp_repeat_ms", "reprotect", "peer_stream", "track_interface",
                   "allow_unguarded_takeover", "after_split_brain"});
        FailoverConfig f;
        auto peer = h.text("peer_node");
        if (!peer)
            throw ConfigError(file + ": [heartbeat].peer_node: missing (the other host's [daemon] node)");
        if (*peer == c.node)
            throw ConfigError(file + ": [heartbeat].peer_node: '" + *peer + "' is this host's own node name");
        if (!valid_node_name(*peer))
            throw ConfigError(file + ": [heartbeat].peer_node: '" + *peer +
                              "' is not a node name (1-64 of A-Z a-z 0-9 . _ -)");
        if (!c.tls || c.tls->psk.empty())
            throw ConfigError(file + ": [heartbeat] needs the pair's key: set [replication] psk_file");
        f.heartbeat.node = c.node;
        f.heartbeat.peer_node = *peer;
        f.heartbeat.key = c.tls->psk;
        f.heartbeat.listen = h.endpoint("listen", 7301).value_or(Endpoint{"0.0.0.0", 7301});
        auto paths = h.text("paths");
        if (!paths)
            throw ConfigError(file + ": [heartbeat].paths: missing (the peer's address on each network, "
                                     "comma-separated)");
        std::stringstream list(*paths);
        for (std::string item; std::getline(list, item, ',');) {
            const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
            if (b == std::string::npos)
                throw ConfigError(file + ": [heartbeat].paths: an empty entry in '" + *paths + "'");
            try {
                auto ep = parse_endpoint(item.substr(b, e - b + 1), 7301);
                in_addr a{};
                if (inet_pton(AF_INET, ep.host.c_str(), &a) != 1)
                    throw std::invalid_argument("'" + ep.host + "' is not an IPv4 address (no names: a heartbeat "
                                                                 "must not wait for DNS)");
                f.heartbeat.paths.push_back(ep);
            } catch (const std::invalid_argument &err) {
                throw ConfigError(file + ": [heartbeat].paths: " + err.what());
            }
        }
        f.heartbeat.interval = std::chrono::milliseconds(h.number<unsigned>("interval_ms", 100, 10, 10'000));
        f.heartbeat.timeout = std::chrono::milliseconds(h.number<unsigned>("timeout_ms", 1000, 50, 600'000));
        if (f.heartbeat.timeout < 2 * f.heartbeat.interval)
            throw ConfigError(file + ": [heartbeat].timeout_ms must be at least twice interval_ms");
        f.witness = h.text("witness");
        if (f.witness) {
            in_addr a{};
            if (inet_pton(AF_INET, f.witness->c_str(), &a) != 1)
                throw ConfigError(file + ": [heartbeat].witness: '" + *f.witness + "' is not an IPv4 address");
        }
        f.track_interface = h.text("track_interface");
        if (f.track_interface) {
            const auto &n = *f.track_interface;
            if (n.empty() || n.size() > 15 || n.find_first_of("/ \t") != std::string::npos || n == "." || n == "..")
                throw ConfigError(file + ": [heartbeat].track_interface: '" + n + "' is not an interface name");
            if (!f.witness)
                throw ConfigError(file + ": [heartbeat].track_interface needs a witness (it only speeds up noticing "
                                         "that the witness is lost)");
        }
        f.fence_command = h.text("fence_command");
        if (f.fence_command)
            if (auto problem = command_problem(*f.fence_command); !problem.empty())
                throw ConfigError(file + ": [heartbeat].fence_command: " + problem +
                                  " (every takeover would fail on it)");
        const auto mode = h.text("failover", "auto");
        if (mode != "auto" && mode != "manual")
            throw ConfigError(file + ": [heartbeat].failover: '" + mode + "' is not auto or manual");
        f.automatic = mode == "auto";
        f.garp_count = h.number<unsigned>("garp_count", 3, 1, 100);
        f.garp_repeat = std::chrono::milliseconds(h.number<unsigned>("garp_repeat_ms", 2000, 0, 600'000));
        const auto reprotect = h.text("reprotect", "manual");
        if (reprotect != "auto" && reprotect != "manual")
            throw ConfigError(file + ": [heartbeat].reprotect: '" + reprotect + "' is not auto or manual");
        f.reprotect_automatic = reprotect == "auto";
        f.peer_stream = h.endpoint("peer_stream", kDefaultStreamPort);
        f.allow_unguarded = h.flag("allow_unguarded_takeover", false);
        if (f.allow_unguarded && (f.witness || f.fence_command))
            throw ConfigError(file + ": [heartbeat].allow_unguarded_takeover: a witness or fence_command is "
                                     "configured, so the pair is guarded; remove the key");
        const auto split = h.text("after_split_brain", "disconnect");
        if (split == "disconnect")
            f.after_split_brain = FailoverConfig::SplitBrainPolicy::disconnect;
        else if (split == "discard-younger")
            f.after_split_brain = FailoverConfig::SplitBrainPolicy::discard_younger;
        else
            throw ConfigError(file + ": [heartbeat].after_split_brain: '" + split +
                              "' is neither disconnect (report; both copies run until an operator stops one) nor "
                              "discard-younger (the copy that became active later stops for good)");
        if (f.reprotect_automatic && !f.peer_stream)
            throw ConfigError(file + ": [heartbeat].reprotect = auto needs peer_stream (the peer's [replication] "
                                     "listen address, HOST[:PORT])");
        c.failover = std::move(f);
    }

    for (const auto &[name, section] : tree) {
        if (!name.starts_with("guest "))
            continue;
        const auto backend = section.get<std::string>("backend", "kvm");
        if (backend != "kvm" && backend != "xen")
            throw ConfigError(file + ": [" + name + "].backend: '" + backend + "' is not kvm or xen");
        const bool xen = backend == "xen";
        Section g(section, file + ": [" + name + "]" + (xen ? " (backend = xen)" : ""),
                  xen ? std::set<std::string>{"backend", "xl_config", "allow_unreplicated_disk", "checkpoint"}
                      : std::set<std::string>{"backend", "kernel", "memory_mib", "tap", "ip", "mac", "port",
                                              "dirty_rate", "guest_arg", "disk", "disk_mib", "autostart"});
        if (!valid_guest_id(name.substr(6)) || name.size() - 6 > 32)
            throw ConfigError(g.where() + ": guest name must be 1-32 characters of A-Z a-z 0-9 _ . -");
        auto guest = xen ? parse_xen_guest(name.substr(6), g) : parse_guest(name.substr(6), g);
        if (c.guest(guest.name))
            throw ConfigError(file + ": guest " + guest.name + " is configured twice");
        c.guests.push_back(std::move(guest));
    }
    return c;
}

DaemonConfig load_daemon_config(const std::filesystem::path &path)
{
    std::ifstream in(path);
    if (!in)
        throw ConfigError(path.string() + ": cannot open: " + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    return parse_daemon_config(text.str(), path);
}

} // namespace understudy::daemon
