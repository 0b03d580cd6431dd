// Shared by the benchmarks: percentiles, and where results go (JSON on
// stdout; with an output directory, the JSON and a gnuplot data file too).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace understudy::bench {

inline double percentile(std::vector<double> v, double p)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

inline void emit(const std::string &name, const std::string &json, const std::string &dat, const char *dir)
{
    std::cout << json;
    if (!dir)
        return;
    std::filesystem::create_directories(dir);
    std::ofstream(std::filesystem::path(dir) / (name + ".json")) << json;
    if (!dat.empty())
        std::ofstream(std::filesystem::path(dir) / (name + ".dat")) << dat;
}

} // namespace understudy::bench
