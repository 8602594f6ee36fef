// Deterministic synthetic images: the same (n, shape, seed, kind) give the same bytes on every machine
// (integer arithmetic only). 'noise' is uniform random bytes (incompressible); 'smooth' is gradients and
// low-frequency waves with a little noise, which compresses like photos do.
#pragma once

#include <memory>
#include <string>

#include "store.hpp"

namespace imgstore {

struct SyntheticOptions {
  std::int64_t n = 0;
  Shape shape{32, 32, 3};
  std::uint64_t seed = 0;
  std::string kind = "noise";
  std::int64_t labels = 10;  // labels are 0 .. labels-1
};

std::unique_ptr<Cursor> open_synthetic(const SyntheticOptions& options);

// One image's bytes, for tests and benchmarks that need them without SQL.
void synthetic_image(const SyntheticOptions& options, std::int64_t id, std::span<std::uint8_t> out);
std::int64_t synthetic_label(const SyntheticOptions& options, std::int64_t id);

}  // namespace imgstore
