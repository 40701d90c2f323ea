/* `mapmerge import`: safetensors checkpoints -> parallel HDF5 store (docs/design.md §2). */
#include <mapmerge/run.h>

/*@
  MapCommandImport - reads -map_pretrained, -map_tasks, -map_task_models, -map_private_patterns,
  -map_store, -map_store_dtype (and the tuning options -map_import_block, -map_import_chunk), checks them and that
  the store's folder is writable, rejects unused options, then runs MapStoreImport().

  Collective. With -help the options are listed and nothing is imported.
@*/
PetscErrorCode MapCommandImport(MPI_Comm comm)
{
  char                  pretrained[MAP_PATH_LEN] = "", store[MAP_PATH_LEN] = "", patterns[4096] = "head.*";
  static char           tasks[65536], models[65536]; /* long lists of long paths */
  PetscInt              block = 0, chunk = 0, idtype = 0, ibuf = 0, drange = MAP_STORE_DIGEST_RANGE;
  const char           *bufmodes[] = {"error", "private"};
  const char           *dtypes[]   = {"f32", "bf16", "f16"}; /* MapStoreDTypeFromOption order */
  PetscBool             help, set;
  int                   nt = 0, nm = 0, np = 0;
  char                **tl = NULL, **ml = NULL, **pl = NULL;
  MapStoreImportOptions opts;

  PetscFunctionBegin;
  tasks[0] = models[0] = 0;
  PetscOptionsBegin(comm, NULL, "mapmerge import: safetensors checkpoints -> HDF5 store", NULL);
  PetscCall(PetscOptionsString("-map_pretrained", "pretrained checkpoint: .safetensors file, folder, or model.safetensors.index.json", NULL,
                               pretrained, pretrained, sizeof(pretrained), NULL));
  PetscCall(PetscOptionsString("-map_tasks", "task names, comma-separated, in order", NULL, tasks, tasks, sizeof(tasks), NULL));
  PetscCall(PetscOptionsString("-map_task_models", "fine-tuned checkpoints, comma-separated, same order as -map_tasks", NULL, models, models,
                               sizeof(models), NULL));
  PetscCall(PetscOptionsString("-map_private_patterns", "comma-separated globs (fnmatch) of task-private tensors, kept per task, never merged",
                               NULL, patterns, patterns, sizeof(patterns), &set));
  PetscCall(PetscOptionsString("-map_store", "output HDF5 store", NULL, store, store, sizeof(store), NULL));
  PetscCall(PetscOptionsInt("-map_import_block", "parameters per rank converted per collective write (0 = about 4M/(T+1))", NULL, block, &block,
                            NULL));
  PetscCall(PetscOptionsInt("-map_import_chunk", "columns per HDF5 chunk of /task_vectors (0 = min(P, 1M))", NULL, chunk, &chunk, NULL));
  PetscCall(PetscOptionsInt("-map_import_digest_range",
                            "bytes per range of the source files' digests (sha256 of the sha256 of each range; a multiple of 4096, recorded in the store)",
                            NULL, drange, &drange, NULL));
  PetscCall(PetscOptionsEList("-map_store_dtype",
                              "storage dtype of /pretrained and /task_vectors: f32, bf16 or f16 (half the bytes; rounded to nearest even, "
                              "relative error per element < 2^-8 for bf16, < 2^-11 for f16 above 2^-14 (f16 overflows beyond 65504), recorded in the store)",
                              NULL, dtypes, MAP_STORE_NUM_DTYPES, dtypes[0], &idtype, NULL));
  PetscCall(PetscOptionsEList("-map_import_buffer_differs",
                              "a task's integer/bool tensor (position_ids, num_batches_tracked, masks; kept from the pretrained model, never "
                              "merged) with other values than the pretrained one: error, or private (kept as a private tensor of that task)",
                              NULL, bufmodes, 2, bufmodes[0], &ibuf, NULL));
  PetscOptionsEnd();
  PetscCall(PetscOptionsHasHelp(NULL, &help));
  if (help) PetscFunctionReturn(0);
  PetscCall(MapCheckOptionsLeft(comm)); /* first, so a mistyped required option is reported as a typo */

  PetscCheck(pretrained[0], comm, PETSC_ERR_ARG_WRONG, "import: -map_pretrained PATH is required");
  PetscCheck(tasks[0], comm, PETSC_ERR_ARG_WRONG, "import: -map_tasks a,b,c is required");
  PetscCheck(models[0], comm, PETSC_ERR_ARG_WRONG, "import: -map_task_models P1,P2,P3 is required");
  PetscCheck(store[0], comm, PETSC_ERR_ARG_WRONG, "import: -map_store PATH (the output) is required");
  PetscCheck(block >= 0 && chunk >= 0, comm, PETSC_ERR_ARG_OUTOFRANGE, "import: -map_import_block %" PetscInt_FMT " and -map_import_chunk %" PetscInt_FMT " must be >= 0", block, chunk);
  PetscCheck(drange >= 4096 && drange % 4096 == 0, comm, PETSC_ERR_ARG_OUTOFRANGE,
             "import: -map_import_digest_range %" PetscInt_FMT " must be a positive multiple of 4096", drange);
  PetscCall(MapSplitList(tasks, ',', &nt, &tl));
  PetscCall(MapSplitList(models, ',', &nm, &ml));
  PetscCheck(nt == nm, comm, PETSC_ERR_ARG_SIZ, "import: -map_tasks lists %d tasks but -map_task_models lists %d models; they must match one to one",
             nt, nm);
  if (patterns[0]) PetscCall(MapSplitList(patterns, ',', &np, &pl));
  else PetscCheck(!set, comm, PETSC_ERR_ARG_WRONG, "import: -map_private_patterns is empty; omit it for the default head.*");
  {
    /* every rank sees the same file system; report the reason once, from rank 0 */
    PetscErrorCode ierr;
    char          *why = NULL;
    PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
    ierr = MapCheckWritable(store, "-map_store");
    PetscCall(PetscPopErrorHandler());
    if (ierr) PetscCall(PetscErrorMessage(ierr, NULL, &why));
    PetscCheck(!ierr, comm, PETSC_ERR_FILE_OPEN, "import: %s", why ? why : "-map_store: output folder not writable");
  }

  opts.block           = block;
  opts.chunk           = chunk;
  opts.digest_range    = drange;
  opts.dtype           = MapStoreDTypeFromOption(idtype);
  opts.buffers_private = ibuf == 1 ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(MapStoreImport(comm, pretrained, nt, (const char *const *)tl, (const char *const *)ml, np, (const char *const *)pl, store,
                           &opts));
  PetscCall(MapFreeList(nt, &tl));
  PetscCall(MapFreeList(nm, &ml));
  PetscCall(MapFreeList(np, &pl));
  PetscFunctionReturn(0);
}
