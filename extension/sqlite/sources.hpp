// Registers the table-valued functions cifar10(), idx(), synthetic(), dataset(), image_folder() and
// image_folder_classes().
#pragma once

#include "sqlite3ext.h"

namespace imgstore {

int register_sources(sqlite3* db);

// image_folder_classes(root): label, class of each class folder (folder_classes_vtab.cpp).
int register_folder_classes_module(sqlite3* db);

}  // namespace imgstore
