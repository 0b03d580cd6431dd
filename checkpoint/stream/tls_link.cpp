#include "checkpoint/stream/tls_link.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <fstream>
#include <sstream>

#include "checkpoint/stream/tcp.h"

namespace understudy {

namespace {

constexpr char kPskIdentity[] = "understudy-pair-v1";
constexpr unsigned char kAes128GcmSha256[] = {0x13, 0x01};

std::string openssl_errors()
{
    std::string text;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!text.empty())
            text += "; ";
        text += buf;
    }
    return text.empty() ? "no OpenSSL error reported" : text;
}

const std::vector<std::uint8_t> &context_psk(SSL *ssl)
{
    return *static_cast<const std::vector<std::uint8_t> *>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
}

SSL_SESSION *psk_session(SSL *ssl)
{
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, kAes128GcmSha256);
    if (!cipher)
        return nullptr;
    const auto &key = context_psk(ssl);
    SSL_SESSION *s = SSL_SESSION_new();
    if (!s)
        return nullptr;
    if (!SSL_SESSION_set1_master_key(s, key.data(), key.size()) || !SSL_SESSION_set_cipher(s, cipher) ||
        !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
        SSL_SESSION_free(s);
        return nullptr;
    }
    return s;
}

int use_psk_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, std::size_t *idlen, SSL_SESSION **sess)
{
    *sess = nullptr;
    *id = nullptr;
    *idlen = 0;
    if (md && EVP_MD_get_type(md) != NID_sha256)
        return 1; // a hello retry chose another hash: offer no PSK
    *sess = psk_session(ssl);
    if (!*sess)
        return 0;
    *id = reinterpret_cast<const unsigned char *>(kPskIdentity);
    *idlen = sizeof kPskIdentity - 1;
    return 1;
}

int find_psk_session(SSL *ssl, const unsigned char *identity, std::size_t len, SSL_SESSION **sess)
{
    *sess = nullptr;
    if (len != sizeof kPskIdentity - 1 || std::memcmp(identity, kPskIdentity, len) != 0)
        return 1; // unknown identity: no PSK, and without a certificate the handshake fails
    *sess = psk_session(ssl);
    return *sess ? 1 : 0;
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

} // namespace

void check_secret_file_mode(const std::filesystem::path &path, const std::string &what)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw std::runtime_error(what + " " + path.string() + ": cannot open: " + std::strerror(errno));
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw std::runtime_error(what + " " + path.string() + ": mode " + mode +
                                 " lets group or others read it; a key must be readable by its owner only "
                                 "(chmod 600 " + path.string() + ")");
    }
}

std::vector<std::uint8_t> read_psk_file(const std::filesystem::path &path)
{
    check_secret_file_mode(path, "key file");
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error("key file " + path.string() + ": cannot open: " + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    std::string hex;
    for (char c : text.str())
        if (!std::isspace(static_cast<unsigned char>(c)))
            hex += c;
    if (hex.size() % 2)
        throw std::runtime_error("key file " + path.string() + ": odd number of hex digits");
    std::vector<std::uint8_t> key;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
        if (hi < 0 || lo < 0)
            throw std::runtime_error("key file " + path.string() + ": '" + hex.substr(i, 2) +
                                     "' is not hex (write the key as hex, e.g. `openssl rand -hex 32`)");
        key.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    }
    if (key.size() < 32)
        throw std::runtime_error("key file " + path.string() + ": " + std::to_string(key.size()) +
                                 " bytes of key, at least 32 are needed (`openssl rand -hex 32`)");
    return key;
}

// OpenSSL writes to the socket with write(2): a peer that closed the link
// would raise SIGPIPE and kill the process instead of failing the write.
// Unless the program chose its own handling, a closed link is an error.
static void ignore_sigpipe_unless_handled()
{
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction current {};
        if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL)
            ::signal(SIGPIPE, SIG_IGN);
    });
}

