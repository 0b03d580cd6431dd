// Output commit by tap redirect on a veth standing in for a Xen vif:
// scripts/netbuf-setup redirects the "guest" side's frames to a TAP, and
// TapRedirectOutput holds them. Frames of every protocol (ARP, IPv4, IPv6)
// reach the client only after their epoch is committed, in order, enter the
// bridge from the guest's own port (no echo back to the guest), and
// teardown may run twice. Needs root (namespaces, tc).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <cstring>
#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "checkpoint/unique_fd.h"
#include "netbuffer_qdisc/plug_qdisc.h"
#include "netbuffer_qdisc/tap_redirect.h"

using namespace understudy;
using namespace std::chrono_literals;

namespace {

const std::array<std::uint8_t, 6> kGuestMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x42};

bool sh(const std::string &command)
{
    return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

// Runs `fn` in a thread that joined network namespace `ns`; sockets it
// opens stay in that namespace.
void in_netns(const std::string &ns, const std::function<void()> &fn)
{
    std::string error;
    std::thread([&] {
        int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
            error = "cannot enter network namespace " + ns;
        } else {
            try {
                fn();
            } catch (const std::exception &e) {
                error = e.what();
            }
        }
        if (fd >= 0)
            ::close(fd);
    }).join();
    REQUIRE(error.empty()); // checked here: a failing check must not throw out of that thread
}

UniqueFd packet_socket(const std::string &ifname)
{
    UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL)));
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (!fd || addr.sll_ifindex == 0 || ::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        throw std::runtime_error("packet socket on " + ifname + ": " + std::strerror(errno));
    return fd;
}

// A well-formed broadcast frame from the guest's MAC (a bridge with
// br_netfilter drops malformed IPv4/IPv6), carrying `tag` where tag_of()
// finds it: ARP's sender address, or the one byte of UDP payload.
std::vector<std::uint8_t> frame(std::uint16_t ethertype, std::uint8_t tag)
{
    std::vector<std::uint8_t> f(14, 0xff);
    std::copy(kGuestMac.begin(), kGuestMac.end(), f.begin() + 6);
    f[12] = static_cast<std::uint8_t>(ethertype >> 8);
    f[13] = static_cast<std::uint8_t>(ethertype);
    if (ethertype == 0x0806) { // ARP request: who has 10.77.0.1, tell 10.77.0.TAG
        const std::uint8_t arp[] = {0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0x42, 10, 77, 0, tag, 0, 0, 0, 0, 0, 0, 10, 77, 0, 1};
        f.insert(f.end(), std::begin(arp), std::end(arp));
    } else if (ethertype == 0x0800) { // UDP 10.77.0.2 -> 255.255.255.255:9, payload TAG
        std::uint8_t ip[] = {0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 10, 77, 0, 2, 255, 255, 255, 255};
        std::uint32_t sum = 0;
        for (int i = 0; i < 20; i += 2)
            sum += static_cast<std::uint32_t>(ip[i] << 8 | ip[i + 1]);
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        ip[10] = static_cast<std::uint8_t>(~sum >> 8);
        ip[11] = static_cast<std::uint8_t>(~sum);
        f.insert(f.end(), std::begin(ip), std::end(ip));
        const std::uint8_t udp[] = {0x30, 0x39, 0, 9, 0, 9, 0, 0, tag};
        f.insert(f.end(), std::begin(udp), std::end(udp));
    } else { // IPv6 UDP fe80::42 -> ff02::1 port 9, payload TAG
        std::uint8_t ip6[40] = {0x60, 0, 0, 0, 0, 9, 17, 1, 0xfe, 0x80};
        ip6[23] = 0x42;
        ip6[24] = 0xff;
        ip6[25] = 0x02;
        ip6[39] = 1;
        f.insert(f.end(), std::begin(ip6), std::end(ip6));
        const std::uint8_t udp[] = {0x30, 0x39, 0, 9, 0, 9, 0, 0, tag};
        f.insert(f.end(), std::begin(udp), std::end(udp));
    }
    f.resize(std::max<std::size_t>(f.size(), 60), 0);
    return f;
}

int tag_of(const std::uint8_t *f, std::size_t n)
{
    const int type = f[12] << 8 | f[13];
    const std::size_t at = type == 0x0806 ? 31 : type == 0x0800 ? 42 : 62;
    return at < n ? f[at] : -1;
}

