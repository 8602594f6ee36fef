// What the benchmark programs ask of the OS: dropping the page cache before a cold read, and the process's
// memory (/proc/self/status) to record beside a scan.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace bench {

// sync, then 3 into /proc/sys/vm/drop_caches (pages, dentries, inodes). False when not allowed (not root).
inline bool drop_page_cache() {
  ::sync();
  std::ofstream out("/proc/sys/vm/drop_caches");
  if (!out) return false;
  out << "3\n";
  out.flush();
  return static_cast<bool>(out);
}

// A field of /proc/self/status in KiB ("RssAnon": heap and buffers, not mapped files; "VmRSS": all resident pages).
inline std::int64_t status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

}  // namespace bench
