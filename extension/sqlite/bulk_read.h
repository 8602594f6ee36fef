/* The bulk reader: a C entry point into the extension that copies many images of a store table straight into
 * the caller's arrays (a numpy array, a torch tensor), without an SQLite value or a Python object per row.
 * imgstore's Python package calls it through ctypes on the same loaded library (imgstore_extension_path()).
 *
 * A table is named by a handle from SQL, on the connection that has it:
 *     SELECT imgstore_bulk_handle('store' [, 'temp']);   -- an integer, unique in the process, never reused
 * Each call runs under that connection's mutex, as an SQL statement would, and reads as one statement does:
 * one committed state plus the connection's own transaction; every image's checksum is verified. A handle
 * whose table is gone is SQLITE_MISUSE; the connection must stay open during a call.
 *
 * Both return SQLITE_OK (0) or an SQLite result code, with the message in err (NUL-terminated, cut to
 * err_size bytes). Pixels are written in HWC order, or CHW (planes, torchvision's order) when chw != 0;
 * each image takes H*W*C bytes. */
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IMGSTORE_BULK_API __attribute__((visibility("default")))

/* The images of ids[0..n) in the order given (repeats allowed): labels[i] and pixels[i*H*W*C..] when found[i]
 * is set to 1; an id not in the store leaves found[i] = 0 and its slots untouched. labels or pixels may be
 * NULL (not read). */
IMGSTORE_BULK_API int imgstore_bulk_get(int64_t handle, const int64_t* ids, int64_t n, int32_t chw, int64_t* labels,
                                        uint8_t* pixels, uint8_t* found, char* err, int64_t err_size);

/* The rows with lo <= id <= hi in ascending id order: the first `capacity` of them into ids, labels and pixels
 * (any may be NULL: not read; without pixels no image is read or verified). *rows is how many were written,
 * *total how many the range holds in the same committed state (more than capacity: call again with room). */
IMGSTORE_BULK_API int imgstore_bulk_scan(int64_t handle, int64_t lo, int64_t hi, int64_t capacity, int32_t chw,
                                         int64_t* ids, int64_t* labels, uint8_t* pixels, int64_t* rows, int64_t* total,
                                         char* err, int64_t err_size);

#ifdef __cplusplus
}
#endif
