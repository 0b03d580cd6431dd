#include "netbuffer_qdisc/plug_qdisc.h"

#include <linux/pkt_sched.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/plug.h>
#include <netlink/route/tc.h>
#include <sched.h>

#include <thread>

namespace understudy {

namespace {

constexpr int kPlugLimitBytes = 16 << 20;

rtnl_qdisc *new_plug(int ifindex)
{
    rtnl_qdisc *q = rtnl_qdisc_alloc();
    if (!q)
        throw std::runtime_error("plug qdisc: out of memory");
    rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
    rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
    rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(0x5553, 0));
    if (rtnl_tc_set_kind(TC_CAST(q), "plug") < 0) {
        rtnl_qdisc_put(q);
        throw PlugUnavailable("plug qdisc: this libnl does not know the plug qdisc");
    }
    return q;
}

nl_sock *route_socket()
{
    nl_sock *s = nl_socket_alloc();
    if (!s)
        throw std::runtime_error("plug qdisc: out of memory");
    if (int err = nl_connect(s, NETLINK_ROUTE); err < 0) {
        nl_socket_free(s);
        throw std::runtime_error(std::string("plug qdisc: netlink: ") + nl_geterror(err));
    }
    return s;
}

// Adds the plug; an unknown qdisc kind means the kernel lacks sch_plug.
void add_plug(nl_sock *sock, rtnl_qdisc *q, const std::string &where)
{
    rtnl_qdisc_plug_set_limit(q, kPlugLimitBytes);
    rtnl_qdisc_plug_release_indefinite(q);
    const int err = rtnl_qdisc_add(sock, q, NLM_F_CREATE | NLM_F_REPLACE);
    if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NOATTR || err == -NLE_OPNOTSUPP)
        throw PlugUnavailable("plug qdisc on " + where + ": the kernel has no sch_plug (" + nl_geterror(err) +
                              "); use the tap-redirect way");
    if (err < 0)
        throw std::runtime_error("plug qdisc on " + where + ": " + nl_geterror(err));
}

} // namespace

bool kernel_has_plug(std::string *detail)
{
    bool found = false;
    std::thread([&] {
        // A namespace of its own: trying touches no interface of the host.
        if (::unshare(CLONE_NEWNET) != 0) {
            *detail = "cannot tell: no network namespace to try it in (needs root)";
            return;
        }
        nl_sock *sock = nullptr;
        rtnl_qdisc *q = nullptr;
        try {
            sock = route_socket();
            q = new_plug(static_cast<int>(if_nametoindex("lo")));
            add_plug(sock, q, "a test interface");
            found = true;
            *detail = "the kernel has sch_plug";
        } catch (const std::exception &e) {
            *detail = e.what();
        }
        if (q)
            rtnl_qdisc_put(q);
        if (sock)
            nl_socket_free(sock);
    }).join();
    return found;
}

PlugOutput::PlugOutput(const std::string &ifb) : ifb_(ifb)
{
    const int ifindex = static_cast<int>(if_nametoindex(ifb.c_str()));
    if (ifindex == 0)
        throw std::runtime_error("plug qdisc: no interface " + ifb);
    sock_ = route_socket();
    try {
        qdisc_ = new_plug(ifindex);
        add_plug(sock_, qdisc_, ifb);
        // A new plug holds everything (the kernel reads only the limit when
        // creating it): let it all through until the first pause.
        change(rtnl_qdisc_plug_release_indefinite, "let everything through");
    } catch (...) {
        if (qdisc_)
            rtnl_qdisc_put(qdisc_);
        nl_socket_free(sock_);
        throw;
    }
}

PlugOutput::~PlugOutput()
{
    rtnl_qdisc_plug_release_indefinite(qdisc_);
    (void)rtnl_qdisc_add(sock_, qdisc_, NLM_F_REPLACE);
    (void)rtnl_qdisc_delete(sock_, qdisc_);
    rtnl_qdisc_put(qdisc_);
    nl_socket_free(sock_);
}

void PlugOutput::change(int (*op)(struct rtnl_qdisc *), const char *what)
{
    op(qdisc_);
    if (int err = rtnl_qdisc_add(sock_, qdisc_, NLM_F_REPLACE); err < 0)
        throw std::runtime_error(std::string("plug qdisc on ") + ifb_ + ": " + what + ": " + nl_geterror(err));
}

// The kernel's plug knows two batches only: the one sealed by the last
// BUFFER (released whole by RELEASE_ONE) and the one filling now; a second
// BUFFER before the release would merge the sealed batch into nothing and
// hold it for ever. So with checkpoints in flight (the engine pipelines them),
// a pause while a batch is sealed seals nothing: what the guest sends
// meanwhile is sealed at the first pause after the release, under that
// pause's epoch. That holds output longer (up to one more interval), never
// shorter: a frame is released only when an epoch paused after it is acked.
void PlugOutput::on_pause(Epoch epoch)
{
    std::lock_guard lock(mutex_);
    paused_.push_back(epoch.value);
    if (sealed_)
        return;
    change(rtnl_qdisc_plug_buffer, "insert a barrier");
    sealed_ = epoch.value;
}

void PlugOutput::on_commit(Epoch epoch)
{
    std::lock_guard lock(mutex_);
    while (!paused_.empty() && paused_.front() <= epoch.value)
        paused_.pop_front();
    if (sealed_ && *sealed_ <= epoch.value) {
        change(rtnl_qdisc_plug_release_one, "release an epoch");
        released_ = *sealed_;
        sealed_.reset();
    }
}

std::uint64_t PlugOutput::released_epoch() const
{
    std::lock_guard lock(mutex_);
    return released_;
}

void PlugOutput::on_unprotected()
{
    std::lock_guard lock(mutex_);
    change(rtnl_qdisc_plug_release_indefinite, "release everything");
    sealed_.reset();
    paused_.clear();
}

std::uint64_t PlugOutput::barriers() const
{
    std::lock_guard lock(mutex_);
    return paused_.size();
}

} // namespace understudy
