/* MapSampler: where a run evaluates — the initial design (reference, lhs, file) and, for type
   bayes, the adaptive rounds' new points. The one reader of -map_sample_type, -map_sample_n,
   -map_sample_file, -map_seed, -map_box and the Bayesian sampling options in `mapmerge run`. */
#include <mapmerge/sample.h>
#include <petscviewer.h>

struct _p_MapSampler {
  MPI_Comm           comm;
  char               type[32];           /* reference, lhs, file or bayes */
  char               design[32];         /* the initial design: reference, lhs or file (-map_sample_type) */
  PetscInt           n;                  /* -map_sample_n (bayes: the initial design's size once set up) */
  char               file[MAP_PATH_LEN]; /* -map_sample_file */
  PetscInt           seed;
  double             lo, hi;
  PetscInt           initial; /* bayes: -map_bayes_initial (0: 1.5 x the surrogate's unknowns) */
  MapBayesOptions    bayes;
  int                T;
  const char *const *names; /* borrowed task names (file designs map columns by them) */
};

PetscErrorCode MapSamplerCreate(MPI_Comm comm, MapSampler *sampler)
{
  MapSampler s;

  PetscFunctionBegin;
  PetscCall(PetscNew(&s));
  s->comm = comm;
  s->hi   = 1;
  PetscCall(PetscStrncpy(s->type, MAPSAMPLER_REFERENCE, sizeof(s->type)));
  PetscCall(PetscStrncpy(s->design, MAPSAMPLER_REFERENCE, sizeof(s->design)));
  MapBayesOptionsDefault(&s->bayes);
  *sampler = s;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerSetType(MapSampler s, MapSamplerType type)
{
  PetscFunctionBegin;
  PetscCheck(!strcmp(type, MAPSAMPLER_REFERENCE) || !strcmp(type, MAPSAMPLER_LHS) || !strcmp(type, MAPSAMPLER_FILE) || !strcmp(type, MAPSAMPLER_BAYES),
             s->comm, PETSC_ERR_ARG_UNKNOWN_TYPE, "sampler type %s: expected reference, lhs, file or bayes", type);
  PetscCall(PetscStrncpy(s->type, type, sizeof(s->type)));
  if (strcmp(type, MAPSAMPLER_BAYES)) PetscCall(PetscStrncpy(s->design, type, sizeof(s->design)));
  PetscFunctionReturn(0);
}

/* the box and the seed: the search uses the same box (MapSamplerGetBox) */
static PetscErrorCode MapSamplerBoxFromOptions(MapSampler s, const char *boxbuf)
{
  double    box[2];
  int       nbox = 0;
  PetscBool flg;

  PetscFunctionBegin;
  PetscCall(MapOptionsGetRealList("-map_box", 2, box, &nbox, &flg));
  if (flg) {
    PetscCheck(nbox == 2 && box[0] < box[1], s->comm, PETSC_ERR_ARG_WRONG, "-map_box: expected lo,hi with lo < hi, got \"%s\"", boxbuf);
    s->lo = box[0];
    s->hi = box[1];
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerSetFromOptions(MapSampler s)
{
  char      boxbuf[128] = "";
  PetscBool help, bayes = strcmp(s->type, MAPSAMPLER_BAYES) ? PETSC_FALSE : PETSC_TRUE;

  PetscFunctionBegin;
  PetscOptionsBegin(s->comm, NULL, "MapSampler: the design", "MapSampler");
  PetscCall(PetscOptionsString("-map_sample_type", "design: reference, lhs or file", "MapSamplerSetType", s->design, s->design, sizeof(s->design), NULL));
  PetscCall(PetscOptionsInt("-map_sample_n", "number of samples (lhs; reference: 0 = (T+1)(T+2))", NULL, s->n, &s->n, NULL));
  PetscCall(PetscOptionsString("-map_sample_file", "CSV of coefficient vectors for -map_sample_type file", NULL, s->file, s->file, sizeof(s->file), NULL));
  PetscCall(PetscOptionsInt("-map_seed", "the one seed everything is derived from", NULL, s->seed, &s->seed, NULL));
  PetscCall(PetscOptionsString("-map_box", "box lo,hi for sampling and search", NULL, boxbuf, boxbuf, sizeof(boxbuf), NULL));
  PetscOptionsEnd();
  PetscCall(MapSamplerBoxFromOptions(s, boxbuf));
  PetscCheck(s->n >= 0 && s->n <= MAP_SAMPLE_MAX, s->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_sample_n %" PetscInt_FMT ": need 0 to %d samples", s->n,
             MAP_SAMPLE_MAX);
  PetscCheck(!strcmp(s->design, MAPSAMPLER_REFERENCE) || !strcmp(s->design, MAPSAMPLER_LHS) || !strcmp(s->design, MAPSAMPLER_FILE), s->comm,
             PETSC_ERR_ARG_UNKNOWN_TYPE, "-map_sample_type %s: expected reference, lhs or file", s->design);
  if (!bayes) PetscCall(PetscStrncpy(s->type, s->design, sizeof(s->type)));
  PetscCall(PetscOptionsHasHelp(NULL, &help));
  if (bayes || help) {
    PetscOptionsBegin(s->comm, NULL, "MapSampler bayes: the initial design of Bayesian MAP", "MapSampler");
    PetscCall(PetscOptionsInt("-map_bayes_initial", "initial design size (0: 1.5 x the (T+1)(T+2)/2 surrogate unknowns)", NULL, s->initial, &s->initial,
                              NULL));
    PetscOptionsEnd();
    PetscCheck(s->initial >= 0 && s->initial <= MAP_SAMPLE_MAX, s->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_bayes_initial %" PetscInt_FMT ": need 0 to %d",
               s->initial, MAP_SAMPLE_MAX);
    PetscCall(MapBayesOptionsSetFromOptions(s->comm, &s->bayes));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerSetTasks(MapSampler s, int T, const char *const *names)
{
  PetscFunctionBegin;
  s->T     = T;
  s->names = names;
  if (!strcmp(s->type, MAPSAMPLER_BAYES)) {
    /* an initial fit that does not interpolate: 1.5 F, the fit's own warning threshold */
    PetscInt F = (PetscInt)(T + 1) * (T + 2) / 2;
    if (!s->initial) s->initial = (3 * F + 1) / 2;
    if (strcmp(s->design, MAPSAMPLER_FILE)) s->n = s->initial;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerGetBox(MapSampler s, double *lo, double *hi)
{
  PetscFunctionBegin;
  *lo = s->lo;
  *hi = s->hi;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerGetSeed(MapSampler s, PetscInt *seed)
{
  PetscFunctionBegin;
  *seed = s->seed;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerGetDesign(MapSampler s, const char **design, PetscInt *n, const char **file)
{
  PetscFunctionBegin;
  if (design) *design = s->design;
  if (n) *n = s->n;
  if (file) *file = s->file;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerGetInitial(MapSampler s, PetscInt *initial)
{
  PetscFunctionBegin;
  *initial = s->initial;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerSetSize(MapSampler s, PetscInt n)
{
  PetscFunctionBegin;
  PetscCheck(n >= 0 && n <= MAP_SAMPLE_MAX, s->comm, PETSC_ERR_ARG_OUTOFRANGE, "MapSamplerSetSize: %" PetscInt_FMT " samples, need 0 to %d", n,
             MAP_SAMPLE_MAX);
  s->n = n;
  if (!strcmp(s->type, MAPSAMPLER_BAYES)) s->initial = n;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerGenerate(MapSampler s, PetscInt *n, double **C)
{
  MapSampleType st = !strcmp(s->design, MAPSAMPLER_LHS) ? MAP_SAMPLE_LHS : !strcmp(s->design, MAPSAMPLER_FILE) ? MAP_SAMPLE_FILE
                                                                                                               : MAP_SAMPLE_REFERENCE;

  PetscFunctionBegin;
  PetscCheck(s->T >= 1, s->comm, PETSC_ERR_ARG_WRONGSTATE, "MapSamplerGenerate: call MapSamplerSetTasks first");
  PetscCall(MapSampleGenerate(st, s->T, s->names, s->n, s->lo, s->hi, (uint64_t)s->seed, s->file, n, C));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerPropose(MapSampler s, PetscInt n, const double *C, const double *sqres, int task, int iteration, PetscInt B, double *Cnew)
{
  uint64_t seed = (uint64_t)s->seed;

  PetscFunctionBegin;
  PetscCheck(!strcmp(s->type, MAPSAMPLER_BAYES), s->comm, PETSC_ERR_ARG_WRONGSTATE, "MapSamplerPropose: sampler type %s, need bayes", s->type);
  /* task t's draws: their own stream (task 0 does not reuse the all-task mode's draws) */
  if (task >= 0) seed = MapRngU64((uint64_t)s->seed, 0x7461736b /* "task" */, (uint64_t)task);
  PetscCall(MapBayesPropose(s->T, n, C, sqres, s->lo, s->hi, seed, iteration, B, &s->bayes, Cnew, NULL));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerView(MapSampler s, PetscViewer viewer)
{
  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "MapSampler %s: design %s, %" PetscInt_FMT " points%s%s, box [%g, %g], seed %" PetscInt_FMT "\n", s->type,
                                   s->design, s->n, s->file[0] ? " from " : "", s->file, s->lo, s->hi, s->seed));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSamplerDestroy(MapSampler *s)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(*s));
  PetscFunctionReturn(0);
}