// The tags of frames from the guest's MAC that arrived (not sent) on `fd`.
std::vector<int> arrived(int fd, std::chrono::milliseconds wait)
{
    std::vector<int> tags;
    const auto until = std::chrono::steady_clock::now() + wait;
    std::uint8_t buf[2048];
    while (std::chrono::steady_clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0)
            continue;
        sockaddr_ll from{};
        socklen_t len = sizeof from;
        const ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from), &len);
        if (n < 14 || from.sll_pkttype == PACKET_OUTGOING || std::memcmp(buf + 6, kGuestMac.data(), 6) != 0)
            continue;
        tags.push_back(tag_of(buf, static_cast<std::size_t>(n)));
    }
    return tags;
}

struct Lab {
    std::string host, guest, client;
    explicit Lab(const std::string &p) : host(p + "h"), guest(p + "g"), client(p + "c") {}
    ~Lab()
    {
        for (const auto &ns : {host, guest, client})
            sh("ip netns del " + ns);
    }
};

// host: bridge br0 with the guest's "vif" (vif1) and the client's port;
// the guest's kernel sends nothing of its own (no IPv6), only the test's frames.
void build(const Lab &lab)
{
    REQUIRE(sh("ip netns add " + lab.host + " && ip netns add " + lab.guest + " && ip netns add " + lab.client));
    const std::string h = "ip -n " + lab.host + " ";
    REQUIRE(sh(h + "link add br0 type bridge && " + h + "link set br0 up && " + h +
               "link add vif1 type veth peer name eth0 netns " + lab.guest + " && " + h +
               "link add cport type veth peer name eth0 netns " + lab.client + " && " + h +
               "link set vif1 master br0 up && " + h + "link set cport master br0 up && ip -n " + lab.guest +
               " link set eth0 address 02:00:00:00:00:42 && ip -n " + lab.client + " link set eth0 up"));
    REQUIRE(sh("ip netns exec " + lab.guest + " sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 && ip -n " + lab.guest +
               " link set eth0 up"));
}

} // namespace

TEST_CASE("tap redirect holds every protocol until its epoch is committed, then releases in order", "[output][tap]")
{
    if (geteuid() != 0 || !sh("command -v tc") || !sh("command -v ip")) {
        WARN("SKIPPED: needs root, ip and tc");
        return;
    }
    const std::string script = std::string(UNDERSTUDY_SOURCE_DIR) + "/scripts/netbuf-setup";
    Lab lab("us-tr" + std::to_string(getpid()));
    build(lab);
    const std::string setup = "ip netns exec " + lab.host + " " + script;
    if (!sh(setup + " add vif1 nb-vif1")) {
        WARN("SKIPPED: this kernel's tc lacks the u32 classifier, clsact or the mirred action");
        return;
    }

    std::unique_ptr<TapRedirectOutput> output;
    in_netns(lab.host, [&] { output = std::make_unique<TapRedirectOutput>(TapRedirectSettings{"nb-vif1", kGuestMac}, OutputBufferSettings{}); });
    UniqueFd guest_nic, client_nic;
    in_netns(lab.guest, [&] { guest_nic = packet_socket("eth0"); });
    in_netns(lab.client, [&] { client_nic = packet_socket("eth0"); });
    auto send = [&](std::uint16_t type, std::uint8_t tag) {
        auto f = frame(type, tag);
        REQUIRE(::send(guest_nic.get(), f.data(), f.size(), 0) == static_cast<ssize_t>(f.size()));
    };

    auto held = [&](std::uint64_t n) {
        for (int i = 0; i < 100 && output->buffer().status().held_frames < n; ++i)
            std::this_thread::sleep_for(10ms);
    };
    // Unprotected: straight through.
    send(0x0800, 1);
    CHECK(arrived(client_nic.get(), 300ms) == std::vector<int>{1});

    // Protected: ARP, IPv4 and IPv6 of epoch 8 wait for epoch 8's commit.
    auto &buffer = output->buffer();
    buffer.on_pause(Epoch{7});
    send(0x0806, 2);
    send(0x0800, 3);
    send(0x86dd, 4);
    held(3); // read from the TAP: a frame still on its way at a pause would count in the next epoch
    buffer.on_pause(Epoch{8});
    send(0x86dd, 5); // epoch 9, still running
    held(4);
    CHECK(arrived(client_nic.get(), 300ms).empty());
    CHECK(buffer.status().held_frames == 4);
    buffer.on_commit(Epoch{8});
    CHECK(arrived(client_nic.get(), 300ms) == std::vector<int>{2, 3, 4});
    buffer.on_pause(Epoch{9});
    buffer.on_commit(Epoch{9});
    CHECK(arrived(client_nic.get(), 300ms) == std::vector<int>{5});
    // Released frames entered the bridge from the guest's port: none came
    // back to the guest.
    CHECK(arrived(guest_nic.get(), 100ms).empty());
    CHECK(buffer.status().released_frames == 4);
    CHECK(buffer.status().transmit_errors == 0);

    // Teardown, twice; then the guest's frames flow directly again.
    output.reset();
    CHECK(sh(setup + " remove vif1 nb-vif1"));
    CHECK(sh(setup + " remove vif1 nb-vif1"));
    CHECK_FALSE(sh("ip -n " + lab.host + " link show nb-vif1"));
    send(0x0800, 8);
    CHECK(arrived(client_nic.get(), 300ms) == std::vector<int>{8});
}

