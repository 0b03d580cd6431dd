#include <catch2/catch.hpp>

#include "checkpoint/kvm/kvm_error.h"
#include "checkpoint/kvm/vcpu_state.h"

using namespace understudy::kvm;

TEST_CASE("vCPU state survives the checkpoint message unchanged", "[vcpu_state]")
{
    VcpuState s;
    s.regs.rip = 0x100123;
    s.regs.rax = 42;
    s.sregs.cr3 = 0x2000;
    s.sregs.efer = 0x500;
    s.fpu.fcw = 0x37f;
    s.events.exception.injected = 1;
    s.msrs.push_back({0xc0000082, 0, 0xffffffff81000000ull});

    auto m = to_proto(s);
    std::string wire;
    REQUIRE(m.SerializeToString(&wire));
    understudy::proto::KvmVcpuState parsed;
    REQUIRE(parsed.ParseFromString(wire));
    auto back = from_proto(parsed);
    CHECK(back.regs.rip == 0x100123);
    CHECK(back.regs.rax == 42);
    CHECK(back.sregs.cr3 == 0x2000);
    CHECK(back.sregs.efer == 0x500);
    CHECK(back.fpu.fcw == 0x37f);
    CHECK(back.events.exception.injected == 1);
    REQUIRE(back.msrs.size() == 1);
    CHECK(back.msrs[0].index == 0xc0000082);
    CHECK(back.msrs[0].data == 0xffffffff81000000ull);
}

TEST_CASE("malformed vCPU state is refused before it reaches KVM", "[vcpu_state]")
{
    auto m = to_proto(VcpuState{});
    SECTION("a field of the wrong size")
    {
        m.set_sregs("short");
        CHECK_THROWS_WITH(from_proto(m), Catch::Contains("field sregs has 5 bytes"));
    }
    SECTION("an MSR we never save")
    {
        auto *msr = m.add_msrs();
        msr->set_index(0x1b); // APIC base
        CHECK_THROWS_WITH(from_proto(m), Catch::Contains("not one we restore"));
    }
    SECTION("too many MSRs")
    {
        for (int i = 0; i < 50; ++i)
            m.add_msrs()->set_index(0x10);
        CHECK_THROWS_WITH(from_proto(m), Catch::Contains("MSRs, at most"));
    }
}
