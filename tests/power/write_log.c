/* An LD_PRELOAD shim for the power-loss test (tests/hdf5_power_test.py): it logs what a process does to the
 * files below one directory — every write with its offset and bytes, truncation, fsync/fdatasync, rename,
 * unlink — so that the test can rebuild the files as a power loss at any sync point would leave them (the
 * writes not yet synced dropped). It changes nothing: each call goes on to libc.
 *
 *   IMGSTORE_WRITE_LOG=/tmp/log IMGSTORE_WRITE_LOG_DIR=/abs/dir LD_PRELOAD=libwrite_log.so sqlite3 ...
 *
 * A record: op (1 byte: W write, T truncate, S sync, R rename, U unlink), u32 path length, the path, then for W
 * u64 offset, u64 length and the bytes; for T u64 length; for R u32 length and the new path (native order). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 4096

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static char* paths[MAX_FDS]; /* the logged files' absolute paths by descriptor */
static int log_fd = -1;

/* libc's own function `name`, looked up once. */
#define REAL(type, name, args) \
  static type(*real) args = NULL; \
  if (!real) real = (type(*) args)dlsym(RTLD_NEXT, name)

/* The absolute path of `path` if it is below the logged directory, else NULL (caller frees). */
static char* logged_path(const char* path) {
  const char* dir = getenv("IMGSTORE_WRITE_LOG_DIR");
  if (!dir || !path) return NULL;
  char buf[PATH_MAX * 2];
  if (path[0] == '/') {
    snprintf(buf, sizeof buf, "%s", path);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return NULL;
    snprintf(buf, sizeof buf, "%s/%s", cwd, path);
  }
  const size_t n = strlen(dir);
  if (strncmp(buf, dir, n) != 0 || buf[n] != '/') return NULL;
  return strdup(buf);
}

static void put(const void* data, size_t size) {
  REAL(ssize_t, "write", (int, const void*, size_t));
  const char* p = data;
  while (size > 0) {
    const ssize_t n = real(log_fd, p, size);
    if (n <= 0) return;
    p += n;
    size -= (size_t)n;
  }
}

/* One record; `mutex` held. */
static void record(char op, const char* path, const void* extra, size_t extra_size, const void* data, size_t size) {
  if (log_fd < 0) {
    REAL(int, "open", (const char*, int, ...));
    const char* name = getenv("IMGSTORE_WRITE_LOG");
    if (!name) return;
    log_fd = real(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return;
  }
  const uint32_t len = (uint32_t)strlen(path);
  put(&op, 1);
  put(&len, sizeof len);
  put(path, len);
  put(extra, extra_size);
  put(data, size);
}

static void remember(int fd, const char* path) {
  if (fd < 0 || fd >= MAX_FDS) return;
  char* abs = logged_path(path);
  pthread_mutex_lock(&mutex);
  free(paths[fd]);
  paths[fd] = abs;
  pthread_mutex_unlock(&mutex);
}

static void log_write(int fd, off_t offset, const void* data, ssize_t written) {
  if (fd < 0 || fd >= MAX_FDS || written <= 0) return;
  pthread_mutex_lock(&mutex);
  if (paths[fd]) {
    const uint64_t head[2] = {(uint64_t)offset, (uint64_t)written};
    record('W', paths[fd], head, sizeof head, data, (size_t)written);
  }
  pthread_mutex_unlock(&mutex);
}

static void log_fd_op(int fd, char op, const void* extra, size_t extra_size) {
  if (fd < 0 || fd >= MAX_FDS) return;
  pthread_mutex_lock(&mutex);
  if (paths[fd]) record(op, paths[fd], extra, extra_size, NULL, 0);
  pthread_mutex_unlock(&mutex);
}

static void log_path_op(char op, const char* path, const char* to) {
  char* a = logged_path(path);
  char* b = to ? logged_path(to) : NULL;
  if (a) {
    pthread_mutex_lock(&mutex);
    uint32_t len = b ? (uint32_t)strlen(b) : 0;
    if (op == 'R') {
      char extra[sizeof len + PATH_MAX * 2];
      memcpy(extra, &len, sizeof len);
      memcpy(extra + sizeof len, b ? b : "", len);
      record(op, a, extra, sizeof len + len, NULL, 0);
    } else {
      record(op, a, NULL, 0, NULL, 0);
    }
    pthread_mutex_unlock(&mutex);
  }
  free(a);
  free(b);
}

static int open_mode(int flags, va_list ap) { return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, int) : 0; }

int open(const char* path, int flags, ...) {
  REAL(int, "open", (const char*, int, ...));
  va_list ap;
  va_start(ap, flags);
  const int mode = open_mode(flags, ap);
  va_end(ap);
  const int fd = real(path, flags, mode);
  remember(fd, path);
  return fd;
}

int openat(int dirfd, const char* path, int flags, ...) {
  REAL(int, "openat", (int, const char*, int, ...));
  va_list ap;
  va_start(ap, flags);
  const int mode = open_mode(flags, ap);
  va_end(ap);
  const int fd = real(dirfd, path, flags, mode);
  if (dirfd == AT_FDCWD || path[0] == '/') remember(fd, path);
  return fd;
}

int close(int fd) {
  REAL(int, "close", (int));
  if (fd >= 0 && fd < MAX_FDS) {
    pthread_mutex_lock(&mutex);
    free(paths[fd]);
    paths[fd] = NULL;
    pthread_mutex_unlock(&mutex);
  }
  return real(fd);
}

ssize_t write(int fd, const void* data, size_t size) {
  REAL(ssize_t, "write", (int, const void*, size_t));
  const off_t at = (fd >= 0 && fd < MAX_FDS && paths[fd]) ? lseek(fd, 0, SEEK_CUR) : 0;
  const ssize_t n = real(fd, data, size);
  log_write(fd, at, data, n);
  return n;
}

ssize_t pwrite(int fd, const void* data, size_t size, off_t offset) {
  REAL(ssize_t, "pwrite", (int, const void*, size_t, off_t));
  const ssize_t n = real(fd, data, size, offset);
  log_write(fd, offset, data, n);
  return n;
}

int ftruncate(int fd, off_t length) {
  REAL(int, "ftruncate", (int, off_t));
  const int rc = real(fd, length);
  const uint64_t l = (uint64_t)length;
  if (rc == 0) log_fd_op(fd, 'T', &l, sizeof l);
  return rc;
}

int fsync(int fd) {
  REAL(int, "fsync", (int));
  const int rc = real(fd);
  if (rc == 0) log_fd_op(fd, 'S', NULL, 0);
  return rc;
}

int fdatasync(int fd) {
  REAL(int, "fdatasync", (int));
  const int rc = real(fd);
  if (rc == 0) log_fd_op(fd, 'S', NULL, 0);
  return rc;
}

int rename(const char* from, const char* to) {
  REAL(int, "rename", (const char*, const char*));
  const int rc = real(from, to);
  if (rc == 0) log_path_op('R', from, to);
  return rc;
}

int unlink(const char* path) {
  REAL(int, "unlink", (const char*));
  const int rc = real(path);
  if (rc == 0) log_path_op('U', path, NULL);
  return rc;
}

/* On 64-bit Linux, libc's *64 functions are the same functions under a second name: so are ours. */
int open64(const char* path, int flags, ...) __attribute__((alias("open")));
ssize_t pwrite64(int fd, const void* data, size_t size, off_t offset) __attribute__((alias("pwrite")));
int ftruncate64(int fd, off_t length) __attribute__((alias("ftruncate")));
