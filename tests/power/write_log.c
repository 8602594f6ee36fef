/* An LD_PRELOAD shim for the power-loss test (tests/power_test.py): it logs what a process does to the files
 * below one directory — every write with its offset and bytes, truncation, creation, fsync/fdatasync/syncfs,
 * rename, unlink, mkdir, rmdir — so that the test can rebuild the files as a power loss at any sync point would
 * leave them (the writes not yet synced dropped). It changes nothing: each call goes on to libc.
 *
 *   IMGSTORE_WRITE_LOG=/tmp/log IMGSTORE_WRITE_LOG_DIR=/abs/dir LD_PRELOAD=libwrite_log.so sqlite3 ...
 *
 * A record: op (1 byte), u32 path length, the path, then what the op carries (native order):
 *   W write     u64 offset, u64 length, the bytes      D  write synced as it returns (O_SYNC, O_DSYNC): as W
 *   T truncate  u64 length (an O_TRUNC open: 0)        C  open with O_CREAT (the name exists, maybe empty)
 *   S fsync, fdatasync (a directory's too)             A  syncfs, sync: every file (the path: the directory)
 *   R rename    u32 length, the new path               U  unlink, remove of a file
 *   E exchange  as R: renameat2 RENAME_EXCHANGE, the two names swap what they hold
 *   M mkdir                                            X  rmdir, remove of a directory
 * Only calls that succeed are logged. Calls inside libc (fopen, fwrite) do not pass through here: the test's
 * replay check fails if a writer's bytes arrive some way this shim does not see. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 4096

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static char* paths[MAX_FDS]; /* the logged files' absolute paths by descriptor */
static char synced[MAX_FDS]; /* opened O_SYNC or O_DSYNC: each write is durable when it returns */
static int log_fd = -1;

/* libc's own function `name`, looked up once. */
#define REAL(type, name, args) \
  static type(*real) args = NULL; \
  if (!real) real = (type(*) args)dlsym(RTLD_NEXT, name)

/* The absolute path of `path`, taken relative to the directory `dirfd` is open on (or the working directory),
 * if it is below the logged directory, else NULL (caller frees). */
