/* MapSampler - designs of coefficient vectors in a box [lo,hi]^T (docs/design.md §5.1). */
#ifndef MAPMERGE_SAMPLE_H
#define MAPMERGE_SAMPLE_H

#include <mapmerge/core.h>
#include <mapmerge/sample_csv.h>
#include <petscviewer.h>

typedef enum { MAP_SAMPLE_REFERENCE,
               MAP_SAMPLE_LHS,
               MAP_SAMPLE_FILE } MapSampleType;

/* MapSampleGenerate - *C [n*T] row-major (PetscFree). reference: T one-hots plus a lattice,
   (T+1)(T+2) points in all when n <= 0, identifiable for every T; lhs: n Latin-hypercube points;
   file: the rows of a CSV whose header names the tasks (c_<task> or <task>), in task order.
   Draws are keyed on (seed, point, coordinate) only. Not collective (every rank gets the same). */
PetscErrorCode MapSampleGenerate(MapSampleType type, int T, const char *const *task_names, PetscInt n, double lo, double hi,
                                 uint64_t seed, const char *file, PetscInt *nout, double **C);

/* MapSampleDesignRank - numerical rank of the quadratic design matrix [1, c, c_i c_j] of the n
   points (F = (T+1)(T+2)/2 columns), by SVD-free pivoted QR in double. */
PetscErrorCode MapSampleDesignRank(int T, PetscInt n, const double *C, int *rank, int *F);

/* MapSampleCheckIdentifiable - error (with the rank found and needed) when the quadratic surrogate
   cannot be identified from the design. */
PetscErrorCode MapSampleCheckIdentifiable(int T, PetscInt n, const double *C);


/* ======================================================================================
 * Bayesian MAP: adaptive sampling step (src/map/sample_bayes.c, docs/design.md §5 "Bayesian MAP").
 * Points are shifted to the unit box, x = (c - lo)/(hi - lo) in [0,1]^T, and described in
 * hyperspherical coordinates around the corner lo: radius r and T-1 angles, each in [0, pi/2]
 * for x >= 0. Angular bins score the surrogate's squared residuals; new points are drawn where
 * the fit is worst. Every draw is keyed on (seed, iteration, ...), never on call order or ranks.
 * ====================================================================================== */
typedef struct {
  double temperature;          /* softmax temperature on scores normalised by their maximum (> 0) */
  double lambda;               /* score = mean + lambda * std of a bin's squared residuals (>= 0) */
  int    resamples;            /* resamples for the std (>= 0; < 2 means std = 0) */
  double drop_fraction;        /* fraction of a bin's points each resample drops, in [0, 1) */
  double radius_lo, radius_hi; /* radius ~ U(lo, hi) as a fraction of the ray's length inside the box */
  int    bins_per_angle;       /* 0 = default: 4 for T < 4, 2 otherwise */
  int    max_bins;             /* cap on the number of bins for large T (bins only the first angles) */
  int    candidates;           /* per new point: candidates drawn in its bin, the one farthest from all points kept (1 = reference) */
  double explore;              /* fraction of each batch drawn over the whole box instead of a scored bin, in [0, 1] */
} MapBayesOptions;

/* MapBayesOptionsDefault - the reference defaults: temperature 0.07, lambda 0.5, 30 resamples,
   drop 0.2, radius U(0.2, 0.8), bins_per_angle 0 (4 for T < 4, else 2), max_bins 4096; and two
   additions (not in the reference): candidates 64 (maximin selection, see MapBayesPropose) and
   explore 0.5; candidates 1 and explore 0 give the reference's draw. */
void MapBayesOptionsDefault(MapBayesOptions *o);

/* MapBayesOptionsSetFromOptions - reads -map_bayes_temperature, -map_bayes_lambda,
   -map_bayes_resamples, -map_bayes_drop_fraction, -map_bayes_radius lo,hi, -map_bayes_bins,
   -map_bayes_max_bins, -map_bayes_candidates, -map_bayes_explore (the current values of o are the
   defaults) and checks them. Collective on comm (only for -help output and errors; every rank reads
   the same database). */
PetscErrorCode MapBayesOptionsSetFromOptions(MPI_Comm comm, MapBayesOptions *o);

/* MapBayesGetBins - the bin layout for T tasks: bins per angle, number of angles binned (the first
   `nangles` of the T-1; fewer than T-1 only when bins_per_angle^(T-1) > max_bins) and the number of
   bins = bins_per_angle^nangles. Not collective. */
PetscErrorCode MapBayesGetBins(int T, const MapBayesOptions *o, int *bins_per_angle, int *nangles, PetscInt *nbins);

/* MapBayesBinOf - the angular bin of the point c[T] in the box [lo,hi]^T (angles outside [0, pi/2],
   from points outside the box, are clamped to the first/last bin). Bin index: angle 0 is the
   least significant digit in base bins_per_angle. Not collective. */
PetscErrorCode MapBayesBinOf(int T, const double *c, double lo, double hi, const MapBayesOptions *o, PetscInt *bin);

