// Compression of page batches on the stream (negotiated in the handshake):
// optionally XOR each page with the version the backup already holds, which
// turns a page with a few changed bytes into mostly zeros, then LZ4 or zstd.
// A batch is sent compressed only when that makes it smaller.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "proto/stream.pb.h"

namespace understudy {

struct PageCodecSettings {
    bool xor_delta = false;
    proto::PageBatch::Encoding compressor = proto::PageBatch::RAW; // RAW, LZ4 or ZSTD
};

// The features a side can offer or accept, as named in Hello.
inline constexpr const char *kFeatureXorDelta = "xor-delta";
inline constexpr const char *kFeatureLz4 = "lz4";
inline constexpr const char *kFeatureZstd = "zstd";

// Parses "none", "lz4", "zstd", "xor+lz4", "xor+zstd"; throws
// std::invalid_argument otherwise.
[[nodiscard]] PageCodecSettings parse_compression(const std::string &text);
[[nodiscard]] std::string compression_name(const PageCodecSettings &settings);
[[nodiscard]] std::vector<std::string> codec_features(const PageCodecSettings &settings);
[[nodiscard]] PageCodecSettings codec_from_features(const google::protobuf::RepeatedPtrField<std::string> &features);

class PageEncoder {
  public:
    explicit PageEncoder(PageCodecSettings settings);
    ~PageEncoder();

    struct Encoded {
        proto::PageBatch::Encoding encoding = proto::PageBatch::RAW;
        bool xor_delta = false;
        std::span<const std::uint8_t> payload; // valid until the next encode()
    };
    // `pages`: whole pages; `previous`: what the backup holds for the same
    // pages (same size), or empty without XOR delta.
    [[nodiscard]] Encoded encode(std::span<const std::uint8_t> pages, std::span<const std::uint8_t> previous);

  private:
    PageCodecSettings settings_;
    std::vector<std::uint8_t> delta_, packed_;
    struct Zstd;
    std::unique_ptr<Zstd> zstd_;
};

class PageDecoder {
  public:
    PageDecoder();
    ~PageDecoder();
    // Decodes `payload` into `out` (exactly out.size() bytes must result);
    // with XOR delta, `out` must already hold the backup's current pages.
    // Throws StreamError on anything that does not decode exactly.
    void decode(proto::PageBatch::Encoding encoding, bool xor_delta, std::span<const std::uint8_t> payload,
                std::span<std::uint8_t> out);

  private:
    std::vector<std::uint8_t> scratch_;
    struct Zstd;
    std::unique_ptr<Zstd> zstd_;
};

} // namespace understudy
