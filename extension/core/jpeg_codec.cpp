#include "jpeg_codec.hpp"

#include <turbojpeg.h>

#include <memory>

#include "error.hpp"

namespace imgstore {

namespace {

// One TurboJPEG instance of each kind per thread, made at first use and kept: an instance is a libjpeg object
// with its memory pools (tjInitDecompress costs about as much as decoding a 32x32 image), and one instance must
// not be used by two threads at once. After any failure the instance is made anew: TurboJPEG 2.1's header
// reader returns from a libjpeg error without aborting, leaving the instance mid-header, and the next file's
// header was then read from that state (found by tests: a valid JPEG after a cut one had "no image size").
struct TjDestroy {
  void operator()(void* handle) const noexcept { tjDestroy(handle); }
};
using TjHandle = std::unique_ptr<void, TjDestroy>;

class Instance {
 public:
  explicit Instance(tjhandle (*init)()) : init_(init) {}
  tjhandle get() {
    if (!handle_) handle_.reset(init_());
    if (!handle_) throw Error("out of memory creating a JPEG codec", ErrorKind::nomem);
    return handle_.get();
  }
  // After a failure: the next call makes a fresh instance.
  void reset() noexcept { handle_.reset(); }

 private:
  tjhandle (*const init_)();
  TjHandle handle_;
};

Instance& decompressor() {
  thread_local Instance instance(tjInitDecompress);
  return instance;
}

Instance& compressor() {
  thread_local Instance instance(tjInitCompress);
  return instance;
}

// libjpeg's warning when its data ends before the image does (JWRN_JPEG_EOF).
constexpr std::string_view kPrematureEnd = "Premature end of JPEG file";

Error truncated(const std::string& what) {
  return Error(what + ": truncated JPEG (the data ends before the image does)", ErrorKind::corrupt);
}

// The message of the instance's last error or warning (thread-local inside TurboJPEG, as the instance is).
std::string message_of(tjhandle handle) { return tjGetErrorStr2(handle); }

// Whether libjpeg, reading the stream as it does, meets the EOI marker before the data ends. It reads marker
// segments by their lengths, entropy-coded data up to the next marker (0xFF00 is a stuffed byte, RSTn sit
// inside the data) and skips stray bytes between segments. When it does not meet EOI it asks for more data
// and, given none, warns "Premature end of JPEG file" and pretends the image ended: Pillow then reports the
// file as truncated. TurboJPEG keeps only the first warning's text (a cut header warns of a missing SOS
// first), so this walk, not the text, tells a cut file.
bool reaches_eoi(std::span<const std::uint8_t> jpeg) {
  std::size_t i = 2;  // after SOI
  while (i + 1 < jpeg.size()) {
    if (jpeg[i] != 0xFF) {
      ++i;  // entropy-coded data, or stray bytes
      continue;
    }
    const std::uint8_t marker = jpeg[i + 1];
    if (marker == 0xFF) {
      ++i;  // fill bytes before a marker
      continue;
    }
    if (marker == 0xD9) return true;
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // no length follows
      i += 2;
      continue;
    }
    if (i + 3 >= jpeg.size()) return false;
    i += 2 + ((std::size_t{jpeg[i + 2]} << 8) | jpeg[i + 3]);
  }
  return false;
}

}  // namespace