TEST_CASE("tap redirect refuses a TAP that is not there, naming the setup script", "[output][tap]")
{
    CHECK_THROWS_WITH(TapRedirectOutput(TapRedirectSettings{"nb-missing0", std::nullopt}, OutputBufferSettings{}),
                      Catch::Contains("run scripts/netbuf-setup add first"));
    CHECK_THROWS_WITH(TapRedirectOutput(TapRedirectSettings{"a-name-far-too-long-for-linux", std::nullopt}, OutputBufferSettings{}),
                      Catch::Contains("is not an interface name"));
}

TEST_CASE("the vif hotplug script: online is vif-bridge's, offline also removes understudy's redirect, twice safely",
          "[output][tap]")
{
    if (geteuid() != 0 || !sh("command -v tc") || !sh("command -v ip")) {
        WARN("SKIPPED: needs root, ip and tc");
        return;
    }
    const std::string src = UNDERSTUDY_SOURCE_DIR;
    const std::string ns = "us-vif" + std::to_string(getpid());
    REQUIRE(sh("ip netns add " + ns));
    struct Guard {
        std::string ns;
        ~Guard() { sh("ip netns del " + ns); }
    } guard{ns};
    const auto log = std::filesystem::temp_directory_path() / ("vif-bridge-" + std::to_string(getpid()));
    std::filesystem::remove(log);
    // A veth standing in for vif3.0; the fake vif-bridge (a TEST DOUBLE of
    // Xen's) attaches it to br0 as the real one would.
    const auto scripts = std::filesystem::temp_directory_path() / ("xen-scripts-" + std::to_string(getpid()));
    std::filesystem::create_directories(scripts);
    std::filesystem::copy_file(src + "/tests/support/fake-vif-bridge", scripts / "vif-bridge",
                               std::filesystem::copy_options::overwrite_existing);
    const std::string in = "ip netns exec " + ns + " env vif=vif3.0 XEN_SCRIPT_DIR=" + scripts.string() +
                           " FAKE_VIF_BRIDGE_LOG=" + log.string() + " ";
    REQUIRE(sh("ip -n " + ns + " link add br0 type bridge && ip -n " + ns + " link set br0 up && ip -n " + ns +
               " link add vif3.0 type veth peer name guest0"));
    REQUIRE(sh(in + src + "/scripts/vif-understudy online"));
    CHECK(sh("ip -n " + ns + " -o link show dev vif3.0 | grep -q 'master br0'"));
    if (!sh("ip netns exec " + ns + " " + src + "/scripts/netbuf-setup add vif3.0")) {
        WARN("SKIPPED: this kernel's tc lacks the u32 classifier, clsact or the mirred action");
        return;
    }
    CHECK(sh("ip -n " + ns + " link show nb-vif3.0"));
    CHECK(sh(in + src + "/scripts/vif-understudy offline"));
    CHECK(sh(in + src + "/scripts/vif-understudy offline"));
    CHECK_FALSE(sh("ip -n " + ns + " link show nb-vif3.0"));
    CHECK_FALSE(sh("tc -n " + ns + " qdisc show dev vif3.0 | grep -q clsact"));
    CHECK_FALSE(sh("ip -n " + ns + " -o link show dev vif3.0 | grep -q 'master br0'"));
    std::ifstream calls(log);
    std::string all((std::istreambuf_iterator<char>(calls)), std::istreambuf_iterator<char>());
    CHECK(all == "online vif3.0\noffline vif3.0\noffline vif3.0\n");
    CHECK_FALSE(sh(in + src + "/scripts/vif-understudy restart"));
    std::filesystem::remove(log);
    std::filesystem::remove_all(scripts);
}

