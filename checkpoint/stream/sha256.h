// Incremental SHA-256 (OpenSSL) for the epoch checksum in EpochEnd.
#pragma once

#include <array>
#include <cstdint>
#include <span>

struct evp_md_ctx_st;

namespace understudy {

using Sha256Digest = std::array<std::uint8_t, 32>;

class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256 &) = delete;
    Sha256 &operator=(const Sha256 &) = delete;

    void reset();
    void update(std::span<const std::uint8_t> bytes);
    [[nodiscard]] Sha256Digest finish();

  private:
    evp_md_ctx_st *ctx_;
};

} // namespace understudy