TlsContext::TlsContext(const TlsSettings &settings, Role role) : role_(role)
{
    ignore_sigpipe_unless_handled();
    ctx_ = SSL_CTX_new(role == Role::client ? TLS_client_method() : TLS_server_method());
    if (!ctx_)
        throw LinkError("create TLS context: " + openssl_errors());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx_, 0);
    if (!settings.psk.empty()) {
        // A fixed-length key for the SHA-256 suite, whatever the file's length.
        psk_.resize(SHA256_DIGEST_LENGTH);
        SHA256(settings.psk.data(), settings.psk.size(), psk_.data());
        SSL_CTX_set_app_data(ctx_, &psk_);
        SSL_CTX_set_ciphersuites(ctx_, "TLS_AES_128_GCM_SHA256");
        if (role == Role::client)
            SSL_CTX_set_psk_use_session_callback(ctx_, use_psk_session);
        else
            SSL_CTX_set_psk_find_session_callback(ctx_, find_psk_session);
        return;
    }
    auto fail = [&](const std::string &what) {
        std::string why = what + ": " + openssl_errors();
        SSL_CTX_free(ctx_);
        throw LinkError(why);
    };
    if (SSL_CTX_use_certificate_chain_file(ctx_, settings.certificate.c_str()) != 1)
        fail("load certificate " + settings.certificate.string());
    if (SSL_CTX_use_PrivateKey_file(ctx_, settings.private_key.c_str(), SSL_FILETYPE_PEM) != 1)
        fail("load private key " + settings.private_key.string());
    if (SSL_CTX_check_private_key(ctx_) != 1)
        fail("private key " + settings.private_key.string() + " does not match " + settings.certificate.string());
    if (SSL_CTX_load_verify_locations(ctx_, settings.ca.c_str(), nullptr) != 1)
        fail("load CA " + settings.ca.string());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    if (settings.peer_name.empty()) {
        SSL_CTX_free(ctx_);
        throw LinkError("certificate mode needs the peer's certificate name (peer_name): any certificate the CA "
                        "signed would be accepted otherwise");
    }
    // Checked in the chain's verification, on both ends: the peer's
    // certificate must be for this name, not only signed by the CA.
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, settings.peer_name.c_str(), settings.peer_name.size()) != 1)
        fail("peer name '" + settings.peer_name + "'");
    peer_name_ = settings.peer_name;
}

TlsContext::~TlsContext()
{
    SSL_CTX_free(ctx_);
}

std::unique_ptr<TlsLink> TlsContext::handshake(UniqueFd fd, std::string peer, std::chrono::milliseconds timeout) const
{
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx_);
    if (!ssl)
        throw LinkError("TLS with " + peer + ": " + openssl_errors());
    SSL_set_fd(ssl, fd.get());
    auto link = std::make_unique<TlsLink>(std::move(fd), ssl, peer, timeout);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int rc = role_ == Role::client ? SSL_connect(ssl) : SSL_accept(ssl);
        if (rc == 1)
            return link;
        int err = SSL_get_error(ssl, rc);
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) && left.count() > 0) {
            if (!wait_fd(SSL_get_fd(ssl), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, left))
                throw LinkTimeout("TLS handshake with " + peer + ": no answer within " +
                                  std::to_string(timeout.count()) + " ms");
            continue;
        }
        std::string why = err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN
                              ? "peer closed the connection (it does not hold our key or certificate?)"
                              : openssl_errors();
        if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK)
            why += " (" + std::string(X509_verify_cert_error_string(v)) +
                   (v == X509_V_ERR_HOSTNAME_MISMATCH ? ": its certificate is not for " + peer_name_ : "") + ")";
        throw LinkError("TLS handshake with " + peer + " failed: " + why);
    }
}

TlsLink::TlsLink(UniqueFd fd, SSL *ssl, std::string peer, std::chrono::milliseconds write_timeout)
    : fd_(std::move(fd)), ssl_(ssl), peer_(std::move(peer)), write_timeout_(write_timeout)
{
}

TlsLink::~TlsLink()
{
    SSL_free(ssl_);
}

void TlsLink::wait_for(int rc, const char *what, std::chrono::milliseconds timeout)
{
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (!wait_fd(fd_.get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, timeout))
            throw LinkTimeout(std::string(what) + " " + peer_ + ": nothing for " + std::to_string(timeout.count()) +
                              " ms");
        return;
    }
    // The peer's kernel closed the TCP connection without a TLS close_notify
    // (its process died): OpenSSL 3 reports an unexpected EOF.
    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) ||
        (err == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
        throw LinkClosed(std::string(what) + " " + peer_ + ": connection closed by peer");
    throw LinkError(std::string(what) + " " + peer_ + ": " + openssl_errors());
}

void TlsLink::write(std::span<const std::uint8_t> bytes)
{
    while (!bytes.empty()) {
        if (shut_)
            throw LinkError("send to " + peer_ + ": link shut down");
        std::size_t n = 0;
        ERR_clear_error();
        int rc = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n);
        if (rc == 1)
            bytes = bytes.subspan(n);
        else
            wait_for(rc, "send to", write_timeout_);
    }
}

void TlsLink::read(std::span<std::uint8_t> into, std::chrono::milliseconds idle)
{
    while (!into.empty()) {
        if (shut_)
            throw LinkError("receive from " + peer_ + ": link shut down");
        std::size_t n = 0;
        ERR_clear_error();
        int rc = SSL_read_ex(ssl_, into.data(), into.size(), &n);
        if (rc == 1)
            into = into.subspan(n);
        else
            wait_for(rc, "receive from", idle);
    }
}

void TlsLink::shutdown() noexcept
{
    shut_ = true;
    ::shutdown(fd_.get(), SHUT_RDWR);
}

} // namespace understudy
