// How a protected Xen domain is stopped for each checkpoint, chosen per guest
// (`checkpoint = pause | suspend` in its [guest] section; docs/xen.md).
//  - pause: stopped by Xen without the guest's help: an HVM domain by
//    Xen's suspend shutdown and xc_domain_resume (Xen lets a vCPU finish an
//    emulated I/O first), a PVH one by xc_domain_pause/unpause; its QEMU is
//    stopped meanwhile. The guest never notices. A copy
//    activated on the backup runs on as if nothing happened, so PV frontends
//    in it keep talking to backends that do not exist there.
//  - suspend: libxl_domain_suspend_only, then libxl_domain_resume with
//    suspend_cancel (Remus's way). The guest's PV drivers suspend it; here it
//    learns the suspend was cancelled and goes on, while a copy activated on
//    the backup returns from the same suspend as resumed in a new domain and
//    reconnects its frontends to the new backends. Needs PV drivers that
//    answer suspend requests, and adds the guest's suspend time to each pause.
#pragma once

#include <optional>
#include <string_view>

namespace understudy::xen {

enum class CheckpointWay { pause, suspend };

[[nodiscard]] inline std::string_view to_string(CheckpointWay way)
{
    return way == CheckpointWay::suspend ? "suspend" : "pause";
}

// "pause" or "suspend"; nullopt for anything else.
[[nodiscard]] inline std::optional<CheckpointWay> parse_checkpoint_way(std::string_view text)
{
    if (text == "pause")
        return CheckpointWay::pause;
    if (text == "suspend")
        return CheckpointWay::suspend;
    return std::nullopt;
}

} // namespace understudy::xen
