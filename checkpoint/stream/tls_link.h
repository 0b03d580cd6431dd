// The replication stream over TLS 1.3 (OpenSSL): both ends prove they hold
// the pair's pre-shared key, or present certificates signed by the pair's CA.
// A peer that cannot do either never gets past the handshake.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/stream/link.h"
#include "checkpoint/unique_fd.h"

namespace understudy {

struct TlsSettings {
    // Pre-shared key mode: the key's bytes (at least 32).
    std::vector<std::uint8_t> psk;
    // Certificate mode (used when psk is empty): our certificate and key, the
    // CA that must have signed the peer's certificate, and the name the
    // peer's certificate must carry (a DNS subjectAltName or, without any,
    // its common name): a certificate from the same CA for another host is
    // refused.
    std::filesystem::path certificate, private_key, ca;
    std::string peer_name;
};

// Reads a key file holding at least 32 bytes as hex (e.g. `openssl rand -hex
// 32`); throws std::runtime_error naming the file and what is wrong, also
// when group or others may read it.
[[nodiscard]] std::vector<std::uint8_t> read_psk_file(const std::filesystem::path &path);
// Throws std::runtime_error if group or others may read or write the
// secret file at `path` (a key must be 0600 or 0400), or it cannot be read.
void check_secret_file_mode(const std::filesystem::path &path, const std::string &what);

class TlsLink;

class TlsContext {
  public:
    enum class Role { client, server };
    TlsContext(const TlsSettings &settings, Role role);
    ~TlsContext();
    TlsContext(const TlsContext &) = delete;
    TlsContext &operator=(const TlsContext &) = delete;

    // Runs the handshake on a connected non-blocking socket; throws LinkError
    // saying why it failed (wrong key, no certificate, timeout...).
    [[nodiscard]] std::unique_ptr<TlsLink> handshake(UniqueFd fd, std::string peer,
                                                     std::chrono::milliseconds timeout) const;
    [[nodiscard]] const std::vector<std::uint8_t> &psk() const noexcept { return psk_; }

  private:
    SSL_CTX *ctx_ = nullptr;
    Role role_;
    std::vector<std::uint8_t> psk_;
    std::string peer_name_; // certificate mode
};

class TlsLink final : public Link {
  public:
    TlsLink(UniqueFd fd, SSL *ssl, std::string peer, std::chrono::milliseconds write_timeout);
    ~TlsLink() override;

    void write(std::span<const std::uint8_t> bytes) override;
    void read(std::span<std::uint8_t> into, std::chrono::milliseconds idle) override;
    void shutdown() noexcept override;
    [[nodiscard]] std::string peer() const override { return peer_; }
    [[nodiscard]] bool authenticates_bytes() const noexcept override { return true; }

  private:
    // Waits for what OpenSSL asked for after an I/O call returned `rc`.
    void wait_for(int rc, const char *what, std::chrono::milliseconds timeout);

    UniqueFd fd_;
    SSL *ssl_;
    std::string peer_;
    std::chrono::milliseconds write_timeout_;
    std::atomic<bool> shut_{false};
};

} // namespace understudy