static char* logged_path_at(int dirfd, const char* path) {
  const char* dir = getenv("IMGSTORE_WRITE_LOG_DIR");
  if (!dir || !path) return NULL;
  char base[PATH_MAX];
  if (path[0] != '/') {
    if (dirfd == AT_FDCWD) {
      if (!getcwd(base, sizeof base)) return NULL;
    } else {
      char link[64];
      snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
      const ssize_t n = readlink(link, base, sizeof base - 1);
      if (n <= 0) return NULL;
      base[n] = '\0';
    }
  }
  char buf[PATH_MAX * 2];
  if (path[0] == '/') {
    snprintf(buf, sizeof buf, "%s", path);
  } else {
    snprintf(buf, sizeof buf, "%s/%s", base, path);
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

/* One record; its payload: the first `size` bytes of `parts` (a short write's). `mutex` held. */
static void record(char op, const char* path, const void* extra, size_t extra_size, const struct iovec* parts,
                   int count, size_t size) {
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
  for (int i = 0; i < count && size > 0; ++i) {
    const size_t n = parts[i].iov_len < size ? parts[i].iov_len : size;
    put(parts[i].iov_base, n);
    size -= n;
  }
}

/* The helpers below log a call's effect if it succeeded (`rc`, or `written`, not negative), keep errno as the
 * call left it, and return what the call returned. */

static int opened(int fd, int dirfd, const char* path, int flags) {
  if (fd < 0 || fd >= MAX_FDS) return fd;
  const int saved = errno;
  char* abs = logged_path_at(dirfd, path);
  pthread_mutex_lock(&mutex);
  free(paths[fd]);
  paths[fd] = abs;
  synced[fd] = (flags & (O_SYNC | O_DSYNC)) != 0;
  if (abs && (flags & O_CREAT)) record('C', abs, NULL, 0, NULL, 0, 0);
  if (abs && (flags & O_TRUNC)) {
    const uint64_t zero = 0;
    record('T', abs, &zero, sizeof zero, NULL, 0, 0);
  }
  pthread_mutex_unlock(&mutex);
  errno = saved;
  return fd;
}

/* `written` bytes of `parts` went to `fd` at `offset` (-1: where the descriptor was; O_APPEND: the end). */
static ssize_t wrote(ssize_t written, int fd, off_t offset, const struct iovec* parts, int count) {
  if (fd < 0 || fd >= MAX_FDS || written <= 0) return written;
  const int saved = errno;
  if (offset == -1) offset = lseek(fd, 0, SEEK_CUR) - written;
  pthread_mutex_lock(&mutex);
  if (paths[fd]) {
    const uint64_t head[2] = {(uint64_t)offset, (uint64_t)written};
    record(synced[fd] ? 'D' : 'W', paths[fd], head, sizeof head, parts, count, (size_t)written);
  }
  pthread_mutex_unlock(&mutex);
  errno = saved;
  return written;
}

static int fd_op(int rc, int fd, char op, const void* extra, size_t extra_size) {
  if (rc != 0 || fd < 0 || fd >= MAX_FDS) return rc;
  const int saved = errno;
  pthread_mutex_lock(&mutex);
  if (paths[fd]) record(op, paths[fd], extra, extra_size, NULL, 0, 0);
  pthread_mutex_unlock(&mutex);
  errno = saved;
  return rc;
}

/* syncfs flushes every file of the file system, sync every file: the test treats either as a sync of every file
 * it knows (they are all on one file system). */
static int synced_all(int rc) {
  const char* dir = getenv("IMGSTORE_WRITE_LOG_DIR");
  if (rc != 0 || !dir) return rc;
  const int saved = errno;
  pthread_mutex_lock(&mutex);
  record('A', dir, NULL, 0, NULL, 0, 0);
  pthread_mutex_unlock(&mutex);
  errno = saved;
  return rc;
}

/* An op on a name (`to`: a rename's new name); a rename from outside the directory is not followed. */
static int path_op(int rc, char op, int dirfd, const char* path, int to_dirfd, const char* to) {
  if (rc != 0) return rc;
  const int saved = errno;
  char* a = logged_path_at(dirfd, path);
  char* b = to ? logged_path_at(to_dirfd, to) : NULL;
  if (a) {
    pthread_mutex_lock(&mutex);
    const uint32_t len = b ? (uint32_t)strlen(b) : 0;
    const struct iovec name = {b ? b : "", len};
    if (op == 'R' || op == 'E') {
      record(op, a, &len, sizeof len, &name, 1, len);
    } else {
      record(op, a, NULL, 0, NULL, 0, 0);
    }
    pthread_mutex_unlock(&mutex);
  }
  free(a);
  free(b);
  errno = saved;
  return rc;
}

static int open_mode(int flags, va_list ap) { return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, int) : 0; }

int open(const char* path, int flags, ...) {
  REAL(int, "open", (const char*, int, ...));
  va_list ap;
  va_start(ap, flags);
  const int mode = open_mode(flags, ap);
  va_end(ap);
  return opened(real(path, flags, mode), AT_FDCWD, path, flags);
}

int openat(int dirfd, const char* path, int flags, ...) {
  REAL(int, "openat", (int, const char*, int, ...));
  va_list ap;
  va_start(ap, flags);
  const int mode = open_mode(flags, ap);
  va_end(ap);
  return opened(real(dirfd, path, flags, mode), dirfd, path, flags);
}

int creat(const char* path, mode_t mode) { return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode); }

int close(int fd) {
  REAL(int, "close", (int));
  if (fd >= 0 && fd < MAX_FDS) {
    pthread_mutex_lock(&mutex);
    free(paths[fd]);
    paths[fd] = NULL;
    synced[fd] = 0;
    pthread_mutex_unlock(&mutex);
  }
  return real(fd);
}

ssize_t write(int fd, const void* data, size_t size) {
  REAL(ssize_t, "write", (int, const void*, size_t));
  const struct iovec part = {(void*)data, size};
  return wrote(real(fd, data, size), fd, -1, &part, 1);
}

ssize_t pwrite(int fd, const void* data, size_t size, off_t offset) {
  REAL(ssize_t, "pwrite", (int, const void*, size_t, off_t));
  const struct iovec part = {(void*)data, size};
  return wrote(real(fd, data, size, offset), fd, offset, &part, 1);
}

ssize_t writev(int fd, const struct iovec* parts, int count) {
  REAL(ssize_t, "writev", (int, const struct iovec*, int));
  return wrote(real(fd, parts, count), fd, -1, parts, count);
}

ssize_t pwritev(int fd, const struct iovec* parts, int count, off_t offset) {
  REAL(ssize_t, "pwritev", (int, const struct iovec*, int, off_t));
  return wrote(real(fd, parts, count, offset), fd, offset, parts, count);
}

