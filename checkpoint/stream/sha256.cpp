#include "checkpoint/stream/sha256.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace understudy {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new())
{
    if (!ctx_)
        throw std::bad_alloc();
    reset();
}

Sha256::~Sha256()
{
    EVP_MD_CTX_free(ctx_);
}

void Sha256::reset()
{
    if (EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256: EVP_DigestInit_ex failed");
}

void Sha256::update(std::span<const std::uint8_t> bytes)
{
    if (!bytes.empty())
        EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
}

Sha256Digest Sha256::finish()
{
    Sha256Digest d{};
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_, d.data(), &len);
    reset();
    return d;
}

} // namespace understudy
