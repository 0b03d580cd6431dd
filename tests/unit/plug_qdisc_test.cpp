// The plug way of output commit: detected at start, refused with a clear
// message where the kernel lacks sch_plug (as on these machines), and where
// it exists, barriers go in at pauses and come out at acks. Everything runs
// in a network namespace of its own.
#include <catch2/catch.hpp>

#include <sched.h>

#include <functional>
#include <thread>

#include "netbuffer_qdisc/plug_qdisc.h"

using namespace understudy;

namespace {

// Runs `fn` on a thread in a fresh network namespace; what it throws comes back.
void in_fresh_netns(const std::function<void()> &fn)
{
    std::exception_ptr error;
    std::thread([&] {
        try {
            if (::unshare(CLONE_NEWNET) != 0)
                throw std::runtime_error("unshare(CLONE_NEWNET) failed (needs root)");
            fn();
        } catch (...) {
            error = std::current_exception();
        }
    }).join();
    if (error)
        std::rethrow_exception(error);
}

} // namespace

TEST_CASE("the plug qdisc is detected, and used only where the kernel has it", "[output][plug]")
{
    std::string detail;
    const bool has_plug = kernel_has_plug(&detail);
    INFO(detail);
    CHECK_FALSE(detail.empty());
    if (!has_plug) {
        CHECK(detail.find("sch_plug") != std::string::npos);
        // Asked for anyway, it says why not and what to use instead.
        CHECK_THROWS_WITH(in_fresh_netns([] { PlugOutput plug("lo"); }),
                          Catch::Contains("no sch_plug") && Catch::Contains("tap-redirect"));
        WARN("SKIPPED: barriers through a real plug qdisc: " + detail);
        return;
    }
    in_fresh_netns([] {
        PlugOutput plug("lo");
        plug.on_pause(Epoch{1});
        plug.on_pause(Epoch{2});
        if (plug.barriers() != 2)
            throw std::runtime_error("two pauses should hold two epochs");
        plug.on_commit(Epoch{1});
        if (plug.barriers() != 1)
            throw std::runtime_error("an ack of epoch 1 should release one barrier");
        plug.on_unprotected();
        if (plug.barriers() != 0)
            throw std::runtime_error("unprotected, nothing should be held");
    });
    CHECK_THROWS_WITH(PlugOutput("no-such-ifb0"), Catch::Contains("no interface no-such-ifb0"));
}
