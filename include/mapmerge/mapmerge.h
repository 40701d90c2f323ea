/* mapmerge - MPI-parallel model merging with amortized Pareto fronts (MAP). Umbrella header. */
#ifndef MAPMERGE_H
#define MAPMERGE_H
#include <mapmerge/core.h>
#include <mapmerge/safetensors.h>
#include <mapmerge/store.h>
#include <mapmerge/merge.h>
#include <mapmerge/eval.h>
#include <mapmerge/sample.h>
#include <mapmerge/surrogate.h>
#include <mapmerge/pareto.h>
#include <mapmerge/zoo.h>
#include <mapmerge/run.h>
#endif
