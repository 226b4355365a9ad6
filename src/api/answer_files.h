// AnswerFiles: memory files holding the bytes of large answer parts that
// caches share (HttpResponse::shared_prefix and shared_suffix), so that the
// HTTP server can send them with sendfile(2) as a static-file server sends
// a file: the kernel hands the file's pages to the connection instead of
// copying the bytes into every connection's socket buffer. With 256
// connections asking for /metrics (about 74 KB) the copies were what kept
// gpurm well below nginx's rate, which sends files this way.
#ifndef GPURM_API_ANSWER_FILES_H_
#define GPURM_API_ANSWER_FILES_H_

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace gpurm {

// One memory file (memfd), closed when its last holder lets go: a
// connection sending from it holds it, so a file dropped by AnswerFiles
// stays open until every send from it has ended.
class AnswerFile {
 public:
  ~AnswerFile();
  AnswerFile(const AnswerFile&) = delete;
  AnswerFile& operator=(const AnswerFile&) = delete;

  // Readable file descriptor holding the text's bytes from offset 0.
  int fd() const { return fd_; }
  size_t size() const { return size_; }

 private:
  friend class AnswerFiles;
  AnswerFile(int fd, size_t size) : fd_(fd), size_(size) {}

  const int fd_;
  const size_t size_;
};

// Thread-safe.
class AnswerFiles {
 public:
  // Keeps at most `max_files` files (the caches hold one current answer
  // each, and an answer's file is only useful while a cache shares it).
  explicit AnswerFiles(size_t max_files = 16) : max_files_(max_files) {}

  // The memory file holding *text: the one made for this very object (not
  // for equal bytes) while it lives, else a new one. Null when the text is
  // null or no memory file can be made (the caller writes the bytes).
  std::shared_ptr<const AnswerFile> For(const std::shared_ptr<const std::string>& text);

 private:
  struct Entry {
    std::weak_ptr<const std::string> text;  // Whose bytes; expired = drop.
    const std::string* address = nullptr;   // text's object, to find it.
    std::shared_ptr<const AnswerFile> file;
  };

  const size_t max_files_;
  std::mutex mutex_;            // Guards entries_.
  std::vector<Entry> entries_;  // Oldest first.
};

}  // namespace gpurm

#endif  // GPURM_API_ANSWER_FILES_H_
