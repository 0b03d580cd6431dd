// understudyd.conf as its writer meant it, before Boost's INI parser reads
// it: an inline comment (`; ...` or `# ...` after whitespace, as Python's
// configparser and Samba read them) ends the value, and a value in double
// quotes keeps `;` and `#` (`fence_command = "fence_ipmilan -o off ; logger x"`).
// Line numbers stay as they were, for error messages.
#pragma once

#include <filesystem>
#include <string>

namespace understudy::daemon {

// Throws ConfigError (file:line: what) for an unclosed quote or text after
// a closing quote.
[[nodiscard]] std::string strip_inline_comments(const std::string &text, const std::filesystem::path &source);

} // namespace understudy::daemon
