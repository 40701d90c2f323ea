/* The embedded default problem (`mapmerge zoo`): an MLP pretrained on Fashion-MNIST and fine-tuned
 * per task on deterministic image transforms, written as safetensors with PyTorch state_dict
 * names, plus per-task eval sets (DESIGN.md §4). */
#ifndef MAPMERGE_ZOO_H
#define MAPMERGE_ZOO_H

#include <mapmerge/safetensors.h>

/* MapZooBuild - collective (rank 0 computes, the others wait): reads -map_zoo_* options and
   -map_seed, writes into the folder `outdir`: pretrained.safetensors, <task>.safetensors,
   data/<task>_val.safetensors, data/<task>_test.safetensors, and zoo.yaml (the options to use it). */
PetscErrorCode MapZooBuild(MPI_Comm comm, const char *outdir);

#endif
