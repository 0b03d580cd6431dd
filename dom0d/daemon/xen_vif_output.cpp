#include "dom0d/daemon/xen_vif_output.h"

#include <stdexcept>

#include "dom0d/cli/net_args.h"
#include "drbd/drbd_tool.h"

namespace understudy::daemon {

std::string vif_name(std::uint32_t domid, unsigned devid)
{
    return "vif" + std::to_string(domid) + "." + std::to_string(devid);
}

XenVifOutput::XenVifOutput(std::uint32_t domid, const std::vector<xen::XlNic> &nics, std::filesystem::path netbuf_setup,
                           OutputBufferSettings settings, Log log)
    : netbuf_setup_(std::move(netbuf_setup)), log_(std::move(log))
{
    try {
        for (unsigned i = 0; i < nics.size(); ++i) {
            const auto vif = vif_name(domid, i);
            run_setup("add", vif);
            vifs_.push_back(vif);
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
    for (const auto &vif : vifs_) {
        try {
            run_setup("remove", vif);
        } catch (const std::exception &e) {
            log_(e.what());
        }
    }
    vifs_.clear();
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
    auto r = drbd::run_tool({netbuf_setup_.string(), op, vif}, std::chrono::seconds(20));
    if (r.status != 0)
        throw std::runtime_error(netbuf_setup_.string() + " " + op + " " + vif + " failed (exit " +
                                 std::to_string(r.status) + ")" +
                                 (r.err.empty() ? "" : ": " + drbd::first_line(r.err)));
}

} // namespace understudy::daemon
