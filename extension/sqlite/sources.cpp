// Table-valued functions that yield (id, label, pixels) rows from data sets, so a conversion is one statement:
//
//   INSERT INTO train SELECT * FROM cifar10('cifar-10-batches-bin');
//   INSERT INTO train SELECT * FROM idx('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz');
//   INSERT INTO train SELECT * FROM synthetic(50000, '32x32x3', 42, 'smooth');
//   INSERT INTO train SELECT * FROM dataset('/usr/share/datasets/fashion-mnist', 100000, 50000);  -- repeated
//   INSERT INTO train SELECT * FROM image_folder('photos', '224x224x3');  -- torchvision's ImageFolder order
//   SELECT label, class FROM image_folder_classes('photos');
//
// Each streams its input in blocks (constant memory) and pushes nothing down: filters on id or label are
// applied by SQLite to the stream.

#include "sources.hpp"

#include "cifar10_reader.hpp"
#include "dataset.hpp"
#include "idx_reader.hpp"
#include "image_folder.hpp"
#include "synthetic.hpp"
#include "thread_pool.hpp"
#include "vtab.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

namespace {

std::string text_arg(const std::vector<SourceArg>& args, std::size_t i, const char* fn, const char* name,
                     const std::string& fallback) {
  if (i >= args.size() || std::holds_alternative<std::monostate>(args[i])) return fallback;
  if (const auto* s = std::get_if<std::string>(&args[i])) return *s;
  throw Error(std::string(fn) + "(): argument " + name + " is an integer; expected text");
}

std::int64_t int_arg(const std::vector<SourceArg>& args, std::size_t i, const char* fn, const char* name,
                     std::int64_t fallback) {
  if (i >= args.size() || std::holds_alternative<std::monostate>(args[i])) return fallback;
  if (const auto* n = std::get_if<std::int64_t>(&args[i])) return *n;
  throw Error(std::string(fn) + "(): argument " + name + " '" + std::get<std::string>(args[i]) +
              "' is not an integer");
}

ImageFolderOptions image_folder_options(const std::vector<SourceArg>& a) {
  ImageFolderOptions o;
  o.root = text_arg(a, 0, "image_folder", "root", "");
  const std::string shape = text_arg(a, 1, "image_folder", "shape", "any");
  const Shape parsed = parse_store_shape(shape, "image_folder(): shape");
  if (!parsed.any) o.shape = parsed;
  const std::int64_t threads = int_arg(a, 2, "image_folder", "threads", default_threads());
  if (threads < 1 || threads > 256) {
    throw Error("image_folder(): threads " + std::to_string(threads) + " is out of range; expected 1 to 256",
                ErrorKind::mismatch);
  }
  o.threads = static_cast<unsigned>(threads);
  return o;
}

}  // namespace

int register_sources(sqlite3* db) {
  int rc = register_source_module(
      db, "cifar10",
      SourceSpec{{"path", "id_offset", "split", "format"}, 1, true, [](const std::vector<SourceArg>& a) {
                   return open_cifar(CifarOptions{text_arg(a, 0, "cifar10", "path", ""),
                                                  int_arg(a, 1, "cifar10", "id_offset", 0),
                                                  text_arg(a, 2, "cifar10", "split", "train"),
                                                  text_arg(a, 3, "cifar10", "format", "cifar10")});
                 }});
  if (rc == SQLITE_OK) {
    rc = register_source_module(db, "idx",
                                SourceSpec{{"images", "labels"}, 2, true, [](const std::vector<SourceArg>& a) {
                                             return open_idx(text_arg(a, 0, "idx", "images", ""),
                                                             text_arg(a, 1, "idx", "labels", ""));
                                           }});
  }
  if (rc == SQLITE_OK) {
    rc = register_source_module(
        db, "synthetic",
        SourceSpec{{"n", "shape", "seed", "kind", "labels"}, 1, false, [](const std::vector<SourceArg>& a) {
                     SyntheticOptions o;
                     o.n = int_arg(a, 0, "synthetic", "n", 0);
                     o.shape = parse_shape(text_arg(a, 1, "synthetic", "shape", "32x32x3"), "synthetic(): shape");
                     o.seed = static_cast<std::uint64_t>(int_arg(a, 2, "synthetic", "seed", 0));
                     o.kind = text_arg(a, 3, "synthetic", "kind", "noise");
                     o.labels = int_arg(a, 4, "synthetic", "labels", 10);
                     return open_synthetic(o);
                   }});
  }
  if (rc == SQLITE_OK) {
    rc = register_source_module(db, "dataset",
                                SourceSpec{{"source", "n", "every"}, 2, true, [](const std::vector<SourceArg>& a) {
                                             return open_dataset(text_arg(a, 0, "dataset", "source", ""),
                                                                 int_arg(a, 1, "dataset", "n", 0),
                                                                 int_arg(a, 2, "dataset", "every", 0));
                                           }});
  }
  if (rc == SQLITE_OK) {
    SourceSpec spec{{"root", "shape", "threads"}, 1, true, [](const std::vector<SourceArg>& a) {
                      return std::unique_ptr<Cursor>(open_image_folder(image_folder_options(a)));
                    }};
    spec.outputs = {"path", "class"};
    // The cursor is the one `open` made just above.
    spec.output = [](Cursor& rows, std::size_t output) -> std::string_view {
      const auto& folder = static_cast<const ImageFolderRows&>(rows);
      return output == 0 ? folder.path() : folder.class_name();
    };
    rc = register_source_module(db, "image_folder", std::move(spec));
  }
  if (rc == SQLITE_OK) rc = register_folder_classes_module(db);
  return rc;
}

}  // namespace imgstore
