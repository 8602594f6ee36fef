// image_folder(root [, shape, threads]): the images of a folder laid out as torchvision's ImageFolder reads it
// (root/<class>/.../<file>), one row each with ImageFolder's index as id and its class index as label, so a
// model trained on the rows sees the samples ImageFolder would give it:
//
//   SELECT id, label, path, class, height, width, channels FROM image_folder('photos');
//   INSERT INTO train SELECT * FROM image_folder('photos', '224x224x3');   -- converted and resized as Pillow does
//
// The order and labels are folder_walk.hpp's; decoding and resizing image_file.hpp's. It streams: one class
// directory's listing at a time and a bounded window of decoded images, never the whole tree.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "store.hpp"

namespace imgstore {

struct ImageFolderOptions {
  std::string root;
  // Every image converted to its channels and resized to its size; none: each keeps its own.
  std::optional<Shape> shape;
  // Decoding workers; 1 decodes on the calling thread.
  unsigned threads = 1;
};

// The rows, with the two text columns image_folder() adds.
class ImageFolderRows : public Cursor {
 public:
  // The file as ImageFolder's samples name it: os.path.join(root, class, ..., file).
  virtual const std::string& path() const = 0;
  virtual const std::string& class_name() const = 0;
};

std::unique_ptr<ImageFolderRows> open_image_folder(const ImageFolderOptions& options);

}  // namespace imgstore
