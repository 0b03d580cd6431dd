#include "checkpoint/page_codec.h"

#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "checkpoint/stream/record.h"

namespace understudy {

PageCodecSettings parse_compression(const std::string &text)
{
    PageCodecSettings s;
    std::string rest = text;
    if (rest.starts_with("xor+")) {
        s.xor_delta = true;
        rest = rest.substr(4);
    }
    if (rest == "none" && !s.xor_delta)
        s.compressor = proto::PageBatch::RAW;
    else if (rest == "lz4")
        s.compressor = proto::PageBatch::LZ4;
    else if (rest == "zstd")
        s.compressor = proto::PageBatch::ZSTD;
    else
        throw std::invalid_argument("compression '" + text + "': expected none, lz4, zstd, xor+lz4 or xor+zstd");
    return s;
}

std::string compression_name(const PageCodecSettings &s)
{
    std::string name = s.compressor == proto::PageBatch::LZ4    ? "lz4"
                       : s.compressor == proto::PageBatch::ZSTD ? "zstd"
                                                                : "none";
    return s.xor_delta ? "xor+" + name : name;
}

std::vector<std::string> codec_features(const PageCodecSettings &s)
{
    std::vector<std::string> f;
    if (s.xor_delta)
        f.emplace_back(kFeatureXorDelta);
    if (s.compressor == proto::PageBatch::LZ4)
        f.emplace_back(kFeatureLz4);
    if (s.compressor == proto::PageBatch::ZSTD)
        f.emplace_back(kFeatureZstd);
    return f;
}

PageCodecSettings codec_from_features(const google::protobuf::RepeatedPtrField<std::string> &features)
{
    PageCodecSettings s;
    for (const auto &f : features) {
        if (f == kFeatureXorDelta)
            s.xor_delta = true;
        else if (f == kFeatureLz4)
            s.compressor = proto::PageBatch::LZ4;
        else if (f == kFeatureZstd)
            s.compressor = proto::PageBatch::ZSTD;
    }
    if (s.compressor == proto::PageBatch::RAW)
        s.xor_delta = false; // XOR alone only costs time
    return s;
}

struct PageEncoder::Zstd {
    ZSTD_CCtx *ctx = ZSTD_createCCtx();
    ~Zstd() { ZSTD_freeCCtx(ctx); }
};

PageEncoder::PageEncoder(PageCodecSettings settings) : settings_(settings), zstd_(std::make_unique<Zstd>()) {}
PageEncoder::~PageEncoder() = default;

PageEncoder::Encoded PageEncoder::encode(std::span<const std::uint8_t> pages, std::span<const std::uint8_t> previous)
{
    Encoded raw{proto::PageBatch::RAW, false, pages};
    if (settings_.compressor == proto::PageBatch::RAW || pages.empty())
        return raw;
    std::span<const std::uint8_t> input = pages;
    const bool xor_delta = settings_.xor_delta && previous.size() == pages.size();
    if (xor_delta) {
        delta_.resize(pages.size());
        const auto *a = reinterpret_cast<const std::uint64_t *>(pages.data());
        const auto *b = reinterpret_cast<const std::uint64_t *>(previous.data());
        auto *d = reinterpret_cast<std::uint64_t *>(delta_.data());
        for (std::size_t i = 0; i < pages.size() / 8; ++i)
            d[i] = a[i] ^ b[i];
        input = delta_;
    }
    std::size_t size = 0;
    if (settings_.compressor == proto::PageBatch::LZ4) {
        packed_.resize(static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(input.size()))));
        int n = LZ4_compress_default(reinterpret_cast<const char *>(input.data()), reinterpret_cast<char *>(packed_.data()),
                                     static_cast<int>(input.size()), static_cast<int>(packed_.size()));
        size = n > 0 ? static_cast<std::size_t>(n) : 0;
    } else {
        packed_.resize(ZSTD_compressBound(input.size()));
        std::size_t n = ZSTD_compressCCtx(zstd_->ctx, packed_.data(), packed_.size(), input.data(), input.size(), 1);
        size = ZSTD_isError(n) ? 0 : n;
    }
    if (size == 0 || size >= pages.size())
        return raw; // did not shrink: send the pages as they are
    return {settings_.compressor, xor_delta, {packed_.data(), size}};
}

struct PageDecoder::Zstd {
    ZSTD_DCtx *ctx = ZSTD_createDCtx();
    ~Zstd() { ZSTD_freeDCtx(ctx); }
};

PageDecoder::PageDecoder() : zstd_(std::make_unique<Zstd>()) {}
PageDecoder::~PageDecoder() = default;

void PageDecoder::decode(proto::PageBatch::Encoding encoding, bool xor_delta, std::span<const std::uint8_t> payload,
                         std::span<std::uint8_t> out)
{
    std::span<std::uint8_t> target = out;
    if (xor_delta) {
        scratch_.resize(out.size());
        target = scratch_;
    }
    switch (encoding) {
    case proto::PageBatch::RAW:
        if (payload.size() != out.size())
            throw StreamError("page batch: " + std::to_string(payload.size()) + " raw bytes for " +
                              std::to_string(out.size()) + " bytes of pages");
        std::memcpy(target.data(), payload.data(), payload.size());
        break;
    case proto::PageBatch::LZ4: {
        int n = LZ4_decompress_safe(reinterpret_cast<const char *>(payload.data()), reinterpret_cast<char *>(target.data()),
                                    static_cast<int>(payload.size()), static_cast<int>(target.size()));
        if (n < 0 || static_cast<std::size_t>(n) != target.size())
            throw StreamError("page batch: LZ4 payload does not decode to " + std::to_string(target.size()) + " bytes");
        break;
    }
    case proto::PageBatch::ZSTD: {
        std::size_t n = ZSTD_decompressDCtx(zstd_->ctx, target.data(), target.size(), payload.data(), payload.size());
        if (ZSTD_isError(n) || n != target.size())
            throw StreamError("page batch: zstd payload does not decode to " + std::to_string(target.size()) +
                              " bytes" + (ZSTD_isError(n) ? std::string(" (") + ZSTD_getErrorName(n) + ")" : ""));
        break;
    }
    default:
        throw StreamError("page batch: unknown encoding " + std::to_string(static_cast<int>(encoding)));
    }
    if (xor_delta) {
        auto *d = reinterpret_cast<std::uint64_t *>(out.data());
        const auto *x = reinterpret_cast<const std::uint64_t *>(scratch_.data());
        for (std::size_t i = 0; i < out.size() / 8; ++i)
            d[i] ^= x[i];
    }
}

} // namespace understudy
