#include "dom0d/daemon/xen_vif_output.h"

#include <algorithm>
#include <stdexcept>

#include "dom0d/cli/net_args.h"
#include "drbd/drbd_tool.h"

namespace understudy::daemon {

std::string vif_name(std::uint32_t domid, unsigned devid)
{
    return "vif" + std::to_string(domid) + "." + std::to_string(devid);
}

XenVifOutput::XenVifOutput(std::uint32_t domid, const std::vector<xen::XlNic> &nics, std::filesystem::path netbuf_setup,
                           Way way, OutputBufferSettings settings, Log log)
    : netbuf_setup_(std::move(netbuf_setup)), way_(way), log_(std::move(log))
{
    try {
        for (unsigned i = 0; i < nics.size(); ++i) {
            const auto vif = vif_name(domid, i);
            run_setup("add", vif);
            vifs_.push_back(vif);
            if (way_ == Way::plug) {
                const auto ifb = ("nbi-" + vif).substr(0, 15); // netbuf-setup's default IFB name
                plugs_.push_back(std::make_unique<PlugOutput>(ifb));
                log_(vif + ": output held until its epoch is acked (plug qdisc on " + ifb + ")");
                continue;
            }
            TapRedirectSettings tap;
            tap.tap = ("nb-" + vif).substr(0, 15); // netbuf-setup's default TAP name
            if (!nics[i].mac.empty())
                tap.guest_mac = cli::parse_mac(nics[i].mac);
            outputs_.push_back(std::make_unique<TapRedirectOutput>(tap, settings));
            log_(vif + ": output held until its epoch is acked (tap redirect through " + tap.tap + ")");
        }
    } catch (...) {
        tear_down();
        throw;
    }
}

XenVifOutput::~XenVifOutput()
{
    tear_down();
}

void XenVifOutput::tear_down() noexcept
{
    outputs_.clear(); // held frames go out first
    plugs_.clear();
    for (const auto &vif : vifs_) {
        try {
            run_setup("remove", vif);
        } catch (const std::exception &e) {
            log_(e.what());
        }
    }
    vifs_.clear();
}

std::vector<CheckpointParticipant *> XenVifOutput::participants()
{
    std::vector<CheckpointParticipant *> out;
    for (auto &o : outputs_)
        out.push_back(&o->buffer());
    for (auto &p : plugs_)
        out.push_back(p.get());
    return out;
}

void XenVifOutput::cut_off()
{
    for (auto &o : outputs_)
        o->buffer().cut_off();
    if (way_ != Way::plug)
        return;
    for (const auto &vif : vifs_) {
        try {
            run_setup("remove", vif);
        } catch (const std::exception &e) {
            log_(e.what());
        }
    }
}

std::uint64_t XenVifOutput::released_epoch()
{
    std::uint64_t released = ~std::uint64_t{0};
    for (auto &o : outputs_)
        released = std::min(released, o->buffer().status().released_epoch);
    for (auto &p : plugs_)
        released = std::min(released, p->released_epoch());
    return released == ~std::uint64_t{0} ? 0 : released;
}

std::vector<PlugOutput *> XenVifOutput::plugs()
{
    std::vector<PlugOutput *> out;
    for (auto &p : plugs_)
        out.push_back(p.get());
    return out;
}

std::vector<OutputBuffer *> XenVifOutput::buffers()
{
    std::vector<OutputBuffer *> out;
    for (auto &o : outputs_)
        out.push_back(&o->buffer());
    return out;
}

void XenVifOutput::run_setup(const std::string &op, const std::string &vif) const
{
    std::vector<std::string> argv{netbuf_setup_.string()};
    if (way_ == Way::plug && op == "add")
        argv.push_back("--plug");
    argv.push_back(op);
    argv.push_back(vif);
    auto r = drbd::run_tool(argv, std::chrono::seconds(20));
    if (r.status != 0)
        throw std::runtime_error(netbuf_setup_.string() + " " + op + " " + vif + " failed (exit " +
                                 std::to_string(r.status) + ")" +
                                 (r.err.empty() ? "" : ": " + drbd::first_line(r.err)));
}

} // namespace understudy::daemon
