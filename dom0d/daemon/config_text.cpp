#include "dom0d/daemon/config_text.h"

#include <sstream>

#include "dom0d/daemon/daemon_config.h"

namespace understudy::daemon {

namespace {

bool blank(char c)
{
    return c == ' ' || c == '\t';
}

std::string trim(const std::string &s)
{
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos)
        return "";
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

// Where an inline comment starts in `text` (npos if none): `;` or `#` at
// the start or after whitespace.
std::size_t comment_at(const std::string &text)
{
    for (std::size_t i = 0; i < text.size(); ++i)
        if ((text[i] == ';' || text[i] == '#') && (i == 0 || blank(text[i - 1])))
            return i;
    return std::string::npos;
}

} // namespace

std::string strip_inline_comments(const std::string &text, const std::filesystem::path &source)
{
    std::istringstream in(text);
    std::ostringstream out;
    std::size_t number = 0;
    for (std::string line; std::getline(in, line);) {
        ++number;
        const std::string where = source.string() + ":" + std::to_string(number) + ": ";
        const std::string t = trim(line);
        if (t.empty() || t[0] == ';' || t[0] == '#') {
            out << "\n"; // a whole-line comment: nothing, the line count kept
            continue;
        }
        if (t[0] == '[') { // a section header, maybe with a comment after it
            const auto close = t.find(']');
            const std::string rest = close == std::string::npos ? "" : trim(t.substr(close + 1));
            const bool commented = !rest.empty() && (rest[0] == ';' || rest[0] == '#');
            out << (commented ? t.substr(0, close + 1) : t) << "\n";
            continue;
        }
        const auto eq = t.find('=');
        if (eq == std::string::npos) {
            out << t << "\n"; // Boost reports it
            continue;
        }
        const std::string key = trim(t.substr(0, eq));
        std::string value = trim(t.substr(eq + 1));
        if (!value.empty() && value[0] == '"') {
            const auto close = value.find('"', 1);
            if (close == std::string::npos)
                throw ConfigError(where + "the value of '" + key + "' opens a quote it does not close");
            const std::string rest = trim(value.substr(close + 1));
            if (!rest.empty() && rest[0] != ';' && rest[0] != '#')
                throw ConfigError(where + "text after the closing quote of '" + key + "': '" + rest + "'");
            value = value.substr(1, close - 1);
        } else if (const auto c = comment_at(value); c != std::string::npos) {
            value = trim(value.substr(0, c));
        }
        out << key << " = " << value << "\n";
    }
    return out.str();
}

} // namespace understudy::daemon
