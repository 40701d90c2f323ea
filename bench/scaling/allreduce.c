/* allreduce: MPI_Allreduce (MPI_SUM of floats) latency and bandwidth between the ranks of
 * MPI_COMM_WORLD, timed with MPI_Wtime; plain MPI, no PETSc, so it builds with mpicc alone:
 *
 *   mpicc -O2 -o allreduce allreduce.c && mpiexec -n 2 ./allreduce [max_bytes=67108864] [reps=20]
 *
 * For each message size (8 bytes, then x4 up to max_bytes) every rank times `reps` allreduces
 * after two warm-up calls, each one between barriers so one slow rank does not hide in the next;
 * the time of a call is the maximum over ranks. Prints "RESULT allreduce <bytes> <min s> <median s>"
 * and the bus bandwidth 2 (n-1)/n * bytes / median (the bytes a ring algorithm moves per rank). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
  int    rank, size, reps = argc > 2 ? atoi(argv[2]) : 20;
  long   max_bytes = argc > 1 ? atol(argv[1]) : 64L << 20;
  float *in, *out;
  double *t;

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (reps < 1 || max_bytes < 8) {
    if (!rank) fprintf(stderr, "allreduce: need max_bytes >= 8 and reps >= 1 (got %ld, %d)\n", max_bytes, reps);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  in  = malloc((size_t)max_bytes);
  out = malloc((size_t)max_bytes);
  t   = malloc(sizeof(double) * (size_t)reps);
  if (!in || !out || !t) {
    fprintf(stderr, "allreduce: rank %d cannot allocate 2 x %ld bytes\n", rank, max_bytes);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (long j = 0; j < max_bytes / 4; j++) in[j] = (float)(j % 97) * 0.5f; /* touch the pages before timing */
  memset(out, 0, (size_t)max_bytes);
  if (!rank) printf("allreduce: %d ranks, %d reps per size, MPI_SUM of MPI_FLOAT\n", size, reps);
  for (long bytes = 8; bytes <= max_bytes; bytes *= 4) {
    int n = (int)(bytes / 4);
    for (int w = 0; w < 2; w++) MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (int r = 0; r < reps; r++) {
      double t0, dt;
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = MPI_Wtime();
      MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      dt = MPI_Wtime() - t0;
      MPI_Allreduce(&dt, &t[r], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    }
    qsort(t, (size_t)reps, sizeof(double), cmp);
    if (!rank)
      printf("RESULT allreduce %ld %.3e %.3e %.3f GB/s\n", bytes, t[0], t[reps / 2],
             size > 1 ? 2.0 * (size - 1) / size * (double)bytes / t[reps / 2] / 1e9 : 0.0);
  }
  free(in);
  free(out);
  free(t);
  MPI_Finalize();
  return 0;
}