TEST_CASE("the plug way on a veth standing in for a vif: every protocol held until its epoch commits",
          "[output][plug][plugvif]")
{
    if (geteuid() != 0 || !sh("command -v tc") || !sh("command -v ip")) {
        WARN("SKIPPED: needs root, ip and tc");
        return;
    }
    std::string detail;
    if (!kernel_has_plug(&detail)) {
        WARN("SKIPPED: the plug way needs sch_plug: " + detail + " (it runs in the nested VM of scripts/test)");
        return;
    }
    const std::string script = std::string(UNDERSTUDY_SOURCE_DIR) + "/scripts/netbuf-setup";
    Lab lab("us-pl" + std::to_string(getpid()));
    build(lab);
    const std::string setup = "ip netns exec " + lab.host + " " + script;
    if (!sh(setup + " --plug add vif1")) {
        WARN("SKIPPED: no ifb module, or tc lacks clsact, u32 or mirred");
        return;
    }
    std::unique_ptr<PlugOutput> plug;
    in_netns(lab.host, [&] { plug = std::make_unique<PlugOutput>("nbi-vif1"); });
    UniqueFd guest_nic, client_nic;
    in_netns(lab.guest, [&] { guest_nic = packet_socket("eth0"); });
    in_netns(lab.client, [&] { client_nic = packet_socket("eth0"); });
    auto send = [&](std::uint16_t type, std::uint8_t tag) {
        auto f = frame(type, tag);
        REQUIRE(::send(guest_nic.get(), f.data(), f.size(), 0) == static_cast<ssize_t>(f.size()));
    };
    send(0x0800, 1); // not yet protected: straight through the IFB
    CHECK(arrived(client_nic.get(), 300ms) == std::vector<int>{1});
    plug->on_pause(Epoch{7});
    send(0x0806, 2);
    send(0x0800, 3);
    send(0x86dd, 4);
    plug->on_pause(Epoch{8});
    send(0x0800, 5);
    CHECK(arrived(client_nic.get(), 300ms).empty());
    plug->on_commit(Epoch{7}); // sent after epoch 7's pause: they belong to epoch 8
    CHECK(arrived(client_nic.get(), 300ms).empty());
    // The kernel holds one sealed batch: epoch 8's pause came while epoch 7's
    // was sealed, so 2, 3, 4 (and 5) are sealed at the next pause, 9, and go
    // out with its ack: later than their own epoch's, never earlier.
    plug->on_commit(Epoch{8});
    CHECK(arrived(client_nic.get(), 300ms).empty());
    plug->on_pause(Epoch{9});
    send(0x0806, 6);
    plug->on_commit(Epoch{9});
    CHECK(arrived(client_nic.get(), 300ms) == std::vector<int>{2, 3, 4, 5});
    // Paused and acked one at a time, each epoch's frames go with its ack.
    plug->on_pause(Epoch{10});
    send(0x0800, 7);
    plug->on_commit(Epoch{10});
    CHECK(arrived(client_nic.get(), 300ms) == std::vector<int>{6});
    plug->on_unprotected();
    CHECK(arrived(client_nic.get(), 300ms) == std::vector<int>{7});
    plug.reset();
    CHECK(sh(setup + " remove vif1"));
    CHECK(sh(setup + " remove vif1"));
    CHECK_FALSE(sh("ip -n " + lab.host + " link show nbi-vif1"));
    send(0x0800, 8);
    CHECK(arrived(client_nic.get(), 300ms) == std::vector<int>{8});
}