ssize_t pwritev2(int fd, const struct iovec* parts, int count, off_t offset, int flags) {
  REAL(ssize_t, "pwritev2", (int, const struct iovec*, int, off_t, int));
  return wrote(real(fd, parts, count, offset, flags), fd, offset, parts, count);
}

int ftruncate(int fd, off_t length) {
  REAL(int, "ftruncate", (int, off_t));
  const uint64_t l = (uint64_t)length;
  return fd_op(real(fd, length), fd, 'T', &l, sizeof l);
}

int truncate(const char* path, off_t length) {
  /* Through a descriptor, so that the record names the file as ftruncate's does. */
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  const int rc = ftruncate(fd, length);
  const int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

int fsync(int fd) {
  REAL(int, "fsync", (int));
  return fd_op(real(fd), fd, 'S', NULL, 0);
}

int fdatasync(int fd) {
  REAL(int, "fdatasync", (int));
  return fd_op(real(fd), fd, 'S', NULL, 0);
}

int syncfs(int fd) {
  REAL(int, "syncfs", (int));
  return synced_all(real(fd));
}

void sync(void) {
  REAL(void, "sync", (void));
  real();
  synced_all(0);
}

int rename(const char* from, const char* to) {
  REAL(int, "rename", (const char*, const char*));
  return path_op(real(from, to), 'R', AT_FDCWD, from, AT_FDCWD, to);
}

int renameat(int from_dirfd, const char* from, int to_dirfd, const char* to) {
  REAL(int, "renameat", (int, const char*, int, const char*));
  return path_op(real(from_dirfd, from, to_dirfd, to), 'R', from_dirfd, from, to_dirfd, to);
}

int renameat2(int from_dirfd, const char* from, int to_dirfd, const char* to, unsigned flags) {
  REAL(int, "renameat2", (int, const char*, int, const char*, unsigned));
  return path_op(real(from_dirfd, from, to_dirfd, to, flags), (flags & RENAME_EXCHANGE) ? 'E' : 'R', from_dirfd, from,
                 to_dirfd, to);
}

int unlink(const char* path) {
  REAL(int, "unlink", (const char*));
  return path_op(real(path), 'U', AT_FDCWD, path, AT_FDCWD, NULL);
}

int unlinkat(int dirfd, const char* path, int flags) {
  REAL(int, "unlinkat", (int, const char*, int));
  return path_op(real(dirfd, path, flags), (flags & AT_REMOVEDIR) ? 'X' : 'U', dirfd, path, AT_FDCWD, NULL);
}

int rmdir(const char* path) {
  REAL(int, "rmdir", (const char*));
  return path_op(real(path), 'X', AT_FDCWD, path, AT_FDCWD, NULL);
}

/* libc's remove calls its own unlink or rmdir, which bypass ours: which one it will be is asked first. */
int remove(const char* path) {
  REAL(int, "remove", (const char*));
  const int saved = errno;
  struct stat st;
  const int is_dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
  errno = saved;
  return path_op(real(path), is_dir ? 'X' : 'U', AT_FDCWD, path, AT_FDCWD, NULL);
}

int mkdir(const char* path, mode_t mode) {
  REAL(int, "mkdir", (const char*, mode_t));
  return path_op(real(path, mode), 'M', AT_FDCWD, path, AT_FDCWD, NULL);
}

int mkdirat(int dirfd, const char* path, mode_t mode) {
  REAL(int, "mkdirat", (int, const char*, mode_t));
  return path_op(real(dirfd, path, mode), 'M', dirfd, path, AT_FDCWD, NULL);
}

/* On 64-bit Linux, libc's *64 functions are the same functions under a second name: so are ours. */
int open64(const char* path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char* path, int flags, ...) __attribute__((alias("openat")));
int creat64(const char* path, mode_t mode) __attribute__((alias("creat")));
ssize_t pwrite64(int fd, const void* data, size_t size, off_t offset) __attribute__((alias("pwrite")));
ssize_t pwritev64(int fd, const struct iovec* parts, int count, off_t offset) __attribute__((alias("pwritev")));
ssize_t pwritev64v2(int fd, const struct iovec* parts, int count, off_t offset, int flags)
    __attribute__((alias("pwritev2")));
int ftruncate64(int fd, off_t length) __attribute__((alias("ftruncate")));
int truncate64(const char* path, off_t length) __attribute__((alias("truncate")));
