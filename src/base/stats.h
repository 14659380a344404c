// Small statistics over samples, shared by the benchmarks and the analysis.
#pragma once

#include <vector>

namespace glassbox {

// The q-quantile (0 <= q <= 1, clamped) of `values`, interpolating linearly
// between the two nearest order statistics (numpy's default); 0 when empty.
double quantile(std::vector<double> values, double q);

}  // namespace glassbox
