#include "api/answer_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace gpurm {
namespace {

// A memory file holding `text`, sealed against change; -1 on failure.
int MakeMemoryFile(const std::string& text) {
  const int fd = ::memfd_create("gpurm-answer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return -1;
    }
    written += static_cast<size_t>(n);
  }
  // The bytes are an answer's: nothing may change them while connections
  // send them (best effort; a kernel without seals still works).
  (void)::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  return fd;
}

}  // namespace

AnswerFile::~AnswerFile() { ::close(fd_); }

std::shared_ptr<const AnswerFile> AnswerFiles::For(const std::shared_ptr<const std::string>& text) {
  if (!text) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(entries_, [](const Entry& entry) { return entry.text.expired(); });
  for (const Entry& entry : entries_) {
    // The same object: same address, and the same owner while it lives
    // (an address alone could be a new object where a dead one was).
    if (entry.address == text.get() && !entry.text.owner_before(text) &&
        !text.owner_before(entry.text)) {
      return entry.file;
    }
  }
  const int fd = MakeMemoryFile(*text);
  if (fd < 0) return nullptr;
  std::shared_ptr<const AnswerFile> file(new AnswerFile(fd, text->size()));
  if (entries_.size() >= max_files_) entries_.erase(entries_.begin());
  entries_.push_back(Entry{text, text.get(), file});
  return file;
}

}  // namespace gpurm
