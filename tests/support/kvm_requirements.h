// What the KVM integration tests and benchmarks need from the host, and the
// exit status ctest reads as "skipped".
#pragma once

#include <string>

namespace understudy::testing {

inline constexpr int kSkipExitStatus = 77;

// Empty if root, /dev/kvm, /dev/net/tun and `ip` are all there; otherwise
// the reason the tests cannot run.
std::string missing_kvm_requirements();

} // namespace understudy::testing