/* Hyperspherical coordinates: x[T] <-> radius r and phi[T-1] with x_0 = r cos phi_0,
   x_k = r sin phi_0 .. sin phi_{k-1} cos phi_k, x_{T-1} = r sin phi_0 .. sin phi_{T-2}. phi_k in
   [0, pi] for k < T-2, phi_{T-2} in (-pi, pi]; all in [0, pi/2] when x >= 0. The zero vector gets
   r = 0 and phi = 0. For T = 1, r = x_0 and there are no angles. */
void MapHypersphericalFromCartesian(int T, const double *x, double *r, double *phi);
void MapHypersphericalToCartesian(int T, double r, const double *phi, double *x);

/* MapBayesPropose - B new coefficient vectors Cnew[B*T] (row-major) in [lo,hi]^T from the n points
   C[n*T] evaluated so far and sqres[n] >= 0, the squared residual of the current surrogate fit at
   each point (e.g. summed over tasks and metrics). Bins are scored by mean + lambda * std of the
   squared residuals of their points; bins without points get the highest score of the others
   (exploration). Bins are drawn with probability softmax(score / max score / temperature), angles
   uniformly inside the bin, radius uniformly in [radius_lo, radius_hi] times the length of the ray
   from lo to the box boundary. Space filling (o->candidates = M > 1): each new point is the one of M
   such draws in its bin with the largest distance to its nearest neighbour among the n points and
   the new points chosen before it (maximin, unit-box coordinates; ties: the first). M = 1 is the
   reference draw. Exploration: the fraction `explore` of the new points (the g-th new point of the
   run, g = iteration * B + d, when floor(explore (g+1)) > floor(explore g)) ignores the bins: its M
   candidates are uniform in the whole box. bin_scores_out (optional, nbins from MapBayesGetBins) receives the
   raw scores. Deterministic: the result depends only on the inputs (keyed on seed and iteration).
   Not collective: every rank calling it with the same inputs gets the same bits. */
PetscErrorCode MapBayesPropose(int T, PetscInt n, const double *C, const double *sqres, double lo, double hi, uint64_t seed,
                               int iteration, PetscInt B, const MapBayesOptions *o, double *Cnew, double *bin_scores_out);
/* ---- end of Bayesian MAP block ---- */

/* ======================================================================================
 * MapSampler - the object a run samples with (src/map/sample_sampler.c): types reference, lhs and
 * file (the initial design) and bayes (an initial design, then MapSamplerPropose's rounds). It
 * reads -map_sample_type, -map_sample_n, -map_sample_file, -map_seed, -map_box and, for bayes,
 * -map_bayes_initial and MapBayesOptionsSetFromOptions' options; the kernels above do the work.
 * ====================================================================================== */
typedef struct _p_MapSampler *MapSampler;
typedef const char           *MapSamplerType;
#define MAPSAMPLER_REFERENCE "reference"
#define MAPSAMPLER_LHS       "lhs"
#define MAPSAMPLER_FILE      "file"
#define MAPSAMPLER_BAYES     "bayes"
#define MAP_SAMPLE_MAX       1000000 /* the most points of a design: more is a typo, and products of sizes overflow */

PetscErrorCode MapSamplerCreate(MPI_Comm comm, MapSampler *s);
/* MapSamplerSetType - bayes keeps -map_sample_type as its initial design; the others are that design */
PetscErrorCode MapSamplerSetType(MapSampler s, MapSamplerType type);
PetscErrorCode MapSamplerSetFromOptions(MapSampler s);
/* MapSamplerSetTasks - T and the task names (borrowed; a file design maps its columns by them);
   bayes: the initial design's size default (1.5 x the (T+1)(T+2)/2 surrogate unknowns) */
PetscErrorCode MapSamplerSetTasks(MapSampler s, int T, const char *const *names);
PetscErrorCode MapSamplerGetBox(MapSampler s, double *lo, double *hi);
PetscErrorCode MapSamplerGetSeed(MapSampler s, PetscInt *seed);
/* MapSamplerGetDesign - the initial design's type, size (as requested; 0: the type's default) and CSV file */
PetscErrorCode MapSamplerGetDesign(MapSampler s, const char **design, PetscInt *n, const char **file);
PetscErrorCode MapSamplerGetInitial(MapSampler s, PetscInt *initial);
/* MapSamplerSetSize - the initial design's size in place of -map_sample_n (bayes: -map_bayes_initial),
   e.g. -map_budget's allocation; after MapSamplerSetTasks */
PetscErrorCode MapSamplerSetSize(MapSampler s, PetscInt n);
/* MapSamplerGenerate - the initial design, *C [n*T] (PetscFree); same points on every rank */
PetscErrorCode MapSamplerGenerate(MapSampler s, PetscInt *n, double **C);
/* MapSamplerPropose - type bayes: B new points Cnew[B*T] where the squared residuals sqres[n] at the
   points C[n*T] are largest (MapBayesPropose); task >= 0 draws task's own stream, -1 the all-task one */
PetscErrorCode MapSamplerPropose(MapSampler s, PetscInt n, const double *C, const double *sqres, int task, int iteration, PetscInt B, double *Cnew);
PetscErrorCode MapSamplerView(MapSampler s, PetscViewer viewer);
PetscErrorCode MapSamplerDestroy(MapSampler *s);

#endif
