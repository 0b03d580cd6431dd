// A log sink for tests: keeps every line (and echoes it to stderr when
// UNDERSTUDY_TEST_LOG is set), so a test can look for what was said.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace understudy::testing {

struct LogLines {
    std::mutex mutex;
    std::vector<std::string> lines;
    void operator()(const std::string &line)
    {
        std::lock_guard lock(mutex);
        if (std::getenv("UNDERSTUDY_TEST_LOG"))
            std::fprintf(stderr, "log: %s\n", line.c_str());
        lines.push_back(line);
    }
    bool contains(const std::string &text)
    {
        std::lock_guard lock(mutex);
        for (auto &l : lines)
            if (l.find(text) != std::string::npos)
                return true;
        return false;
    }
    std::string all()
    {
        std::lock_guard lock(mutex);
        std::string s;
        for (auto &l : lines)
            s += l + "\n";
        return s;
    }
};

} // namespace understudy::testing
