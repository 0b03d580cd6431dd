// Runs the KVM integration tests, or reports them skipped (exit 77) with the
// reason when this host cannot run a KVM guest.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <iostream>

#include "tests/support/kvm_requirements.h"

int main(int argc, char **argv)
{
    auto missing = understudy::testing::missing_kvm_requirements();
    if (!missing.empty()) {
        std::cout << "SKIPPED: KVM integration tests need a usable KVM host: " << missing << "\n";
        return understudy::testing::kSkipExitStatus;
    }
    return Catch::Session().run(argc, argv);
}