bool is_jpeg(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

JpegHeader jpeg_peek(std::span<const std::uint8_t> jpeg, const std::string& what) {
  if (!is_jpeg(jpeg)) {
    throw Error(what + ": not a JPEG (" + (jpeg.empty() ? std::string("no bytes") : "it does not start with FF D8 FF") +
                    ")",
                ErrorKind::corrupt);
  }
  Instance& instance = decompressor();
  const tjhandle handle = instance.get();
  int width = 0;
  int height = 0;
  int subsampling = TJSAMP_444;
  int colourspace = -1;
  bool read = tjDecompressHeader3(handle, jpeg.data(), jpeg.size(), &width, &height, &subsampling, &colourspace) == 0;
  std::string message = read ? std::string() : message_of(handle);
  if (!read) {
    // TurboJPEG 2.1 refuses, after reading them, chroma sampling factors that none of its TJSAMP_* names
    // (its YUV functions need one); decoding to pixels does not, and Pillow reads such files: keep what it read.
    // A warning (stray bytes before a marker) leaves a header that was read whole, as in Pillow.
    read = tjGetErrorCode(handle) == TJERR_WARNING || (subsampling == -1 && colourspace >= 0);
    instance.reset();
  }
  if (!read || width < 1 || height < 1 || colourspace < 0) {
    // Data that ends inside the header is what Pillow calls truncated; anything else is not a JPEG it reads.
    if (!reaches_eoi(jpeg)) throw truncated(what);
    if (message.empty()) message = "its header has no image size or colour space";
    throw Error(what + ": not a readable JPEG (" + message + ")", ErrorKind::corrupt);
  }
  JpegHeader header;
  header.cmyk = colourspace == TJCS_CMYK || colourspace == TJCS_YCCK;
  const std::uint64_t channels = colourspace == TJCS_GRAY ? 1 : header.cmyk ? 4 : 3;
  header.shape = make_shape(static_cast<std::uint64_t>(height), static_cast<std::uint64_t>(width), channels, what);
  return header;
}

JpegHeader jpeg_decode(std::span<const std::uint8_t> jpeg, std::vector<std::uint8_t>& out, const std::string& what) {
  const JpegHeader header = jpeg_peek(jpeg, what);
  const Shape& shape = header.shape;
  out.resize(shape.bytes());
  const int format = shape.channels == 1 ? TJPF_GRAY : header.cmyk ? TJPF_CMYK : TJPF_RGB;
  // The accurate DCT (TurboJPEG's default for decoding too, but said here, as for encoding) and fancy
  // upsampling (TurboJPEG's default): what Pillow's decoder uses. LIMITSCANS refuses a progressive file of
  // thousands of tiny scans, which would take minutes to decode.
  const int flags = TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS;
  Instance& instance = decompressor();
  const tjhandle handle = instance.get();
  if (tjDecompress2(handle, jpeg.data(), jpeg.size(), out.data(), static_cast<int>(shape.width), 0,
                    static_cast<int>(shape.height), format, flags) != 0) {
    const std::string message = message_of(handle);
    const bool warning = tjGetErrorCode(handle) == TJERR_WARNING;
    instance.reset();
    if (!warning) {
      throw Error(what + ": corrupt JPEG (" + message + ")", ErrorKind::corrupt);
    }
    if (message.starts_with(kPrematureEnd) || !reaches_eoi(jpeg)) throw truncated(what);
  }
  if (header.cmyk) {
    // Adobe's applications write CMYK inverted and Pillow reads every CMYK JPEG so ("CMYK;I"): 0 is no ink.
    for (auto& byte : out) byte = static_cast<std::uint8_t>(255 - byte);
  }
  return header;
}

void jpeg_encode(std::span<const std::uint8_t> pixels, const Shape& shape, int quality, std::vector<std::uint8_t>& out,
                 const std::string& what) {
  if (pixels.size() != shape.bytes()) {
    throw Error(what + ": pixels are " + std::to_string(pixels.size()) + " bytes; expected " +
                    std::to_string(shape.bytes()) + " for shape " + shape.str(),
                ErrorKind::mismatch);
  }
  if (shape.channels != 1 && shape.channels != 3) {
    throw Error(what + ": shape " + shape.str() + " has " + std::to_string(shape.channels) +
                    " channels; expected 1 (gray) or 3 (RGB): JPEG has no alpha channel",
                ErrorKind::mismatch);
  }
  if (quality < 1 || quality > 100) {
    throw Error(what + ": quality " + std::to_string(quality) + " is out of range; expected 1 to 100",
                ErrorKind::mismatch);
  }
  const bool gray = shape.channels == 1;
  const int subsampling = gray ? TJSAMP_GRAY : TJSAMP_420;
  const int width = static_cast<int>(shape.width);
  const int height = static_cast<int>(shape.height);
  // Encoded into `out` sized for the worst case, so TurboJPEG never allocates (NOREALLOC) and nothing of its
  // own needs freeing.
  const unsigned long bound = tjBufSize(width, height, subsampling);
  if (bound == static_cast<unsigned long>(-1)) throw Error(what + ": " + tjGetErrorStr2(nullptr), ErrorKind::mismatch);
  out.resize(bound);
  unsigned char* buffer = out.data();
  unsigned long size = bound;
  // The accurate DCT: TurboJPEG encodes with the fast one unless told, Pillow with the accurate one.
  const int flags = TJFLAG_ACCURATEDCT | TJFLAG_NOREALLOC;
  Instance& instance = compressor();
  const tjhandle handle = instance.get();
  if (tjCompress2(handle, pixels.data(), width, 0, height, gray ? TJPF_GRAY : TJPF_RGB, &buffer, &size, subsampling,
                  quality, flags) != 0) {
    const std::string message = message_of(handle);
    instance.reset();
    throw Error(what + ": JPEG encoding failed (" + message + ")");
  }
  out.resize(size);
}

}  // namespace imgstore
